"""The one configuration object: typed, validated at start, shared by the engine and Celery, documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("variable, value, message", [
    ("LEASE_TTL_SECONDS", "two minutes", "LEASE_TTL_SECONDS must be a number"),
    ("CHECKPOINT_EVERY", "0", "CHECKPOINT_EVERY must be at least 1"),
    ("SWEEP_INTERVAL_SECONDS", "-5", "SWEEP_INTERVAL_SECONDS must be at least"),
    ("CACHE_BACKEND", "redis", "CACHE_BACKEND must be one of postgres, memory"),
    ("LLM_CACHE", "sometimes", "LLM_CACHE must be on or off"),
    ("LLM_PRICES", '{"sim:a": {"input": 1}}', "LLM_PRICES entry 'sim:a'"),
    ("SIM_MAX_CONCURRENCY", "many", "SIM_MAX_CONCURRENCY must be an integer"),
    ("DATABASE_POOLER", "pgpool", "DATABASE_POOLER must be one of none, pgbouncer-transaction"),
    ("MAX_IMPORT_RECORDS", "1e9x", "MAX_IMPORT_RECORDS must be an integer"),
    ("BROKER_VISIBILITY_TIMEOUT", "soon", "BROKER_VISIBILITY_TIMEOUT must be a number"),
])
def test_a_bad_variable_stops_the_app_at_start_naming_it(monkeypatch, variable: str, value: str,
                                                         message: str) -> None:
    from app import create_app

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_app({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})


def test_a_bad_database_url_is_named_without_echoing_it(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root:hunter2-secret@db/litscreen")
    with pytest.raises(ConfigError, match="DATABASE_URL must be a postgresql:// URL") as excinfo:
        load_settings()
    assert "hunter2-secret" not in str(excinfo.value)


def test_overrides_beat_the_environment_and_values_are_typed(monkeypatch) -> None:
    monkeypatch.setenv("LEASE_TTL_SECONDS", "300")
    monkeypatch.setenv("CHECKPOINT_EVERY", "25")
    settings = load_settings({"LEASE_TTL_SECONDS": "7"})
    assert settings.engine.lease_ttl == 7.0
    assert settings.engine.checkpoint_every == 25
    assert isinstance(settings.engine.checkpoint_every, int)


def test_the_sweeper_runs_at_the_interval_the_engine_uses(monkeypatch) -> None:
    """SWEEP_INTERVAL_SECONDS has one reader: beat's schedule and the engine's dispatch grace agree."""
    import celeryconfig
    from app.config import EngineSettings, flask_config

    monkeypatch.setenv("SWEEP_INTERVAL_SECONDS", "45")
    settings = load_settings({"LEASE_TTL_SECONDS": "10"})
    celery = celeryconfig.settings_for(settings, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    engine = EngineSettings.from_config(flask_config(settings))  # what the engine reads from app.config
    assert celery["beat_schedule"]["screening-sweep"]["schedule"] == engine.sweep_interval == 45.0
    assert engine.dispatch_grace == 90.0  # max(lease TTL, 2 × sweep interval)
    assert celery["broker_url"] == "litpg+postgresql+psycopg://nobody@127.0.0.1:1/none"
    assert celery["broker_transport_options"]["visibility_timeout"] == 300.0


def test_provider_settings_come_from_the_same_object_and_keys_stay_hidden(monkeypatch) -> None:
    from app.llm.providers import provider_settings

    monkeypatch.setenv("SCREENING_MODELS", "acme:model-x")
    monkeypatch.setenv("ACME_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("ACME_API_KEY", "sk-acme-do-not-print")
    monkeypatch.setenv("ACME_RPM", "30")
    settings = load_settings()
    provider = provider_settings("acme", settings)
    assert (provider.base_url, provider.rpm, provider.api_key) == ("http://127.0.0.1:9/v1", 30,
                                                                   "sk-acme-do-not-print")
    assert provider.timeout == settings.llm.timeout == 60.0
    assert "sk-acme-do-not-print" not in repr(settings) and "sk-acme-do-not-print" not in repr(provider)


def test_app_config_round_trips_to_the_same_settings(app) -> None:
    from app.config import flask_config

    overrides = {"CHECKPOINT_EVERY": 3, "SIM_BASE_URL": "http://127.0.0.1:9/v1", "TESTING": True}
    config = flask_config(load_settings(overrides), overrides)
    assert config["TESTING"] is True and config["MAX_CONTENT_LENGTH"] > config["MAX_IMPORT_BYTES"]
    settings = Settings.of(config)
    assert settings.engine.checkpoint_every == 3
    assert settings.llm.provider("sim").base_url == "http://127.0.0.1:9/v1"
    assert Settings.of(settings.as_variables()) == settings
    assert Settings.of(app.config).database.url == app.config["DATABASE_URL"]  # the session app's own mapping


def test_the_readme_table_lists_every_variable() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    declared = {name for name in Settings().as_variables() if not name.startswith(("DEEPSEEK_", "QWEN_", "SIM_"))}
    assert declared - documented == set()


def test_the_cli_refuses_a_bad_variable_with_a_usage_error(monkeypatch) -> None:
    from click.testing import CliRunner

    from app.cli import main

    monkeypatch.setenv("CHECKPOINT_SECONDS", "often")
    result = CliRunner().invoke(main, ["users", "create", "bob"])
    assert result.exit_code == 2
    assert "CHECKPOINT_SECONDS must be a number, got 'often'" in result.output
    assert "Traceback" not in result.output
