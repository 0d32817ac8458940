"""A fake Yahoo Finance chart server on 127.0.0.1, and the one switch that points yfinance at it.

The server speaks the only endpoint ``Ticker.history`` uses, ``GET /v8/finance/chart/<SYMBOL>``,
with the JSON layout Yahoo sends (see /work/shared/LIVE_APIS.md): a ``range=1d`` request is
yfinance's timezone probe, a ``period1``/``period2`` request is a history request. Unknown symbols
get Yahoo's 404; faults (429, 5xx, a dropped connection) can be scripted per symbol; every request
is logged so tests count calls at the server, not in the client.

``pointing_yfinance_at(url)`` holds every patch of yfinance's private internals this needs, so
tests never touch them directly. It relies on yfinance 1.7.0 (pinned exactly in pyproject.toml).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

NEW_YORK = "America/New_York"
CHART_PATH = re.compile(r"^/v8/finance/chart/(?P<symbol>[^/?]+)$")
NOT_FOUND_DESCRIPTION = "No data found, symbol may be delisted"
RECORDED_DIR = Path(__file__).resolve().parent.parent / "recorded" / "yahoo"
BAR_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
# Yahoo stamps a daily bar with the session's opening time.
DAILY_BAR_TIME = pd.Timedelta(hours=9, minutes=30)


def recorded_answer(name: str) -> dict:
    """A recorded Yahoo chart answer from ``recorded/yahoo/<name>`` (its sources: SOURCES.md)."""
    return json.loads((RECORDED_DIR / name).read_text())


def random_walk_bars(
    sessions: Sequence | pd.DatetimeIndex,
    *,
    seed: int,
    start_price: float = 100.0,
    dividend_factor: float = 0.99,
) -> pd.DataFrame:
    """Daily OHLCV bars on ``sessions`` from a seeded geometric random walk.

    Indexed by naive session date; ``adj_close`` is ``close`` times ``dividend_factor`` so tests
    can tell the two apart.
    """
    index = pd.DatetimeIndex(pd.to_datetime(list(sessions))).normalize()
    rng = np.random.default_rng(seed)
    close = start_price * np.exp(np.cumsum(rng.normal(0.0, 0.02, len(index))))
    open_ = close * np.exp(rng.normal(0.0, 0.005, len(index)))
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0, 0.01, len(index)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0, 0.01, len(index)))
    volume = rng.integers(1_000_000, 5_000_000, len(index)).astype(float)
    return pd.DataFrame(
        {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": close * dividend_factor,
            "volume": volume,
        },
        index=pd.DatetimeIndex(index, name="session_date"),
    )


def bar_timestamps(session_dates: pd.DatetimeIndex) -> np.ndarray:
    """Epoch seconds Yahoo gives the daily bars of ``session_dates`` (09:30 New York time)."""
    stamps = (session_dates + DAILY_BAR_TIME).tz_localize(NEW_YORK)
    return (
        stamps.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[s]").astype(np.int64)
    )


def _json_numbers(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def chart_payload(symbol: str, bars: pd.DataFrame) -> dict:
    """Yahoo's ``/v8/finance/chart`` answer for ``bars`` (as made by ``random_walk_bars``)."""
    timestamps = bar_timestamps(pd.DatetimeIndex(bars.index)).tolist()
    volume = [None if np.isnan(v) else int(v) for v in bars["volume"].to_numpy(dtype=float)]
    meta = {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": "NMS",
        "fullExchangeName": "NasdaqGS",
        "instrumentType": "EQUITY",
        "firstTradeDate": 345479400,
        "regularMarketTime": timestamps[-1] if timestamps else 0,
        "hasPrePostMarketData": True,
        "gmtoffset": -18000,
        "timezone": "EST",
        "exchangeTimezoneName": NEW_YORK,
        "priceHint": 2,
        "dataGranularity": "1d",
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    return {
        "chart": {
            "result": [
                {
                    "meta": meta,
                    "timestamp": timestamps,
                    "indicators": {
                        "quote": [
                            {
                                "open": _json_numbers(bars["open"].to_numpy(dtype=float)),
                                "high": _json_numbers(bars["high"].to_numpy(dtype=float)),
                                "low": _json_numbers(bars["low"].to_numpy(dtype=float)),
                                "close": _json_numbers(bars["close"].to_numpy(dtype=float)),
                                "volume": volume,
                            }
                        ],
                        "adjclose": [
                            {"adjclose": _json_numbers(bars["adj_close"].to_numpy(dtype=float))}
                        ],
                    },
                }
            ],
            "error": None,
        }
    }


@dataclass(frozen=True)
class Fault:
    """A scripted bad answer: an HTTP status with a body, or ``status=None`` to drop the connection."""

    status: int | None
    body: str = ""
    content_type: str = "text/plain"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ChartRequest:
    """One request the server answered: which symbol, which kind, and the status sent (0 = dropped)."""

    symbol: str
    kind: str  # "timezone" (range=1d probe) or "history" (period1/period2)
    params: Mapping[str, str]
    status: int


@dataclass
class _State:
    bars: dict[str, pd.DataFrame]
    recorded: dict[str, dict] = field(default_factory=dict)
    faults: dict[tuple[str, str], deque[Fault]] = field(default_factory=dict)
    requests: list[ChartRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _request_kind(params: Mapping[str, str]) -> str:
    return "history" if "period1" in params else "timezone"


class _ChartHandler(BaseHTTPRequestHandler):
    state: _State  # set on the per-server subclass

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        return

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        match = CHART_PATH.match(parts.path)
        if match is None:
            self._send(404, {"finance": {"result": None, "error": {"code": "Not Found"}}})
            return
        symbol = match["symbol"].upper()
        kind = _request_kind(params)
        with self.state.lock:
            queue = self.state.faults.get((symbol, kind))
            fault = queue.popleft() if queue else None
            bars = self.state.bars.get(symbol)
            recorded = self.state.recorded.get(symbol)
            if fault is not None:
                status = fault.status or 0
            else:
                status = 200 if bars is not None or recorded is not None else 404
            self.state.requests.append(ChartRequest(symbol, kind, params, status))
        if fault is not None:
            self._send_fault(fault)
        elif recorded is not None:
            self._send(200, select_recorded(recorded, params))
        elif bars is None:
            error = {"code": "Not Found", "description": NOT_FOUND_DESCRIPTION}
            self._send(404, {"chart": {"result": None, "error": error}})
        else:
            self._send(200, chart_payload(symbol, _select_bars(bars, params)))

    def _send_fault(self, fault: Fault) -> None:
        if fault.status is None:
            # A connection closed before any byte of an answer: the client sees a network error.
            self.close_connection = True
            return
        body = fault.body.encode()
        self.send_response(fault.status)
        self.send_header("Content-Type", fault.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in fault.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def select_recorded(answer: dict, params: Mapping[str, str]) -> dict:
    """A recorded chart answer cut to what Yahoo would send for ``params``.

    The recorded answer is served verbatim but for one cut, the same Yahoo makes: a history request
    (``period1``/``period2``) gets the bars whose timestamp lies in ``[period1, period2)`` (every
    per-bar array is cut alike: ``timestamp``, each ``indicators.quote`` series, ``adjclose`` and
    ``unadjclose``) and the events (splits, dividends) whose date lies in the same range. The
    timezone probe (``range=1d``) gets the last bar. ``meta`` is left as recorded. So one recorded
    answer serves a range fetch and one fetch per day alike.
    """
    cut = json.loads(json.dumps(answer))  # a deep copy: the recorded answer stays untouched
    result = cut["chart"]["result"][0]
    stamps = list(result.get("timestamp") or [])
    if "period1" in params:
        first, end = int(params["period1"]), int(params.get("period2", 2**62))
    else:
        first, end = (stamps[-1], stamps[-1] + 1) if stamps else (0, 0)
    keep = [i for i, stamp in enumerate(stamps) if first <= stamp < end]
    result["timestamp"] = [stamps[i] for i in keep]
    indicators = result.get("indicators", {})
    for series_list in indicators.values():
        for series in series_list:
            for key, values in series.items():
                series[key] = [values[i] for i in keep]
    for kind, events in (result.get("events") or {}).items():
        result["events"][kind] = {
            key: event for key, event in events.items() if first <= int(event["date"]) < end
        }
    return cut


def _select_bars(bars: pd.DataFrame, params: Mapping[str, str]) -> pd.DataFrame:
    if "period1" not in params:
        return bars.iloc[-1:]  # the timezone probe: Yahoo answers range=1d with the last bar
    stamps = bar_timestamps(pd.DatetimeIndex(bars.index))
    first, end = int(params["period1"]), int(params.get("period2", np.iinfo(np.int64).max))
    return bars[(stamps >= first) & (stamps < end)]


class FakeYahooServer:
    """The chart endpoint of Yahoo Finance on ``127.0.0.1``, serving ``bars_by_symbol``.

    ``recorded_by_symbol`` maps a symbol to a real chart answer recorded from Yahoo (see
    ``tft_pipeline_tests/recorded/yahoo/SOURCES.md``), served verbatim but cut to each request's
    range (``select_recorded``); it wins over ``bars_by_symbol``.

    Use as a context manager (starts a server thread on a free port, stops it on exit). A symbol
    mapped to an empty frame is a known symbol with no bars; an unmapped symbol gets Yahoo's 404.
    """

    def __init__(
        self,
        bars_by_symbol: Mapping[str, pd.DataFrame],
        recorded_by_symbol: Mapping[str, dict] | None = None,
    ) -> None:
        self._state = _State(
            bars={symbol.upper(): bars for symbol, bars in bars_by_symbol.items()},
            recorded={s.upper(): a for s, a in (recorded_by_symbol or {}).items()},
        )
        handler = type("ChartHandler", (_ChartHandler,), {"state": self._state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, at every test's teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def set_recorded(self, symbol: str, answer: dict | None) -> None:
        """Serve the recorded chart answer ``answer`` for ``symbol`` (cut per request, see
        ``select_recorded``); None stops serving it."""
        with self._state.lock:
            if answer is None:
                self._state.recorded.pop(symbol.upper(), None)
            else:
                self._state.recorded[symbol.upper()] = answer

    def set_bars(self, symbol: str, bars: pd.DataFrame | None) -> None:
        """Serve ``bars`` for ``symbol`` from now on (None: the symbol becomes unknown)."""
        with self._state.lock:
            if bars is None:
                self._state.bars.pop(symbol.upper(), None)
            else:
                self._state.bars[symbol.upper()] = bars

    def fail_next(
        self,
        symbol: str,
        status: int | None,
        *,
        times: int = 1,
        kind: str = "history",
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests of ``kind`` for ``symbol`` with ``status``.

        ``status=None`` drops the connection without an answer. The default bodies are the ones
        Yahoo sends: plain text for 429, a non-JSON page for 5xx.
        """
        if body is None:
            body = (
                "Too Many Requests\r\n"
                if status == 429
                else "<html><body>Server error</body></html>"
            )
        content_type = "text/html" if body.startswith("<") else "text/plain"
        fault = Fault(status, body, content_type, tuple((headers or {}).items()))
        with self._state.lock:
            queue = self._state.faults.setdefault((symbol.upper(), kind), deque())
            queue.extend([fault] * times)

    def requests(self, symbol: str | None = None, kind: str | None = None) -> list[ChartRequest]:
        """The requests answered so far, optionally only those of ``symbol`` and/or ``kind``."""
        with self._state.lock:
            logged = list(self._state.requests)
        return [
            request
            for request in logged
            if (symbol is None or request.symbol == symbol.upper())
            and (kind is None or request.kind == kind)
        ]


class _InMemoryTzCache:
    """Stands in for yfinance's on-disk timezone cache, so tests start cold and never share a file."""

    dummy = False

    def __init__(self) -> None:
        self._zones: dict[str, str | None] = {}

    def lookup(self, key: str) -> str | None:
        return self._zones.get(key)

    def store(self, key: str, value: str | None) -> None:
        self._zones[key] = value


# Yahoo's hosts, or a fake's on 127.0.0.1: so a second pointing_yfinance_at inside a first one
# (a test's own fake while a module's shared run still holds its own) repoints yfinance too.
_YAHOO_HOST = re.compile(r"^(?:https://[a-z0-9.-]*yahoo\.com|http://127\.0\.0\.1:\d+)")


@contextmanager
def pointing_yfinance_at(url: str) -> Iterator[None]:
    """Make yfinance send every Yahoo request to ``url`` (e.g. a ``FakeYahooServer``), then undo it.

    yfinance 1.7.0 has no setting for its endpoint, so this patches its private internals, all
    restored on exit:

    - the Yahoo URL constants, which about 15 modules copied at import (patching
      ``yfinance.const`` alone does nothing): every module-level ``https://…yahoo.com`` string of
      every loaded yfinance module gets ``url`` as its scheme and host, path kept;
    - the cookie/crumb handshake (``YfData._get_cookie_and_crumb``), which talks to hard-coded
      hosts: it now yields no crumb, which the chart endpoint does not need;
    - the timezone fallback for unknown tickers (``Ticker.info`` on another hard-coded path, at
      most twice per process): its counter is set to exhausted, so an unknown ticker fails at the
      timezone probe as it would after two misses;
    - the on-disk timezone cache: replaced by an empty in-memory one, so request counts do not
      depend on earlier runs;
    - the LRU memo of past date ranges (``YfData.cache_get``): cleared on entry and exit so one
      test's answers never leak into another;
    - ``yf.config.debug.hide_exceptions``: restored, since the code under test may set it.
    """
    import yfinance as yf
    import yfinance.base as yf_base
    import yfinance.cache as yf_cache
    from yfinance.data import YfData

    fake_root = url.rstrip("/")
    patched: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, value: object) -> None:
        patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "yfinance" or module_name.startswith("yfinance.")):
            continue
        for name, value in list(vars(module).items()):
            if isinstance(value, str) and _YAHOO_HOST.match(value):
                patch(module, name, _YAHOO_HOST.sub(fake_root, value))

    patch(YfData, "_get_cookie_and_crumb", lambda self, timeout=30: (None, self._cookie_strategy))
    patch(yf_base, "_tz_info_fetch_ctr", 2)
    patch(yf_cache._TzCacheManager, "_tz_cache", _InMemoryTzCache())
    hide_exceptions = yf.config.debug.hide_exceptions
    YfData.cache_get.cache_clear()
    try:
        yield
    finally:
        YfData.cache_get.cache_clear()
        yf.config.debug.hide_exceptions = hide_exceptions
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)
