"""The sample market: deterministic, realistic prices and Reddit, a planted edge of documented
size, rare catalyst events with a documented hit rate, and dirt at documented rates that the
contract's validation rules undo."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tft_pipeline import sample_market
from tft_pipeline.features.catalysts import catalyst_direction
from tft_pipeline.features.sentiment import score_sentiment
from tft_pipeline.features.snapshots import price_technicals
from tft_pipeline.model.labels import DEFAULT_RULE, triple_barrier_labels
from tft_pipeline.sample_market import (
    CATALYST_BURST_POSTS,
    CATALYST_KINDS,
    CATALYST_RATE,
    CATALYST_RUMOUR_SHARE,
    COMMENT_DIRT_RATES,
    POST_DIRT_RATES,
    PRICE_DIRT_RATES,
    catalyst_edge_summary,
    catalyst_events,
    generate_price_history,
    generate_reddit_comments,
    generate_reddit_posts,
    latent_sentiment,
    planted_edge_summary,
    ticker_profile,
)
from tft_pipeline.sample_market import catalysts as catalysts_module
from tft_pipeline.sample_market import edge as edge_module
from tft_pipeline.sample_market import ids as ids_module
from tft_pipeline.sample_market import prices as prices_module
from tft_pipeline.sample_market import reddit as reddit_module
from tft_pipeline.sample_market import text as text_module
from tft_pipeline.sample_market.span import calendar_sessions, session_count
from tft_pipeline.sample_market.text import DECOY_WORDS, TRADING_SLANG
from tft_pipeline.tables import RAW_COMMENT_COLUMNS, RAW_POST_COLUMNS, RAW_PRICE_COLUMNS
from tft_pipeline.trading_calendar import (
    NEW_YORK,
    reddit_window,
    session_close,
    sessions_between,
)
from tft_pipeline.universe import CORE_UNIVERSE, TICKER_PATTERN, synthetic_universe

SUBREDDITS = ("wallstreetbets", "stocks", "investing")
SESSIONS = sessions_between(
    "2024-01-02", "2024-03-28"
)  # 60 sessions, MLK and Presidents' Day inside
SEED = 7


def clear_caches() -> None:
    """Forget every cached path and window, so equal results come from the seeds alone."""
    prices_module.ticker_path.cache_clear()
    prices_module.ticker_profile.cache_clear()
    prices_module.market_path.cache_clear()
    catalysts_module.catalyst_path.cache_clear()
    reddit_module._session_chatter.cache_clear()
    reddit_module._session_catalyst_chatter.cache_clear()


def posts_of(sessions, tickers=CORE_UNIVERSE, **kwargs) -> pd.DataFrame:
    kwargs.setdefault("seed", SEED)
    return generate_reddit_posts(sessions, tickers, SUBREDDITS, **kwargs)


def comments_of(sessions, tickers=CORE_UNIVERSE, **kwargs) -> pd.DataFrame:
    kwargs.setdefault("seed", SEED)
    return generate_reddit_comments(sessions, tickers, SUBREDDITS, **kwargs)


def rows_of(frame: pd.DataFrame, session) -> pd.DataFrame:
    return frame[frame["session_date"] == pd.Timestamp(session)].reset_index(drop=True)


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return generate_price_history(CORE_UNIVERSE, SESSIONS, seed=SEED)


@pytest.fixture(scope="module")
def posts() -> pd.DataFrame:
    return posts_of(SESSIONS)


@pytest.fixture(scope="module")
def comments() -> pd.DataFrame:
    return comments_of(SESSIONS)


@pytest.fixture(scope="module")
def clean_posts() -> pd.DataFrame:
    return posts_of(SESSIONS, dirt=False)


@pytest.fixture(scope="module")
def clean_comments() -> pd.DataFrame:
    return comments_of(SESSIONS, dirt=False)


# --------------------------------------------------------------------------------------------
# the contract's validation rules, restated independently of tft_pipeline.validation
# --------------------------------------------------------------------------------------------


def latest_valid(frame: pd.DataFrame, key: list[str], valid: np.ndarray) -> pd.DataFrame:
    """Reject invalid rows, then keep the most recently fetched valid row of each key."""
    kept = frame[valid].sort_values("fetched_at", kind="stable")
    kept = kept.drop_duplicates(key, keep="last")
    return kept.sort_values(key).reset_index(drop=True)


def valid_prices(frame: pd.DataFrame) -> np.ndarray:
    prices_ok = np.ones(len(frame), dtype=bool)
    for column in ("open", "high", "low", "close", "adj_close"):
        values = frame[column].to_numpy()
        prices_ok &= np.isfinite(values) & (values > 0)
    volume = frame["volume"].to_numpy()
    symbol_ok = frame["ticker"].map(lambda t: bool(TICKER_PATTERN.match(t))).to_numpy()
    order_ok = (frame["high"] >= frame[["open", "close", "low"]].max(axis=1)) & (
        frame["low"] <= frame[["open", "close"]].min(axis=1)
    )
    return prices_ok & np.isfinite(volume) & (volume >= 0) & symbol_ok & order_ok.to_numpy()


def nonblank(series: pd.Series) -> np.ndarray:
    return series.map(lambda v: isinstance(v, str) and v.strip() != "").to_numpy()


# --------------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------------


def test_a_price_session_is_the_same_alone_in_a_range_and_after_other_calls(prices):
    day = prices["session_date"].value_counts().idxmax()  # the session with the most dirt
    in_range = rows_of(prices, day)
    clear_caches()
    generate_price_history(["ZZZZ", "AAPL"], SESSIONS[:5], seed=SEED + 1)  # unrelated traffic
    alone = rows_of(generate_price_history(CORE_UNIVERSE[::-1], [day], seed=SEED), day)
    assert len(in_range) == len(alone) > len(CORE_UNIVERSE)  # dirt rows included
    pd.testing.assert_frame_equal(
        alone.sort_values(["ticker", "fetched_at"]).reset_index(drop=True),
        in_range.sort_values(["ticker", "fetched_at"]).reset_index(drop=True),
    )


def test_a_reddit_session_is_the_same_alone_in_a_range_and_after_other_calls(posts, comments):
    day = SESSIONS[20]  # the Wednesday after Presidents' Day
    clear_caches()
    posts_of(SESSIONS[40:45])  # unrelated traffic first
    reordered = tuple(reversed(CORE_UNIVERSE))
    alone_posts = generate_reddit_posts([day], reordered, SUBREDDITS[::-1], seed=SEED)
    alone_comments = generate_reddit_comments([day], reordered, SUBREDDITS[::-1], seed=SEED)
    pd.testing.assert_frame_equal(alone_posts, rows_of(posts, day))
    pd.testing.assert_frame_equal(alone_comments, rows_of(comments, day))
    assert len(alone_posts) > 20 and len(alone_comments) > 80


@pytest.fixture(scope="module")
def month_prices() -> pd.DataFrame:
    return generate_price_history(["AAPL", "GME", "ZQX"], SESSIONS[:25], seed=SEED)


@pytest.fixture(scope="module")
def month_posts() -> pd.DataFrame:
    return posts_of(SESSIONS[:25], tickers=("AAPL", "GME", "ZQX"))


@settings(max_examples=15, deadline=None)
@given(first=st.integers(0, 24), length=st.integers(1, 10))
def test_any_sub_range_is_a_slice_of_the_whole(month_prices, month_posts, first, length):
    chosen = SESSIONS[first : min(first + length, 25)]
    tickers = ("GME", "ZQX", "AAPL")
    got_prices = generate_price_history(tickers, chosen, seed=SEED)
    expected_prices = month_prices[month_prices["session_date"].isin(chosen)]
    key = ["ticker", "session_date", "fetched_at"]
    pd.testing.assert_frame_equal(
        got_prices.sort_values(key).reset_index(drop=True),
        expected_prices.sort_values(key).reset_index(drop=True),
    )
    got_posts = posts_of(chosen, tickers=tickers)
    expected_posts = month_posts[month_posts["session_date"].isin(chosen)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got_posts, expected_posts)


def test_seeds_give_different_markets():
    one = generate_price_history(["AAPL"], SESSIONS[:10], seed=1, dirt=False)
    two = generate_price_history(["AAPL"], SESSIONS[:10], seed=2, dirt=False)
    assert not np.allclose(one["close"], two["close"])
    assert not posts_of(SESSIONS[:3], seed=1)["title"].equals(
        posts_of(SESSIONS[:3], seed=2)["title"]
    )


def test_frames_have_the_raw_layouts(prices, posts, comments):
    for frame, columns in (
        (prices, RAW_PRICE_COLUMNS),
        (posts, RAW_POST_COLUMNS),
        (comments, RAW_COMMENT_COLUMNS),
    ):
        assert list(frame.columns) == list(columns)
        assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == columns


def test_fetch_times_follow_the_close_and_never_the_wall_clock(prices, clean_posts):
    closes = prices["session_date"].map(lambda day: session_close(day).tz_localize(None))
    lag = prices["fetched_at"] - closes
    assert (lag > pd.Timedelta(0)).all()
    assert (lag < pd.Timedelta(hours=24)).all()
    post_closes = clean_posts["session_date"].map(lambda d: session_close(d).tz_localize(None))
    post_lag = clean_posts["fetched_at"] - post_closes
    assert post_lag.between(pd.Timedelta(minutes=1), pd.Timedelta(minutes=10)).all()


# --------------------------------------------------------------------------------------------
# prices
# --------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(ticker=st.text(min_size=1, max_size=8))
def test_any_symbol_gets_a_profile_in_the_documented_ranges(ticker):
    profile = ticker_profile(ticker, SEED)
    assert 10.0 <= profile.price_level <= 800.0
    assert 0.15 <= profile.annual_volatility <= 0.80
    assert 0.0 < profile.beta <= 1.5
    bars = generate_price_history([ticker], ["2024-01-02"], seed=SEED, dirt=False)
    # The anchor session closes at the ticker's level.
    assert bars["close"].iloc[0] == pytest.approx(profile.price_level, abs=0.006)


@pytest.fixture(scope="module")
def long_history() -> pd.DataFrame:
    """Twenty tickers over the whole span, without dirt: the simulator's own output."""
    return generate_price_history(
        synthetic_universe(70)[50:], calendar_sessions(), seed=SEED, dirt=False
    )


