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

from tft_pipeline.sample_market.catalysts import CATALYST_KINDS

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


# --------------------------------------------------------------------------------------------
# catalyst chatter: news posts in the words of tft_pipeline.features.catalysts' lexicon
# --------------------------------------------------------------------------------------------

# Titles and named sentences per kind of news (CATALYST_KINDS): each says what happened in the
# phrases traders use for it, in the tone of its direction (checked with the trading VADER).
CATALYST_TITLES: dict[str, tuple[str, ...]] = {
    "fda_approval": (
        "{T} gets FDA approval for its lead drug, huge win for longs",
        "FDA approval for {T}! Great news, calls are printing",
        "{T} wins approval from the FDA, this is amazing",
        "Approved by the FDA: {T} finally delivers, so happy holding",
    ),
    "buyback": (
        "{T} announces a $5B buyback, love this management",
        "{T} approves a huge share repurchase, bullish",
        "Massive buyback at {T}, great for shareholders",
        "{T} board authorizes a new repurchase program, excellent news",
    ),
    "guidance_raise": (
        "{T} beats and raises, strong quarter",
        "{T} raises full-year guidance, great momentum",
        "{T} raised its outlook, this is a winner",
        "Guidance raise at {T}, best quarter in years",
    ),
    "contract_win": (
        "{T} wins a $2B contract with the Pentagon, huge",
        "{T} awarded the contract for the new network, bullish",
        "{T} won a $500M contract, great win for longs",
        "Big contract win for {T}, love it",
    ),
    "takeover_bid": (
        "Takeover bid for {T} at a 40% premium, congrats longs",
        "{T} gets a buyout offer, great day for holders",
        "{T} to be acquired, shareholders win big",
        "Acquisition offer for {T}, excellent premium",
    ),
    "fda_rejection": (
        "FDA rejects the {T} drug, terrible news",
        "{T} gets a complete response letter from the FDA, ugly",
        "{T} fails its phase 3 trial, disaster for longs",
        "FDA rejection for {T}, bagholders crushed",
    ),
    "guidance_cut": (
        "{T} cuts guidance again, awful quarter",
        "{T} slashes its guidance, this is ugly",
        "Guidance cut at {T}, terrible outlook",
        "{T} lowered guidance for the year, so bad",
    ),
    "secondary_offering": (
        "{T} announces a secondary offering, awful dilution",
        "{T} share offering is terrible for holders, ugly",
        "Dilution again at {T}, awful for shareholders",
        "{T} prices a secondary offering below market, ugly",
    ),
    "sec_probe": (
        "SEC probe into {T} accounting, this looks bad",
        "{T} under SEC investigation, scary",
        "{T} gets an SEC subpoena, terrible news",
        "DOJ probe hits {T}, ugly day for longs",
    ),
    "lost_contract": (
        "{T} lost the contract to a rival, awful",
        "{T} loses a $1B contract, terrible news",
        "Contract cancelled for {T}, this hurts",
        "{T} loses the contract renewal, ugly",
    ),
}
CATALYST_SENTENCES: dict[str, tuple[str, ...]] = {
    "fda_approval": (
        "FDA approval came in for {T}, a big win for the pipeline.",
        "{T} got the FDA approval everyone hoped for, great news.",
        "Huge that {T} finally got approved by the FDA.",
    ),
    "buyback": (
        "{T} will buy back shares with all that cash, bullish.",
        "A buyback this size shows {T} management is confident.",
        "{T} keeps rewarding holders with a repurchase program, excellent.",
    ),
    "guidance_raise": (
        "{T} raised guidance for the full year, strong demand.",
        "Beat and raise from {T}, best quarter yet.",
        "{T} raises guidance and the margins look great.",
    ),
    "contract_win": (
        "{T} won the contract over two rivals, great execution.",
        "This contract win gives {T} years of revenue, bullish.",
        "{T} was awarded a contract worth billions, awesome.",
    ),
    "takeover_bid": (
        "The takeover bid values {T} far above the market, nice.",
        "{T} is to be acquired at a big premium, congrats.",
        "A buyout offer for {T} this rich is a great win.",
    ),
    "fda_rejection": (
        "The FDA rejected the {T} application, painful.",
        "{T} got a complete response letter, awful for the pipeline.",
        "The FDA rejection is brutal for {T}.",
    ),
    "guidance_cut": (
        "{T} cut guidance for the full year, weak demand.",
        "Another guidance cut from {T}, terrible.",
        "{T} withdrew its guidance, that is a bad sign.",
    ),
    "secondary_offering": (
        "{T} is hurting holders with a secondary offering, awful.",
        "The dilution from this {T} share offering is brutal.",
        "{T} needs cash, so a secondary offering it is, ugly.",
    ),
    "sec_probe": (
        "The SEC investigation into {T} could get worse, scary.",
        "{T} faces an SEC probe over its books, terrible.",
        "An accounting probe at {T} is a bad sign.",
    ),
    "lost_contract": (
        "{T} lost the contract it relied on, painful.",
        "{T} loses the contract that paid the bills, awful.",
        "The contract cancelled by the client was the biggest {T} had, ugly.",
    ),
}
# Reactions without the ticker or catalyst words, by direction (second sentence of a post).
CATALYST_REACTIONS: dict[int, tuple[str, ...]] = {
    BULLISH: (
        "Longs are eating well today, great day.",
        "Great news for shareholders.",
        "This is why I hold, love it.",
        "Tendies incoming FOR everyone who held.",
    ),
    BEARISH: (
        "Bagholders are hurting today.",
        "Terrible news for shareholders.",
        "Glad I bought puts, this is ugly.",
        "Get out before it gets worse, awful.",
    ),
}
CATALYST_COMMENTS: dict[str, tuple[str, ...]] = {
    "fda_approval": (
        "{T} FDA approval was the catalyst, nice call.",
        "Congrats {T} longs, the FDA approval is huge.",
    ),
    "buyback": (
        "{T} buyback will support the stock, love it.",
        "That {T} share repurchase is great news.",
    ),
    "guidance_raise": ("{T} raised guidance, strong buy.", "Beats and raises, {T} is a winner."),
    "contract_win": ("{T} won the contract, great news.", "Contract win is big for {T}, awesome."),
    "takeover_bid": ("{T} takeover bid, congrats holders!", "Buyout offer for {T}, nice premium."),
    "fda_rejection": (
        "{T} FDA rejection, brutal.",
        "Complete response letter, {T} is done, awful.",
    ),
    "guidance_cut": ("{T} cut guidance, terrible.", "Guidance cut again, {T} is a mess."),
    "secondary_offering": (
        "{T} secondary offering, dilution sucks.",
        "More dilution from {T}, awful.",
    ),
    "sec_probe": ("SEC probe at {T}, this is bad.", "SEC investigation at {T}, scary stuff."),
    "lost_contract": ("{T} lost the contract, painful.", "Contract cancelled, {T} is in trouble."),
}
CATALYST_COMMENT_REACTIONS: dict[int, tuple[str, ...]] = {
    BULLISH: (
        "Huge news, congrats longs!",
        "Great news, tendies FOR everyone.",
        "Love this, holding strong.",
        "Amazing, best news all year.",
    ),
    BEARISH: (
        "Ouch, brutal news.",
        "Terrible, I sold at a loss.",
        "Awful FOR holders, sorry.",
        "This is bad, get out.",
    ),
}
CATALYST_TITLE_OPENERS: tuple[str, ...] = ("", "", "BREAKING: ", "Just in: ", "[News] ")
CATALYST_FILLERS: tuple[str, ...] = (
    "",
    "",
    " Source: the press release.",
    " Link in the comments.",
    " Not financial advice.",
)


