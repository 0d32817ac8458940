"""The sample sources: the sample market behind the RedditSource/PriceSource interfaces, with an
injected ``now`` that keeps the future out."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tft_pipeline.sample_market import (
    generate_price_history,
    generate_reddit_comments,
    generate_reddit_posts,
)
from tft_pipeline.sources.base import PriceSource, RedditSource
from tft_pipeline.sources.sample import FIRST_FETCH_LAG, SamplePriceSource, SampleRedditSource
from tft_pipeline.tables import (
    PRICE_FETCH_FAILURE_COLUMNS,
    RAW_COMMENT_COLUMNS,
    RAW_POST_COLUMNS,
)
from tft_pipeline.trading_calendar import (
    reddit_window,
    reddit_window_for_range,
    session_close,
    sessions_between,
)

TICKERS = ("GME", "TSLA", "NVDA", "AAPL", "XOM", "ZQX")
SUBREDDITS = ("wallstreetbets", "stocks")
SESSIONS = sessions_between("2024-03-04", "2024-03-15")
SEED = 3


def reddit(**kwargs) -> SampleRedditSource:
    return SampleRedditSource(tickers=TICKERS, subreddits=SUBREDDITS, seed=SEED, **kwargs)


def without_session(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="session_date").reset_index(drop=True)


def test_sample_sources_implement_the_interfaces():
    assert isinstance(reddit(), RedditSource)
    assert isinstance(SamplePriceSource(seed=SEED), PriceSource)


def test_a_range_of_windows_returns_exactly_those_sessions_rows():
    start, end = reddit_window_for_range(SESSIONS[0], SESSIONS[-1])
    posts = reddit().fetch_posts(start, end)
    comments = reddit().fetch_comments(start, end)
    assert posts.complete and comments.complete
    assert list(posts.frame.columns) == [c for c in RAW_POST_COLUMNS if c != "session_date"]
    assert list(comments.frame.columns) == [c for c in RAW_COMMENT_COLUMNS if c != "session_date"]
    expected_posts = generate_reddit_posts(SESSIONS, TICKERS, SUBREDDITS, seed=SEED)
    expected_comments = generate_reddit_comments(SESSIONS, TICKERS, SUBREDDITS, seed=SEED)
    pd.testing.assert_frame_equal(posts.frame, without_session(expected_posts))
    pd.testing.assert_frame_equal(comments.frame, without_session(expected_comments))


def test_a_range_cutting_through_windows_returns_only_what_was_created_inside_it():
    start = reddit_window(SESSIONS[2])[0] + pd.Timedelta(hours=5)
    end = reddit_window(SESSIONS[4])[0] + pd.Timedelta(hours=20)
    posts = reddit().fetch_posts(start, end).frame
    created = posts["created_utc"]
    assert created.min() >= start.tz_localize(None) and created.max() < end.tz_localize(None)
    whole = generate_reddit_posts(SESSIONS[2:5], TICKERS, SUBREDDITS, seed=SEED)
    inside = whole[
        (whole["created_utc"] >= start.tz_localize(None))
        & (whole["created_utc"] < end.tz_localize(None))
    ]
    pd.testing.assert_frame_equal(posts, without_session(inside))
    assert len(inside) < len(whole)


def test_naive_bounds_are_read_as_utc():
    start, end = reddit_window(SESSIONS[3])
    aware = reddit().fetch_posts(start, end).frame
    naive = reddit().fetch_posts(start.tz_localize(None), end.tz_localize(None)).frame
    pd.testing.assert_frame_equal(aware, naive)
    assert len(aware) > 0


def test_nothing_from_after_now_is_served():
    last = SESSIONS[6]
    now = session_close(last) + pd.Timedelta(hours=1)
    start, end = reddit_window_for_range(SESSIONS[0], SESSIONS[-1])
    for fetch in (reddit(now=now).fetch_posts, reddit(now=now).fetch_comments):
        frame = fetch(start, end).frame
        assert len(frame) > 0
        assert (frame["fetched_at"] <= now.tz_localize(None)).all()
        assert frame["created_utc"].max() < session_close(last).tz_localize(None)
        # The last closed session is there: its first fetches ran within FIRST_FETCH_LAG.
        assert frame["created_utc"].max() > reddit_window(last)[0].tz_localize(None)
    bars = SamplePriceSource(seed=SEED, now=now).fetch_prices(TICKERS, SESSIONS).bars
    assert bars["session_date"].max() == last
    assert (bars["fetched_at"] <= now.tz_localize(None)).all()
    everything = generate_price_history(TICKERS, SESSIONS[:7], seed=SEED)
    assert len(bars) <= len(everything)
    assert set(bars["ticker"]) == set(everything["ticker"])


def test_a_session_appears_only_once_its_first_fetches_are_done():
    last = SESSIONS[6]
    start, end = reddit_window(last)
    just_closed = session_close(last) + pd.Timedelta(minutes=1)
    fetched = session_close(last) + FIRST_FETCH_LAG
    assert reddit(now=just_closed).fetch_posts(start, end).frame.empty
    assert not reddit(now=fetched).fetch_posts(start, end).frame.empty
    early = SamplePriceSource(seed=SEED, now=just_closed).fetch_prices(TICKERS, [last])
    on_time = SamplePriceSource(seed=SEED, now=fetched).fetch_prices(TICKERS, [last])
    assert early.bars.empty
    assert set(on_time.bars["ticker"]) >= set(TICKERS)


def test_prices_for_any_symbols_and_never_a_failure():
    fetch = SamplePriceSource(seed=SEED, scale=5.0).fetch_prices(["ZQX", "BRK.B"], SESSIONS)
    clean = fetch.bars[fetch.bars["ticker"].isin(["ZQX", "BRK.B"])]
    assert clean.groupby("ticker")["session_date"].nunique().to_dict() == {
        "ZQX": len(SESSIONS),
        "BRK.B": len(SESSIONS),
    }
    assert fetch.failures.empty
    assert list(fetch.failures.columns) == [
        c for c in PRICE_FETCH_FAILURE_COLUMNS if c != "session_date"
    ]
    pd.testing.assert_frame_equal(
        fetch.bars, generate_price_history(["ZQX", "BRK.B"], SESSIONS, seed=SEED)
    )


def test_a_non_session_is_refused_clearly():
    with pytest.raises(ValueError, match="2024-03-09"):
        SamplePriceSource(seed=SEED).fetch_prices(["AAPL"], pd.DatetimeIndex(["2024-03-09"]))


def test_the_sample_market_and_sources_import_no_dagster():
    code = (
        "import sys, tft_pipeline.sample_market, tft_pipeline.sources.sample; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'dagster'], 'dagster imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
