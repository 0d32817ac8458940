"""The bundled ticker universe and the parsing of user-given tickers (pure, no Dagster)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# 500 liquid US stocks (large and mid caps across sectors, S&P 500 members as of 2024-2025, most
# of them): the default universe of the sample market and of live mode. It is a list of today's
# names, so a backtest of past sessions in live mode carries survivorship bias (see the README).
# The first 50 are the core of Reddit's chatter; catalyst news is rare per ticker (about one event
# a year), so the cross-section is what gives a walk-forward model enough of it to learn from.
# fmt: off
DEFAULT_UNIVERSE: tuple[str, ...] = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "AMD", "INTC", "NFLX", "ADBE", "CRM", "ORCL",
    "CSCO", "QCOM", "TXN", "MU", "PLTR", "UBER", "JPM", "BAC", "WFC", "GS", "MS", "C", "V", "MA",
    "PYPL", "XYZ", "XOM", "CVX", "COP", "OXY", "UNH", "JNJ", "PFE", "MRNA", "LLY", "ABBV", "WMT", "COST",
    "HD", "NKE", "MCD", "SBUX", "DIS", "BA", "GME", "AMC", "BRK.B", "IBM", "NOW", "INTU", "AMAT", "LRCX",
    "KLAC", "ADI", "MCHP", "NXPI", "ON", "MPWR", "SNPS", "CDNS", "ANET", "PANW", "CRWD", "FTNT", "ZS", "DDOG",
    "SNOW", "MDB", "NET", "TEAM", "WDAY", "ADSK", "PTC", "TYL", "ROP", "APH", "TEL", "GLW", "HPQ", "HPE",
    "DELL", "NTAP", "STX", "WDC", "SMCI", "KEYS", "TER", "ZBRA", "FFIV", "AKAM", "GEN", "EPAM", "IT", "CTSH",
    "ACN", "FIS", "FI", "GPN", "JKHY", "BR", "PAYX", "ADP", "CPAY", "WEX", "TOST", "SHOP", "SPOT", "ABNB",
    "BKNG", "EXPE", "MAR", "HLT", "RCL", "CCL", "NCLH", "LVS", "WYNN", "MGM", "CZR", "DPZ", "YUM", "CMG",
    "DRI", "QSR", "WING", "TXRH", "LOW", "TGT", "DG", "DLTR", "BBY", "TSCO", "ORLY", "AZO", "GPC", "KMX",
    "CVNA", "LULU", "TJX", "ROST", "BURL", "ANF", "AEO", "URBN", "DECK", "CROX", "ULTA", "EL", "CL", "PG",
    "KMB", "CLX", "CHD", "KO", "PEP", "MNST", "KDP", "STZ", "TAP", "BF.B", "MO", "PM", "KHC", "GIS",
    "CPB", "CAG", "SJM", "HSY", "MDLZ", "HRL", "TSN", "MKC", "KR", "SYY", "ADM", "BG", "CVS", "CI",
    "ELV", "HUM", "CNC", "MOH", "HCA", "UHS", "THC", "DVA", "LH", "DGX", "TMO", "DHR", "A", "ABT",
    "BDX", "BSX", "SYK", "MDT", "ZBH", "EW", "ISRG", "IDXX", "RMD", "DXCM", "PODD", "ALGN", "COO", "HOLX",
    "BAX", "STE", "WAT", "MTD", "IQV", "CRL", "RVTY", "TECH", "BIO", "GEHC", "AMGN", "GILD", "BIIB", "REGN",
    "VRTX", "INCY", "ALNY", "BMRN", "NBIX", "EXEL", "UTHR", "JAZZ", "MRK", "BMY", "ZTS", "VTRS", "CAH", "MCK",
    "COR", "AXP", "COF", "SYF", "ALLY", "SOFI", "SCHW", "IBKR", "HOOD", "COIN", "MKTC", "NDAQ", "ICE", "CME",
    "CBOE", "SPGI", "MCO", "MSCI", "FDS", "TROW", "BEN", "IVZ", "BLK", "BX", "KKR", "APO", "ARES", "CG",
    "AMP", "LPLA", "RJF", "USB", "PNC", "TFC", "MTB", "FITB", "HBAN", "RF", "KEY", "CFG", "EWBC", "WAL",
    "NTRS", "STT", "BK", "AIG", "MET", "PRU", "AFL", "ALL", "TRV", "CB", "PGR", "HIG", "CINF", "L",
    "WRB", "PFG", "MMC", "AON", "AJG", "BRO", "WTW", "ACGL", "EG", "AMT", "CCI", "SBAC", "EQIX", "DLR",
    "PLD", "PSA", "EXR", "CUBE", "SPG", "O", "REG", "KIM", "FRT", "VTR", "WELL", "DOC", "ARE", "BXP",
    "VNO", "SLG", "HST", "MAA", "EQR", "AVB", "ESS", "UDR", "CPT", "INVH", "AMH", "IRM", "WY", "EQT",
    "CTRA", "DVN", "EOG", "FANG", "APA", "HAL", "SLB", "BKR", "FTI", "AR", "RRC", "KMI", "WMB", "OKE",
    "TRGP", "ET", "EPD", "LNG", "PSX", "MPC", "VLO", "CNX", "NEE", "DUK", "SO", "D", "AEP", "EXC",
    "XEL", "SRE", "PEG", "ED", "EIX", "PCG", "WEC", "ES", "DTE", "ETR", "FE", "PPL", "CMS", "AEE",
    "CNP", "NI", "LNT", "EVRG", "ATO", "PNW", "NRG", "VST", "CEG", "AES", "AWK", "WTRG", "LIN", "APD",
    "SHW", "ECL", "PPG", "DD", "DOW", "LYB", "EMN", "CE", "ALB", "FMC", "MOS", "CF", "CTVA", "IFF",
    "NUE", "STLD", "CLF", "AA", "FCX", "NEM", "VMC", "MLM", "BALL", "AMCR", "PKG", "IP", "SEE", "AVY",
    "CAT", "DE", "PCAR", "CMI", "ALSN", "AGCO", "CNH", "HON", "GE", "MMM", "EMR", "ETN", "ROK", "PH",
    "ITW", "DOV", "XYL", "IEX", "IR", "AME", "FTV", "GWW", "FAST", "URI", "WAB", "NSC", "CSX", "UNP",
    "UPS", "FDX", "CHRW", "EXPD", "JBHT", "ODFL", "XPO", "SAIA", "KNX", "LSTR", "DAL", "UAL", "LUV", "ALK",
    "LMT", "RTX", "NOC", "GD", "LHX", "HII", "TDG", "HWM", "TXT", "AXON", "LDOS", "SAIC", "BAH", "CACI",
    "J", "PWR", "EME", "FIX", "ACM", "BLDR", "MAS", "OC", "LII", "CARR", "TT", "JCI", "AOS", "ALLE",
    "SWK", "SNA", "PNR", "GNRC", "HUBB", "NVT", "RSG", "WM", "CTAS", "ROL",
)
# fmt: on
CORE_UNIVERSE: tuple[str, ...] = DEFAULT_UNIVERSE[:50]

# A symbol: 1-5 capital letters, optionally a class suffix such as BRK.B or BF-B.
TICKER_PATTERN = re.compile(r"^[A-Z]{1,5}(?:[.-][A-Z]{1,2})?$")


# Yahoo's suffixes for listings on other exchanges (WSU.DE is WashTec on XETRA, 7203.T Toyota in
# Tokyo). The pipeline's partitions are NYSE sessions and its Reddit windows end at the New York
# close, so such a listing is refused at startup rather than keyed onto sessions it does not trade
# (docs/live_mode.md, "Foreign listings"). Share classes (BRK.B, BF.B, HEI.A) are not among them.
# Only suffixes of one or two letters are listed: longer ones (.TWO, .NEO) are malformed anyway.
YAHOO_EXCHANGE_SUFFIXES: frozenset[str] = frozenset(
    {
        "L", "T", "F", "V",  # London, Tokyo, Frankfurt, TSX Venture
        "AS", "AT", "AX", "BA", "BD", "BE", "BK", "BO", "BR", "CN", "CO", "CR", "DE", "DU", "HE",
        "HK", "HM", "IC", "IL", "IR", "IS", "JK", "JO", "KL", "KQ", "KS", "KW", "LS", "MC", "ME",
        "MI", "MU", "MX", "NE", "NS", "NZ", "OL", "PA", "PR", "QA", "RG", "SA", "SG", "SI", "SN",
        "SR", "SS", "ST", "SW", "SZ", "TA", "TI", "TL", "TO", "TW", "VI", "VN", "WA", "XC",
    }
)  # fmt: skip


class InvalidTickerError(ValueError):
    """A ticker that is not a well-formed US symbol."""


def exchange_suffix(symbol: str) -> str | None:
    """The Yahoo exchange suffix of ``symbol`` (``DE`` for WSU.DE), None for a US symbol."""
    _, dot, suffix = symbol.rpartition(".")
    return suffix if dot and suffix in YAHOO_EXCHANGE_SUFFIXES else None


def normalize_tickers(raw: Iterable[str]) -> tuple[str, ...]:
    """Upper-cased, stripped, de-duplicated tickers in first-seen order; raises on a malformed one."""
    seen: dict[str, None] = {}
    bad: list[str] = []
    foreign: list[str] = []
    for item in raw:
        symbol = item.strip().upper().lstrip("$")
        if not symbol:
            continue
        if not TICKER_PATTERN.match(symbol):
            bad.append(item.strip())
            continue
        if exchange_suffix(symbol):
            foreign.append(symbol)
            continue
        seen.setdefault(symbol, None)
    if bad:
        raise InvalidTickerError(
            f"malformed ticker(s) {', '.join(repr(b) for b in bad)}: a ticker is 1-5 letters, "
            "optionally with a class suffix such as BRK.B"
        )
    if foreign:
        raise InvalidTickerError(
            f"listing(s) on other exchanges {', '.join(repr(f) for f in foreign)}: a Yahoo "
            f"exchange suffix ({', '.join(sorted({'.' + str(exchange_suffix(f)) for f in foreign}))}) "
            "names a market whose trading days are not NYSE sessions; the pipeline follows "
            "US listings only (share classes such as BRK.B stay valid)"
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


@dataclass(frozen=True)
class Membership:
    """A ticker and the sessions it belongs to the universe (None: open-ended on that side)."""

    ticker: str
    first_session: dt.date | None = None
    last_session: dt.date | None = None


def read_universe_file(path: Path) -> tuple[Membership, ...]:
    """Read ``TFT_UNIVERSE_FILE``: a CSV with a ``ticker`` column and, optionally,
    ``first_session`` and ``last_session`` (ISO dates, inclusive; empty = open-ended).

    A universe file lets a backtest of the past follow the tickers that were in the universe
    then (an index's members, say), instead of today's list, which would carry survivorship bias.
    A ticker may appear on several rows (it left and came back). Raises ``InvalidTickerError``
    naming the file, the line and what is wrong.
    """
    if not path.is_file():
        raise InvalidTickerError(f"universe file {str(path)!r} does not exist")
    with path.open(newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    columns = [name.strip() for name in reader.fieldnames or []]
    if "ticker" not in columns:
        raise InvalidTickerError(
            f"universe file {str(path)!r}: the header must name a 'ticker' column "
            "(optional: first_session, last_session); got " + ", ".join(columns)
        )
    unknown = sorted(set(columns) - {"ticker", "first_session", "last_session"})
    if unknown:
        raise InvalidTickerError(
            f"universe file {str(path)!r}: unknown column(s) {', '.join(unknown)} "
            "(allowed: ticker, first_session, last_session)"
        )
    memberships: list[Membership] = []
    for number, row in enumerate(reader, start=2):
        row = {key.strip(): (value or "").strip() for key, value in row.items() if key}
        where = f"universe file {str(path)!r}, row {number}"
        try:
            (ticker,) = normalize_tickers([row.get("ticker", "")])
        except InvalidTickerError as error:
            raise InvalidTickerError(f"{where}: {error}") from None
        bounds = []
        for column in ("first_session", "last_session"):
            text = row.get(column, "")
            try:
                bounds.append(dt.date.fromisoformat(text) if text else None)
            except ValueError:
                raise InvalidTickerError(
                    f"{where}: {column} must be an ISO date such as 2020-08-31, got {text!r}"
                ) from None
        first, last = bounds
        if first and last and last < first:
            raise InvalidTickerError(
                f"{where}: last_session {last} is before first_session {first}"
            )
        memberships.append(Membership(ticker, first, last))
    if not memberships:
        raise InvalidTickerError(f"universe file {str(path)!r} lists no ticker")
    return tuple(memberships)


def members_during(
    memberships: Iterable[Membership], first: dt.date, last: dt.date
) -> tuple[str, ...]:
    """The tickers (first-seen order) that belong to the universe on some day of [first, last]."""
    seen: dict[str, None] = {}
    for member in memberships:
        starts_before_end = member.first_session is None or member.first_session <= last
        ends_after_start = member.last_session is None or member.last_session >= first
        if starts_before_end and ends_after_start:
            seen.setdefault(member.ticker, None)
    return tuple(seen)


def membership_mask(
    tickers: pd.Series, sessions: pd.Series, ranges: Mapping[str, Iterable[tuple]]
) -> np.ndarray:
    """True where the row's ticker belongs to the universe on the row's session.

    ``ranges`` maps a ticker to its ``(first_session, last_session)`` pairs (ISO strings, dates
    or None); a ticker absent from ``ranges`` belongs always.
    """
    keep = np.ones(len(tickers), dtype=bool)
    days = pd.to_datetime(sessions).to_numpy(dtype="datetime64[ns]")
    ticker_values = tickers.to_numpy(dtype=object)
    for ticker, pairs in ranges.items():
        rows = ticker_values == ticker
        if not rows.any():
            continue
        inside = np.zeros(len(tickers), dtype=bool)
        for first, last in pairs:
            ok = rows.copy()
            if first is not None:
                ok &= days >= np.datetime64(pd.Timestamp(first), "ns")
            if last is not None:
                ok &= days <= np.datetime64(pd.Timestamp(last), "ns")
            inside |= ok
        keep &= ~rows | inside
    return keep


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
