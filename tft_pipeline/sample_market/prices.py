"""The price side of the sample market: a market factor, one simulated path per ticker, daily bars."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from tft_pipeline.sample_market.catalysts import catalyst_path, event_drift
from tft_pipeline.sample_market.dirt import add_price_dirt
from tft_pipeline.sample_market.layout import exact_layout
from tft_pipeline.sample_market.randomness import (
    DEFAULT_SEED,
    Stream,
    generator,
    hashed_uniforms,
    ticker_key,
)
from tft_pipeline.sample_market.span import (
    anchor_ordinal,
    calendar_closes_ns,
    session_count,
    session_ordinals,
    sessions_of,
)
from tft_pipeline.tables import RAW_PRICE_COLUMNS, empty_frame

TRADING_DAYS_PER_YEAR = 252

# The planted edge: the expected log-return of session D+1 moves by EDGE_BETA daily volatilities
# per unit of the latent sentiment of session D. Tuned so that the cross-sectional rank IC of the
# latent sentiment against the next 5-session return is about 0.045 (see planted_edge_summary).
EDGE_BETA = 0.0225
# AR(1) coefficient of the latent sentiment (unit stationary variance): moods last a few sessions.
SENTIMENT_PERSISTENCE = 0.8

DAILY_DRIFT = 0.0002  # about 5 % a year, the same for every ticker (no cross-sectional signal)
# Market factor: calm and stressed daily volatility, mean regime lengths in sessions.
MARKET_CALM_VOL, MARKET_STRESSED_VOL = 0.007, 0.017
MARKET_MEAN_CALM, MARKET_MEAN_STRESSED = 65.0, 20.0
# Idiosyncratic regimes of each ticker (volatility multipliers before normalisation).
IDIO_CALM_MULT, IDIO_STRESSED_MULT = 0.85, 1.7
IDIO_MEAN_CALM, IDIO_MEAN_STRESSED = 50.0, 15.0
# On top of the regimes, idiosyncratic volatility drifts smoothly (log-AR(1) stochastic volatility),
# so that big moves cluster as they do in real prices.
VOL_OF_VOL, VOL_PERSISTENCE = 0.35, 0.98
# Fat tails: shocks are a scale mixture of normals, a calm one and, on TAIL_SHARE of the
# sessions, one TAIL_SCALE times wider (excess kurtosis about 3 from the mixture alone; with the
# regimes, stochastic volatility and jumps, daily returns show the 5-15 of real stocks).
TAIL_SHARE, TAIL_SCALE = 0.1, 2.5
JUMP_RATE = 0.02  # earnings-like overnight gaps per session
JUMP_SIZE = 3.0  # their standard deviation in daily volatilities
VOLUME_SPIKE_RATE = 0.01  # block trades, index rebalancing

# Reddit's favourites get far more mentions; everyone else gets a popularity drawn from its hash.
# fmt: off
POPULAR_TICKERS: dict[str, float] = {
    "GME": 7.0, "TSLA": 7.0, "NVDA": 7.0, "AMC": 5.0, "PLTR": 5.0, "AAPL": 4.0, "AMD": 4.0,
    "SPY": 4.0, "COIN": 3.0, "MSFT": 2.5, "AMZN": 2.5, "META": 2.5, "GOOGL": 2.0, "NFLX": 2.0,
    "INTC": 2.0, "SOFI": 2.5, "BB": 2.0, "RIVN": 2.0, "MU": 1.8, "BA": 1.8, "DIS": 1.5,
}
# fmt: on


@dataclass(frozen=True)
class TickerProfile:
    """The fixed character of one ticker, derived from (seed, ticker) alone."""

    ticker: str
    price_level: float  # the close on ANCHOR_SESSION, 10..800
    annual_volatility: float  # 0.15..0.80
    beta: float  # loading on the common market factor
    popularity: float  # relative share of Reddit mentions
    base_volume: float  # typical shares traded per session

    @property
    def daily_volatility(self) -> float:
        return self.annual_volatility / math.sqrt(TRADING_DAYS_PER_YEAR)


@lru_cache(maxsize=4096)
def ticker_profile(ticker: str, seed: int = DEFAULT_SEED) -> TickerProfile:
    """The profile of ``ticker`` (any symbol, known or not) under ``seed``."""
    rng = generator(seed, Stream.TICKER, ticker_key(ticker), 0)
    price_level = float(np.exp(rng.uniform(np.log(10.0), np.log(800.0))))
    annual_volatility = float(rng.uniform(0.15, 0.80))
    # Low-volatility names cannot carry a big market beta: the factor alone would exceed their vol.
    max_beta = 0.9 * (annual_volatility / math.sqrt(TRADING_DAYS_PER_YEAR)) / _average_market_vol()
    beta = float(min(rng.uniform(0.6, 1.5), max_beta))
    drawn_popularity = float(np.exp(rng.normal(0.0, 0.5)))
    popularity = POPULAR_TICKERS.get(ticker, drawn_popularity)
    dollar_volume = float(np.exp(rng.uniform(np.log(2e8), np.log(8e9))))
    return TickerProfile(
        ticker=ticker,
        price_level=price_level,
        annual_volatility=annual_volatility,
        beta=beta,
        popularity=popularity,
        base_volume=dollar_volume / price_level,
    )


def _stationary_stressed_share(mean_calm: float, mean_stressed: float) -> float:
    return mean_stressed / (mean_calm + mean_stressed)


def _average_market_vol() -> float:
    stressed = _stationary_stressed_share(MARKET_MEAN_CALM, MARKET_MEAN_STRESSED)
    return math.sqrt((1 - stressed) * MARKET_CALM_VOL**2 + stressed * MARKET_STRESSED_VOL**2)


def _markov_regimes(
    rng: np.random.Generator, n: int, mean_calm: float, mean_stressed: float
) -> np.ndarray:
    """A 2-state Markov chain (True = stressed) built from geometric run lengths, vectorized."""
    pairs = int(2 * n / (mean_calm + mean_stressed)) + 16
    calm_runs = rng.geometric(1.0 / mean_calm, size=pairs)
    stressed_runs = rng.geometric(1.0 / mean_stressed, size=pairs)
    while calm_runs.sum() + stressed_runs.sum() < n:  # practically never: extend deterministically
        calm_runs = np.concatenate([calm_runs, rng.geometric(1.0 / mean_calm, size=pairs)])
        stressed_runs = np.concatenate(
            [stressed_runs, rng.geometric(1.0 / mean_stressed, size=pairs)]
        )
    runs = np.column_stack([calm_runs, stressed_runs]).ravel()
    states = np.tile(np.array([False, True]), len(calm_runs))
    return np.repeat(states, runs)[:n]


def _fat_tailed(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-variance fat-tailed shocks (a normal scale mixture: cheaper than Student-t draws)."""
    scale = np.where(rng.random(n) < TAIL_SHARE, TAIL_SCALE, 1.0)
    return rng.standard_normal(n) * scale / math.sqrt(1.0 - TAIL_SHARE + TAIL_SHARE * TAIL_SCALE**2)


