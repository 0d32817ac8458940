"""The signal gatekeeper: risk rules, position sizing and rejection reasons (pure, no Dagster).

Rules run in the contract's order and every failing rule is reported, as a ``RejectionCode`` and a
readable message. Bad input never raises: it becomes ``invalid_input``. A rule is evaluated only when
the fields it reads are valid, so one bad field does not hide the other findings:

- ``low_confidence`` needs a valid confidence;
- ``invalid_price_levels`` and ``low_reward_risk`` need valid prices and direction (reward/risk is
  only judged when the levels are in order, as it means nothing otherwise);
- sizing, and so ``position_too_small``, needs a fully valid signal with levels in order; any other
  signal gets 0 shares;
- ``duplicate_position`` needs a valid ticker; ``max_positions`` and ``max_drawdown`` read only the
  portfolio and are always evaluated.

A rejected decision still carries the size the signal would have had (0 when it cannot be sized):
only accepted decisions open positions.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Computed ratios (reward/risk, drawdown) carry float noise: 1.1 -> 1.0 -> 1.3 gives 1.9999999999999978.
RELATIVE_TOLERANCE = 1e-9
# Share counts are floored after this nudge, so a quotient that is whole in decimals stays whole
# in binary floats: 17,715.28 / 19.64 is 902, not the 901.9999999999999 the division gives.
SHARE_TOLERANCE = 1e-12
# Sizes stay exact integers in float64 and int64; no real position comes near this.
MAX_SHARES = float(2**53)
ENV_PREFIX = "TFT_RISK_"
DIRECTIONS = ("long", "short")
SIGNAL_COLUMNS = ("ticker", "confidence", "entry", "stop_loss", "take_profit")
REASON_SEPARATOR = ";"
MESSAGE_SEPARATOR = "; "


class RejectionCode(StrEnum):
    """Why a signal was rejected; members are listed in the order rules are reported."""

    INVALID_INPUT = "invalid_input"
    LOW_CONFIDENCE = "low_confidence"
    INVALID_PRICE_LEVELS = "invalid_price_levels"
    LOW_REWARD_RISK = "low_reward_risk"
    POSITION_TOO_SMALL = "position_too_small"
    DUPLICATE_POSITION = "duplicate_position"
    MAX_POSITIONS = "max_positions"
    MAX_DRAWDOWN = "max_drawdown"


CODES: tuple[RejectionCode, ...] = tuple(RejectionCode)


class RiskLimits(BaseModel):
    """The limits a signal must satisfy; ``TFT_RISK_<FIELD_UPPER>`` overrides each field."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    min_confidence: float = Field(0.70, gt=0, le=1)
    min_reward_risk: float = Field(2.0, gt=0)
    risk_per_trade: float = Field(0.02, gt=0, le=1)
    max_position_fraction: float = Field(0.20, gt=0, le=1)
    max_positions: int = Field(5, ge=1)
    max_drawdown: float = Field(0.15, gt=0, le=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RiskLimits:
        """Defaults overridden by ``TFT_RISK_*`` variables; an empty value means the default.

        An unknown ``TFT_RISK_*`` name or a bad value raises ``ValueError`` naming the variable, so a
        typo cannot silently leave a limit at its default.
        """
        environ = os.environ if environ is None else environ
        known = {f"{ENV_PREFIX}{name.upper()}": name for name in cls.model_fields}
        overrides: dict[str, str] = {}
        for variable, value in environ.items():
            if not variable.startswith(ENV_PREFIX):
                continue
            if variable not in known:
                raise ValueError(
                    f"unknown risk setting {variable}; known: {', '.join(sorted(known))}"
                )
            if value.strip():
                overrides[known[variable]] = value.strip()
        try:
            return cls(**overrides)
        except ValidationError as error:
            problems = "; ".join(
                f"{ENV_PREFIX}{str(issue['loc'][0]).upper()}={overrides.get(str(issue['loc'][0]))!r}: "
                f"{issue['msg']}"
                for issue in error.errors()
            )
            raise ValueError(f"invalid risk settings: {problems}") from None


@dataclass(frozen=True, slots=True)
class Signal:
    """A proposed trade. Fields are not checked here: ``RiskManager`` judges them and never raises."""

    ticker: Any
    confidence: Any
    entry: Any
    stop_loss: Any
    take_profit: Any
    direction: Any = "long"


@dataclass(frozen=True)
class PortfolioState:
    """The portfolio a signal is judged against; tickers are compared trimmed and upper-cased."""

    value: float
    peak_value: float
    open_tickers: tuple[str, ...] = ()
    drawdown: float = field(init=False)
    _held: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        value, peak_value = _to_float(self.value), _to_float(self.peak_value)
        if not math.isfinite(value):
            raise ValueError(f"portfolio value must be a finite number, got {self.value!r}")
        if not (math.isfinite(peak_value) and peak_value > 0):
            raise ValueError(
                f"portfolio peak_value must be finite and > 0, got {self.peak_value!r}"
            )
        if isinstance(self.open_tickers, str):
            raise TypeError("open_tickers must be a sequence of tickers, not one string")
        tickers = tuple(_normalize_text(ticker, upper=True) for ticker in self.open_tickers)
        if any(not ticker for ticker in tickers):
            raise ValueError(f"open_tickers holds a missing or empty ticker: {self.open_tickers!r}")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "peak_value", peak_value)
        object.__setattr__(self, "open_tickers", tickers)
        # A value above a stale peak is no drawdown.
        object.__setattr__(self, "drawdown", max(0.0, (peak_value - value) / peak_value))
        object.__setattr__(self, "_held", frozenset(tickers))

    @property
    def open_positions(self) -> int:
        return len(self.open_tickers)

    def holds(self, ticker: str) -> bool:
        """Whether ``ticker`` (normalized) is already held."""
        return ticker in self._held

    def with_opened(self, ticker: str) -> PortfolioState:
        """The same portfolio with one more open position in ``ticker``."""
        return PortfolioState(self.value, self.peak_value, (*self.open_tickers, ticker))


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The verdict on one signal: reasons are codes in rule order, messages say the same in words."""

    accepted: bool
    reasons: tuple[RejectionCode, ...]
    messages: tuple[str, ...]
    shares: int
    position_value: float
    risk_dollars: float
    reward_risk: float  # NaN when the prices cannot give one


@dataclass(frozen=True)
class RiskStats:
    """Counters of a ``RiskManager``: every evaluated signal is accepted or rejected."""

    evaluated: int
    accepted: int
    rejections: Mapping[str, int]  # by code, every code present; a signal may count under several

    @property
    def rejected(self) -> int:
        return self.evaluated - self.accepted

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.evaluated if self.evaluated else 0.0


class RiskManager:
    """Evaluates signals against ``limits`` one at a time or a session's batch at once."""

    def __init__(self, limits: RiskLimits | None = None) -> None:
        self.limits = RiskLimits() if limits is None else limits
        self._lock = threading.Lock()
        self._evaluated = 0
        self._accepted = 0
        self._rejections = dict.fromkeys(CODES, 0)
        lim = self.limits
        self._min_confidence_text = _format_limit(lim.min_confidence)
        self._min_reward_risk_text = _format_limit(lim.min_reward_risk)
        self._max_drawdown_text = _format_limit(lim.max_drawdown * 100)
        self._reward_risk_floor = lim.min_reward_risk * (1 - RELATIVE_TOLERANCE)
        self._drawdown_ceiling = lim.max_drawdown * (1 - RELATIVE_TOLERANCE)

    @property
    def stats(self) -> RiskStats:
        with self._lock:
            return RiskStats(
                evaluated=self._evaluated,
                accepted=self._accepted,
                rejections=MappingProxyType({str(code): n for code, n in self._rejections.items()}),
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._evaluated = self._accepted = 0
            self._rejections = dict.fromkeys(CODES, 0)

    # -- one signal --------------------------------------------------------------------------

    def evaluate(self, signal: Signal, portfolio: PortfolioState) -> RiskDecision:
        """The decision on ``signal`` given ``portfolio``; never raises on bad signal fields."""
        decision = self._decide(signal, portfolio)
        with self._lock:
            self._evaluated += 1
            self._accepted += decision.accepted
            for code in decision.reasons:
                self._rejections[code] += 1
        return decision

    def _decide(self, signal: Signal, portfolio: PortfolioState) -> RiskDecision:
        lim = self.limits
        ticker = _normalize_text(signal.ticker, upper=True)
        direction = _normalize_text(signal.direction, upper=False)
        confidence = _to_float(signal.confidence)
        entry = _to_float(signal.entry)
        stop = _to_float(signal.stop_loss)
        target = _to_float(signal.take_profit)

        ticker_ok = bool(ticker)
        direction_ok = direction in DIRECTIONS
        confidence_ok = _is_fraction(confidence)
        prices_ok = _is_price(entry) and _is_price(stop) and _is_price(target) and direction_ok
        valid = ticker_ok and confidence_ok and prices_ok
        failed: list[tuple[RejectionCode, str]] = []
        if not valid:
            message = _invalid_input_message(
                ticker_ok, direction_ok, confidence, entry, stop, target
            )
            failed.append((RejectionCode.INVALID_INPUT, message))
        if confidence_ok and confidence < lim.min_confidence:
            failed.append((RejectionCode.LOW_CONFIDENCE, self._low_confidence_message(confidence)))

        levels_ok = False
        reward_risk = math.nan
        risk_per_share = abs(entry - stop)
        if prices_ok:
            is_long = direction == "long"
            levels_ok = stop < entry < target if is_long else target < entry < stop
            if not levels_ok:
                message = _price_levels_message(is_long, entry, stop, target)
                failed.append((RejectionCode.INVALID_PRICE_LEVELS, message))
            if risk_per_share > 0.0:
                reward_risk = abs(target - entry) / risk_per_share
            if levels_ok and reward_risk < self._reward_risk_floor:
                message = self._low_reward_risk_message(reward_risk)
                failed.append((RejectionCode.LOW_REWARD_RISK, message))

        shares = 0.0
        if valid and levels_ok:
            budget = lim.risk_per_trade * portfolio.value
            cap = lim.max_position_fraction * portfolio.value
            shares = _whole_shares(budget / risk_per_share)
            if shares * entry > cap:
                shares = _whole_shares(cap / entry)
            shares = max(shares, 0.0)
            if shares == 0.0:
                message = _too_small_message(budget, risk_per_share, cap, entry)
                failed.append((RejectionCode.POSITION_TOO_SMALL, message))

        if ticker_ok and portfolio.holds(ticker):
            failed.append((RejectionCode.DUPLICATE_POSITION, _duplicate_message(ticker)))
        if portfolio.open_positions >= lim.max_positions:
            message = self._max_positions_message(portfolio.open_positions)
            failed.append((RejectionCode.MAX_POSITIONS, message))
        if portfolio.drawdown >= self._drawdown_ceiling:
            failed.append((RejectionCode.MAX_DRAWDOWN, self._drawdown_message(portfolio.drawdown)))

        return RiskDecision(
            accepted=not failed,
            reasons=tuple(code for code, _ in failed),
            messages=tuple(message for _, message in failed),
            shares=int(shares),
            position_value=shares * entry if shares else 0.0,
            risk_dollars=shares * risk_per_share if shares else 0.0,
            reward_risk=reward_risk,
        )

    # -- messages of the rules that read the limits (shared by evaluate and evaluate_batch) -----

    def _low_confidence_message(self, confidence: float) -> str:
        shown = _format_versus(confidence, self.limits.min_confidence)
        return f"confidence {shown} is below the minimum {self._min_confidence_text}"

    def _low_reward_risk_message(self, reward_risk: float) -> str:
        shown = _format_versus(reward_risk, self.limits.min_reward_risk)
        return f"reward/risk {shown} is below the minimum {self._min_reward_risk_text}"

    def _max_positions_message(self, open_positions: int) -> str:
        return (
            f"{open_positions} positions are already open, "
            f"the maximum is {self.limits.max_positions}"
        )

    def _drawdown_message(self, drawdown: float) -> str:
        return (
            f"drawdown {_format_number(drawdown * 100)}% has reached "
            f"the maximum {self._max_drawdown_text}%"
        )

    # -- a session's batch --------------------------------------------------------------------

    def evaluate_batch(self, signals: pd.DataFrame, portfolio: PortfolioState) -> pd.DataFrame:
        """One decision row per signal, exactly as if ``evaluate`` ran most confident first.

        Each acceptance takes a position slot and its ticker, so a later signal on that ticker is a
        ``duplicate_position`` and, once the slots are gone, the rest get ``max_positions``.
        Confidence ties keep input order; confidences outside [0, 1] go last. Input columns (extra
        ones too), index and row order are kept; ``direction`` is added as ``"long"`` when absent.
        Added: ``accepted``, ``reasons`` (codes joined by ``";"``, empty when accepted),
        ``messages`` (joined by ``"; "``), ``shares``, ``position_value``, ``risk_dollars``,
        ``reward_risk`` and ``rank`` (1 = judged first). All rows share one portfolio: pass one
        session at a time.
        """
        missing = [name for name in SIGNAL_COLUMNS if name not in signals.columns]
        if missing:
            raise KeyError(f"signals frame lacks column(s) {', '.join(missing)}")
        lim = self.limits
        n = len(signals)
        out = signals.copy()
        if "direction" not in out.columns:
            out["direction"] = "long"

        confidence_in = _float_column(out["confidence"])
        order = np.argsort(
            -np.where(_is_fraction_array(confidence_in), confidence_in, -np.inf), kind="stable"
        )
        confidence = confidence_in[order]
        entry = _float_column(out["entry"])[order]
        stop = _float_column(out["stop_loss"])[order]
        target = _float_column(out["take_profit"])[order]
        ticker_code, tickers = _text_codes(out["ticker"], upper=True)
        ticker_code = ticker_code[order]
        direction_code, directions = _text_codes(out["direction"], upper=False)
        direction_code = direction_code[order]

        ticker_ok = ticker_code >= 0
        is_long = _lookup(direction_code, [d == "long" for d in directions])
        direction_ok = is_long | _lookup(direction_code, [d == "short" for d in directions])
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            confidence_ok = _is_fraction_array(confidence)
            prices_ok = (
                _is_price_array(entry)
                & _is_price_array(stop)
                & _is_price_array(target)
                & direction_ok
            )
            valid = ticker_ok & confidence_ok & prices_ok
            low_confidence = confidence_ok & (confidence < lim.min_confidence)

            ordered = np.where(
                is_long, (stop < entry) & (entry < target), (target < entry) & (entry < stop)
            )
            levels_ok = prices_ok & ordered
            bad_levels = prices_ok & ~ordered
            risk_per_share = np.abs(entry - stop)
            reward_risk = np.where(
                prices_ok & (risk_per_share > 0.0), np.abs(target - entry) / risk_per_share, np.nan
            )
            low_reward_risk = levels_ok & (reward_risk < self._reward_risk_floor)

            sizable = valid & levels_ok
            budget = lim.risk_per_trade * portfolio.value
            cap = lim.max_position_fraction * portfolio.value
            shares = _whole_shares_array(budget / risk_per_share)
            shares = np.where(shares * entry > cap, _whole_shares_array(cap / entry), shares)
            shares = np.where(sizable, np.maximum(shares, 0.0), 0.0)
            too_small = sizable & (shares == 0.0)

        # Slots and tickers go to the first candidates in order; no per-signal loop needed: the
        # first candidate of each ticker takes a slot while slots are free, later ones are
        # duplicates, and once the slots run out they stay out.
        held = ticker_ok & _lookup(ticker_code, [portfolio.holds(t) for t in tickers])
        drawdown_hit = portfolio.drawdown >= self._drawdown_ceiling
        candidate = valid & ~(low_confidence | bad_levels | low_reward_risk | too_small | held)
        candidate &= not drawdown_hit
        candidate_rows = np.flatnonzero(candidate)
        first_rows = candidate_rows[np.unique(ticker_code[candidate_rows], return_index=True)[1]]
        first_of_ticker = np.zeros(n, dtype=bool)
        first_of_ticker[first_rows] = True
        free_slots = lim.max_positions - portfolio.open_positions
        accepted = first_of_ticker & (np.cumsum(first_of_ticker) <= free_slots)
        position = np.arange(n)
        taken_at = np.full(len(tickers) + 1, n)  # the extra slot serves code -1 (no ticker)
        taken_at[ticker_code[accepted]] = position[accepted]
        duplicate = held | (taken_at[ticker_code] < position)
        open_before = portfolio.open_positions + np.cumsum(accepted) - accepted
        slots_full = open_before >= lim.max_positions
        max_drawdown = np.full(n, drawdown_hit)

        invalid = ~valid
        rule_masks = (
            invalid, low_confidence, bad_levels, low_reward_risk,
            too_small, duplicate, slots_full, max_drawdown,
        )  # fmt: skip
        # Each distinct message is written once, by the same function evaluate uses.
        messages = [
            _distinct_messages(
                invalid,
                [ticker_ok, direction_ok, *(_bits(v) for v in (confidence, entry, stop, target))],
                [ticker_ok, direction_ok, confidence, entry, stop, target],
                _invalid_input_message,
            ),
            _distinct_messages(
                low_confidence,
                _versus_keys(confidence, lim.min_confidence),
                [confidence],
                self._low_confidence_message,
            ),
            _distinct_messages(
                bad_levels,
                [is_long, _bits(entry), _bits(stop), _bits(target)],
                [is_long, entry, stop, target],
                _price_levels_message,
            ),
            _distinct_messages(
                low_reward_risk,
                _versus_keys(reward_risk, lim.min_reward_risk),
                [reward_risk],
                self._low_reward_risk_message,
            ),
            _distinct_messages(
                too_small,
                [*_number_keys(risk_per_share), *_number_keys(entry)],
                [risk_per_share, entry],
                lambda per_share, price: _too_small_message(budget, per_share, cap, price),
            ),
            _distinct_messages(
                duplicate,
                [ticker_code],
                [ticker_code],
                lambda code: _duplicate_message(tickers[code]),
            ),
            _distinct_messages(
                slots_full, [open_before], [open_before], self._max_positions_message
            ),
            _distinct_messages(
                max_drawdown, [], [], lambda: self._drawdown_message(portfolio.drawdown)
            ),
        ]
        bits = np.zeros(n, dtype=np.int64)
        for bit, mask in enumerate(rule_masks):
            bits |= mask.astype(np.int64) << bit

        with np.errstate(invalid="ignore"):  # 0 shares × a NaN price is dropped anyway
            position_value = np.where(shares > 0, shares * entry, 0.0)
            risk_dollars = np.where(shares > 0, shares * risk_per_share, 0.0)
        decided = {
            "accepted": accepted,
            "reasons": _REASON_TEXT[bits],
            "messages": _join_messages(n, messages),
            "shares": shares.astype(np.int64),
            "position_value": position_value,
            "risk_dollars": risk_dollars,
            "reward_risk": reward_risk,
            "rank": np.arange(1, n + 1, dtype=np.int64),
        }
        for name, sorted_values in decided.items():
            in_input_order = np.empty_like(sorted_values)
            in_input_order[order] = sorted_values
            out[name] = in_input_order

        with self._lock:
            self._evaluated += n
            self._accepted += int(accepted.sum())
            for code, mask in zip(CODES, rule_masks, strict=True):
                self._rejections[code] += int(mask.sum())
        return out


# -- value checks and coercion (scalar and array versions must agree) -------------------------


def _is_fraction(value: float) -> bool:
    return math.isfinite(value) and 0.0 <= value <= 1.0


def _is_fraction_array(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= 0.0) & (values <= 1.0)


def _is_price(value: float) -> bool:
    return math.isfinite(value) and value > 0.0


def _is_price_array(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values > 0.0)


def _to_float(value: Any) -> float:
    """``value`` as a float, or NaN when it is not a real number (None, text, bool, junk)."""
    if value is None or isinstance(value, (str, bytes, bool, np.bool_)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _normalize_text(value: Any, *, upper: bool) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value.upper() if upper else value.lower()


def _float_column(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    # Object columns are rare (junk mixed in): coerce each value exactly as evaluate does.
    return np.fromiter((_to_float(v) for v in series), dtype=np.float64, count=len(series))


def _text_codes(series: pd.Series, *, upper: bool) -> tuple[np.ndarray, list[str]]:
    """Each row's index into the distinct normalized texts, -1 where there is no non-empty text.

    Only distinct raw values are normalized (a session holds a few hundred tickers), with the
    function evaluate uses.
    """
    try:
        raw_codes, raw_values = pd.factorize(series)
    except TypeError:  # unhashable junk: keep only the strings, then factorize
        strings = [v if isinstance(v, str) else None for v in series]
        raw_codes, raw_values = pd.factorize(pd.Series(strings, dtype=object))
    texts: dict[str, int] = {}
    remap = np.full(len(raw_values) + 1, -1, dtype=np.int64)  # the last entry serves code -1
    for raw_index, raw_value in enumerate(raw_values):
        text = _normalize_text(raw_value, upper=upper)
        if text:
            remap[raw_index] = texts.setdefault(text, len(texts))
    return remap[raw_codes], list(texts)


def _lookup(codes: np.ndarray, flags: list[bool]) -> np.ndarray:
    """Per-row flag of each code; code -1 gives False."""
    return np.array([*flags, False], dtype=bool)[codes]


def _whole_shares(quotient: float) -> float:
    """floor(quotient), forgiving float noise just under a whole number; capped at ``MAX_SHARES``."""
    if not math.isfinite(quotient):
        return min(quotient, MAX_SHARES)
    return min(float(math.floor(quotient * (1.0 + SHARE_TOLERANCE))), MAX_SHARES)


def _whole_shares_array(quotients: np.ndarray) -> np.ndarray:
    return np.minimum(np.floor(quotients * (1.0 + SHARE_TOLERANCE)), MAX_SHARES)


# -- messages ---------------------------------------------------------------------------------

_TWO_DECIMALS_BELOW = 1e13  # cents stay exact in int64 and float64 below this
_REASON_TEXT = np.array(
    [
        REASON_SEPARATOR.join(code for bit, code in enumerate(CODES) if mask >> bit & 1)
        for mask in range(2 ** len(CODES))
    ],
    dtype=object,
)


def _format_limit(limit: float) -> str:
    text = f"{limit:.2f}"
    return text if abs(float(text) - limit) <= 1e-9 * max(1.0, abs(limit)) else f"{limit:.6g}"


def _format_number(value: float) -> str:
    """Two decimals (half-even on value × 100); full precision for huge or non-finite values."""
    if math.isfinite(value) and abs(value) < _TWO_DECIMALS_BELOW:
        cents = round(value * 100)
        whole, part = divmod(abs(cents), 100)
        return f"{'-' if cents < 0 else ''}{whole}.{part:02d}"
    return repr(float(value))


def _format_versus(value: float, bound: float, *, below: bool = True) -> str:
    """``value`` with two decimals, unless rounding would hide which side of ``bound`` it is on."""
    if math.isfinite(value) and abs(value) < _TWO_DECIMALS_BELOW:
        rounded = round(value * 100) / 100
        if not (rounded >= bound if below else rounded <= bound):
            return _format_number(value)
    return repr(float(value))


def _invalid_input_message(
    ticker_ok: bool, direction_ok: bool, confidence: float, entry: float, stop: float, target: float
) -> str:
    problems = [] if ticker_ok else ["ticker is missing or empty"]
    if math.isnan(confidence):
        problems.append("confidence is missing or not a number")
    elif not _is_fraction(confidence):
        below = confidence < 0.0
        shown = _format_versus(confidence, 0.0 if below else 1.0, below=below)
        problems.append(f"confidence {shown} is outside [0, 1]")
    for name, price in (("entry", entry), ("stop_loss", stop), ("take_profit", target)):
        if math.isnan(price):
            problems.append(f"{name} is missing or not a number")
        elif not _is_price(price):
            problems.append(f"{name} {_format_number(price)} is not a finite price > 0")
    if not direction_ok:
        problems.append("direction is not 'long' or 'short'")
    return "invalid input: " + ", ".join(problems)


def _price_levels_message(is_long: bool, entry: float, stop: float, target: float) -> str:
    values = (stop, entry, target)
    shown = [_format_number(price) for price in values]
    pairs = ((0, 1), (1, 2), (0, 2))
    if any(shown[i] == shown[j] and values[i] != values[j] for i, j in pairs):
        shown = [repr(float(price)) for price in values]  # two decimals would look equal
    s, e, t = shown
    if is_long:
        return f"stop_loss {s}, entry {e}, take_profit {t}: a long needs stop_loss < entry < take_profit"
    return (
        f"take_profit {t}, entry {e}, stop_loss {s}: a short needs take_profit < entry < stop_loss"
    )


def _too_small_message(budget: float, risk_per_share: float, cap: float, entry: float) -> str:
    return (
        f"sizing gives 0 whole shares (risk budget {_format_number(budget)} at "
        f"{_format_number(risk_per_share)} risk per share, position cap {_format_number(cap)} "
        f"at entry {_format_number(entry)})"
    )


def _duplicate_message(ticker: str) -> str:
    return f"{ticker} is already held"


def _bits(values: np.ndarray) -> np.ndarray:
    """The float64 bit patterns: equal keys mean identical values (NaN payloads aside)."""
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64)


def _number_keys(
    values: np.ndarray, plain: Callable[[np.ndarray], np.ndarray] | None = None
) -> list[np.ndarray]:
    """Keys deciding what ``_format_number`` shows: the cents when shown with two decimals.

    ``plain(cents)`` narrows which values keep two decimals; the others are keyed by their bits.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        short = np.isfinite(values) & (np.abs(values) < _TWO_DECIMALS_BELOW)
        cents = np.rint(np.where(short, values, 0.0) * 100)
    if plain is not None:
        short &= plain(cents)
    return [short, np.where(short, cents.astype(np.int64), _bits(values))]


def _versus_keys(values: np.ndarray, bound: float) -> list[np.ndarray]:
    """Keys deciding what ``_format_versus(value, bound)`` shows."""
    return _number_keys(values, plain=lambda cents: ~(cents / 100 >= bound))


def _group_ids(n: int, keys: list[np.ndarray]) -> np.ndarray:
    """Group number of each row, numbered in order of first appearance.

    Rows share a group exactly when all ``keys`` are equal. Keys are factorized, combined in mixed
    radix, and renumbered only when the combined number could overflow.
    """
    group = np.zeros(n, dtype=np.int64)
    groups = 1
    for key in keys:
        codes, distinct = pd.factorize(key)
        if groups * len(distinct) >= 2**62:
            group = pd.factorize(group)[0]
            groups = int(group.max(initial=-1)) + 1
        group = group * len(distinct) + codes
        groups *= max(len(distinct), 1)
    return pd.factorize(group)[0] if keys else group


def _first_rows(group: np.ndarray) -> np.ndarray:
    """Positions of each group's first row (groups are numbered in order of first appearance)."""
    return np.flatnonzero(np.diff(np.maximum.accumulate(group), prepend=-1) > 0)


def _distinct_messages(rows, keys, values, make) -> tuple[np.ndarray, list[str]]:
    """Per row, an index into the texts (-1 where ``rows`` is False); ``make`` runs once per key."""
    index = np.flatnonzero(rows)
    group = _group_ids(len(index), [np.asarray(key)[index] for key in keys])
    first = index[_first_rows(group)]
    columns = [np.asarray(value)[first].tolist() for value in values]
    arguments = list(zip(*columns, strict=True)) if columns else [()] * len(first)
    texts = [make(*row_values) for row_values in arguments]
    ids = np.full(len(rows), -1, dtype=np.int64)
    ids[index] = group
    return ids, texts


def _join_messages(n: int, per_rule: list[tuple[np.ndarray, list[str]]]) -> np.ndarray:
    """Each row's messages in rule order, joined once per distinct combination."""
    per_rule = [(ids, texts) for ids, texts in per_rule if texts]
    joined = np.full(n, "", dtype=object)
    failing = np.zeros(n, dtype=bool)
    for ids, _ in per_rule:
        failing |= ids >= 0
    rows = np.flatnonzero(failing)
    group = _group_ids(len(rows), [ids[rows] for ids, _ in per_rule])
    first = rows[_first_rows(group)]
    combined = np.full(len(first), "", dtype=object)
    for ids, texts in per_rule:
        rule_ids = ids[first]
        failed = rule_ids >= 0
        text = np.array(texts, dtype=object)[rule_ids[failed]]
        before = combined[failed]
        combined[failed] = np.where(before == "", text, before + MESSAGE_SEPARATOR + text)
    joined[rows] = combined[group]
    return joined
