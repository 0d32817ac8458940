"""Scraper hardening: retry classification, exponential backoff and rate limiting (pure, no Dagster).

What the live sources build on:

- ``should_retry(exc)`` says whether a failure is worth another attempt (429, 5xx, 408, timeouts,
  dropped connections) or permanent (401, 403, 404, other 4xx, bad input). It knows the real
  exception types of prawcore, requests, curl_cffi (yfinance's HTTP client), yfinance and the
  standard library, each imported lazily so the module works without them installed.
- ``http_status_of``, ``retry_after_of`` and ``describe_failure`` read an exception's HTTP status,
  the server's ``Retry-After`` and a short log-safe cause (no headers, credentials or query strings).
- ``retry_with_backoff`` / ``retry_with_backoff_async`` retry a call with doubling, capped, jittered
  delays, honour ``Retry-After`` within the cap, stop at a total deadline, log every retry and
  re-raise the original exception. Clock, sleep and randomness are injectable.
- ``RateLimiter`` spaces calls to a fixed rate across threads.

Counting attempts (to state a bound): ``config.max_attempts`` is the most a call can make;
``wrapped.retry_statistics.last`` is the ``CallStatistics`` of the last call that finished in the
current thread (or asyncio context); ``on_retry`` receives a ``RetryEvent`` before every sleep.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import email.utils
import functools
import http.client
import inspect
import logging
import math
import random
import re
import socket
import ssl
import sys
import threading
import time
import urllib.error
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import tenacity

# Re-exported under the name the live sources import.
from tft_pipeline.redaction import redact as redact_secrets

LOGGER_NAME = "tft_pipeline.retry"
_logger = logging.getLogger(LOGGER_NAME)

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------------------------------
# Configuration and delays
# --------------------------------------------------------------------------------------------------


class UniformSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1): ``random.Random``, numpy's Generator, a fake."""

    def random(self) -> float: ...


@dataclass(frozen=True)
class RetryConfig:
    """How hard to retry one logical call.

    The delay after failed attempt ``n`` (1-based) is ``base_delay * 2**(n-1)``, scaled by a uniform
    factor in ``[1 - jitter, 1 + jitter]`` and then capped at ``max_delay`` (so no delay ever passes
    the cap). A server's ``Retry-After`` replaces the computed delay, also capped. ``deadline`` is
    the total seconds one call may take, attempts and sleeps together: no sleep starts that would
    end past it. It defaults to ``max_delay * (max_retries + 1)``.
    """

    max_retries: int
    base_delay: float
    max_delay: float
    jitter: float = 0.10
    deadline: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError(f"max_retries must be an int, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (0.0 <= self.jitter < 1.0):
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter!r}")
        if self.deadline is None:
            # Frozen: the computed default is stored once so ``config.deadline`` is always a number.
            object.__setattr__(self, "deadline", float(self.max_delay * (self.max_retries + 1)))
        elif not (self.deadline > 0 and not math.isnan(self.deadline)):
            raise ValueError(f"deadline must be > 0 seconds, got {self.deadline!r}")

    @property
    def max_attempts(self) -> int:
        """The most attempts one call makes: the first plus ``max_retries``."""
        return self.max_retries + 1

    @property
    def max_total_sleep(self) -> float:
        """An upper bound of the seconds one call can spend sleeping between attempts."""
        longest = sum(self.delay_for(n, rng=_TOP_OF_JITTER) for n in range(1, self.max_attempts))
        return min(longest, float(self.deadline))  # type: ignore[arg-type]

    def delay_for(
        self,
        attempt: int,
        *,
        rng: UniformSource | None = None,
        retry_after: float | None = None,
    ) -> float:
        """Seconds to sleep after failed attempt ``attempt`` (1-based).

        Without ``rng`` the delay is the nominal one (no jitter); with it, one ``rng.random()`` draw
        picks the jitter factor. A ``retry_after`` (seconds, from the server) wins over the
        computed delay; both are capped at ``max_delay``.
        """
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        if retry_after is not None and math.isfinite(retry_after):
            return min(max(retry_after, 0.0), self.max_delay)
        # Exponent capped: past 2**64 the cap applies anyway and floats stay finite.
        nominal = self.base_delay * 2.0 ** min(attempt - 1, 64)
        if rng is not None and self.jitter:
            nominal *= 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        return min(nominal, self.max_delay)


