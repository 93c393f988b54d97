"""observability.readout: intervals, and its verdict on synthetic runs counted by the
real metrics (ExperimentMetrics on a registry, scraped as /metrics would be)."""

import random
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from domain.experiments import assign
from observability.experiments import ExperimentMetrics
from observability.readout import newcombe, read_counts, report, wilson
from settings import load_settings

CONTROL_RATE = 0.05


def simulated_run(treatment_rate: float, users: int = 20_000, seed: int = 1) -> str:
    """Demo users bucketed into HOME_HERO; each sees the list once and clicks with their
    variant's probability; the counts as /metrics shows them."""
    settings = load_settings()
    registry = CollectorRegistry()
    metrics = ExperimentMetrics(registry, settings)
    experiment = settings.experiments["HOME_HERO"]
    names = list(experiment.variants)
    weights = [v.weight for v in experiment.variants.values()]
    rates = {"control": CONTROL_RATE, "campaign": treatment_rate}
    draw = random.Random(seed)
    for n in range(users):
        variant = names[assign("HOME_HERO", experiment.salt, f"user-{n}", weights)]
        metrics.exposed("HOME_HERO", variant)
        source = experiment.source("HOME_HERO", variant)
        if draw.random() < rates[variant]:
            metrics.attributed(source, "click")
        if draw.random() < 0.01:
            metrics.attributed(source, "purchase")
    return generate_latest(registry).decode()


def difference(text: str) -> tuple[float, float, float]:
    variants = {v.name: v for v in read_counts(text)["HOME_HERO"]}
    treated, control = variants["campaign"], variants["control"]
    return newcombe(
        treated.events["click"], treated.exposures, control.events["click"], control.exposures
    )


def test_a_variant_clicked_twice_as_often_differs() -> None:
    text = simulated_run(2 * CONTROL_RATE)
    _d, low, high = difference(text)
    assert low > 0
    assert low < 0.05 < high  # the true difference, 5 points, is inside
    printed = report("HOME_HERO", read_counts(text)["HOME_HERO"], "control", "click")
    assert "differs" in printed
    assert "no clear difference" not in printed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_a_a_run_shows_no_difference(seed: int) -> None:
    text = simulated_run(CONTROL_RATE, seed=seed)
    _d, low, high = difference(text)
    assert low < 0 < high
    printed = report("HOME_HERO", read_counts(text)["HOME_HERO"], "control", "click")
    assert "no clear difference" in printed


def test_wilson_and_newcombe_match_published_values() -> None:
    # Newcombe (1998), table II, example (a): 56/70 vs 48/80: 0.2000 [0.0524, 0.3339].
    d, low, high = newcombe(56, 70, 48, 80)
    assert (round(d, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)
    # Wilson: 81/263 -> [0.2553, 0.3662] (Newcombe 1998, single proportion examples).
    assert tuple(round(v, 4) for v in wilson(81, 263)) == (0.2553, 0.3662)
    assert wilson(0, 10)[0] == 0.0
    assert wilson(10, 10)[1] == 1.0


def test_the_command_prints_a_saved_scrape(tmp_path: Path) -> None:
    path = tmp_path / "metrics.txt"
    path.write_text(simulated_run(2 * CONTROL_RATE))
    done = subprocess.run(
        [sys.executable, "-m", "observability.readout", "--metrics-file", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("experiment HOME_HERO: rate = click events per exposure")
    assert lines[1].split()[:4] == ["variant", "exposures", "click", "purchase"]
    assert lines[2].startswith("control ")
    assert lines[3].startswith("campaign ")
    assert "differs" in lines[3]
    missing = subprocess.run(
        [sys.executable, "-m", "observability.readout", "--metrics-file", str(tmp_path / "no")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert "cannot read the counts" in missing.stderr