def _ar1(rng: np.random.Generator, n: int, persistence: float) -> np.ndarray:
    """A unit-variance AR(1) series started in its stationary distribution."""
    innovations = rng.standard_normal(n)
    start = rng.standard_normal()
    scale = math.sqrt(1.0 - persistence**2)
    series, _ = lfilter([scale], [1.0, -persistence], innovations, zi=[persistence * start])
    return series


def _frozen(array: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=dtype)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class MarketPath:
    """The common market factor over the whole span."""

    returns: np.ndarray  # daily log-returns
    volatility: np.ndarray  # the regime's daily volatility


@lru_cache(maxsize=8)
def market_path(seed: int = DEFAULT_SEED) -> MarketPath:
    """The market factor of ``seed``: regime-switching volatility with fat-tailed shocks."""
    n = session_count()
    rng = generator(seed, Stream.MARKET)
    stressed = _markov_regimes(rng, n, MARKET_MEAN_CALM, MARKET_MEAN_STRESSED)
    volatility = np.where(stressed, MARKET_STRESSED_VOL, MARKET_CALM_VOL)
    return MarketPath(
        returns=_frozen(volatility * _fat_tailed(rng, n)), volatility=_frozen(volatility)
    )


@dataclass(frozen=True, eq=False)
class TickerPath:
    """One ticker over the whole span: prices, volume and its latent sentiment and attention."""

    profile: TickerProfile
    log_close: np.ndarray
    log_open: np.ndarray
    high_excursion: np.ndarray  # log distance of the high above max(open, close)
    low_excursion: np.ndarray  # log distance of the low below min(open, close)
    volume: np.ndarray  # whole shares
    sentiment: np.ndarray  # latent s: drives the tone of the session's chatter
    attention: np.ndarray  # multiplier of Reddit mentions (big moves, hype)