class _FixedDraw:
    """A UniformSource that always draws the same value (for bounds and tests)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


_TOP_OF_JITTER = _FixedDraw(1.0)

REDDIT_CONFIG = RetryConfig(max_retries=5, base_delay=2.0, max_delay=120.0)
YFINANCE_CONFIG = RetryConfig(max_retries=3, base_delay=1.0, max_delay=30.0)
GENERIC_CONFIG = RetryConfig(max_retries=5, base_delay=1.0, max_delay=60.0)


# --------------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------------

# 408 Request Timeout, 425 Too Early and 429 Too Many Requests are the 4xx answers that mean
# "try again later"; every other 4xx describes the request itself and will fail the same way again.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})

# curl error codes of transport trouble that a new attempt can cure (see libcurl-errors).
_TRANSIENT_CURL_CODES = frozenset(
    {
        5,  # COULDNT_RESOLVE_PROXY
        6,  # COULDNT_RESOLVE_HOST: DNS hiccups are the common cause with fixed hosts
        7,  # COULDNT_CONNECT
        16,  # HTTP2 framing
        18,  # PARTIAL_FILE
        28,  # OPERATION_TIMEDOUT
        35,  # SSL_CONNECT_ERROR (handshake reset)
        52,  # GOT_NOTHING
        55,  # SEND_ERROR
        56,  # RECV_ERROR
        92,  # HTTP2_STREAM
        95,  # HTTP3
        96,  # QUIC_CONNECT_ERROR
        97,  # PROXY
    }
)


def is_retryable_status(status: int) -> bool:
    """True for HTTP statuses worth retrying: 408, 425, 429 and every 5xx."""
    return status in RETRYABLE_CLIENT_STATUSES or 500 <= status <= 599


# The third-party exception classes we classify, by role: (module, class names). They are looked
# up in ``sys.modules`` instead of imported: an instance of a class implies its module is loaded, so
# this costs no import (yfinance's is slow) and works when a package is not installed at all.
_OPTIONAL_CLASSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "prawcore_transient": (
        "prawcore.exceptions",
        # BadJSON: a 200 whose body is not JSON; Reddit serves HTML error pages under load.
        ("TooManyRequests", "ServerError", "BadJSON"),
    ),
    "prawcore_permanent": (
        "prawcore.exceptions",
        (
            "InvalidToken",
            "Forbidden",
            "InsufficientScope",
            "NotFound",
            "Redirect",
            "OAuthException",
            "BadRequest",
            "Conflict",
            "SpecialError",
            "TooLarge",
            "URITooLong",
            "UnavailableForLegalReasons",
            "InvalidInvocation",
        ),
    ),
    "prawcore_request": ("prawcore.exceptions", ("RequestException",)),
    "prawcore_response": ("prawcore.exceptions", ("ResponseException",)),
    "requests_base": ("requests.exceptions", ("RequestException",)),
    "requests_transient": (
        "requests.exceptions",
        ("ConnectionError", "Timeout", "ChunkedEncodingError"),
    ),
    "requests_http": ("requests.exceptions", ("HTTPError",)),
    "curl_base": ("curl_cffi.curl", ("CurlError",)),
    "curl_permanent": (
        "curl_cffi.requests.exceptions",
        (
            "CertificateVerifyError",
            "TooManyRedirects",
            "InvalidURL",
            "InvalidSchema",
            "MissingSchema",
            "InvalidHeader",
            "ImpersonateError",
            "SessionClosed",
            "CookieConflict",
            "URLRequired",
        ),
    ),
    "curl_transient": (
        "curl_cffi.requests.exceptions",
        ("Timeout", "ConnectionError", "ProxyError", "IncompleteRead", "ChunkedEncodingError"),
    ),
    "yfinance_transient": ("yfinance.exceptions", ("YFRateLimitError",)),
    "yfinance_permanent": (
        "yfinance.exceptions",
        # YFTickerMissingError covers YFTzMissingError, YFPricesMissingError, YFEarningsDateMissing.
        (
            "YFTickerMissingError",
            "YFInvalidPeriodError",
            "YFNotImplementedError",
            "YFDataException",
        ),
    ),
}
_resolved_classes: dict[str, tuple[type[BaseException], ...]] = {}


def _classes(role: str) -> tuple[type[BaseException], ...]:
    resolved = _resolved_classes.get(role)
    if resolved is not None:
        return resolved
    module_name, class_names = _OPTIONAL_CLASSES[role]
    module = sys.modules.get(module_name)
    if module is None:
        return ()  # not loaded yet: nothing raised can be of these classes; look again next time
    resolved = tuple(
        candidate
        for name in class_names
        if isinstance(candidate := getattr(module, name, None), type)
        and issubclass(candidate, BaseException)
    )
    _resolved_classes[role] = resolved
    return resolved


def _is(exc: BaseException, role: str) -> bool:
    classes = _classes(role)
    return bool(classes) and isinstance(exc, classes)


def _valid_status(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        status = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None
    return status if 100 <= status <= 599 else None


_STATUS_IN_MESSAGE = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\bHTTP(?:/\d(?:\.\d)?)?(?:\s+error)?\s*[:#-]?\s*(\d{3})\b",  # HTTP Error 404, HTTP/1.1 503
        r"\b(\d{3})\s+(?:client|server)\s+error\b",  # requests: 503 Server Error
        r"\breceived\s+(\d{3})\s+HTTP\b",  # prawcore: received 503 HTTP response
        r"\bstatus(?:[\s_-]*code)?\s*[:=]?\s*(\d{3})\b",  # status code 503, status=429
        (
            r"\b(\d{3})\s+(?:too many requests|service unavailable|bad gateway|gateway time-?out|"
            r"internal server error|not found|forbidden|unauthorized|request time-?out)\b"
        ),
        r"(?<![\w.:/-])(429)(?![\w.-])",  # a bare 429 is unambiguous enough to trust
    )
]


def _status_in_message(exc: BaseException) -> int | None:
    message = _message_of(exc)
    for pattern in _STATUS_IN_MESSAGE:
        match = pattern.search(message)
        if match and (status := _valid_status(match.group(1))) is not None and status >= 400:
            return status
    return None


def _message_of(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break classification
        return ""


def _raised_inside(exc: BaseException, package: str) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module == package or module.startswith(package + "."):
            return True
        traceback = traceback.tb_next
    return False


def _is_prawcore_bare_status(exc: BaseException) -> bool:
    """prawcore's bug: a 401 without ``www-authenticate`` surfaces as a bare ``KeyError: 401``."""
    return (
        type(exc) is KeyError
        and len(exc.args) == 1
        and _valid_status(exc.args[0]) is not None
        and isinstance(exc.args[0], int)
        and _raised_inside(exc, "prawcore")
    )


