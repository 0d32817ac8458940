"""The bundled ticker universe and the parsing of user-given tickers (pure, no Dagster)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# About 50 liquid US large caps across sectors: the default universe of the sample market and live mode.
DEFAULT_UNIVERSE: tuple[str, ...] = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "AMD", "INTC",
    "NFLX", "ADBE", "CRM", "ORCL", "CSCO", "QCOM", "TXN", "MU", "PLTR", "UBER",
    "JPM", "BAC", "WFC", "GS", "MS", "C", "V", "MA", "PYPL", "SQ",
    "XOM", "CVX", "COP", "OXY", "UNH", "JNJ", "PFE", "MRNA", "LLY", "ABBV",
    "WMT", "COST", "HD", "NKE", "MCD", "SBUX", "DIS", "BA", "GME", "AMC",
)

# A symbol: 1-5 capital letters, optionally a class suffix such as BRK.B or BF-B.
TICKER_PATTERN = re.compile(r"^[A-Z]{1,5}(?:[.-][A-Z]{1,2})?$")


class InvalidTickerError(ValueError):
    """A ticker that is not a well-formed US symbol."""


def normalize_tickers(raw: Iterable[str]) -> tuple[str, ...]:
    """Upper-cased, stripped, de-duplicated tickers in first-seen order; raises on a malformed one."""
    seen: dict[str, None] = {}
    bad: list[str] = []
    for item in raw:
        symbol = item.strip().upper().lstrip("$")
        if not symbol:
            continue
        if not TICKER_PATTERN.match(symbol):
            bad.append(item.strip())
            continue
        seen.setdefault(symbol, None)
    if bad:
        raise InvalidTickerError(
            f"malformed ticker(s) {', '.join(repr(b) for b in bad)}: a ticker is 1-5 letters, "
            "optionally with a class suffix such as BRK.B"
        )
    if not seen:
        raise InvalidTickerError("the ticker list is empty")
    return tuple(seen)


def parse_tickers(value: str, base_dir: Path | None = None) -> tuple[str, ...]:
    """Parse ``TFT_TICKERS``: comma-separated symbols, or ``@path`` to a file of them.

    A file holds symbols separated by commas, spaces or newlines; ``#`` starts a comment.
    """
    value = value.strip()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise InvalidTickerError(f"ticker file {str(path)!r} does not exist")
        lines = [line.split("#", 1)[0] for line in path.read_text().splitlines()]
        return normalize_tickers(re.split(r"[,\s]+", " ".join(lines)))
    return normalize_tickers(value.split(","))


def synthetic_universe(size: int) -> tuple[str, ...]:
    """``size`` tickers for benchmarks: the bundled ones, then made-up symbols (``ZAAA``, ``ZAAB``...)."""
    if size <= len(DEFAULT_UNIVERSE):
        return DEFAULT_UNIVERSE[:size]
    extra: list[str] = []
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    index = 0
    while len(DEFAULT_UNIVERSE) + len(extra) < size:
        a, rest = divmod(index, 26 * 26)
        b, c = divmod(rest, 26)
        extra.append("Z" + letters[a % 26] + letters[b] + letters[c])
        index += 1
    return DEFAULT_UNIVERSE + tuple(extra)
