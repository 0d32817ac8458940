"""The universe file (TFT_UNIVERSE_FILE): tickers with the sessions they belong to (issue 10, item 9)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tft_pipeline.defs.resources import UniverseResource
from tft_pipeline.settings import SettingsError, load_settings
from tft_pipeline.trading_calendar import sessions_between
from tft_pipeline.universe import Membership, members_during, membership_mask


def write(tmp_path, text: str):
    path = tmp_path / "universe.csv"
    path.write_text(text)
    return str(path)


def test_a_universe_file_gives_each_ticker_its_sessions(tmp_path):
    path = write(
        tmp_path,
        "ticker,first_session,last_session\n"
        "# a comment line\n"
        "AAPL,,\n"
        "sivb,2018-03-19,2023-03-09\n"
        "TSLA,2020-12-21,\n",
    )
    settings = load_settings(None, TFT_UNIVERSE_FILE=path)

    assert settings.tickers == ("AAPL", "SIVB", "TSLA")
    assert settings.universe[1] == Membership("SIVB", dt.date(2018, 3, 19), dt.date(2023, 3, 9))
    assert settings.universe_ranges() == {
        "SIVB": [("2018-03-19", "2023-03-09")],
        "TSLA": [("2020-12-21", None)],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("symbol\nAAPL\n", "'ticker' column"),
        ("ticker,first_session\nAAPL,31/08/2020\n", "row 2: first_session must be an ISO date"),
        ("ticker,first_session,last_session\nAAPL,2021-01-04,2020-01-02\n", "is before"),
        ("ticker\nWSU.DE\n", "other exchanges 'WSU.DE'"),
        ("ticker,sector\nAAPL,tech\n", "unknown column"),
        ("ticker\n", "lists no ticker"),
    ],
)
def test_a_wrong_universe_file_is_a_startup_error_naming_the_variable(tmp_path, text, message):
    with pytest.raises(SettingsError, match="TFT_UNIVERSE_FILE") as error:
        load_settings(None, TFT_UNIVERSE_FILE=write(tmp_path, text))
    assert message in str(error.value)


def test_tickers_and_a_universe_file_together_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="both set"):
        load_settings(None, TFT_UNIVERSE_FILE=write(tmp_path, "ticker\nAAPL\n"), TFT_TICKERS="MSFT")


def test_a_run_fetches_and_keeps_a_ticker_only_on_its_sessions():
    universe = UniverseResource(
        tickers=["AAPL", "SIVB", "TSLA"],
        ranges=["SIVB|2018-03-19|2023-03-09", "TSLA|2020-12-21|"],
    )
    assert universe.tickers_during(sessions_between("2020-12-14", "2020-12-18")) == (
        "AAPL",
        "SIVB",
    )
    assert universe.tickers_during(sessions_between("2023-03-08", "2023-03-14")) == (
        "AAPL",
        "SIVB",
        "TSLA",
    )
    assert universe.tickers_during(sessions_between("2023-03-10", "2023-03-14")) == (
        "AAPL",
        "TSLA",
    )
    rows = pd.DataFrame(
        {
            "ticker": ["SIVB", "SIVB", "TSLA", "TSLA", "AAPL"],
            "session_date": pd.to_datetime(
                ["2023-03-09", "2023-03-10", "2020-12-18", "2020-12-21", "1990-01-02"]
            ),
        }
    )
    assert list(universe.members(rows)) == [True, False, False, True, True]


def test_a_ticker_may_leave_and_come_back():
    memberships = [
        Membership("X", dt.date(2020, 1, 2), dt.date(2020, 6, 30)),
        Membership("X", dt.date(2021, 1, 4), None),
    ]
    assert members_during(memberships, dt.date(2020, 7, 1), dt.date(2020, 12, 31)) == ()
    assert members_during(memberships, dt.date(2020, 12, 1), dt.date(2021, 1, 4)) == ("X",)
    mask = membership_mask(
        pd.Series(["X", "X", "X"]),
        pd.Series(pd.to_datetime(["2020-06-30", "2020-09-01", "2021-02-01"])),
        {"X": [("2020-01-02", "2020-06-30"), ("2021-01-04", None)]},
    )
    assert list(mask) == [True, False, True]