def http_status_of(exc: BaseException) -> int | None:
    """The HTTP status (300..599) an exception carries, or None when it carries none.

    Read from, in order: yfinance's rate-limit error (429), prawcore's bare ``KeyError: 401``,
    urllib's ``HTTPError.code``, ``exc.response.status_code`` (requests, prawcore, curl_cffi),
    ``exc.status_code`` / ``exc.status``, the message ("HTTP Error 404", "503 Server Error", "429"),
    and finally the explicit cause (``raise ... from``).
    """
    return _http_status_of(exc, depth=0)


def _http_status_of(exc: BaseException, depth: int) -> int | None:
    if _is(exc, "yfinance_transient"):
        return 429
    if _is_prawcore_bare_status(exc):
        return int(exc.args[0])
    if isinstance(exc, urllib.error.HTTPError):
        return _valid_status(exc.code)
    response = getattr(exc, "response", None)
    if response is not None:
        for attribute in ("status_code", "status"):
            status = _valid_status(getattr(response, attribute, None))
            # A response of 2xx on a transport error (curl fills one in) says nothing.
            if status is not None and status >= 300:
                return status
    for attribute in ("status_code", "status"):
        status = _valid_status(getattr(exc, attribute, None))
        if status is not None and status >= 300:
            return status
    if (status := _status_in_message(exc)) is not None:
        return status
    cause = exc.__cause__
    if cause is not None and cause is not exc and depth < 5:
        return _http_status_of(cause, depth + 1)
    return None


# Phrases that mark a transient failure in exceptions of types we do not know.
_TRANSIENT_PHRASES = re.compile(
    r"too many requests|rate.?limit|temporar(?:il)?y unavailable|service unavailable|"
    r"timed? ?out|connection (?:reset|refused|aborted)|remote end closed|try again later",
    re.IGNORECASE,
)


