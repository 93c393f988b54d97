"""With the embedded engine, the configuration is checked against what the engine serves."""

from pathlib import Path

import pytest

from backends.local import with_local_filters
from domain.errors import ConfigurationError
from settings import DEMO_CONFIG, REPO_ROOT, FilterSettings, ParamType, load_settings

PREFIX = "arn:aws:personalize:us-east-1:000000000000:"


def test_filter_params_come_from_the_expressions() -> None:
    demo = load_settings()
    untyped = {n: f.model_copy(update={"params": {}}) for n, f in demo.filters.items()}
    settings = with_local_filters(demo.model_copy(update={"filters": untyped}))
    assert settings.filters["byCategory"].params == {"CATEGORY": ParamType.STRINGS}
    assert settings.filters["maxPrice"].params == {"MAX_PRICE": ParamType.NUMBER}
    assert settings.filters["excludePurchased"].params == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "filters": {
                    "f": FilterSettings(
                        arn=PREFIX + "filter/by-category", params={"GENRE": ParamType.STRINGS}
                    )
                }
            },
            "disagree with the expression",
        ),
        ({"filters": {"f": FilterSettings(arn=PREFIX + "filter/nope")}}, "serves no"),
    ],
)
def test_mismatches_stop_start_up(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        with_local_filters(load_settings().model_copy(update=change))


def test_unknown_use_case_arns_stop_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(DEMO_CONFIG.read_text().replace("campaign/sims", "campaign/simz"))
    monkeypatch.setenv("SUBGRAPH_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match=r"use_cases.similarItems: .*campaign/simz"):
        with_local_filters(load_settings())


def test_an_unknown_arn_with_a_fallback_chain_is_started_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The demo's newArrivals: not deployed, so its fallback chain answers every call."""
    settings = with_local_filters(load_settings())
    assert "newArrivals" in settings.use_cases
    assert settings.use_cases["newArrivals"].fallback
    warned = [r.getMessage() for r in caplog.records if r.name == "backends.local"]
    assert any("newArrivals" in line and "fallback chain answers" in line for line in warned)


def test_a_resources_file_is_found_relative_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    (tmp_path / "res.toml").write_text((REPO_ROOT / "config" / "local_resources.toml").read_text())
    config.write_text(
        DEMO_CONFIG.read_text().replace("[local]\n", '[local]\nresources = "res.toml"\n')
    )
    monkeypatch.setenv("SUBGRAPH_CONFIG", str(config))
    settings = load_settings()
    assert settings.local.resources == tmp_path / "res.toml"
    assert with_local_filters(settings).filters["byCategory"].params == {
        "CATEGORY": ParamType.STRINGS
    }