def test_clean_bars_are_consistent_everywhere_on_the_span(long_history):
    bars = long_history
    assert len(bars) == 20 * len(calendar_sessions())
    assert valid_prices(bars).all()
    assert (bars["volume"] == np.round(bars["volume"])).all()
    assert (bars["adj_close"] == bars["close"]).all()


def _returns(bars: pd.DataFrame) -> pd.DataFrame:
    closes = bars.pivot(index="session_date", columns="ticker", values="close")
    return np.log(closes).diff().iloc[1:]


def test_returns_look_like_stock_returns(long_history):
    returns = _returns(long_history)
    realised = returns.std() * np.sqrt(252)
    targets = pd.Series({t: ticker_profile(t, SEED).annual_volatility for t in returns.columns})
    assert realised.between(0.10, 0.95).all()
    assert np.corrcoef(realised, targets[realised.index])[0, 1] > 0.9
    assert (returns.kurt() > 1.0).all()  # fat tails
    absolute = returns.abs()
    clustering = absolute.apply(lambda c: c.autocorr(1))  # big moves follow big moves
    assert clustering.mean() > 0.08 and (clustering > 0.03).all()
    pairwise = returns.corr().to_numpy()[np.triu_indices(returns.shape[1], 1)]
    assert pairwise.mean() > 0.1  # a common market factor


def test_opens_gap_from_the_previous_close_and_sometimes_jump(long_history):
    bars = long_history.sort_values(["ticker", "session_date"])
    previous_close = bars.groupby("ticker")["close"].shift(1)
    gap = np.log(bars["open"] / previous_close).dropna()
    assert (gap != 0).mean() > 0.9
    daily_vol = bars["ticker"].map(
        lambda t: ticker_profile(t, SEED).annual_volatility / np.sqrt(252)
    )
    big_gaps = (gap.abs() > 3 * daily_vol[gap.index]).mean()
    assert 0.003 < big_gaps < 0.05  # earnings-like jumps, a few per year


