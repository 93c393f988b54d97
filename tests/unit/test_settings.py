"""Configuration: the demo loads, overrides apply, and mistakes fail at start-up in one line."""

import subprocess
import sys
from pathlib import Path

import pytest

from domain.errors import ConfigurationError
from settings import DEMO_CONFIG, MAX_WORKERS, REPO_ROOT, ServedField, load_settings


def test_demo_config_loads_with_defaults_per_field() -> None:
    settings = load_settings()
    assert settings.backend == "local"
    assert settings.default_use_case(ServedField.RECOMMENDATIONS) == "recommendedForYou"
    assert settings.default_use_case(ServedField.RELATED) == "similarItems"
    assert settings.use_cases["recommendedForYou"].is_recommender
    assert not settings.use_cases["similarItems"].is_recommender


def test_pagination_defaults_and_its_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert (settings.pagination.window, settings.pagination.ttl) == (100, 1800.0)
    assert settings.pagination.secret is None
    monkeypatch.setenv("SUBGRAPH_PAGINATION__SECRET", "shared-by-replicas")
    secret = load_settings().pagination.secret
    assert secret is not None
    assert secret.get_secret_value() == "shared-by-replicas"
    assert "shared-by-replicas" not in repr(load_settings().pagination)


def test_carts_are_reranked_by_the_demos_ranking_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().cart.rerank == "personalizedRanking"
    monkeypatch.setenv("SUBGRAPH_CART__RERANK", "similarItems")
    with pytest.raises(ConfigurationError, match=r"cart\.rerank: 'similarItems' is not a"):
        load_settings()


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBGRAPH_BACKEND", "personalize")
    monkeypatch.setenv("SUBGRAPH_PERSONALIZE__READ_TIMEOUT", "0.5")
    settings = load_settings()
    assert settings.backend == "personalize"
    assert settings.personalize.read_timeout == 0.5
    # The rest of the section still comes from the file.
    assert settings.personalize.max_concurrency == 64


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('backend = "aws"', "backend"),
        (
            '[use_cases.x]\narn = "not-an-arn"\nfield = "recommendations"\ninput = "user"',
            "not a Personalize ARN",
        ),
        (
            '[use_cases.x]\narn = "arn:aws:personalize:us-east-1:1:recommender/r"\n'
            'field = "related"\ninput = "user"',
            "takes input",
        ),
        (
            '[use_cases.x]\narn = "arn:aws:personalize:us-east-1:1:recommender/r"\n'
            'field = "rankedItems"\ninput = "user"',
            "campaign ARN",
        ),
        ('[filters.f]\narn = "arn:aws:personalize:us-east-1:1:filter/f"\nparams = ["A-B"]', "A-B"),
        ('[federation]\nitem_type = "User"', "must differ"),
        ("[personalize]\nmax_attempts = 0", "max_attempts"),
        ("[connections]\nheader_timeout = 0", "header_timeout"),
        # Over uvicorn's parser limit: the app's 414 could never answer.
        ("[limits]\nmax_query_bytes = 70000", "max_query_bytes"),
        ("[personalize]\nregion = ", "not valid TOML"),
        ("[personalize]\nunknown = 1", "unknown"),
        ('[federation]\nversion = "3.0"', "a version Strawberry supports: 2.0, "),
        ('[local]\nengine_url = "http://127.0.0.1:1/path"', "engine URL"),
        ('[events]\noutbox = "disk"', "events.outbox"),
        ("[pagination]\nwindow = 501", "pagination.window"),
        ("[pagination]\nttl = 0", "pagination.ttl"),
        (
            '[use_cases.x]\narn = "arn:aws:personalize:us-east-1:1:recommender/r"\n'
            'field = "recommendations"\ninput = "user"\npage_window = 0',
            "page_window",
        ),
        ("[events]\nmax_in_flight = 0", "events.max_in_flight"),
        ('[cart]\nrerank = "nothing"', "cart.rerank: 'nothing' is not a rankedItems use case"),
        (
            '[use_cases.x]\narn = "arn:aws:personalize:us-east-1:1:campaign/c"\n'
            'field = "related"\ninput = "item"\n[cart]\nrerank = "x"',
            "cart.rerank: 'x' is not a rankedItems",
        ),
    ],
)
def test_mistakes_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    monkeypatch.setenv("SUBGRAPH_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_settings()
    assert "\n" not in str(caught.value)
    assert str(config) in str(caught.value)


def test_a_config_file_that_is_not_utf8_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes('region = "M\u00e1laga"\n'.encode("latin-1"))
    monkeypatch.setenv("SUBGRAPH_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match=f"config {config} is not valid TOML: 'utf-8'"):
        load_settings()


def test_a_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBGRAPH_CONFIG", "/nonexistent/subgraph.toml")
    with pytest.raises(ConfigurationError, match="cannot read config /nonexistent"):
        load_settings()


def test_the_server_refuses_to_start_on_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('backend = "aws"\n')
    proc = subprocess.run(
        [sys.executable, "server.py"],
        cwd=REPO_ROOT,
        env={"SUBGRAPH_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"personalize-subgraph: config {config}: backend: Input should be 'local' or 'personalize'"
    ]


def test_process_settings_come_from_their_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKERS", "3")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("LOG_FORMAT", "Text")
    settings = load_settings()
    assert (settings.workers, settings.log_level, settings.log_format) == (3, "DEBUG", "text")


def test_process_settings_in_the_file_yield_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WORKERS", "LOG_LEVEL", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "c.toml"
    config.write_text('workers = 2\nlog_format = "text"\n' + DEMO_CONFIG.read_text())
    monkeypatch.setenv("SUBGRAPH_CONFIG", str(config))
    settings = load_settings()
    assert (settings.workers, settings.log_level, settings.log_format) == (2, "INFO", "text")
    monkeypatch.setenv("WORKERS", "4")
    assert load_settings().workers == 4


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("workers = 0", f"workers: must be a whole number from 1 to {MAX_WORKERS} (got 0)"),
        ('log_level = "loud"', "log_level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("log_format = 1", "log_format: must be json or text, in any case (got 1)"),
    ],
)
def test_a_bad_process_setting_in_the_file_is_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, message: str
) -> None:
    for name in ("WORKERS", "LOG_LEVEL", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    monkeypatch.setenv("SUBGRAPH_CONFIG", str(config))
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"config {config}: {message}")


def test_a_section_check_names_the_variables_that_fed_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # The file's timeouts are fine; the environment's read timeout breaks the section's rule.
    monkeypatch.setenv("SUBGRAPH_PERSONALIZE__READ_TIMEOUT", "5")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value) == (
        f"config {DEMO_CONFIG}: personalize: Value error, connect_timeout + read_timeout "
        "must not exceed the deadline (with SUBGRAPH_PERSONALIZE__READ_TIMEOUT from the "
        "environment)"
    )


WHOLE = f"must be a whole number from 1 to {MAX_WORKERS}"
LEVELS = "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, in any case"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WORKERS", "abc", f"{WHOLE} (got 'abc')"),
        ("WORKERS", "0", f"{WHOLE} (got '0')"),
        ("WORKERS", str(MAX_WORKERS + 1), f"{WHOLE} (got '{MAX_WORKERS + 1}')"),
        ("LOG_LEVEL", "verbose", f"{LEVELS} (got 'verbose')"),
        ("LOG_FORMAT", "xml", "must be json or text, in any case (got 'xml')"),
        (
            "SUBGRAPH_SERVER__PORT",
            "abc",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
    ],
)
def test_the_server_names_a_bad_variable_in_one_line(
    variable: str, value: str, message: str
) -> None:
    # Reported as the environment's, not as if the demo file held it.
    proc = subprocess.run(
        [sys.executable, "server.py"],
        cwd=REPO_ROOT,
        env={variable: value, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"personalize-subgraph: environment {variable}: {message}"]