# About 0.3 MB per ticker: a 1,000-ticker universe stays cached in about 300 MB.
@lru_cache(maxsize=1024)
def ticker_path(ticker: str, seed: int = DEFAULT_SEED) -> TickerPath:
    """Simulate ``ticker`` over the whole calendar span (cached; requests are slices of it)."""
    n = session_count()
    profile = ticker_profile(ticker, seed)
    market = market_path(seed)
    rng = generator(seed, Stream.TICKER, ticker_key(ticker), 1)
    sigma = profile.daily_volatility

    stressed = _markov_regimes(rng, n, IDIO_MEAN_CALM, IDIO_MEAN_STRESSED)
    share = _stationary_stressed_share(IDIO_MEAN_CALM, IDIO_MEAN_STRESSED)
    regime_norm = math.sqrt((1 - share) * IDIO_CALM_MULT**2 + share * IDIO_STRESSED_MULT**2)
    regime = np.where(stressed, IDIO_STRESSED_MULT, IDIO_CALM_MULT) / regime_norm
    # exp(c a - c^2) with a ~ N(0, 1) has a unit mean square: the average volatility is unchanged.
    regime = regime * np.exp(VOL_OF_VOL * _ar1(rng, n, VOL_PERSISTENCE) - VOL_OF_VOL**2)
    # Idiosyncratic vol fills what the factor and the jumps leave of the ticker's total vol.
    diffusive_var = (sigma**2) / (1.0 + JUMP_RATE * JUMP_SIZE**2)
    idio_sigma = math.sqrt(
        max(diffusive_var - (profile.beta * _average_market_vol()) ** 2, (0.35 * sigma) ** 2)
    )
    idio_shock = idio_sigma * regime * _fat_tailed(rng, n)
    jumps = np.zeros(n)
    jumped = rng.random(n) < JUMP_RATE
    jumps[jumped] = rng.normal(0.0, JUMP_SIZE * sigma, int(jumped.sum()))

    sentiment = _ar1(rng, n, SENTIMENT_PERSISTENCE)
    # Session D's return sees only the sentiment of D-1: D's own mood moves D+1 onwards.
    lagged_sentiment = np.concatenate([[0.0], sentiment[:-1]])
    diffusive = profile.beta * market.returns + idio_shock
    returns = DAILY_DRIFT + EDGE_BETA * sigma * lagged_sentiment + diffusive + jumps

    current_vol = np.sqrt((profile.beta * market.volatility) ** 2 + (idio_sigma * regime) ** 2)
    surprise = np.minimum(np.abs(returns - DAILY_DRIFT) / current_vol, 6.0)
    # Catalyst events drift the sessions after them, intraday only (not in the overnight gap
    # below): a trade at D+1's open still catches it. Attention ignores the drift, so the ordinary
    # chatter stays exactly as it was; the events speak through their own burst of posts.
    catalysts = catalyst_path(ticker, seed)
    returns = returns + event_drift(catalysts) * current_vol
    walk = np.cumsum(returns)
    log_close = math.log(profile.price_level) + walk - walk[anchor_ordinal()]

    # Part of the day's move happens overnight, plus the jumps: the open gaps from the last close.
    # (The open's own noise is triangular, from two uniforms: cheap, and only the open sees it.)
    open_noise = 0.2 * sigma * math.sqrt(6.0) * (rng.random(n) - rng.random(n))
    overnight = rng.uniform(0.15, 0.45, n) * diffusive + jumps + open_noise
    previous_close = np.concatenate([[log_close[0] - returns[0]], log_close[:-1]])
    log_open = previous_close + overnight
    # Exponential excursions beyond the open/close body: mean 0.4 of the day's volatility.
    high_excursion = -np.log1p(-rng.random(n)) * 0.4 * current_vol
    low_excursion = -np.log1p(-rng.random(n)) * 0.4 * current_vol

    hype = _ar1(rng, n, 0.9)
    log_attention = 0.5 * hype + 0.45 * (surprise - 0.8)
    churn = _ar1(rng, n, 0.6)
    spikes = np.where(rng.random(n) < VOLUME_SPIKE_RATE, np.log(rng.uniform(2.0, 4.0, n)), 0.0)
    log_volume = math.log(profile.base_volume) + 0.3 * churn + 0.6 * log_attention + spikes
    log_volume = log_volume + catalysts.log_volume_boost  # the news trades on D
    return TickerPath(
        profile=profile,
        log_close=_frozen(log_close),
        log_open=_frozen(log_open),
        high_excursion=_frozen(high_excursion, np.float32),
        low_excursion=_frozen(low_excursion, np.float32),
        volume=_frozen(np.round(np.exp(log_volume))),
        sentiment=_frozen(sentiment, np.float32),
        attention=_frozen(np.exp(log_attention), np.float32),
    )


def unique_tickers(tickers: Iterable[str]) -> tuple[str, ...]:
    """``tickers`` de-duplicated in first-seen order (symbols are used exactly as given)."""
    if isinstance(tickers, str):
        raise TypeError("tickers must be a sequence of symbols, not one string")
    return tuple(dict.fromkeys(tickers))