def test_volume_rises_with_big_moves_and_with_reddit_attention(long_history):
    bars = long_history.sort_values(["ticker", "session_date"])
    tickers = bars["ticker"].unique()
    hidden = latent_sentiment(tickers, calendar_sessions(), SEED).sort_values(
        ["ticker", "session_date"]
    )
    log_volume = np.log(bars["volume"].to_numpy())
    by_ticker = pd.Series(log_volume).groupby(bars["ticker"].to_numpy())
    demeaned = log_volume - by_ticker.transform("mean").to_numpy()
    move = np.abs(np.log(bars["close"] / bars.groupby("ticker")["close"].shift(1))).to_numpy()
    seen = np.isfinite(move)
    assert np.corrcoef(demeaned[seen], move[seen])[0, 1] > 0.2
    assert np.corrcoef(demeaned, np.log(hidden["attention"].to_numpy()))[0, 1] > 0.5


# --------------------------------------------------------------------------------------------
# Reddit
# --------------------------------------------------------------------------------------------


def _inside_windows(frame: pd.DataFrame) -> bool:
    windows = {day: reddit_window(day) for day in frame["session_date"].unique()}
    start = frame["session_date"].map(lambda d: windows[d][0].tz_localize(None))
    end = frame["session_date"].map(lambda d: windows[d][1].tz_localize(None))
    return bool(((frame["created_utc"] >= start) & (frame["created_utc"] < end)).all())


def test_every_post_and_comment_lies_in_its_sessions_window(posts, comments):
    assert _inside_windows(posts)
    assert _inside_windows(comments)


def test_comments_come_after_their_post_mostly_in_the_same_window(clean_comments):
    # Posts of the window before the range too: late comments on them fall into the first session.
    all_posts = posts_of(sessions_between("2023-12-29", SESSIONS[-1]), dirt=False)
    joined = clean_comments.merge(
        all_posts[["post_id", "created_utc", "session_date", "subreddit"]],
        on="post_id",
        suffixes=("", "_post"),
        how="left",
        validate="many_to_one",
    )
    assert joined["created_utc_post"].notna().all()
    assert (joined["created_utc"] > joined["created_utc_post"]).all()
    assert (joined["subreddit"] == joined["subreddit_post"]).all()
    same_window = (joined["session_date"] == joined["session_date_post"]).mean()
    assert 0.8 < same_window < 1.0


def test_weekend_and_holiday_chatter_belongs_to_the_next_session(clean_posts):
    local = clean_posts["created_utc"].dt.tz_localize("UTC").dt.tz_convert(NEW_YORK)
    weekend = clean_posts[local.dt.dayofweek >= 5]
    assert len(weekend) > 100
    assert (weekend["session_date"].dt.dayofweek <= 1).all()  # Monday, or Tuesday after a holiday
    mlk_day = clean_posts[local.dt.date == pd.Timestamp("2024-01-15").date()]
    assert len(mlk_day) > 10
    assert (mlk_day["session_date"] == pd.Timestamp("2024-01-16")).all()
    per_session = clean_posts.groupby("session_date").size()
    assert (
        per_session[per_session.index.dayofweek == 0].mean()
        > 1.3 * per_session[per_session.index.dayofweek.isin([2, 3])].mean()
    )


def test_posting_follows_the_trading_day(clean_posts):
    local = clean_posts["created_utc"].dt.tz_localize("UTC").dt.tz_convert(NEW_YORK)
    weekday = local.dt.dayofweek < 5
    hours = local[weekday].dt.hour
    assert (hours == 9).sum() > 4 * (hours == 3).sum()
    assert (hours == 15).sum() > 2 * (hours == 22).sum()


def test_volumes_of_posts_and_comments_at_scale_one(clean_posts, clean_comments):
    per_session = clean_posts.groupby("session_date").size()
    midweek = per_session[per_session.index.dayofweek.isin([2, 3])]
    assert 40 <= midweek.mean() <= 80
    assert 3.0 <= len(clean_comments) / len(clean_posts) <= 5.0
    assert set(clean_posts["subreddit"]) == set(SUBREDDITS)
    shares = clean_posts["subreddit"].value_counts(normalize=True)
    assert shares.idxmax() == "wallstreetbets"


def test_scale_multiplies_rows():
    days = SESSIONS[10:16]
    base_posts, base_comments = len(posts_of(days, dirt=False)), len(comments_of(days, dirt=False))
    big_posts = len(posts_of(days, scale=4.0, dirt=False))
    big_comments = len(comments_of(days, scale=4.0, dirt=False))
    assert 3.3 < big_posts / base_posts < 4.7
    assert 3.3 < big_comments / base_comments < 4.7
    assert len(posts_of(days, scale=0.25, dirt=False)) < 0.4 * base_posts


def test_ids_and_authors_look_like_reddits(clean_posts, clean_comments):
    for ids in (clean_posts["post_id"], clean_comments["comment_id"]):
        assert ids.is_unique
        assert ids.str.fullmatch(r"[0-9a-z]{6,8}").all()  # base 36, no "t3_"/"t1_" prefix
    expected_urls = "https://www.reddit.com/r/" + clean_posts["subreddit"] + "/comments/"
    assert (clean_posts["url"] == expected_urls + clean_posts["post_id"] + "/").all()
    authors = pd.concat([clean_posts["author"], clean_comments["author"]])
    assert (authors == "[deleted]").mean() > 0.005
    assert authors.isna().any()
    active = authors.dropna().value_counts()
    assert active.iloc[0] > 10 * active.median()  # power users


MENTION = re.compile(
    r"(?<![\w$])(\$?)(" + "|".join(sorted(CORE_UNIVERSE, key=len, reverse=True)) + r")\b"
)


def _mentions(frame: pd.DataFrame, text_column: str) -> pd.DataFrame:
    found = frame[text_column].fillna("").str.extractall(MENTION.pattern)
    found.columns = ["cashtag", "ticker"]
    found = found.join(frame[["session_date"]], on=found.index.get_level_values(0))
    return found.reset_index(drop=True)


