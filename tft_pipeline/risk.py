"""The signal gatekeeper: risk rules, position sizing and rejection reasons (pure, no Dagster)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import os
import threading
from collections.abc import Iterable, Mapping
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
# Optional columns of a signals frame: the model's out-of-sample figures (the skill gate).
SKILL_COLUMNS = ("model_auc", "model_brier_skill")
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
    NO_MODEL_SKILL = "no_model_skill"
    TICKER_COOLDOWN = "ticker_cooldown"
    DAILY_LOSS_LIMIT = "daily_loss_limit"


CODES: tuple[RejectionCode, ...] = tuple(RejectionCode)


class RiskLimits(BaseModel):
    """The limits a signal must satisfy; ``TFT_RISK_<FIELD_UPPER>`` overrides each field.

    The first six are the seed's. The protections after them are read by the paper portfolio,
    which builds the ``PortfolioState`` a session is judged against (``tft_pipeline.portfolio``):

    - ``drawdown_lookback_sessions`` / ``drawdown_stop_sessions``: drawdown is measured from the
      peak equity of the last N sessions (the closes of those sessions and the close before them);
      once it reaches ``max_drawdown`` new entries are rejected (``max_drawdown``) for the stop
      duration, counted in sessions from the one that reached it. Afterwards the peak is looked for
      only from that session on, so trading resumes unless equity falls that far again: a halt is
      never permanent (freqtrade's ``MaxDrawdown`` protection, in sessions).
    - ``cooldown_sessions``: a ticker whose position closed at its stop during the last N sessions
      (the session judged included) is rejected (``ticker_cooldown``); 0 turns the rule off.
    - ``max_daily_loss``: when equity at a session's close is down at least this fraction from the
      previous close, that session's signals are rejected (``daily_loss_limit``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    min_confidence: float = Field(0.70, gt=0, le=1)
    min_reward_risk: float = Field(2.0, gt=0)
    risk_per_trade: float = Field(0.02, gt=0, le=1)
    max_position_fraction: float = Field(0.20, gt=0, le=1)
    max_positions: int = Field(5, ge=1)
    max_drawdown: float = Field(0.15, gt=0, le=1)
    drawdown_lookback_sessions: int = Field(60, ge=1)
    drawdown_stop_sessions: int = Field(20, ge=1)
    cooldown_sessions: int = Field(5, ge=0)
    max_daily_loss: float = Field(0.03, gt=0, le=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str | None] | None = None) -> RiskLimits:
        """Defaults overridden by ``TFT_RISK_*`` variables; an empty value means the default.

        Names are matched exactly (upper case), other variables are ignored. An unknown
        ``TFT_RISK_*`` name or a bad value raises ``ValueError`` naming the variable (with the
        closest valid name for a typo), so a misspelt limit cannot silently stay at its default.
        Every problem is reported at once, separated by ``"; "``.
        """
        environ = os.environ if environ is None else environ
        known = {f"{ENV_PREFIX}{name.upper()}": name for name in cls.model_fields}
        problems: list[str] = []
        overrides: dict[str, str] = {}
        for variable, value in environ.items():
            if not variable.startswith(ENV_PREFIX):
                continue
            if variable not in known:
                problems.append(_unknown_variable_message(variable, list(known)))
            elif value is not None and value.strip():
                overrides[known[variable]] = value.strip()
        try:
            limits = cls(**overrides)
        except ValidationError as error:
            problems.extend(
                f"{ENV_PREFIX}{str(issue['loc'][0]).upper()}="
                f"{overrides.get(str(issue['loc'][0]))!r}: {issue['msg']}"
                for issue in error.errors()
            )
        else:
            if not problems:
                return limits
        raise ValueError(MESSAGE_SEPARATOR.join(problems))


def _unknown_variable_message(variable: str, known: list[str]) -> str:
    # Matched without the shared prefix, which would make every name look close to every other.
    fields = {name.removeprefix(ENV_PREFIX): name for name in known}
    closest = difflib.get_close_matches(variable.removeprefix(ENV_PREFIX), list(fields), n=1)
    hint = f"did you mean {fields[closest[0]]}?" if closest else f"known: {', '.join(known)}"
    return f"unknown variable {variable} ({hint})"


