"""Sentiment of Reddit texts: VADER extended with a trading lexicon (pure, no Dagster).

VADER (``vaderSentiment``) scores each token from its lexicon on a -4..+4 valence scale and folds
them into a ``compound`` score in [-1, 1], with its own rules for negation ("not bullish"), boosters
("very"), capitals and "but". Its lexicon was built from general social media, so the words that
carry a trade's direction on Reddit ("calls", "puts", "tendies", "bagholder") score 0 out of the box.
``TRADING_LEXICON`` adds them on the same scale. Multi-word slang ("rug pull", "diamond hands") and
emoji pairs are first rewritten to single tokens, because VADER looks words up one token at a time.

VADER is plain Python (about 50-200 µs per text depending on length), so ``score_sentiment`` scores
each distinct text once and maps the scores back.
"""

from __future__ import annotations

import re
from functools import lru_cache
from types import MappingProxyType

import numpy as np
import pandas as pd
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# Valences on VADER's scale (-4 extremely negative .. +4 extremely positive; VADER's own "good" is
# 1.9, "great" 3.1, "bad" -2.5, "crash" -1.7). Direction words get about 1.5; strong slang for a big
# win or loss 2-3. Keys are lower case: VADER lower-cases tokens before the lookup.
TRADING_LEXICON: MappingProxyType[str, float] = MappingProxyType(
    {
        # positions: the direction a poster bets on
        "calls": 1.5,
        "puts": -1.5,
        "short": -1.0,  # "short squeeze" is rewritten to its own positive token first
        "shorts": -1.0,
        "shorting": -1.2,
        "bullish": 2.5,
        "bearish": -2.5,
        "bull": 1.5,
        "bear": -1.5,
        "buythedip": 1.5,  # "buy the dip"
        # price moves
        "moon": 2.5,
        "mooning": 2.5,
        "moonshot": 2.0,
        "rocket": 2.0,  # VADER turns the 🚀 emoji into "rocket"
        "squeeze": 1.5,
        "shortsqueeze": 2.0,  # "short squeeze"
        "breakout": 1.5,
        "rally": 1.5,
        "ripping": 1.5,
        "printing": 1.5,  # "calls are printing"
        "ath": 1.5,  # all-time high; "all time high(s)" is rewritten to "ath"
        "atl": -1.5,  # all-time low
        "chartup": 1.5,  # 📈
        "chartdown": -1.5,  # 📉
        "dump": -1.8,
        "dumping": -1.8,
        "dumped": -1.8,
        "drilling": -2.0,
        "tanking": -2.0,
        "tanked": -2.0,
        "crashing": -2.0,
        "plunge": -2.0,
        "plunging": -2.0,
        # "pump" alone reads as price going up; paired with "dump" it is the scam, rewritten first
        "pump": 1.0,
        "pumping": 1.0,
        "pumpanddump": -2.5,
        # outcomes and conviction
        "tendies": 2.0,
        "lambo": 1.5,
        "stonks": 1.0,
        "undervalued": 1.5,
        "overvalued": -1.5,
        "diamondhands": 2.0,  # "diamond hands", 💎🙌
        "paperhands": -1.5,  # "paper hands", 🧻🙌
        "bagholder": -2.0,
        "bagholders": -2.0,
        "bagholding": -2.0,
        "rugpull": -3.0,  # "rug pull(ed)", "rugpull"
        "guh": -2.0,  # the sound of a wiped-out account
        "bankruptcy": -2.5,
        "delisted": -2.5,
        "dilution": -1.5,
    }
)

# Multi-word slang and emoji pairs rewritten to one lexicon token before scoring. The first
# alternative that matches wins, so "short squeeze" is read before "short" could be.
_PHRASE_TOKENS: tuple[tuple[str, str], ...] = (
    (r"\bshort[\s-]+squeez(?:e|es|ed|ing)\b", "shortsqueeze"),
    (r"\bpump(?:ing|ed|s)?\s*(?:and|&|n|'n')\s*dump(?:ing|ed|s)?\b", "pumpanddump"),
    (r"\brug[\s-]*pull(?:s|ed|ing)?\b", "rugpull"),
    (r"\bdiamond[\s-]*hand(?:s|ed)?\b", "diamondhands"),
    (r"\bpaper[\s-]*hand(?:s|ed)?\b", "paperhands"),
    (r"\bbag[\s-]*holders?\b", "bagholder"),
    (r"\bbag[\s-]*holding\b", "bagholding"),
    (r"\ball[\s-]*time[\s-]*highs?\b", "ath"),
    (r"\ball[\s-]*time[\s-]*lows?\b", "atl"),
    (r"\bbuy(?:ing)?\s+the\s+dip\b", "buythedip"),
    (r"💎\s*🙌", "diamondhands"),
    (r"🧻\s*🙌", "paperhands"),
    (r"📈", "chartup"),
    (r"📉", "chartdown"),
)
# One regex for all phrases (one pass over each text); the matching group names the token.
_PHRASE_PATTERN: re.Pattern[str] = re.compile(
    "|".join(f"(?P<phrase{index}>{pattern})" for index, (pattern, _) in enumerate(_PHRASE_TOKENS)),
    re.IGNORECASE,
)


def _phrase_token(match: re.Match[str]) -> str:
    index = int(match.lastgroup.removeprefix("phrase"))  # type: ignore[union-attr]
    return f" {_PHRASE_TOKENS[index][1]} "


@lru_cache(maxsize=1)
def trading_analyzer() -> SentimentIntensityAnalyzer:
    """One VADER analyzer per process with ``TRADING_LEXICON`` merged into its own lexicon copy."""
    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(TRADING_LEXICON)  # the lexicon dict belongs to this instance
    return analyzer


def normalize_slang(texts: pd.Series) -> pd.Series:
    """``texts`` with multi-word slang and emoji pairs rewritten to single lexicon tokens."""
    return texts.fillna("").astype(str).str.replace(_PHRASE_PATTERN, _phrase_token, regex=True)


def score_sentiment(texts: pd.Series) -> pd.Series:
    """VADER compound score in [-1, 1] of each text, with the trading lexicon; missing text is 0.0.

    Returns a float64 Series named ``sentiment`` on the index of ``texts``. Each distinct text is
    scored once.
    """
    texts = pd.Series(texts)
    if texts.empty:
        return pd.Series(np.zeros(0), index=texts.index, dtype="float64", name="sentiment")
    codes, distinct = pd.factorize(texts.fillna("").astype(str), sort=False)
    normalized = normalize_slang(pd.Series(distinct, dtype="object"))
    analyzer = trading_analyzer()
    # VADER itself is per-text Python; this loop runs once per *distinct* text, not per mention.
    distinct_scores = np.fromiter(
        (analyzer.polarity_scores(text)["compound"] for text in normalized),
        dtype="float64",
        count=len(normalized),
    )
    return pd.Series(distinct_scores[codes], index=texts.index, dtype="float64", name="sentiment")