def test_texts_name_tickers_as_cashtags_and_bare_symbols_next_to_decoys(
    clean_posts, clean_comments
):
    texts = pd.concat(
        [clean_posts["title"] + " " + clean_posts["selftext"], clean_comments["body"]]
    )
    words = set(" ".join(texts).replace(",", " ").replace(".", " ").replace(":", " ").split())
    assert set(DECOY_WORDS) <= words
    assert not set(DECOY_WORDS) & set(CORE_UNIVERSE)
    lowered = " ".join(texts).lower()
    for slang in TRADING_SLANG:
        assert slang in lowered
    mentions = _mentions(clean_posts.assign(text=clean_posts["title"]), "text")
    assert 0.3 < (mentions["cashtag"] == "$").mean() < 0.7
    counts = mentions["ticker"].value_counts()
    popular = counts.reindex(["GME", "TSLA", "NVDA", "AMC", "PLTR"]).fillna(0)
    others = counts.reindex([t for t in CORE_UNIVERSE if t not in popular.index]).fillna(0)
    assert popular.min() > 2 * others.median()


def test_mentions_surge_with_attention(clean_posts):
    mentions = _mentions(clean_posts.assign(text=clean_posts["title"]), "text")
    counts = mentions.groupby(["ticker", "session_date"]).size()
    hidden = latent_sentiment(CORE_UNIVERSE, SESSIONS, SEED).set_index(
        ["ticker", "session_date"]
    )
    table = hidden.join(counts.rename("mentions")).fillna({"mentions": 0})
    table["popularity"] = table.index.get_level_values(0).map(
        lambda t: ticker_profile(t, SEED).popularity
    )
    expected = table["popularity"] * table["attention"]
    assert np.corrcoef(expected, table["mentions"])[0, 1] > 0.5
    # Within a ticker, its busy sessions (high attention) draw more mentions than its quiet ones.
    busy = table["attention"] > table.groupby(level=0)["attention"].transform("median")
    per_ticker = table.groupby([table.index.get_level_values(0), busy])["mentions"].mean().unstack()
    assert (per_ticker[True] > per_ticker[False]).mean() > 0.75


@pytest.fixture(scope="module")
def vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def test_vader_reads_the_latent_sentiment_in_the_chatter(clean_posts, vader):
    single = clean_posts[~clean_posts["selftext"].str.contains("Also watching")]
    text_of = single["title"] + " " + single["selftext"]
    found = single["title"].str.extract(MENTION.pattern)[1]
    about = single.assign(ticker=found.to_numpy(), text=text_of.to_numpy()).dropna(
        subset=["ticker"]
    )
    about = about.iloc[:1500]
    about["compound"] = [vader.polarity_scores(t)["compound"] for t in about["text"]]
    hidden = latent_sentiment(CORE_UNIVERSE, SESSIONS, SEED)
    scored = about.merge(hidden, on=["ticker", "session_date"])
    assert len(scored) == len(about) > 1000
    assert scored["compound"].corr(scored["sentiment"], method="spearman") > 0.35
    bullish = scored[scored["sentiment"] > 1]["compound"].mean()
    bearish = scored[scored["sentiment"] < -1]["compound"].mean()
    assert bullish > 0.2 and bearish < -0.2


def test_comment_tone_follows_the_sentiment_of_its_own_session(clean_comments, vader):
    mentioned = clean_comments["body"].str.extract(MENTION.pattern)[1]
    named = clean_comments.assign(ticker=mentioned.to_numpy()).dropna(subset=["ticker"]).iloc[:1500]
    named["compound"] = [vader.polarity_scores(b)["compound"] for b in named["body"]]
    hidden = latent_sentiment(CORE_UNIVERSE, SESSIONS, SEED)
    scored = named.merge(hidden, on=["ticker", "session_date"])
    assert scored["compound"].corr(scored["sentiment"], method="spearman") > 0.35


def test_comment_counts_match_the_comments_fetched_before_the_post(clean_posts):
    days = SESSIONS[30:33]
    day_posts = clean_posts[clean_posts["session_date"].isin(days)]
    later = comments_of(sessions_between(days[0], SESSIONS[34]), dirt=False)
    joined = later.merge(day_posts[["post_id", "fetched_at"]], on="post_id", suffixes=("", "_post"))
    before_fetch = joined[joined["created_utc"] < joined["fetched_at_post"]]
    counted = before_fetch.groupby("post_id").size().reindex(day_posts["post_id"]).fillna(0)
    assert (counted.to_numpy() == day_posts["num_comments"].to_numpy()).all()
    assert day_posts["num_comments"].max() > 10  # some posts draw a crowd


# --------------------------------------------------------------------------------------------
# the planted edge
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [sample_market.DEFAULT_SEED, 11])
def test_planted_edge_has_the_documented_size_and_no_look_ahead(seed):
    summary = planted_edge_summary(CORE_UNIVERSE, calendar_sessions(), seed=seed)
    assert summary["observations"] > 300_000
    assert 0.03 <= summary["ic_5"] <= 0.06
    assert 0.02 <= summary["ic_1"] <= summary["ic_5"]
    assert summary["quintile_spread_5"] > summary["quintile_spread_1"] > 0
    # What is new in s_D is unrelated to D's own return: D's price never saw D's mood.
    assert abs(summary["ic_same_session_innovation"]) < 0.01


def test_edge_measured_from_the_generated_bars_matches_the_summary():
    sessions = calendar_sessions()[4000:5500]
    bars = generate_price_history(CORE_UNIVERSE, sessions, seed=SEED, dirt=False)
    closes = bars.pivot(index="session_date", columns="ticker", values="close")
    forward = np.log(closes.shift(-5) / closes).iloc[:-5]
    hidden = latent_sentiment(CORE_UNIVERSE, sessions, SEED).pivot(
        index="session_date", columns="ticker", values="sentiment"
    )
    hidden = hidden.loc[forward.index]
    ics = hidden.rank(axis=1).corrwith(forward.rank(axis=1), axis=1)
    summary = planted_edge_summary(CORE_UNIVERSE, sessions[:-5], seed=SEED)
    assert ics.mean() > 0.02
    assert ics.mean() == pytest.approx(summary["ic_5"], abs=0.003)  # (prices rounded to cents)


def test_latent_sentiment_is_a_persistent_unit_variance_state():
    hidden = latent_sentiment(["AAPL", "ZZZ"], calendar_sessions(), SEED)
    for _, series in hidden.groupby("ticker")["sentiment"]:
        assert series.std() == pytest.approx(1.0, abs=0.1)
        assert series.autocorr(1) == pytest.approx(sample_market.SENTIMENT_PERSISTENCE, abs=0.05)


