"""Vocabulary of the sample Reddit and vectorized assembly of titles, selftexts and comment bodies.

Every phrase belongs to one tone (bearish, neutral, bullish) and was checked with VADER: bullish
pieces score positive, bearish ones negative, neutral ones near zero. Ticker look-alikes that are
not tickers (YOLO, DD, CEO, IT, ALL, FOR, ON, A, I, USA, IMO, ATH, EPS) are sprinkled through them,
as on the real Reddit. ``{T}`` marks where a ticker (``$NVDA`` or ``NVDA``) goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import add

import numpy as np

BEARISH, NEUTRAL, BULLISH = 0, 1, 2
TONES = ("bearish", "neutral", "bullish")

# fmt: off
DECOY_WORDS: tuple[str, ...] = (
    "YOLO", "DD", "CEO", "IT", "ALL", "FOR", "ON", "A", "I", "USA", "IMO", "ATH", "EPS",
)
# fmt: on
TRADING_SLANG: tuple[str, ...] = ("calls", "puts", "moon", "bagholder", "tendies", "rug pull")

TITLES: dict[int, tuple[str, ...]] = {
    BULLISH: (
        "{T} to the moon, loading up on calls, so excited",
        "Why I am bullish on {T}: great earnings and strong growth",
        "{T} breakout looks amazing, tendies incoming",
        "Love this {T} setup, best risk/reward I have seen",
        "{T} calls printing, what a beautiful rally",
        "Just went ALL IN on {T} and I feel great",
        "{T} crushed EPS, huge win for longs",
        "{T} is a gift at these prices, strong buy IMO",
        "YOLO: {T} calls, confident this wins",
        "DD: {T} is undervalued and the upside is excellent",
    ),
    BEARISH: (
        "{T} is a disaster, another rug pull",
        "Bought puts on {T}, this chart looks terrible",
        "{T} bagholder here, lost everything, so painful",
        "Worried about {T}: weak guidance and awful numbers",
        "{T} keeps dumping, I hate this stock",
        "{T} missed EPS badly, ugly crash ahead",
        "Sell {T} before it collapses, this smells like fraud",
        "{T} puts are the only play, the CEO is a failure",
        "DD: {T} is overvalued and the downside is scary",
        "Rug pull on {T} again, worst trade of my life",
    ),
    NEUTRAL: (
        "What do you think about {T}?",
        "{T} earnings date is next week",
        "Question about the {T} options chain",
        "{T} daily discussion thread",
        "Anyone holding {T} through the report?",
        "{T} volume today, any news?",
        "DD request: {T} fundamentals",
        "{T} vs the USA market index",
        "Is {T} a buy or a sell here?",
        "IMO {T} needs more time, thoughts ON the chart?",
    ),
}

# Prefixes of titles (tone-free) and subjects of posts about no ticker in particular.
TITLE_OPENERS: tuple[str, ...] = ("", "", "", "", "", "Update: ", "[Discussion] ", "Quick one: ")
GENERIC_SUBJECTS: tuple[str, ...] = ("the market", "tech stocks", "my portfolio", "this economy")

# Sentences of selftexts and comments, split by whether they name the ticker.
POST_SENTENCES: dict[int, dict[bool, tuple[str, ...]]] = {
    BULLISH: {
        True: (
            "I think {T} hits a new ATH soon, great momentum.",
            "{T} to the moon, best play FOR the year.",
            "Buying more {T} ON every dip, happy with this position.",
            "IMO {T} is undervalued and the upside is huge.",
        ),
        False: (
            "The CEO is excellent and the product is amazing.",
            "Strong revenue growth, great margins, love the guidance.",
            "Holding my calls with diamond hands, tendies incoming.",
            "EPS beat again, this company is a winner.",
        ),
    },
    BEARISH: {
        True: (
            "{T} looks weak, the chart is ugly and falling.",
            "Loaded up on puts, expecting {T} to crash.",
            "IT is over for {T}, sell before it gets worse.",
            "{T} is a bagholder trap, terrible risk.",
        ),
        False: (
            "Bagholder since the top, this is painful.",
            "Terrible EPS, bad guidance, I am scared.",
            "The CEO keeps failing, total disaster.",
            "Classic rug pull, I lost ALL my money, awful.",
        ),
    },
    NEUTRAL: {
        True: (
            "Where does {T} go from here?",
            "I have A small {T} position and an index fund.",
            "Anyone in the USA tracking the options flow ON {T}?",
            "Posting the {T} chart FOR reference.",
        ),
        False: (
            "Earnings are on Thursday after the close.",
            "What is the EPS estimate FOR this quarter?",
            "Just listing my positions below.",
            "The CEO speaks at a conference next month.",
        ),
    },
}
POST_FILLERS: tuple[str, ...] = (
    "",
    "",
    " Positions: shares only, no options.",
    " TL;DR at the bottom.",
    " I am in the USA, trading FOR two years.",
    " Posting IT here FOR the DD crowd.",
)
SECOND_TICKER_BEFORE, SECOND_TICKER_AFTER = " Also watching ", "."  # around a second ticker

COMMENT_SENTENCES: dict[int, dict[bool, tuple[str, ...]]] = {
    BULLISH: {
        True: (
            "{T} calls are printing, nice!",
            "This is the way, {T} to the moon, awesome.",
            "Bought more {T} today, love it.",
            "{T} is the best stock ON my watchlist.",
        ),
        False: (
            "Great DD, I am in.",
            "Strong buy, tendies FOR everyone.",
            "Diamond hands, this wins big.",
            "Amazing run, congrats on the gains!",
        ),
    },
    BEARISH: {
        True: (
            "Puts. {T} is overvalued garbage, terrible company.",
            "{T} looks awful, I sold everything.",
            "Enjoy bagholding {T}, this is a disaster.",
            "{T} is going to crash hard, so bad.",
        ),
        False: (
            "Rug pull, get out before you lose more.",
            "Terrible idea, you will lose money.",
            "Worst CEO ever, so bad.",
            "Sorry FOR your loss, brutal.",
        ),
    },
    NEUTRAL: {
        True: (
            "Any update ON {T}?",
            "How big is your {T} position?",
            "What is your entry on {T}?",
            "{T} reports next week I think.",
        ),
        False: (
            "Source?",
            "Following.",
            "I think IT depends ON the earnings.",
            "Remind me in A week.",
        ),
    },
}
# Appended to the selftext of a post edited after its first fetch (tone-free on purpose).
EDIT_NOTES: tuple[str, ...] = (
    "\n\nEDIT: formatting",
    "\n\nEDIT: fixed a typo in the title",
    "\n\nEDIT: added my position size",
    "\n\nEDIT: earnings date is Thursday",
)

SLOT = "{T}"


@dataclass(frozen=True, eq=False)
class PhraseTable:
    """Templates in numbered groups (e.g. one per tone), ready for vectorized picking and filling."""

    before: np.ndarray  # text before the slot, or the whole template when it has no slot
    after: np.ndarray  # text after the slot
    has_slot: np.ndarray
    offsets: np.ndarray  # index of each group's first template
    sizes: np.ndarray  # templates per group

    @classmethod
    def from_groups(cls, groups: list[tuple[str, ...]]) -> PhraseTable:
        templates = [template for group in groups for template in group]
        parts = [template.split(SLOT, 1) for template in templates]
        return cls(
            before=np.array([p[0] for p in parts], dtype=object),
            after=np.array([p[1] if len(p) == 2 else "" for p in parts], dtype=object),
            has_slot=np.array([len(p) == 2 for p in parts]),
            offsets=np.cumsum([0] + [len(g) for g in groups[:-1]]).astype(np.int64),
            sizes=np.array([len(g) for g in groups], dtype=np.int64),
        )

    def pick(self, group: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """One template index per row: uniform within the row's group."""
        sizes = self.sizes[group]
        return self.offsets[group] + np.minimum((uniforms * sizes).astype(np.int64), sizes - 1)

    def render(self, index: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """The templates ``index`` with ``subject`` in their slot (templates without one ignore it)."""
        filling = np.where(self.has_slot[index], subject, "")
        return concat(self.before[index], filling, self.after[index])


def concat(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise string concatenation of object arrays (and plain strings)."""
    arrays = [np.asarray(part, dtype=object) for part in parts]
    return reduce(add, arrays)


def ticker_references(symbols: np.ndarray, cashtag: np.ndarray) -> np.ndarray:
    """``$NVDA`` where ``cashtag`` else ``NVDA``."""
    symbols = np.asarray(symbols, dtype=object)
    return np.where(cashtag, concat("$", symbols), symbols)


def _tone_groups(pool: dict[int, tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [pool[tone] for tone in (BEARISH, NEUTRAL, BULLISH)]


def _tone_mention_groups(pool: dict[int, dict[bool, tuple[str, ...]]]) -> list[tuple[str, ...]]:
    # Group index = 2 * tone + names_ticker.
    return [pool[tone][named] for tone in (BEARISH, NEUTRAL, BULLISH) for named in (False, True)]


TITLE_TABLE = PhraseTable.from_groups(_tone_groups(TITLES))
POST_SENTENCE_TABLE = PhraseTable.from_groups(_tone_mention_groups(POST_SENTENCES))
COMMENT_TABLE = PhraseTable.from_groups(_tone_mention_groups(COMMENT_SENTENCES))
OPENERS = np.array(TITLE_OPENERS, dtype=object)
FILLERS = np.array(POST_FILLERS, dtype=object)
SUBJECTS = np.array(GENERIC_SUBJECTS, dtype=object)
EDITS = np.array(EDIT_NOTES, dtype=object)
