"""Catalyst vocabulary: phrases traders use for news that moves a single stock for days.

Pure, no Dagster. A post or comment naming a ticker next to such a phrase ("FDA approval",
"announced a buyback", "raised guidance", "won the contract"; "guidance cut", "secondary offering",
"SEC probe") is catalyst chatter about that ticker. ``catalyst_direction`` reads each text once:
+1 for bullish catalyst vocabulary, -1 for bearish, 0 for neither (or both, which says nothing).

The lists are ordinary financial-news phrasing, not the sample market's templates: the sample market
writes its catalyst posts in these words because that is how such posts read, and the same lexicon
works on live Reddit text.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# fmt: off
BULLISH_CATALYSTS: tuple[str, ...] = (
    r"fda approv\w*", r"approved by the fda", r"gets? approval", r"wins? approval",
    r"buy ?back", r"share repurchase", r"repurchase program",
    r"raises? (?:its |full[- ]year |fy )?guidance", r"raised (?:its |full[- ]year |fy )?guidance",
    r"guidance raise", r"beats? and raises?", r"raised (?:the |its )?outlook",
    r"wins? (?:a |the )?(?:\$?\d+\w* )?contract", r"won (?:a |the )?(?:\$?\d+\w* )?contract",
    r"contract win", r"awarded (?:a |the )?contract",
    r"takeover bid", r"buyout offer", r"to be acquired", r"acquisition offer",
    r"dividend hike", r"raises? (?:the |its )?dividend", r"upgraded? to (?:buy|outperform)",
)
BEARISH_CATALYSTS: tuple[str, ...] = (
    r"fda reject\w*", r"complete response letter", r"fails? (?:the |its )?(?:phase \w+ )?trial",
    r"cuts? (?:its |full[- ]year |fy )?guidance", r"guidance cut", r"lowered (?:its )?guidance",
    r"slashe[sd] (?:its )?guidance", r"withdr[ae]w\w* (?:its )?guidance",
    r"lost (?:a |the )?(?:\$?\d+\w* )?contract", r"loses? (?:a |the )?(?:\$?\d+\w* )?contract",
    r"contract cancell?ed", r"secondary offering", r"share offering", r"dilution",
    r"sec (?:probe|investigation|subpoena)", r"doj (?:probe|investigation)",
    r"accounting (?:probe|restatement|irregularities)", r"product recall", r"recalls? ",
    r"dividend cut", r"suspends? (?:the |its )?dividend", r"downgraded? to (?:sell|underperform)",
)
# fmt: on

_BULLISH = re.compile(r"\b(?:" + "|".join(BULLISH_CATALYSTS) + r")", re.IGNORECASE)
_BEARISH = re.compile(r"\b(?:" + "|".join(BEARISH_CATALYSTS) + r")", re.IGNORECASE)


def catalyst_direction(texts: pd.Series) -> pd.Series:
    """+1 / -1 / 0 per text (same index): bullish, bearish or no (or mixed) catalyst vocabulary."""
    clean = texts.fillna("").astype(str)
    bullish = clean.str.contains(_BULLISH).to_numpy()
    bearish = clean.str.contains(_BEARISH).to_numpy()
    return pd.Series(
        bullish.astype(np.int8) - bearish.astype(np.int8), index=texts.index, dtype="int8"
    )