def test_edge_summary_needs_a_cross_section():
    with pytest.raises(ValueError, match="at least 5 tickers"):
        planted_edge_summary(["AAPL", "MSFT"], SESSIONS)


# --------------------------------------------------------------------------------------------
# catalyst events
# --------------------------------------------------------------------------------------------

LONG_SPAN = sessions_between("2010-01-04", "2030-12-31")  # the span the docstring measures on


def test_catalyst_events_come_at_the_documented_rate_with_consistent_kinds():
    tickers = synthetic_universe(300)
    events = catalyst_events(tickers, calendar_sessions(), seed=SEED)
    trials = len(tickers) * (session_count() - 1)  # the span's first session has no window
    rate = len(events) / trials
    assert 0.003 <= rate <= 0.005
    assert _near(rate, CATALYST_RATE, trials)
    assert list(events.columns) == ["ticker", "session_date", "direction", "kind"]
    assert events["direction"].dtype == np.int8
    assert set(events["kind"]) == set(CATALYST_KINDS)
    bullish_kind = events["kind"].isin(catalysts_module.BULLISH_KINDS)
    assert ((events["direction"] == 1) == bullish_kind).all()
    assert ((events["direction"] == -1) == ~bullish_kind).all()
    assert 0.45 < bullish_kind.mean() < 0.55
    assert not events.duplicated(["ticker", "session_date"]).any()


def test_catalyst_events_are_deterministic_and_independent_of_the_universe():
    sessions = calendar_sessions()[3000:4500]
    whole = catalyst_events(CORE_UNIVERSE, sessions, seed=SEED)
    clear_caches()
    few, part = ["TSLA", "ZQX", "AAPL", "GME", "XOM"], sessions[300:900]
    alone = catalyst_events(few[::-1], part, seed=SEED)  # another universe, order and range
    expected = whole[whole["ticker"].isin(few) & whole["session_date"].isin(part)]
    pd.testing.assert_frame_equal(
        alone[alone["ticker"] != "ZQX"].reset_index(drop=True), expected.reset_index(drop=True)
    )
    assert len(expected) > 0
    pd.testing.assert_frame_equal(
        catalyst_events(CORE_UNIVERSE[::-1], sessions, seed=SEED), whole
    )
    other_seed = catalyst_events(CORE_UNIVERSE, sessions, seed=SEED + 1)
    assert not other_seed[["ticker", "session_date"]].equals(whole[["ticker", "session_date"]])


def test_catalyst_templates_read_with_their_sign_in_the_lexicon_and_in_vader():
    texts, signs = [], []
    for kind, sign in zip(CATALYST_KINDS, catalysts_module.KIND_DIRECTION):
        for pool in (
            text_module.CATALYST_TITLES,
            text_module.CATALYST_SENTENCES,
            text_module.CATALYST_COMMENTS,
        ):
            assert len(pool[kind]) >= 2
            for template in pool[kind]:
                assert "{T}" in template  # every catalyst phrase names its ticker
                for reference in ("$NVDA", "NVDA"):
                    texts.append(template.replace("{T}", reference))
                    signs.append(int(sign))
        assert len(text_module.CATALYST_TITLES[kind]) >= 4
    named = pd.Series(texts)
    assert (catalyst_direction(named).to_numpy() == signs).all()
    assert (np.sign(score_sentiment(named)).to_numpy() == signs).all()
    # Reactions carry the tone but no catalyst words; the ordinary chatter carries none either.
    reactions, reaction_signs = [], []
    for pool in (text_module.CATALYST_REACTIONS, text_module.CATALYST_COMMENT_REACTIONS):
        for tone, sign in ((text_module.BULLISH, 1), (text_module.BEARISH, -1)):
            reactions += pool[tone]
            reaction_signs += [sign] * len(pool[tone])
    reactions = pd.Series(reactions)
    assert (catalyst_direction(reactions) == 0).all()
    assert (np.sign(score_sentiment(reactions)).to_numpy() == reaction_signs).all()
    ordinary = [t for group in text_module.TITLES.values() for t in group]
    for pool in (text_module.POST_SENTENCES, text_module.COMMENT_SENTENCES):
        ordinary += [t for by_tone in pool.values() for group in by_tone.values() for t in group]
    assert (catalyst_direction(pd.Series(ordinary)) == 0).all()


def _with_ticker(frame: pd.DataFrame, text_column: str, tickers) -> pd.DataFrame:
    """Rows whose text carries catalyst words, with that sign and the ticker the text names."""
    words = frame[text_column].fillna("")
    sign = catalyst_direction(words)
    pattern = r"(?<![\w$])\$?(" + "|".join(sorted(tickers, key=len, reverse=True)) + r")\b"
    named = words.str.extract(pattern)[0]
    return frame.assign(sign=sign.to_numpy(), ticker=named.to_numpy())[sign.to_numpy() != 0]


