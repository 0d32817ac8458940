"""The bundled ticker universe and the parsing of user-given tickers (pure, no Dagster)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

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
