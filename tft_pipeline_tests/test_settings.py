"""Settings: defaults, overrides, and startup errors that name the variable."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest

from tft_pipeline.settings import (
    DataSource,
    SettingsError,
    env_file_permissions_warning,
    load_risk_settings,
    load_settings,
)
from tft_pipeline.universe import DEFAULT_UNIVERSE

ALL_VARIABLES = [
    "TFT_DATA_SOURCE", "TFT_WAREHOUSE_PATH", "TFT_TICKERS", "TFT_SUBREDDITS", "TFT_START_DATE",
    "REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT", "REDDIT_USERNAME",
    "REDDIT_PASSWORD", "TFT_RISK_MIN_CONFIDENCE",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_contract():
    settings = load_settings(None)
    assert settings.data_source is DataSource.SAMPLE
    assert str(settings.warehouse_path) == "data/warehouse.duckdb"
    assert settings.tickers == DEFAULT_UNIVERSE
    assert settings.subreddits == ("wallstreetbets", "stocks", "investing")
    assert settings.start_date == dt.date(2024, 1, 2)


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("TFT_TICKERS", " aapl, $MSFT ,BRK.B,aapl")
    monkeypatch.setenv("TFT_SUBREDDITS", "r/stocks, options")
    monkeypatch.setenv("TFT_START_DATE", "2023-06-01")
    settings = load_settings(None)
    assert settings.tickers == ("AAPL", "MSFT", "BRK.B")
    assert settings.subreddits == ("stocks", "options")
    assert settings.start_date == dt.date(2023, 6, 1)


def test_tickers_from_a_file(tmp_path, monkeypatch):
    universe = tmp_path / "tickers.txt"
    universe.write_text("# my universe\nNVDA\nAMD, TSM  # foundry\n")
    monkeypatch.setenv("TFT_TICKERS", f"@{universe}")
    assert load_settings(None).tickers == ("NVDA", "AMD", "TSM")


def test_dotenv_file_is_read_and_environment_wins(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("TFT_SUBREDDITS=options\nTFT_START_DATE=2024-02-01\n")
    monkeypatch.setenv("TFT_START_DATE", "2024-03-01")
    settings = load_settings(env_file)
    assert settings.subreddits == ("options",)
    assert settings.start_date == dt.date(2024, 3, 1)


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("TFT_DATA_SOURCE", "foo", "TFT_DATA_SOURCE='foo': allowed values are 'sample' or 'live'"),
        ("TFT_TICKERS", "AAPL,12X", "TFT_TICKERS='AAPL,12X': malformed ticker(s) '12X'"),
        ("TFT_TICKERS", "@/no/such/file.txt", "ticker file '/no/such/file.txt' does not exist"),
        ("TFT_START_DATE", "yesterday", "TFT_START_DATE='yesterday'"),
        ("TFT_START_DATE", "1990-01-02", "must lie between"),
        ("TFT_SUBREDDITS", "wall street bets", "subreddit names are 1-21 letters"),
    ],
)
def test_wrong_values_fail_naming_the_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(None)
    assert message in str(raised.value)


def test_live_without_credentials_names_what_is_missing(monkeypatch):
    monkeypatch.setenv("TFT_DATA_SOURCE", "live")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "s3cr3t-value")
    with pytest.raises(SettingsError) as raised:
        load_settings(None)
    text = str(raised.value)
    assert "REDDIT_CLIENT_ID" in text and "REDDIT_USER_AGENT" in text
    assert "s3cr3t-value" not in text


def test_live_with_credentials_keeps_secrets_secret(monkeypatch):
    monkeypatch.setenv("TFT_DATA_SOURCE", "live")
    monkeypatch.setenv("REDDIT_CLIENT_ID", "id-123")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "s3cr3t-value")
    monkeypatch.setenv("REDDIT_USER_AGENT", "script:test:0.1")
    settings = load_settings(None)
    assert settings.data_source is DataSource.LIVE
    assert "s3cr3t-value" not in repr(settings) and "s3cr3t-value" not in str(settings.model_dump())
    assert settings.reddit_client_secret.get_secret_value() == "s3cr3t-value"


def test_risk_overrides_and_their_errors(monkeypatch):
    monkeypatch.setenv("TFT_RISK_MIN_CONFIDENCE", "0.75")
    assert load_risk_settings(None).overrides() == {"min_confidence": 0.75}
    monkeypatch.setenv("TFT_RISK_MIN_CONFIDENCE", "2")
    with pytest.raises(SettingsError, match="TFT_RISK_MIN_CONFIDENCE='2'"):
        load_risk_settings(None)


def test_world_readable_env_file_is_warned_about(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("REDDIT_CLIENT_SECRET=x\n")
    os.chmod(env_file, 0o644)
    assert "chmod 600" in env_file_permissions_warning(env_file)
    os.chmod(env_file, stat.S_IRUSR | stat.S_IWUSR)
    assert env_file_permissions_warning(env_file) is None