def _against_events(chatter: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    return chatter.merge(
        events.rename(columns={"direction": "event_direction"}),
        on=["ticker", "session_date"],
        how="left",
    )


def test_event_bursts_name_the_ticker_and_read_with_the_events_sign(clean_posts, clean_comments):
    events = catalyst_events(CORE_UNIVERSE, SESSIONS, seed=SEED)
    assert len(events) >= 8
    posts = clean_posts.assign(text=clean_posts["title"] + "\n\n" + clean_posts["selftext"])
    chatter = _against_events(_with_ticker(posts, "text", CORE_UNIVERSE), events)
    assert chatter["ticker"].notna().all()
    # The ticker is in the title and again in the selftext, as "$TICK" or "TICK".
    assert all(
        t in title and t in body
        for t, title, body in chatter[["ticker", "title", "selftext"]].to_numpy()
    )
    bursts = chatter[chatter["event_direction"].notna()]
    assert (bursts["sign"] == bursts["event_direction"]).all()
    assert (np.sign(score_sentiment(bursts["text"])) == bursts["sign"]).all()
    per_event = (
        bursts.groupby(["ticker", "session_date"])
        .size()
        .reindex(pd.MultiIndex.from_frame(events[["ticker", "session_date"]]), fill_value=0)
    )
    assert (per_event > 0).mean() >= 0.9
    assert per_event.mean() == pytest.approx(CATALYST_BURST_POSTS, rel=0.35)
    # Comments on the burst that name the ticker in catalyst words read the same way.
    comments = _against_events(_with_ticker(clean_comments, "body", CORE_UNIVERSE), events)
    on_event = comments[comments["event_direction"].notna()]
    assert len(on_event) > 20
    assert (on_event["sign"] == on_event["event_direction"]).all()


def test_rumours_use_the_same_words_on_sessions_without_an_event():
    tickers, sessions = synthetic_universe(150), calendar_sessions()[5000:5100]
    posts = generate_reddit_posts(sessions, tickers, SUBREDDITS, seed=SEED, dirt=False)
    posts = posts.assign(text=posts["title"] + "\n\n" + posts["selftext"])
    events = catalyst_events(tickers, sessions, seed=SEED)
    chatter = _against_events(_with_ticker(posts, "text", tickers), events)
    rumours = chatter[chatter["event_direction"].isna()]
    bursts = chatter[chatter["event_direction"].notna()]
    assert len(rumours) > 20 and len(events) > 30
    assert 0.08 < len(rumours) / len(bursts) < 0.25  # about CATALYST_RUMOUR_SHARE
    assert CATALYST_RUMOUR_SHARE == 0.15
    assert set(rumours["sign"]) == {-1, 1}
    # Text alone cannot tell them apart; a burst is many posts, a rumour mostly one.
    rumour_size = rumours.groupby(["ticker", "session_date"]).size().mean()
    burst_size = bursts.groupby(["ticker", "session_date"]).size().mean()
    assert rumour_size < 1.5 and burst_size > 4.0


@pytest.fixture(scope="module")
def default_catalyst_trades() -> edge_module.CatalystTrades:
    return edge_module.catalyst_trades(CORE_UNIVERSE, LONG_SPAN)


def _welch_t(a: np.ndarray, b: np.ndarray) -> float:
    return (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))


def test_the_event_session_carries_no_drift_and_the_sessions_after_do(default_catalyst_trades):
    trades = default_catalyst_trades
    bullish, bearish, quiet = trades.direction > 0, trades.direction < 0, trades.direction == 0
    assert bullish.sum() > 400 and bearish.sum() > 400
    same, following = trades.session_return, trades.next_session_return  # in daily vols
    for side in (bullish, bearish):
        # D's own close-to-close return is like any other day's: the news is not in D's price.
        assert abs(_welch_t(same[side], same[quiet])) < 3.5
        assert abs(same[side].mean() - same[quiet].mean()) < 0.15
    assert _welch_t(following[bullish], following[quiet]) > 8
    assert _welch_t(following[quiet], following[bearish]) > 8
    assert following[bullish].mean() > 0.5 and following[bearish].mean() < -0.5


def test_the_drift_is_intraday_so_an_order_at_the_next_open_catches_it():
    events = catalyst_events(CORE_UNIVERSE, LONG_SPAN)
    gaps, days = [], []
    for ticker, group in events.groupby("ticker"):  # one slice per ticker, vectorized inside it
        path = prices_module.ticker_path(ticker)
        day = calendar_sessions().get_indexer(group["session_date"])
        keep = day + 1 < session_count()
        day, sign = day[keep], group["direction"].to_numpy()[keep]
        volatility = ticker_profile(ticker).daily_volatility
        gaps.append(sign * (path.log_open[day + 1] - path.log_close[day]) / volatility)
        days.append(sign * (path.log_close[day + 1] - path.log_open[day + 1]) / volatility)
    gap, intraday = np.concatenate(gaps), np.concatenate(days)
    assert abs(gap.mean()) < 4 * gap.std() / np.sqrt(len(gap))  # the overnight gap has none
    assert intraday.mean() > 0.5


def test_the_catalyst_trade_hits_its_target_as_documented():
    summary = catalyst_edge_summary(CORE_UNIVERSE, LONG_SPAN)
    assert 3.0 <= summary["events_per_1000"] <= 5.0
    assert summary["hit_rate_bullish"] >= 0.75
    assert summary["hit_rate_bearish"] >= 0.75
    assert summary["hit_rate"] <= 0.9  # strong, not certain
    assert summary["base_hit_rate_long"] < 0.35 and summary["base_hit_rate_short"] < 0.35
    assert summary["mean_event_return_10"] > 0.1
    assert abs(summary["mean_base_return_10"]) < 0.01
    assert abs(summary["event_session_return_t"]) < 3.5
    # The figures the sample_market docstring quotes.
    assert (summary["events"], summary["bullish_events"], summary["bearish_events"]) == (
        1067,
        531,
        536,
    )
    assert summary["ticker_sessions"] == 263_450
    assert summary["hit_rate_bullish"] == pytest.approx(0.842, abs=0.0006)
    assert summary["hit_rate_bearish"] == pytest.approx(0.791, abs=0.0006)
    assert summary["base_hit_rate_long"] == pytest.approx(0.278, abs=0.0006)


