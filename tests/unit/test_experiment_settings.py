"""`[experiments.NAME]`: the demo's loads, and every mistake is one line at start-up."""

from pathlib import Path

import pytest

from domain.errors import ConfigurationError
from settings import DEMO_CONFIG, ServedField, load_settings


def test_the_demo_experiment_loads() -> None:
    settings = load_settings()
    experiment = settings.experiments["HOME_HERO"]
    assert experiment.control == "control"
    assert list(experiment.variants) == ["control", "campaign"]
    assert experiment.source("HOME_HERO", "campaign") == "HOME_HERO:campaign"
    assert settings.experiment_field("HOME_HERO") is ServedField.RECOMMENDATIONS
    assert settings.experiments_for(ServedField.RECOMMENDATIONS) == ["HOME_HERO"]
    assert settings.experiments_for(ServedField.RELATED) == []


def _variants(**variants: str) -> str:
    return "\n".join(f"[experiments.E.variants.{name}]\n{body}" for name, body in variants.items())


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (_variants(a='use_case = "nope"'), "'nope' is not a configured use case"),
        (
            _variants(a='use_case = "recommendedForYou"', b='use_case = "similarItems"'),
            "the same for all",
        ),
        (_variants(a='use_case = "personalizedRanking"'), "the same for all"),
        (_variants(a='use_case = "bestSellers"\nweight = 0'), "weight above 0"),
        (_variants(a='use_case = "bestSellers"\nweight = -1'), "greater than or equal to 0"),
        (_variants(a='use_case = "bestSellers"\nattribution_source = "é"'), "printable ASCII"),
        (_variants(a='use_case = "bestSellers"\nattribution_source = "  "'), "printable ASCII"),
        (
            _variants(a=f'use_case = "bestSellers"\nattribution_source = "{"x" * 1025}"'),
            "printable ASCII",
        ),
        (_variants(a='use_case = "bestSellers"\nfilter = "byCategory"'), "without parameters"),
        (_variants(a='use_case = "bestSellers"\npromotion = "p"'), "go together"),
        (_variants(**{"a-b": 'use_case = "bestSellers"'}), "not a GraphQL name"),
        ('[experiments.E]\nsalt = "s"', "experiments.E.variants: Field required"),
        (
            _variants(
                a='use_case = "bestSellers"\nattribution_source = "same"',
                b='use_case = "bestSellers"\nattribution_source = "same"',
            ),
            "'same' is experiments.E.variants.a's too",
        ),
        (
            _variants(
                a='use_case = "recommendedForYou"\nattribution_source = "HOME_HERO:campaign"'
            ),
            "experiments.E.variants.a.attribution_source: 'HOME_HERO:campaign' is "
            "experiments.HOME_HERO.variants.campaign's too",
        ),
    ],
)
def test_experiment_mistakes_fail_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, problem: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(DEMO_CONFIG.read_text() + "\n" + extra + "\n")
    monkeypatch.setenv("SUBGRAPH_CONFIG", str(path))
    with pytest.raises(ConfigurationError, match="experiments") as raised:
        load_settings()
    assert problem in str(raised.value)
    assert "\n" not in str(raised.value)


def test_integer_and_float_weights_filters_and_promotions_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = _variants(
        a='use_case = "bestSellers"\nweight = 2',
        b='use_case = "mostViewed"\nweight = 0.5\nfilter = "excludePurchased"\n'
        'promotion = "deals"\npromotion_filter = "excludePurchased"\n'
        'attribution_source = "popular-b"',
    )
    path = tmp_path / "config.toml"
    path.write_text(DEMO_CONFIG.read_text() + "\n" + extra + "\n")
    monkeypatch.setenv("SUBGRAPH_CONFIG", str(path))
    settings = load_settings()
    experiment = settings.experiments["E"]
    assert [v.weight for v in experiment.variants.values()] == [2.0, 0.5]
    assert experiment.source("E", "b") == "popular-b"
    assert experiment.source("E", "a") == "E:a"
    assert settings.experiments_for(ServedField.POPULAR_ITEMS) == ["E"]