@dataclass(frozen=True, slots=True)
class Signal:
    """A proposed trade. Fields are not checked here: ``RiskManager`` judges them and never raises.

    ``model_auc`` and ``model_brier_skill`` are the out-of-sample figures of the model that made
    the signal (ROC AUC, Brier skill score against the base rate). None (the default) means not
    provided, and the skill gate is not evaluated; provided, a signal passes it only with an AUC
    above 0.5 and a Brier skill above 0 (NaN does not pass: no measured skill, no trade).
    """

    ticker: Any
    confidence: Any
    entry: Any
    stop_loss: Any
    take_profit: Any
    direction: Any = "long"
    model_auc: Any = None
    model_brier_skill: Any = None


@dataclass(frozen=True)
class PortfolioState:
    """The portfolio a signal is judged against; tickers are compared trimmed and upper-cased.

    ``value`` and ``peak_value`` give the drawdown judged by ``max_drawdown`` (the paper portfolio
    passes the peak of the drawdown protection's window). The keyword fields are the protections'
    state, as the paper portfolio knows it at the close of the session judged; their defaults
    switch them off, so ``PortfolioState(value, peak_value, open_tickers)`` works as it always did:

    - ``halted_until``: the last session of a drawdown halt covering the session judged (a date;
      None: no halt). Every signal is rejected with ``max_drawdown`` while it is set.
    - ``session_return``: the portfolio's return over the session judged, as a fraction (-0.035 =
      down 3.5 %); None: unknown. A loss of ``max_daily_loss`` or more rejects with
      ``daily_loss_limit``.
    - ``cooling_down``: tickers stopped out recently (``cooldown_sessions``); their signals are
      rejected with ``ticker_cooldown``.
    """

    value: float
    peak_value: float
    open_tickers: tuple[str, ...] = ()
    halted_until: dt.date | None = None
    session_return: float | None = None
    cooling_down: tuple[str, ...] = ()
    drawdown: float = field(init=False)
    _held: frozenset[str] = field(init=False, repr=False, compare=False)
    _cooling: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        value, peak_value = _to_float(self.value), _to_float(self.peak_value)
        if not math.isfinite(value):
            raise ValueError(f"portfolio value must be a finite number, got {self.value!r}")
        if not (math.isfinite(peak_value) and peak_value > 0):
            raise ValueError(
                f"portfolio peak_value must be finite and > 0, got {self.peak_value!r}"
            )
        tickers = _ticker_tuple(self.open_tickers, "open_tickers")
        cooling = _ticker_tuple(self.cooling_down, "cooling_down")
        session_return = self.session_return
        if session_return is not None:
            session_return = _to_float(session_return)
            if not math.isfinite(session_return):
                raise ValueError(
                    f"session_return must be a finite fraction or None, got {self.session_return!r}"
                )
        halted_until = self.halted_until
        if halted_until is not None:
            try:
                stamp = pd.Timestamp(halted_until)
            except (TypeError, ValueError) as error:
                raise ValueError(f"halted_until must be a date or None, got {halted_until!r}") from error
            halted_until = None if pd.isna(stamp) else stamp.date()
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "peak_value", peak_value)
        object.__setattr__(self, "open_tickers", tickers)
        object.__setattr__(self, "halted_until", halted_until)
        object.__setattr__(self, "session_return", session_return)
        object.__setattr__(self, "cooling_down", cooling)
        # A value above a stale peak is no drawdown.
        object.__setattr__(self, "drawdown", max(0.0, (peak_value - value) / peak_value))
        object.__setattr__(self, "_held", frozenset(tickers))
        object.__setattr__(self, "_cooling", frozenset(cooling))

    @property
    def open_positions(self) -> int:
        return len(self.open_tickers)

    def holds(self, ticker: str) -> bool:
        """Whether ``ticker`` (normalized) is already held."""
        return ticker in self._held

    def is_cooling_down(self, ticker: str) -> bool:
        """Whether ``ticker`` (normalized) was stopped out within the cooldown."""
        return ticker in self._cooling

    def with_opened(self, ticker: str) -> PortfolioState:
        """The same portfolio with one more open position in ``ticker``."""
        return dataclasses.replace(self, open_tickers=(*self.open_tickers, ticker))