def test_the_catalyst_trade_agrees_with_the_model_labels_and_a_plain_loop():
    tickers = ("AAPL", "GME", "MRNA", "ZQX", "KO")
    sessions = calendar_sessions()[5000:5300]
    trades = edge_module.catalyst_trades(tickers, sessions, seed=SEED)
    first, last = int(trades.ordinals[0]), int(trades.ordinals[-1])
    bars = generate_price_history(
        tickers, calendar_sessions()[first - 100 : last + 11], seed=SEED, dirt=False
    )
    # The ATR is the one the features compute (Wilder ATR(14)), known at D's close.
    technicals = price_technicals(bars).set_index(["session_date", "ticker"])["atr_14"]
    days = calendar_sessions()[trades.ordinals]
    feature_atr = technicals.unstack().reindex(index=days, columns=list(tickers)).to_numpy()
    np.testing.assert_allclose(trades.atr, feature_atr, rtol=1e-9)
    # The long trade is the model's triple-barrier label of an entry at D+1's open.
    entries = pd.DataFrame(
        {
            "ticker": np.tile(np.array(tickers, dtype=object), len(days)),
            "session_date": np.repeat(days.to_numpy(), len(tickers)),
            "next_open": trades.entry.ravel(),
            "atr_14": trades.atr.ravel(),
        }
    )
    labels = triple_barrier_labels(
        entries, bars, DEFAULT_RULE, entry_column="next_open", atr_column="atr_14"
    )
    assert (DEFAULT_RULE.target_atr, DEFAULT_RULE.stop_atr, DEFAULT_RULE.horizon) == (
        edge_module.CATALYST_TARGET_ATR,
        edge_module.CATALYST_STOP_ATR,
        edge_module.CATALYST_HORIZON,
    )
    assert ((labels["label"] == 1.0).to_numpy() == trades.long_hit.ravel()).mean() > 0.995
    # Both sides against a plain loop over the bars (a bar touching both barriers is the stop).
    wide = {
        c: bars.pivot(index="session_date", columns="ticker", values=c)[list(tickers)]
        for c in ("high", "low")
    }
    rng = np.random.default_rng(0)
    for row, col in zip(rng.integers(0, len(days), 300), rng.integers(0, len(tickers), 300)):
        entry, atr = trades.entry[row, col], trades.atr[row, col]
        ahead = wide["high"].index.get_loc(days[row]) + 1
        highs = wide["high"].iloc[ahead : ahead + 10, col].to_numpy()
        lows = wide["low"].iloc[ahead : ahead + 10, col].to_numpy()
        for side, hit in ((1, trades.long_hit), (-1, trades.short_hit)):
            expected = False
            for high, low in zip(highs, lows):
                favourable, adverse = (high, low) if side > 0 else (-low, -high)
                if adverse <= side * entry - atr:
                    break
                if favourable >= side * entry + 2 * atr:
                    expected = True
                    break
            assert hit[row, col] == expected


def test_volume_jumps_on_event_sessions(long_history):
    bars = long_history.sort_values(["ticker", "session_date"]).reset_index(drop=True)
    events = catalyst_events(bars["ticker"].unique(), calendar_sessions(), seed=SEED)
    flagged = bars.merge(events, on=["ticker", "session_date"], how="left")["direction"].notna()
    log_volume = np.log(bars["volume"])
    typical = log_volume.groupby(bars["ticker"]).transform("median")
    excess = (log_volume - typical).to_numpy()
    jump = excess[flagged.to_numpy()].mean() - excess[~flagged.to_numpy()].mean()
    assert flagged.sum() > 400
    assert np.log(2.0) < jump < np.log(4.0)


@pytest.fixture
def without_catalysts(monkeypatch):
    """The market as it was before catalysts: no events, no rumours (caches forgotten around it)."""
    clear_caches()
    yield monkeypatch.setattr
    clear_caches()


def _catalyst_ids(
    ids: pd.Series, base: int, stride: int, ranges: list[tuple[int, int]]
) -> np.ndarray:
    within = (ids.map(lambda i: int(i, 36)).to_numpy() - base) % stride
    return np.any([(within >= low) & (within < high) for low, high in ranges], axis=0)


def test_catalysts_leave_the_rest_of_the_market_as_it_was(posts, comments, without_catalysts):
    tickers = CORE_UNIVERSE[:8]
    with_catalysts = {t: prices_module.ticker_path(t, SEED) for t in tickers}
    drift = {
        t: catalysts_module.event_drift(catalysts_module.catalyst_path(t, SEED)) for t in tickers
    }
    events = {t: catalysts_module.catalyst_path(t, SEED).direction != 0 for t in tickers}
    days = SESSIONS[10:25]
    day_posts = posts[posts["session_date"].isin(days)].reset_index(drop=True)
    day_comments = comments[comments["session_date"].isin(days)].reset_index(drop=True)
    clear_caches()
    without_catalysts(catalysts_module, "CATALYST_RATE", 0.0)
    without_catalysts(reddit_module, "RUMOUR_POSTS_PER_TICKER_SESSION", 0.0)

    for ticker in tickers:
        new, old = with_catalysts[ticker], prices_module.ticker_path(ticker, SEED)
        quiet = drift[ticker][1:] == 0
        np.testing.assert_allclose(
            np.diff(new.log_close)[quiet], np.diff(old.log_close)[quiet], rtol=0, atol=1e-12
        )
        assert not np.allclose(np.diff(new.log_close), np.diff(old.log_close))
        np.testing.assert_allclose(
            new.log_open[1:] - new.log_close[:-1], old.log_open[1:] - old.log_close[:-1], atol=1e-12
        )
        assert (new.volume[~events[ticker]] == old.volume[~events[ticker]]).all()
        assert (new.volume[events[ticker]] > old.volume[events[ticker]]).all()
        assert (new.sentiment == old.sentiment).all() and (new.attention == old.attention).all()

    # The ordinary chatter, dirt included, is exactly what it was; catalysts only add rows.
    catalyst_posts = _catalyst_ids(
        day_posts["post_id"],
        ids_module.POST_ID_BASE,
        ids_module.POST_ID_STRIDE,
        [(ids_module.CATALYST_POST_ID_OFFSET, ids_module.POST_ID_STRIDE)],
    )
    shells = ids_module.SHELL_ID_OFFSET + ids_module.CATALYST_COMMENT_ID_OFFSET
    catalyst_comments = _catalyst_ids(
        day_comments["comment_id"],
        ids_module.COMMENT_ID_BASE,
        ids_module.COMMENT_ID_STRIDE,
        [
            (ids_module.CATALYST_COMMENT_ID_OFFSET, ids_module.SHELL_ID_OFFSET),
            (shells, ids_module.COMMENT_ID_STRIDE),
        ],
    )
    assert catalyst_posts.sum() > 5 and catalyst_comments.sum() > 20
    pd.testing.assert_frame_equal(day_posts[~catalyst_posts].reset_index(drop=True), posts_of(days))
    pd.testing.assert_frame_equal(
        day_comments[~catalyst_comments].reset_index(drop=True), comments_of(days)
    )


def test_planted_edge_keeps_its_documented_figures_next_to_the_catalysts():
    summary = planted_edge_summary(CORE_UNIVERSE, calendar_sessions())
    assert summary["ic_1"] == pytest.approx(0.033, abs=0.001)
    assert summary["ic_5"] == pytest.approx(0.041, abs=0.001)
    assert summary["quintile_spread_5"] == pytest.approx(0.0062, abs=0.0002)