def _kind_groups(pool: dict[str, tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [pool[kind] for kind in CATALYST_KINDS]


def catalyst_reaction_group(direction: np.ndarray) -> np.ndarray:
    """Group of the tickerless reactions in the catalyst sentence and comment tables."""
    return len(CATALYST_KINDS) + (np.asarray(direction) > 0).astype(np.int64)


# Groups: one per kind (naming the ticker), then the bearish and the bullish reactions.
CATALYST_TITLE_TABLE = PhraseTable.from_groups(_kind_groups(CATALYST_TITLES))
CATALYST_SENTENCE_TABLE = PhraseTable.from_groups(
    _kind_groups(CATALYST_SENTENCES) + [CATALYST_REACTIONS[BEARISH], CATALYST_REACTIONS[BULLISH]]
)
CATALYST_COMMENT_TABLE = PhraseTable.from_groups(
    _kind_groups(CATALYST_COMMENTS)
    + [CATALYST_COMMENT_REACTIONS[BEARISH], CATALYST_COMMENT_REACTIONS[BULLISH]]
)


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The phrase tables a kind of chatter is written from."""

    titles: PhraseTable
    post_sentences: PhraseTable
    comments: PhraseTable
    openers: np.ndarray
    fillers: np.ndarray
    subjects: np.ndarray


ORDINARY_VOCABULARY = Vocabulary(
    TITLE_TABLE, POST_SENTENCE_TABLE, COMMENT_TABLE, OPENERS, FILLERS, SUBJECTS
)
CATALYST_VOCABULARY = Vocabulary(
    CATALYST_TITLE_TABLE,
    CATALYST_SENTENCE_TABLE,
    CATALYST_COMMENT_TABLE,
    np.array(CATALYST_TITLE_OPENERS, dtype=object),
    np.array(CATALYST_FILLERS, dtype=object),
    SUBJECTS,
)