def _ticker_tuple(tickers: Any, name: str) -> tuple[str, ...]:
    if isinstance(tickers, str):
        raise TypeError(f"{name} must be a sequence of tickers, not one string")
    normalized = tuple(_normalize_text(ticker, upper=True) for ticker in tickers)
    if any(not ticker for ticker in normalized):
        raise ValueError(f"{name} holds a missing or empty ticker: {tickers!r}")
    return normalized  # type: ignore[return-value]


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
    """Evaluates signals against ``limits``, one at a time or a session's batch.

    Rules run in the contract's order and every failing rule is reported, as a ``RejectionCode`` and
    a readable message. Bad input never raises: it becomes ``invalid_input``. A rule is evaluated
    only when the fields it reads are valid, so one bad field does not hide the other findings:

    - ``low_confidence`` needs a valid confidence;
    - ``invalid_price_levels`` and ``low_reward_risk`` need valid prices and direction
      (reward/risk is only judged when the levels are in order, as it means nothing otherwise);
    - sizing, and so ``position_too_small``, needs a fully valid signal with levels in order; any
      other signal gets 0 shares;
    - ``duplicate_position`` and ``ticker_cooldown`` need a valid ticker; ``max_positions``,
      ``max_drawdown`` and ``daily_loss_limit`` read only the portfolio and are always evaluated;
    - ``no_model_skill`` reads only the model's figures, and only those provided (not None).

    A rejected decision still carries the size the signal would have had (0 when it cannot be
    sized): only accepted decisions open positions.
    """

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
        self._daily_loss_ceiling = lim.max_daily_loss * (1 - RELATIVE_TOLERANCE)
        self._max_daily_loss_text = _format_limit(lim.max_daily_loss * 100)

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
            message = self._drawdown_message(portfolio.drawdown)
            if portfolio.halted_until is not None:
                message += f", new entries are halted through {portfolio.halted_until:%Y-%m-%d}"
            failed.append((RejectionCode.MAX_DRAWDOWN, message))
        elif portfolio.halted_until is not None:
            failed.append((RejectionCode.MAX_DRAWDOWN, self._halt_message(portfolio.halted_until)))
        skill_message = _skill_message(signal.model_auc, signal.model_brier_skill)
        if skill_message:
            failed.append((RejectionCode.NO_MODEL_SKILL, skill_message))
        if ticker_ok and portfolio.is_cooling_down(ticker):
            failed.append((RejectionCode.TICKER_COOLDOWN, self._cooldown_message(ticker)))
        loss = -portfolio.session_return if portfolio.session_return is not None else -math.inf
        if loss >= self._daily_loss_ceiling:
            failed.append((RejectionCode.DAILY_LOSS_LIMIT, self._daily_loss_message(loss)))

        return RiskDecision(
            accepted=not failed,
            reasons=tuple(code for code, _ in failed),
            messages=tuple(message for _, message in failed),
            shares=int(shares),
            position_value=shares * entry if shares else 0.0,
            risk_dollars=shares * risk_per_share if shares else 0.0,
            reward_risk=reward_risk,
        )

    # -- messages of the rules that read the limits ----------------------------------------------

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

    def _halt_message(self, halted_until: dt.date) -> str:
        return (
            f"new entries are halted through {halted_until:%Y-%m-%d}: the drawdown from the peak of "
            f"the last {self.limits.drawdown_lookback_sessions} sessions reached the maximum "
            f"{self._max_drawdown_text}%"
        )

    def _cooldown_message(self, ticker: str) -> str:
        sessions = self.limits.cooldown_sessions
        span = "this session" if sessions == 1 else f"the last {sessions} sessions"
        return f"{ticker} was stopped out within {span} (cooldown)"

    def _daily_loss_message(self, loss: float) -> str:
        return (
            f"the portfolio lost {_format_number(loss * 100)}% this session, "
            f"the daily loss limit is {self._max_daily_loss_text}%"
        )

    # -- a session's batch --------------------------------------------------------------------

    def evaluate_batch(self, signals: pd.DataFrame, portfolio: PortfolioState) -> pd.DataFrame:
        """One decision row per signal: ``evaluate`` run most confident first.

        Each acceptance takes a position slot and its ticker, so a later signal on that ticker is a
        ``duplicate_position`` and, once the slots are gone, the rest get ``max_positions``.
        Confidence ties keep input order; confidences outside [0, 1] go last. Input columns (extra
        ones too), index and row order are kept; ``direction`` is added as ``"long"`` when absent.
        ``model_auc`` and ``model_brier_skill`` are read when the frame has them (a present column
        provides its values, NaN included: a NaN figure fails the skill gate), else not provided.
        Added: ``accepted``, ``reasons`` (codes joined by ``";"``, empty when accepted),
        ``messages`` (joined by ``"; "``), ``shares``, ``position_value``, ``risk_dollars``,
        ``reward_risk`` and ``rank`` (1 = judged first). All rows share one portfolio: pass one
        session at a time.
        """
        missing = [name for name in SIGNAL_COLUMNS if name not in signals.columns]
        if missing:
            raise KeyError(f"signals frame lacks column(s) {', '.join(missing)}")
        out = signals.copy()
        if "direction" not in out.columns:
            out["direction"] = "long"
        columns = [out[name].tolist() for name in (*SIGNAL_COLUMNS, "direction")]
        columns += [
            out[name].tolist() if name in out.columns else [None] * len(out)
            for name in SKILL_COLUMNS
        ]
        batch = [Signal(*fields) for fields in zip(*columns, strict=True)]
        order = sorted(range(len(batch)), key=lambda row: _confidence_rank(batch[row].confidence))

        decided: dict[int, RiskDecision] = {}
        state = portfolio
        for row in order:
            decision = self.evaluate(batch[row], state)
            if decision.accepted:
                state = state.with_opened(batch[row].ticker)
            decided[row] = decision
        decisions = [decided[row] for row in range(len(batch))]
        ranks = np.empty(len(batch), dtype=np.int64)
        ranks[order] = np.arange(1, len(batch) + 1)

        out["accepted"] = np.array([d.accepted for d in decisions], dtype=bool)
        out["reasons"] = _text_column(REASON_SEPARATOR.join(d.reasons) for d in decisions)
        out["messages"] = _text_column(MESSAGE_SEPARATOR.join(d.messages) for d in decisions)
        out["shares"] = np.array([d.shares for d in decisions], dtype=np.int64)
        for name in ("position_value", "risk_dollars", "reward_risk"):
            out[name] = np.array([getattr(d, name) for d in decisions], dtype=np.float64)
        out["rank"] = ranks
        return out