def _round_prices(values: np.ndarray, factor: np.ndarray) -> np.ndarray:
    # The same factor for every price of a row keeps the OHLC order (rounding is monotone).
    return np.maximum(np.round(values * factor) / factor, 1e-4)


def price_fetch_times_ns(seed: int, keys: np.ndarray, ordinals: np.ndarray) -> np.ndarray:
    """When each bar was first fetched: 1 to 10 minutes after its session's close, to the second."""
    delay_s = np.floor(60.0 + 540.0 * hashed_uniforms(seed, Stream.PRICE_FETCH, keys, ordinals))
    return calendar_closes_ns()[ordinals] + delay_s.astype(np.int64) * 1_000_000_000


def clean_price_bars(tickers: Sequence[str], ordinals: np.ndarray, seed: int) -> pd.DataFrame:
    """The true bars of ``tickers`` on the sessions ``ordinals`` (no dirt), in RAW_PRICE_COLUMNS."""
    if not tickers or len(ordinals) == 0:
        return empty_frame(RAW_PRICE_COLUMNS)
    paths = [ticker_path(ticker, seed) for ticker in tickers]
    log_open = np.concatenate([path.log_open[ordinals] for path in paths])
    log_close = np.concatenate([path.log_close[ordinals] for path in paths])
    high_exc = np.concatenate([path.high_excursion[ordinals] for path in paths]).astype(np.float64)
    low_exc = np.concatenate([path.low_excursion[ordinals] for path in paths]).astype(np.float64)
    volume = np.concatenate([path.volume[ordinals] for path in paths])
    open_, close = np.exp(log_open), np.exp(log_close)
    high = np.maximum(open_, close) * np.exp(high_exc)
    low = np.minimum(open_, close) * np.exp(-low_exc)
    factor = np.where(close >= 1.0, 100.0, 10_000.0)
    close = _round_prices(close, factor)
    keys = np.repeat(np.array([ticker_key(t) for t in tickers], dtype=np.int64), len(ordinals))
    all_ordinals = np.tile(ordinals, len(tickers))
    frame = pd.DataFrame(
        {
            "ticker": np.repeat(np.array(tickers, dtype=object), len(ordinals)),
            "session_date": np.tile(sessions_of(ordinals), len(tickers)),
            "open": _round_prices(open_, factor),
            "high": _round_prices(high, factor),
            "low": _round_prices(low, factor),
            "close": close,
            "adj_close": close,  # the sample market pays no dividends
            "volume": volume,
            "fetched_at": price_fetch_times_ns(seed, keys, all_ordinals).astype("datetime64[ns]"),
        }
    )
    return frame


def generate_price_history(
    tickers: Iterable[str],
    sessions: Iterable[dt.date | str | pd.Timestamp],
    *,
    seed: int = DEFAULT_SEED,
    dirt: bool = True,
) -> pd.DataFrame:
    """Daily bars of ``tickers`` (any symbols) on ``sessions``, as a raw fetch would return them.

    Columns and dtypes of ``RAW_PRICE_COLUMNS``; sorted by ticker, session and fetch time. With
    ``dirt`` the frame also holds the documented share of bad and repeated rows (see
    ``PRICE_DIRT_RATES``); the true bar of every (ticker, session) is always present and is the
    most recently fetched valid row of its key.
    """
    symbols = unique_tickers(tickers)
    ordinals = session_ordinals(sessions)
    bars = clean_price_bars(symbols, ordinals, seed)
    if dirt and len(bars):
        bars = add_price_dirt(bars, seed)
    bars = bars.sort_values(["ticker", "session_date", "fetched_at"], kind="stable")
    return exact_layout(bars, RAW_PRICE_COLUMNS)


def latent_sentiment(
    tickers: Iterable[str],
    sessions: Iterable[dt.date | str | pd.Timestamp],
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """The hidden truth behind the chatter: ``ticker, session_date, sentiment, attention``.

    ``sentiment`` is the latent state s of the session (unit variance, AR(1)); ``attention`` the
    multiplier of the ticker's Reddit mentions in that session's window.
    """
    symbols = unique_tickers(tickers)
    ordinals = session_ordinals(sessions)
    paths = [ticker_path(ticker, seed) for ticker in symbols]
    return pd.DataFrame(
        {
            "ticker": np.repeat(np.array(symbols, dtype=object), len(ordinals)),
            "session_date": np.tile(sessions_of(ordinals), len(symbols)),
            "sentiment": np.concatenate([p.sentiment[ordinals] for p in paths]).astype(np.float64)
            if paths
            else np.array([], dtype=np.float64),
            "attention": np.concatenate([p.attention[ordinals] for p in paths]).astype(np.float64)
            if paths
            else np.array([], dtype=np.float64),
        }
    )
