"""Benchmark of the live price source: requests and wall time per ticker against the loopback fake Yahoo.

Real yfinance runs end to end (curl_cffi, JSON parsing, its dataframe cleaning, our mapping); only
Yahoo is replaced by the fake chart server on 127.0.0.1, so the figures are the client-side cost
of a run, without the internet's latency or Yahoo's rate limits. The rate limiter is set high
enough not to wait; with the default 2 calls per second a run of N tickers takes at least
(N - 1) / 2 seconds on top.
"""

from __future__ import annotations

import time

import pandas as pd

from tft_pipeline.sources.prices_live import LivePriceSource
from tft_pipeline.trading_calendar import sessions_between
from tft_pipeline.universe import synthetic_universe
from tft_pipeline_tests.fakes.fake_yahoo import (
    FakeYahooServer,
    pointing_yfinance_at,
    random_walk_bars,
)


def _fetch_once(tickers: tuple[str, ...], sessions: pd.DatetimeIndex, max_workers: int) -> dict:
    market = {
        ticker: random_walk_bars(sessions, seed=index) for index, ticker in enumerate(tickers)
    }
    with FakeYahooServer(market) as server, pointing_yfinance_at(server.url):
        source = LivePriceSource(requests_per_second=1e6, max_workers=max_workers)
        started = time.perf_counter()
        fetch = source.fetch_prices(tickers, sessions)
        seconds = time.perf_counter() - started
        history_requests = len(server.requests(kind="history"))
        all_requests = len(server.requests())
    if not fetch.failures.empty or len(fetch.bars) != len(tickers) * len(sessions):
        raise RuntimeError(f"benchmark fetch incomplete: {fetch.failures.to_dict('records')}")
    return {
        "seconds": seconds,
        "history_requests": history_requests,
        "all_requests": all_requests,
        "bars": len(fetch.bars),
    }


def run(quick: bool = False) -> dict[str, float | int | str]:
    """Fetch a universe over a range of sessions, sequentially and with a small thread pool."""
    ticker_count = 5 if quick else 50
    sessions = (
        sessions_between("2024-10-01", "2024-12-31")
        if quick
        else sessions_between("2024-01-02", "2024-12-31")
    )
    tickers = synthetic_universe(ticker_count)
    sequential = _fetch_once(tickers, sessions, max_workers=1)
    pooled = _fetch_once(tickers, sessions, max_workers=4)
    return {
        "tickers": ticker_count,
        "sessions": len(sessions),
        "bars": sequential["bars"],
        "history_requests_per_ticker": sequential["history_requests"] / ticker_count,
        "server_requests_per_ticker_cold_tz_cache": sequential["all_requests"] / ticker_count,
        "sequential_seconds": round(sequential["seconds"], 3),
        "sequential_ms_per_ticker": round(1000 * sequential["seconds"] / ticker_count, 2),
        "pool4_seconds": round(pooled["seconds"], 3),
        "pool4_ms_per_ticker": round(1000 * pooled["seconds"] / ticker_count, 2),
        "bars_per_second_sequential": round(sequential["bars"] / sequential["seconds"]),
        "server": "fake Yahoo chart server on 127.0.0.1 (no network latency)",
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