# --------------------------------------------------------------------------------------------
# dirt
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_prices() -> tuple[pd.DataFrame, pd.DataFrame]:
    tickers, sessions = synthetic_universe(200), calendar_sessions()[6000:6250]
    return (
        generate_price_history(tickers, sessions, seed=SEED),
        generate_price_history(tickers, sessions, seed=SEED, dirt=False),
    )


def _near(measured: float, rate: float, trials: int) -> bool:
    """Within 4.5 binomial standard deviations of the documented rate."""
    return abs(measured - rate) <= 4.5 * np.sqrt(rate * (1 - rate) / trials) + 1e-9


def test_price_dirt_comes_at_the_documented_rates(wide_prices):
    dirty, clean = wide_prices
    trials = len(clean)
    values = ["open", "high", "low", "close", "volume"]
    truth = clean.set_index(["ticker", "session_date"])[values]
    matched = dirty.join(truth, on=["ticker", "session_date"], rsuffix="_true")
    same_values = (
        matched[values].to_numpy() == matched[[v + "_true" for v in values]].to_numpy()
    ).all(axis=1)
    valid = valid_prices(matched)
    counts = {
        "non_positive_price": (matched[["open", "low", "close"]] <= 0).any(axis=1).sum(),
        "high_below_low": (matched["high"] < matched["low"]).sum(),
        "nan_volume": matched["volume"].isna().sum(),
        "malformed_symbol": (~matched["ticker"].map(lambda t: bool(TICKER_PATTERN.match(t)))).sum(),
        # Every key has its true row once; any further row with the true values is a repeat.
        "repeat_fetch": same_values.sum() - trials,
        # A valid row with other values is a preliminary fetch, corrected by a later one.
        "corrected_refetch": (valid & ~same_values).sum(),
    }
    assert set(counts) == set(PRICE_DIRT_RATES)
    for kind, rate in PRICE_DIRT_RATES.items():
        assert _near(counts[kind] / trials, rate, trials), (kind, counts[kind] / trials, rate)
    assert "" in set(dirty["ticker"])  # an empty symbol is among the malformed ones
    preliminary = matched[valid & ~same_values]
    assert (preliminary["volume"] < preliminary["volume_true"]).all()


def test_validation_rules_recover_the_true_bars_from_the_dirt(wide_prices):
    dirty, clean = wide_prices
    recovered = latest_valid(dirty, ["ticker", "session_date"], valid_prices(dirty))
    expected = clean.sort_values(["ticker", "session_date"]).reset_index(drop=True)
    # Corrections are fetched later than the first fetch: only fetched_at may differ.
    pd.testing.assert_frame_equal(
        recovered.drop(columns="fetched_at"), expected.drop(columns="fetched_at")
    )
    assert (recovered["fetched_at"] >= expected["fetched_at"]).all()
    assert valid_prices(clean).all() and not clean.duplicated(["ticker", "session_date"]).any()


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    tickers=st.lists(st.sampled_from(synthetic_universe(80)), min_size=1, max_size=6, unique=True),
    first=st.integers(0, 7000),
    length=st.integers(1, 40),
)
def test_for_any_seed_and_range_validation_undoes_the_price_dirt(seed, tickers, first, length):
    sessions = calendar_sessions()[first : first + length]
    dirty = generate_price_history(tickers, sessions, seed=seed)
    clean = generate_price_history(tickers, sessions, seed=seed, dirt=False)
    assert valid_prices(clean).all()
    recovered = latest_valid(dirty, ["ticker", "session_date"], valid_prices(dirty))
    expected = clean.sort_values(["ticker", "session_date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        recovered.drop(columns="fetched_at"), expected.drop(columns="fetched_at")
    )


def test_reddit_dirt_comes_at_the_documented_rates(posts, clean_posts, comments, clean_comments):
    post_trials, comment_trials = len(clean_posts), len(clean_comments)
    extra_posts = posts.merge(clean_posts, how="left", indicator=True)
    extra_posts = extra_posts[extra_posts["_merge"] == "left_only"]
    edited = extra_posts["selftext"].str.contains("EDIT:", regex=False)
    missing_title = extra_posts["title"].isna()
    repeated = ~edited & ~missing_title
    measured_posts = {
        "repeat_fetch": repeated.sum() / post_trials,
        "edited_refetch": edited.sum() / post_trials,
        "missing_title": missing_title.sum() / post_trials,
    }
    for kind, rate in POST_DIRT_RATES.items():
        assert _near(measured_posts[kind], rate, post_trials), (kind, measured_posts[kind])
    empty = comments["body"] == ""
    measured_comments = {
        "duplicate_fetch": comments["comment_id"].duplicated().sum() / comment_trials,
        "empty_body": empty.sum() / comment_trials,
    }
    for kind, rate in COMMENT_DIRT_RATES.items():
        assert _near(measured_comments[kind], rate, comment_trials), (kind, measured_comments[kind])
    assert comments.loc[empty, "author"].isna().all()


def test_validation_rules_recover_the_true_chatter_from_the_dirt(
    posts, clean_posts, comments, clean_comments
):
    recovered = latest_valid(
        posts, ["post_id"], nonblank(posts["title"]) & nonblank(posts["post_id"])
    )
    truth = clean_posts.sort_values("post_id").reset_index(drop=True)
    stable = ["post_id", "subreddit", "author", "title", "created_utc", "url", "session_date"]
    pd.testing.assert_frame_equal(recovered[stable], truth[stable])
    # An edit only adds a note and reports the later score and comment count.
    kept_text = [new.startswith(old) for new, old in zip(recovered["selftext"], truth["selftext"])]
    assert all(kept_text)
    assert (recovered["num_comments"] >= truth["num_comments"]).all()
    assert (recovered["score"] >= truth["score"]).all()
    assert (recovered["num_comments"] > truth["num_comments"]).any()

    recovered_comments = latest_valid(comments, ["comment_id"], nonblank(comments["body"]))
    true_comments = clean_comments.sort_values("comment_id").reset_index(drop=True)
    # A duplicate fetch is a later fetch: its score, fetch time and fetch lag are the later ones.
    as_of_fetch = ["score", "fetched_at", "fetch_lag_hours"]
    pd.testing.assert_frame_equal(
        recovered_comments.drop(columns=as_of_fetch), true_comments.drop(columns=as_of_fetch)
    )
    assert (recovered_comments["fetch_lag_hours"] >= true_comments["fetch_lag_hours"]).all()