def should_retry(exc: BaseException) -> bool:
    """True when another attempt may succeed: 429, 5xx, 408, timeouts and connection errors.

    False for 401, 403, 404 and other permanent errors (other 4xx, redirects to nowhere, bad
    credentials, unknown tickers, ``ValueError``, ``KeyError`` ...), and for anything that is not an
    ``Exception`` (``KeyboardInterrupt``, ``asyncio.CancelledError``).
    """
    return _should_retry(exc, depth=0)


def _should_retry(exc: BaseException, depth: int) -> bool:
    if not isinstance(exc, Exception):
        return False

    # prawcore: its response errors carry the response, its request errors wrap requests' errors.
    if _is(exc, "prawcore_transient"):
        return True
    if _is(exc, "prawcore_permanent"):
        return False
    if _is(exc, "prawcore_request"):
        original = getattr(exc, "original_exception", None)
        return isinstance(original, BaseException) and _should_retry(original, depth + 1)
    if _is(exc, "prawcore_response"):
        status = http_status_of(exc)
        return status is not None and is_retryable_status(status)

    # yfinance.
    if _is(exc, "yfinance_transient"):
        return True
    if _is(exc, "yfinance_permanent"):
        return False

    # curl_cffi (yfinance's client): checked before the builtins, its errors are OSErrors.
    if _is(exc, "curl_base"):
        if _is(exc, "curl_permanent"):
            return False
        status = http_status_of(exc)
        if status is not None:
            return is_retryable_status(status)
        if _is(exc, "curl_transient"):
            return True
        code = _valid_curl_code(getattr(exc, "code", None))
        return code in _TRANSIENT_CURL_CODES

    # requests.
    if _is(exc, "requests_http"):
        status = http_status_of(exc)
        return status is not None and is_retryable_status(status)
    if _is(exc, "requests_transient"):
        # requests' SSLError is a ConnectionError; a certificate that does not verify stays so.
        return "CERTIFICATE_VERIFY_FAILED" not in _message_of(exc)
    if _is(exc, "requests_base"):
        return False  # invalid URL, too many redirects, ...

    # The standard library.
    if isinstance(exc, urllib.error.HTTPError):
        return is_retryable_status(exc.code)
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        return isinstance(reason, BaseException) and _should_retry(reason, depth + 1)
    if isinstance(
        exc, TimeoutError | ConnectionError | socket.gaierror | http.client.IncompleteRead
    ):
        return True  # socket.timeout and asyncio.TimeoutError are TimeoutError
    if isinstance(exc, ssl.SSLError):
        # A handshake cut short is transient; a certificate that does not verify stays so.
        return not isinstance(exc, ssl.SSLCertVerificationError)
    if isinstance(exc, http.client.HTTPException):
        return isinstance(exc, http.client.RemoteDisconnected | http.client.BadStatusLine)
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError | LookupError | OSError):
        return False  # the request or the code is wrong; the same call fails the same way

    # Unknown types: what the exception says about itself, then what caused it.
    status = http_status_of(exc)
    if status is not None:
        return is_retryable_status(status)
    if _TRANSIENT_PHRASES.search(_message_of(exc)):
        return True
    cause = exc.__cause__
    if cause is not None and cause is not exc and depth < 5:
        return _should_retry(cause, depth + 1)
    return False