# -- value checks and coercion ----------------------------------------------------------------


def _is_fraction(value: float) -> bool:
    return math.isfinite(value) and 0.0 <= value <= 1.0


def _is_price(value: float) -> bool:
    return math.isfinite(value) and value > 0.0


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


def _confidence_rank(confidence: Any) -> float:
    """Sort key of the batch order: most confident first, unusable confidences last."""
    value = _to_float(confidence)
    return -value if _is_fraction(value) else math.inf


def _text_column(texts: Iterable[str]) -> np.ndarray:
    return np.fromiter(texts, dtype=object)


def whole_shares(quotient: float) -> float:
    """floor(quotient), forgiving float noise just under a whole number; capped at ``MAX_SHARES``."""
    if not math.isfinite(quotient):
        return min(quotient, MAX_SHARES)
    return min(float(math.floor(quotient * (1.0 + SHARE_TOLERANCE))), MAX_SHARES)


_whole_shares = whole_shares


# -- messages ---------------------------------------------------------------------------------

_TWO_DECIMALS_BELOW = 1e13  # cents stay exact in int64 and float64 below this


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


def _skill_message(auc: Any, brier_skill: Any) -> str | None:
    """Why the model's figures show no skill (None: they do, or none was provided)."""
    figures: list[str] = []
    failing = False
    for name, given, floor, ceiling in (("AUC", auc, 0.5, 1.0), ("Brier skill", brier_skill, 0.0, 1.0)):
        if given is None:
            continue
        value = _to_float(given)
        floor_text = _format_number(floor)
        if math.isnan(value):
            figures.append(f"{name} is missing (NaN)")
        elif value <= floor:
            shown = floor_text if value == floor else _format_versus(value, floor)
            figures.append(f"{name} {shown} is not above {floor_text}")
        elif value > ceiling:
            figures.append(f"{name} {_format_number(value)} is above its maximum {_format_number(ceiling)}")
        else:
            shown = _format_number(value) if round(value * 100) / 100 > floor else repr(value)
            figures.append(f"{name} {shown}")
            continue
        failing = True
    if not failing:
        return None
    return "the model shows no out-of-sample skill: " + ", ".join(figures)
