"""Settings: defaults, overrides, and startup errors that name the variable."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat

import pytest

from tft_pipeline.risk import RiskLimits
from tft_pipeline.settings import (
    PROJECT_ROOT,
    RISK_LIMITS_ALIAS,
    DataSource,
    Settings,
    SettingsError,
    env_file_permissions_warning,
    load_settings,
)
from tft_pipeline.universe import DEFAULT_UNIVERSE

RISK_VARIABLES = [f"TFT_RISK_{name.upper()}" for name in RiskLimits.model_fields]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    # Matched case-insensitively, as pydantic-settings reads them.
    for name in list(os.environ):
        if name.upper().startswith(("TFT_", "REDDIT_")):
            monkeypatch.delenv(name)


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
        ("TFT_REDDIT_MORE_COMMENTS_BUDGET", "-1", "TFT_REDDIT_MORE_COMMENTS_BUDGET"),
        ("TFT_REDDIT_MORE_COMMENTS_BUDGET", "lots", "TFT_REDDIT_MORE_COMMENTS_BUDGET"),
        ("TFT_REDDIT_NEW_MARGIN_HOURS", "-2", "TFT_REDDIT_NEW_MARGIN_HOURS"),
        ("TFT_REDDIT_NEW_MARGIN_HOURS", "1000", "TFT_REDDIT_NEW_MARGIN_HOURS"),
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


# -- risk limits and initial equity -------------------------------------------------------------


def test_risk_limits_and_initial_equity_default_to_the_seed_values():
    settings = load_settings(None)
    assert settings.risk_limits == RiskLimits()
    assert settings.initial_equity == 100_000.0


def test_risk_limit_in_the_env_file_reaches_the_settings(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("TFT_RISK_MIN_CONFIDENCE=0.8\nTFT_RISK_MAX_POSITIONS=3\n")
    limits = load_settings(env_file).risk_limits
    assert (limits.min_confidence, limits.max_positions) == (0.8, 3)


def test_risk_limit_in_the_environment_reaches_the_settings(monkeypatch):
    monkeypatch.setenv("TFT_RISK_MAX_DRAWDOWN", "0.25")
    assert load_settings(None).risk_limits.max_drawdown == 0.25
    # The settings object read directly agrees with load_settings.
    assert Settings(_env_file=None).risk_limits.max_drawdown == 0.25


def test_environment_beats_the_env_file_for_each_risk_limit(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("TFT_RISK_MIN_CONFIDENCE=0.8\nTFT_RISK_MAX_POSITIONS=3\n")
    monkeypatch.setenv("TFT_RISK_MIN_CONFIDENCE", "0.9")
    limits = load_settings(env_file).risk_limits
    assert (limits.min_confidence, limits.max_positions) == (0.9, 3)


def test_risk_overrides_are_variables_and_beat_the_environment(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("TFT_RISK_MAX_POSITIONS=3\n")
    monkeypatch.setenv("TFT_RISK_MIN_CONFIDENCE", "0.9")
    limits = load_settings(env_file, TFT_RISK_MIN_CONFIDENCE="0.5").risk_limits
    assert (limits.min_confidence, limits.max_positions) == (0.5, 3)
    assert load_settings(None, TFT_RISK_MAX_POSITIONS=8).risk_limits.max_positions == 8


def test_an_empty_risk_variable_keeps_the_default(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("TFT_RISK_MIN_CONFIDENCE=\n")
    assert load_settings(env_file).risk_limits.min_confidence == 0.70


def _startup_error(env_file=None, **overrides) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(env_file, **overrides)
    return str(raised.value)


TYPO_MESSAGE = "unknown variable TFT_RISK_MIN_CONFIDNCE (did you mean TFT_RISK_MIN_CONFIDENCE?)"


def test_misspelt_risk_variable_in_the_environment_names_the_closest_valid_one(monkeypatch):
    monkeypatch.setenv("TFT_RISK_MIN_CONFIDNCE", "0.8")
    assert _startup_error() == f"invalid configuration:\n  {TYPO_MESSAGE}"


def test_misspelt_risk_variable_in_the_env_file_names_the_closest_valid_one(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("TFT_SUBREDDITS=options\nTFT_RISK_MIN_CONFIDNCE=0.8\n")
    assert _startup_error(env_file) == f"invalid configuration:\n  {TYPO_MESSAGE}"


def test_misspelt_risk_variable_is_found_whatever_its_case(monkeypatch):
    # pydantic-settings reads tft_data_source as TFT_DATA_SOURCE: a risk typo must not hide so.
    monkeypatch.setenv("tft_risk_max_drawdwn", "0.1")
    assert "unknown variable TFT_RISK_MAX_DRAWDWN (did you mean TFT_RISK_MAX_DRAWDOWN?)" in (
        _startup_error()
    )


def test_misspelt_risk_override_names_the_closest_valid_one():
    assert TYPO_MESSAGE in _startup_error(TFT_RISK_MIN_CONFIDNCE="0.8")


def test_unknown_risk_variable_without_a_close_match_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("TFT_RISK_LEVERAGE", "2")
    assert f"unknown variable TFT_RISK_LEVERAGE (known: {', '.join(RISK_VARIABLES)})" in (
        _startup_error()
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.5", "TFT_RISK_MIN_CONFIDENCE='1.5': Input should be less than or equal to 1"),
        ("abc", "TFT_RISK_MIN_CONFIDENCE='abc': Input should be a valid number"),
        ("0", "TFT_RISK_MIN_CONFIDENCE='0': Input should be greater than 0"),
    ],
)
@pytest.mark.parametrize("where", ["environment", "env file"])
def test_bad_risk_value_names_the_variable_and_value(tmp_path, monkeypatch, where, value, message):
    env_file = tmp_path / ".env"
    if where == "environment":
        monkeypatch.setenv("TFT_RISK_MIN_CONFIDENCE", value)
    else:
        env_file.write_text(f"TFT_RISK_MIN_CONFIDENCE={value}\n")
    assert message in _startup_error(env_file)


def test_risk_problems_are_reported_with_the_other_settings(monkeypatch):
    monkeypatch.setenv("TFT_DATA_SOURCE", "foo")
    monkeypatch.setenv("TFT_RISK_MAX_POSITIONS", "0")
    text = _startup_error()
    assert "TFT_DATA_SOURCE='foo'" in text
    assert "\n  TFT_RISK_MAX_POSITIONS='0': Input should be greater than or equal to 1" in text
    assert RISK_LIMITS_ALIAS not in text  # the messages name the real variables


def test_risk_limits_by_field_name_are_refused_not_ignored():
    text = _startup_error(risk_limits={"max_positions": 3})
    assert "risk overrides are TFT_RISK_* variables" in text and "max_positions" in text


def test_initial_equity_from_the_environment_and_the_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("TFT_INITIAL_EQUITY=50000\n")
    assert load_settings(env_file).initial_equity == 50_000.0
    monkeypatch.setenv("TFT_INITIAL_EQUITY", "2500.5")
    assert load_settings(env_file).initial_equity == 2_500.5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "greater than 0"),
        ("-100", "greater than 0"),
        ("inf", "a finite number"),
        ("nan", "a finite number"),
        ("lots", "a valid number"),
    ],
)
def test_initial_equity_must_be_a_finite_positive_amount(monkeypatch, value, message):
    monkeypatch.setenv("TFT_INITIAL_EQUITY", value)
    assert f"TFT_INITIAL_EQUITY={value!r}: Input should be {message}" in _startup_error()


def test_env_example_documents_every_variable_with_its_default():
    example = PROJECT_ROOT / ".env.example"
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example.read_text(), re.MULTILINE))
    aliases = {field.alias for field in Settings.model_fields.values()} - {RISK_LIMITS_ALIAS}
    assert aliases | set(RISK_VARIABLES) <= documented
    assert load_settings(example) == load_settings(None)


def test_world_readable_env_file_is_warned_about(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("REDDIT_CLIENT_SECRET=x\n")
    os.chmod(env_file, 0o644)
    assert "chmod 600" in env_file_permissions_warning(env_file)
    os.chmod(env_file, stat.S_IRUSR | stat.S_IWUSR)
    assert env_file_permissions_warning(env_file) is None


def test_costs_default_to_the_portfolios_and_refuse_nonsense():
    from tft_pipeline.portfolio import PortfolioConfig

    settings = load_settings(None)
    assert (settings.commission_bps, settings.slippage_bps) == (
        PortfolioConfig().commission_bps, PortfolioConfig().slippage_bps,
    ) == (1.0, 5.0)
    assert load_settings(None, TFT_SLIPPAGE_BPS="2.5").slippage_bps == 2.5
    for variable, value in (("TFT_COMMISSION_BPS", "-1"), ("TFT_SLIPPAGE_BPS", "inf")):
        with pytest.raises(SettingsError, match=variable):
            load_settings(None, **{variable: value})


def test_orders_fill_at_the_next_open_unless_told_to_fill_at_the_close():
    from tft_pipeline.portfolio import PortfolioConfig
    from tft_pipeline.settings import FillAt

    assert load_settings(None).fill_at is FillAt.NEXT_OPEN
    assert PortfolioConfig().fill_at == FillAt.NEXT_OPEN.value == "next_open"
    assert load_settings(None, TFT_FILL_AT="close").fill_at is FillAt.CLOSE
    assert load_settings(None, TFT_FILL_AT=" Next_Open ").fill_at is FillAt.NEXT_OPEN


def test_a_bad_fill_time_fails_naming_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("TFT_FILL_AT", "open")
    assert "TFT_FILL_AT='open': allowed values are 'next_open' or 'close'" in _startup_error()


def test_protection_limits_reach_the_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("TFT_RISK_COOLDOWN_SESSIONS", "2")
    monkeypatch.setenv("TFT_RISK_MAX_DAILY_LOSS", "0.05")
    limits = load_settings(None).risk_limits
    assert (limits.cooldown_sessions, limits.max_daily_loss) == (2, 0.05)
    assert (limits.drawdown_lookback_sessions, limits.drawdown_stop_sessions) == (60, 20)
    monkeypatch.setenv("TFT_RISK_DRAWDOWN_STOP_SESSIONS", "0")
    assert "TFT_RISK_DRAWDOWN_STOP_SESSIONS='0'" in _startup_error()