def _valid_curl_code(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------------
# Retry-After and log-safe descriptions
# --------------------------------------------------------------------------------------------------


def _header(headers: object, name: str) -> str | None:
    """A header's value from requests', curl_cffi's, urllib's or a plain mapping, case-insensitive."""
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is not None:
        for candidate in (name, name.lower()):
            try:
                value = getter(candidate)
            except Exception:  # noqa: BLE001 - odd header objects only cost us the hint
                value = None
            if value is not None:
                return str(value)
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == name.lower() and value is not None:
                return str(value)
    return None


def parse_retry_after(value: object, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: a number of seconds or an HTTP date.

    ``now`` is the reference time for dates (epoch seconds; default the wall clock). A date in the
    past gives 0. Anything unreadable gives None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        when = when.replace(tzinfo=dt.UTC)
    reference = time.time() if now is None else now
    return max(when.timestamp() - reference, 0.0)


def retry_after_of(exc: BaseException, *, now: float | None = None) -> float | None:
    """The wait in seconds the server asked for with ``Retry-After``, or None.

    Read from ``exc.retry_after`` (prawcore's TooManyRequests holds it as a string), then the
    response's headers (requests, curl_cffi), then ``exc.headers`` (urllib). An HTTP date is measured
    against the response's own ``Date`` header when it has one (immune to our clock's skew),
    otherwise against ``now`` (epoch seconds; default the wall clock).
    """
    response = getattr(exc, "response", None)
    response_headers = getattr(response, "headers", None) if response is not None else None
    candidates: list[tuple[object, object]] = [
        (getattr(exc, "retry_after", None), response_headers)
    ]
    candidates.append((_header(response_headers, "Retry-After"), response_headers))
    exc_headers = getattr(exc, "headers", None)
    candidates.append((_header(exc_headers, "Retry-After"), exc_headers))
    for value, headers in candidates:
        if value is None:
            continue
        reference = now
        server_date = _header(headers, "Date")
        if server_date is not None and not _is_number(value):
            try:
                reference = email.utils.parsedate_to_datetime(server_date).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError, AttributeError):
                reference = now
        seconds = parse_retry_after(value, now=reference)
        if seconds is not None:
            return seconds
    return None


def _is_number(value: object) -> bool:
    if isinstance(value, int | float):
        return True
    try:
        float(str(value).strip())
    except ValueError:
        return False
    return True


_DESCRIPTION_LIMIT = 200


def describe_failure(exc: BaseException) -> str:
    """A short, log-safe cause: class, HTTP status, Retry-After, wrapped error, redacted message.

    Never reads the request (headers, auth, body); URL query strings and secret-looking values in
    the message are redacted, and the message is cut to 200 characters.
    """
    parts = [type(exc).__name__]
    original = getattr(exc, "original_exception", None)
    if isinstance(original, BaseException):
        parts[0] += f" ({type(original).__name__})"
    status = http_status_of(exc)
    if status is not None:
        parts.append(f"HTTP {status}")
    retry_after = retry_after_of(exc)
    if retry_after is not None:
        parts.append(f"retry-after {retry_after:g} s")
    description = ", ".join(parts)
    message = " ".join(redact_secrets(_message_of(exc)).split())
    if len(message) > _DESCRIPTION_LIMIT:
        message = message[: _DESCRIPTION_LIMIT - 1] + "…"
    return f"{description}: {message}" if message else description


# --------------------------------------------------------------------------------------------------
# Retrying
# --------------------------------------------------------------------------------------------------

Outcome = Literal["succeeded", "permanent", "exhausted", "deadline"]


@dataclass(frozen=True)
class RetryEvent:
    """One retry about to happen: passed to ``on_retry`` before the sleep."""

    function: str
    attempt: int  # the attempt that just failed, 1-based
    max_attempts: int
    delay: float  # seconds about to be slept
    cause: str  # describe_failure(exception)
    status: int | None
    exception: BaseException = field(repr=False)


@dataclass(frozen=True)
class CallStatistics:
    """How one call went: attempts made, seconds slept and elapsed (injected clock), and why it ended."""

    attempts: int
    slept: float
    elapsed: float
    outcome: Outcome


class RetryStatistics:
    """The statistics of a decorated function's last finished call, per thread and asyncio context."""

    def __init__(self, function: str) -> None:
        self._last: contextvars.ContextVar[CallStatistics | None] = contextvars.ContextVar(
            f"retry_statistics:{function}", default=None
        )

    @property
    def last(self) -> CallStatistics | None:
        """The last call finished in this thread (or asyncio context), None before any."""
        return self._last.get()

    @property
    def attempts(self) -> int:
        """Attempts made by the last call (0 before any)."""
        last = self._last.get()
        return 0 if last is None else last.attempts

    def _record(self, statistics: CallStatistics) -> None:
        self._last.set(statistics)


class _CallState:
    """Mutable bookkeeping of one logical call, read by tenacity's hooks."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.started = clock()
        self.slept = 0.0
        self.outcome: Outcome = "succeeded"
        self.refused_delay = 0.0


def _function_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


class _Policy:
    """The retry policy of one decorated function, turned into tenacity pieces per call."""

    def __init__(
        self,
        fn: Callable[..., Any],
        config: RetryConfig,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        rng: UniformSource | None,
        logger: logging.Logger | None,
        on_retry: Callable[[RetryEvent], None] | None,
    ) -> None:
        if not isinstance(config, RetryConfig):
            raise TypeError(f"config must be a RetryConfig, got {config!r}")
        self.name = _function_name(fn)
        self.config = config
        self.clock = clock
        self.wall_clock = wall_clock
        self.rng: UniformSource = rng if rng is not None else random.Random()
        self.logger = logger if logger is not None else _logger
        self.on_retry = on_retry
        self.statistics = RetryStatistics(self.name)

    def tenacity_arguments(self, state: _CallState) -> dict[str, Any]:
        config = self.config

        def wait(retry_state: tenacity.RetryCallState) -> float:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            retry_after = None
            if exc is not None:
                retry_after = retry_after_of(exc, now=self.wall_clock())
            return config.delay_for(
                retry_state.attempt_number, rng=self.rng, retry_after=retry_after
            )

        def stop(retry_state: tenacity.RetryCallState) -> bool:
            if retry_state.attempt_number >= config.max_attempts:
                state.outcome = "exhausted"
                return True
            elapsed = self.clock() - state.started
            if elapsed + retry_state.upcoming_sleep > float(config.deadline):  # type: ignore[arg-type]
                state.outcome = "deadline"
                state.refused_delay = retry_state.upcoming_sleep
                return True
            return False

        def retry(retry_state: tenacity.RetryCallState) -> bool:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            if exc is None:
                return False
            if should_retry(exc):
                return True
            state.outcome = "permanent"
            return False

        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            assert exc is not None  # tenacity only sleeps after a failure we chose to retry
            delay = retry_state.upcoming_sleep
            state.slept += delay
            cause = describe_failure(exc)
            self.logger.warning(
                "retry %s: attempt %d/%d failed (%s); sleeping %.2f s",
                self.name,
                retry_state.attempt_number,
                config.max_attempts,
                cause,
                delay,
                extra={
                    "retry_function": self.name,
                    "retry_attempt": retry_state.attempt_number,
                    "retry_max_attempts": config.max_attempts,
                    "retry_delay": delay,
                    "retry_cause": cause,
                },
            )
            if self.on_retry is not None:
                self.on_retry(
                    RetryEvent(
                        function=self.name,
                        attempt=retry_state.attempt_number,
                        max_attempts=config.max_attempts,
                        delay=delay,
                        cause=cause,
                        status=http_status_of(exc),
                        exception=exc,
                    )
                )

        return {
            "stop": stop,
            "wait": wait,
            "retry": retry,
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def finish(self, state: _CallState, attempts: int, exc: BaseException | None) -> None:
        """Record the call's statistics; log and annotate a failure we stop on."""
        if exc is not None and state.outcome == "succeeded":
            # Raised without tenacity asking us (cannot happen with our predicate); be truthful.
            state.outcome = "permanent"
        statistics = CallStatistics(
            attempts=attempts,
            slept=state.slept,
            elapsed=self.clock() - state.started,
            outcome=state.outcome,
        )
        self.statistics._record(statistics)
        if exc is None:
            return
        cause = describe_failure(exc)
        if state.outcome == "permanent":
            self.logger.info(
                "retry %s: attempt %d/%d failed permanently (%s); not retrying",
                self.name,
                attempts,
                self.config.max_attempts,
                cause,
            )
            return
        if state.outcome == "deadline":
            why = (
                f"the next sleep of {state.refused_delay:.2f} s would pass the "
                f"{float(self.config.deadline):g} s deadline"  # type: ignore[arg-type]
            )
        else:
            why = "no attempts left"
        self.logger.warning(
            "retry %s: giving up after attempt %d/%d (%s): %s",
            self.name,
            attempts,
            self.config.max_attempts,
            cause,
            why,
        )
        if hasattr(exc, "add_note"):
            exc.add_note(
                f"tft_pipeline.retry: {self.name} gave up after {attempts} attempt(s): {why}"
            )


def _resolve_config(
    config: RetryConfig | Callable[..., Any],
) -> tuple[RetryConfig, Callable | None]:
    # ``@retry_with_backoff`` without parentheses passes the function as ``config``.
    if callable(config) and not isinstance(config, RetryConfig):
        return GENERIC_CONFIG, config
    return config, None


def retry_with_backoff(
    config: RetryConfig = GENERIC_CONFIG,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    rng: UniformSource | None = None,
    logger: logging.Logger | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> Callable[[F], F]:
    """Decorate a function so transient failures (``should_retry``) are retried with backoff.

    Up to ``config.max_attempts`` attempts, stopping early when the next sleep would pass
    ``config.deadline`` (measured with ``clock``). Permanent failures raise at once. The last
    failure is re-raised as the original exception (with a note saying why retrying stopped).
    ``wall_clock`` dates ``Retry-After`` HTTP dates; ``rng`` draws the jitter (default a private
    ``random.Random``). The wrapper's ``retry_statistics.last`` tells how the last call went.
    """
    config, bare_function = _resolve_config(config)

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"{_function_name(fn)} is a coroutine function: use retry_with_backoff_async"
            )
        policy = _Policy(
            fn,
            config,
            clock=clock,
            wall_clock=wall_clock,
            rng=rng,
            logger=logger,
            on_retry=on_retry,
        )

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = _CallState(clock)
            retrying = tenacity.Retrying(sleep=sleep, **policy.tenacity_arguments(state))
            attempts = 0

            def attempt() -> Any:
                nonlocal attempts
                attempts += 1
                return fn(*args, **kwargs)

            try:
                result = retrying(attempt)
            except BaseException as exc:
                policy.finish(state, attempts, exc)
                raise
            policy.finish(state, attempts, None)
            return result

        wrapper.retry_statistics = policy.statistics  # type: ignore[attr-defined]
        wrapper.retry_config = config  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate(bare_function) if bare_function is not None else decorate  # type: ignore[return-value]


def retry_with_backoff_async(
    config: RetryConfig = GENERIC_CONFIG,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    rng: UniformSource | None = None,
    logger: logging.Logger | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> Callable[[F], F]:
    """``retry_with_backoff`` for coroutine functions; ``sleep`` is awaited (``asyncio.sleep``)."""
    config, bare_function = _resolve_config(config)

    def decorate(fn: F) -> F:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"{_function_name(fn)} is not a coroutine function: use retry_with_backoff"
            )
        policy = _Policy(
            fn,
            config,
            clock=clock,
            wall_clock=wall_clock,
            rng=rng,
            logger=logger,
            on_retry=on_retry,
        )

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = _CallState(clock)
            retrying = tenacity.AsyncRetrying(sleep=sleep, **policy.tenacity_arguments(state))
            attempts = 0

            async def attempt() -> Any:
                nonlocal attempts
                attempts += 1
                return await fn(*args, **kwargs)

            try:
                result = await retrying(attempt)
            except BaseException as exc:
                policy.finish(state, attempts, exc)
                raise
            policy.finish(state, attempts, None)
            return result

        wrapper.retry_statistics = policy.statistics  # type: ignore[attr-defined]
        wrapper.retry_config = config  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate(bare_function) if bare_function is not None else decorate  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# Rate limiting
# --------------------------------------------------------------------------------------------------


class RateLimiter:
    """Spaces calls at most ``per_second`` apart, across threads.

    Each caller reserves the next free slot under a lock and sleeps outside it, so threads never
    share a slot and a sleeping thread does not block the others from reserving. Slots are spaced
    from the previous slot, not from when a sleep returned, so oversleeping does not lower the rate;
    idle time is not banked, so there are no bursts after a pause.
    """

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (math.isfinite(per_second) and per_second > 0):
            raise ValueError(f"per_second must be a finite number > 0, got {per_second!r}")
        self.per_second = float(per_second)
        self.interval = 1.0 / self.per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: float | None = None

    def reserve(self) -> float:
        """Take the next slot and return the seconds until it starts (0 when it is now)."""
        with self._lock:
            now = self._clock()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + self.interval
        return slot - now

    def wait_if_needed(self) -> float:
        """Block until this caller's slot; return the seconds slept."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return delay

    async def wait_if_needed_async(
        self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> float:
        """``wait_if_needed`` for coroutines: the slot is reserved the same way, the wait awaited."""
        delay = self.reserve()
        if delay > 0:
            await sleep(delay)
        return delay


__all__ = [
    "GENERIC_CONFIG",
    "LOGGER_NAME",
    "REDDIT_CONFIG",
    "YFINANCE_CONFIG",
    "CallStatistics",
    "RateLimiter",
    "RetryConfig",
    "RetryEvent",
    "RetryStatistics",
    "describe_failure",
    "http_status_of",
    "is_retryable_status",
    "parse_retry_after",
    "redact_secrets",
    "retry_after_of",
    "retry_with_backoff",
    "retry_with_backoff_async",
    "should_retry",
]
