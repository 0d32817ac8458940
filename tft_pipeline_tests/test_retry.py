"""Tests of tft_pipeline.retry: classification, delays, Retry-After, deadline, logging, rate limiting."""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import http.server
import itertools
import json
import logging
import socket
import ssl
import sys
import threading
import time
import urllib.error
from email.message import Message
from typing import Self

import prawcore
import prawcore.exceptions as praw_errors
import prawcore.sessions
import prawcore.util
import pytest
import requests
import requests.exceptions as requests_errors
import tenacity
import yfinance.exceptions as yf_errors
from curl_cffi import requests as curl_requests
from curl_cffi.const import CurlECode
from curl_cffi.curl import CurlError
from curl_cffi.requests import Headers as CurlHeaders
from curl_cffi.requests import Response as CurlResponse
from curl_cffi.requests import exceptions as curl_errors
from curl_cffi.requests.exceptions import code2error
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_pipeline.retry import (
    GENERIC_CONFIG,
    LOGGER_NAME,
    REDDIT_CONFIG,
    YFINANCE_CONFIG,
    CallStatistics,
    RateLimiter,
    RetryConfig,
    RetryEvent,
    describe_failure,
    http_status_of,
    is_retryable_status,
    parse_retry_after,
    redact_secrets,
    retry_after_of,
    retry_with_backoff,
    retry_with_backoff_async,
    should_retry,
)

SECRET = "s3cr3t-T0KEN-value"


# --------------------------------------------------------------------------------------------------
# Fakes
# --------------------------------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock that only moves when someone sleeps on it (or ``advance`` is called)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FixedDraw:
    """A jitter source that always draws the same value in [0, 1]."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


MIDDLE = FixedDraw(0.5)  # jitter factor exactly 1.0


def reddit_response(
    status: int, headers: dict[str, str] | None = None, url: str | None = None
) -> requests.Response:
    """A real ``requests.Response`` as prawcore and requests see it, with a secret in its request."""
    response = requests.Response()
    response.status_code = status
    response.reason = http.client.responses.get(status, "")
    response.headers.update(headers or {})
    response._content = b'{"message": "nope"}'
    response.url = url or f"https://oauth.reddit.com/r/stocks/new?limit=100&access_token={SECRET}"
    response.request = requests.Request(
        "GET",
        response.url,
        headers={"Authorization": f"bearer {SECRET}", "User-Agent": "tft-tests"},
    ).prepare()
    return response


def requests_http_error(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    """What ``response.raise_for_status()`` raises, message and all."""
    response = reddit_response(status, headers)
    try:
        response.raise_for_status()
    except requests.HTTPError as error:
        return error
    raise AssertionError(f"{status} did not raise")


def curl_response(status: int, headers: dict[str, str] | None = None) -> CurlResponse:
    response = CurlResponse()
    response.status_code = status
    response.ok = 200 <= status < 400  # as curl_cffi's session sets it from the transfer
    response.headers = CurlHeaders(headers or {})
    response.url = f"https://query2.finance.yahoo.com/v8/finance/chart/AAPL?crumb={SECRET}"
    return response


def curl_http_error(status: int, headers: dict[str, str] | None = None) -> curl_errors.HTTPError:
    response = curl_response(status, headers)
    try:
        response.raise_for_status()
    except curl_errors.HTTPError as error:
        return error
    raise AssertionError(f"{status} did not raise")


def curl_transport_error(code: CurlECode, message: str) -> curl_errors.RequestException:
    """The exception curl_cffi's session raises for a failed transfer (see Session.request)."""
    error_class = code2error(code, message)
    return error_class(message, code, curl_response(0))


def prawcore_bare_key_error() -> KeyError:
    """prawcore's own bug, raised by its real code: a 401 without ``www-authenticate``."""
    try:
        prawcore.util.authorization_error_class(reddit_response(401))
    except KeyError as error:
        return error
    raise AssertionError("prawcore no longer raises KeyError for a bare 401")


def prawcore_request_error(original: Exception) -> praw_errors.RequestException:
    return praw_errors.RequestException(
        original, ("GET", f"https://oauth.reddit.com/x?token={SECRET}"), {"timeout": 16}
    )


# --------------------------------------------------------------------------------------------------
# Configs and delays
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "retries", "base", "cap"),
    [
        (REDDIT_CONFIG, 5, 2.0, 120.0),
        (YFINANCE_CONFIG, 3, 1.0, 30.0),
        (GENERIC_CONFIG, 5, 1.0, 60.0),
    ],
)
def test_configs_hold_the_contract_numbers(config, retries, base, cap):
    assert (config.max_retries, config.base_delay, config.max_delay) == (retries, base, cap)
    assert config.jitter == pytest.approx(0.10)
    assert config.max_attempts == retries + 1
    assert config.deadline == pytest.approx(cap * (retries + 1))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (REDDIT_CONFIG, [2, 4, 8, 16, 32]),
        (YFINANCE_CONFIG, [1, 2, 4]),
        (GENERIC_CONFIG, [1, 2, 4, 8, 16]),
    ],
)
def test_delays_double_each_attempt_and_jitter_spans_ten_percent_both_ways(config, expected):
    attempts = range(1, config.max_attempts)
    assert [config.delay_for(n) for n in attempts] == expected
    assert [config.delay_for(n, rng=MIDDLE) for n in attempts] == pytest.approx(expected)
    assert [config.delay_for(n, rng=FixedDraw(0.0)) for n in attempts] == pytest.approx(
        [0.9 * d for d in expected]
    )
    assert [config.delay_for(n, rng=FixedDraw(1.0)) for n in attempts] == pytest.approx(
        [1.1 * d for d in expected]
    )


def test_delays_are_capped_even_at_the_top_of_the_jitter():
    assert REDDIT_CONFIG.delay_for(7) == 120.0  # nominal 128
    assert REDDIT_CONFIG.delay_for(7, rng=FixedDraw(1.0)) == 120.0
    assert REDDIT_CONFIG.delay_for(7, rng=FixedDraw(0.0)) == pytest.approx(115.2)  # 0.9 * 128
    assert YFINANCE_CONFIG.delay_for(1000, rng=FixedDraw(1.0)) == 30.0  # no float overflow


def test_retry_after_replaces_the_computed_delay_within_the_cap():
    assert YFINANCE_CONFIG.delay_for(1, retry_after=7.0, rng=FixedDraw(1.0)) == 7.0
    assert YFINANCE_CONFIG.delay_for(3, retry_after=0.5) == 0.5
    assert YFINANCE_CONFIG.delay_for(1, retry_after=600.0) == 30.0
    assert YFINANCE_CONFIG.delay_for(1, retry_after=-3.0) == 0.0


def test_max_total_sleep_bounds_a_call():
    # 1.1 * (1 + 2 + 4): the most three jittered sleeps can add up to.
    assert YFINANCE_CONFIG.max_total_sleep == pytest.approx(7.7)
    assert RetryConfig(3, 10.0, 10.0, deadline=15.0).max_total_sleep == 15.0


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_retries": -1, "base_delay": 1.0, "max_delay": 2.0},
        {"max_retries": 2.5, "base_delay": 1.0, "max_delay": 2.0},
        {"max_retries": 2, "base_delay": -1.0, "max_delay": 2.0},
        {"max_retries": 2, "base_delay": 1.0, "max_delay": float("nan")},
        {"max_retries": 2, "base_delay": 1.0, "max_delay": 2.0, "jitter": 1.0},
        {"max_retries": 2, "base_delay": 1.0, "max_delay": 2.0, "deadline": 0.0},
    ],
)
def test_nonsense_configs_are_refused(arguments):
    with pytest.raises((ValueError, TypeError)):
        RetryConfig(**arguments)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        REDDIT_CONFIG.max_retries = 10  # type: ignore[misc]


configs = st.builds(
    RetryConfig,
    max_retries=st.integers(0, 12),
    base_delay=st.floats(0, 100, allow_nan=False),
    max_delay=st.floats(0, 1000, allow_nan=False),
    jitter=st.floats(0, 0.99),
)


@given(config=configs, attempt=st.integers(1, 200), draw=st.floats(0, 1))
def test_every_delay_lies_between_zero_and_the_cap(config, attempt, draw):
    delay = config.delay_for(attempt, rng=FixedDraw(draw))
    assert 0.0 <= delay <= config.max_delay
    nominal = config.base_delay * 2.0 ** min(attempt - 1, 64)
    assert delay >= min(nominal * (1 - config.jitter), config.max_delay) * (1 - 1e-12)


@given(config=configs, attempt=st.integers(1, 199))
def test_without_jitter_delays_never_decrease(config, attempt):
    assert config.delay_for(attempt) <= config.delay_for(attempt + 1)


@given(
    config=configs,
    attempt=st.integers(1, 50),
    retry_after=st.floats(-1e6, 1e6, allow_nan=False),
    draw=st.floats(0, 1),
)
def test_retry_after_is_used_exactly_when_it_fits_under_the_cap(config, attempt, retry_after, draw):
    delay = config.delay_for(attempt, rng=FixedDraw(draw), retry_after=retry_after)
    assert delay == min(max(retry_after, 0.0), config.max_delay)


# --------------------------------------------------------------------------------------------------
# Retry-After parsing
# --------------------------------------------------------------------------------------------------

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 2.5 ", 2.5),
        (7, 7.0),
        (1.25, 1.25),
        ("-4", 0.0),
        (email.utils.formatdate(NOW + 42, usegmt=True), 42.0),
        (email.utils.formatdate(NOW - 42, usegmt=True), 0.0),
        ("Tue, 14 Nov 2023 22:14:00 GMT", 40.0),
        ("soon", None),
        ("", None),
        ("inf", None),
        ("nan", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_prawcore_too_many_requests_retry_after_is_a_string_and_is_read():
    error = praw_errors.TooManyRequests(reddit_response(429, {"Retry-After": "13"}))
    assert error.retry_after == "13"  # the fact this handles
    assert retry_after_of(error) == 13.0


def test_retry_after_is_read_from_requests_curl_and_urllib_headers_in_any_case():
    assert retry_after_of(requests_http_error(503, {"retry-after": "4"})) == 4.0
    assert retry_after_of(curl_http_error(429, {"Retry-After": "9"})) == 9.0
    headers = Message()
    headers["Retry-After"] = "11"
    urllib_error = urllib.error.HTTPError("http://x", 503, "busy", headers, None)
    assert retry_after_of(urllib_error) == 11.0
    assert retry_after_of(requests_http_error(503)) is None
    assert retry_after_of(ValueError("x")) is None


def test_an_http_date_is_measured_against_the_servers_own_date_header():
    server_now = NOW + 3600  # our clock is an hour behind the server's
    error = requests_http_error(
        429,
        {
            "Retry-After": email.utils.formatdate(server_now + 20, usegmt=True),
            "Date": email.utils.formatdate(server_now, usegmt=True),
        },
    )
    assert retry_after_of(error, now=NOW) == 20.0


@given(st.text())
def test_parse_retry_after_never_raises(text):
    result = parse_retry_after(text, now=NOW)
    assert result is None or result >= 0.0


# --------------------------------------------------------------------------------------------------
# Classification over real exception instances
# --------------------------------------------------------------------------------------------------

TRANSIENT_CASES = {
    # prawcore
    "prawcore 429": lambda: praw_errors.TooManyRequests(reddit_response(429, {"Retry-After": "2"})),
    "prawcore 500": lambda: praw_errors.ServerError(reddit_response(500)),
    "prawcore 502": lambda: praw_errors.ServerError(reddit_response(502)),
    "prawcore 503": lambda: praw_errors.ServerError(reddit_response(503)),
    "prawcore 504": lambda: praw_errors.ServerError(reddit_response(504)),
    "prawcore 520": lambda: praw_errors.ServerError(reddit_response(520)),
    "prawcore 522": lambda: praw_errors.ServerError(reddit_response(522)),
    "prawcore token endpoint 500": lambda: praw_errors.ResponseException(reddit_response(500)),
    "prawcore 408": lambda: praw_errors.ResponseException(reddit_response(408)),
    "prawcore connection refused": lambda: prawcore_request_error(
        requests_errors.ConnectionError("Connection refused")
    ),
    "prawcore read timeout": lambda: prawcore_request_error(requests_errors.ReadTimeout("slow")),
    "prawcore bad json": lambda: praw_errors.BadJSON(reddit_response(200)),
    # requests
    "requests 429": lambda: requests_http_error(429),
    "requests 503": lambda: requests_http_error(503),
    "requests 504": lambda: requests_http_error(504),
    "requests connection": lambda: requests_errors.ConnectionError("reset by peer"),
    "requests connect timeout": lambda: requests_errors.ConnectTimeout("slow"),
    "requests read timeout": lambda: requests_errors.ReadTimeout("slow"),
    "requests chunked": lambda: requests_errors.ChunkedEncodingError("cut"),
    # curl_cffi (yfinance's client)
    "curl timeout": lambda: curl_transport_error(
        CurlECode.OPERATION_TIMEDOUT, "curl: (28) Operation timed out after 10000 milliseconds"
    ),
    "curl connect": lambda: curl_transport_error(
        CurlECode.COULDNT_CONNECT, "curl: (7) Failed to connect to 127.0.0.1 port 9"
    ),
    "curl dns": lambda: curl_transport_error(
        CurlECode.COULDNT_RESOLVE_HOST, "curl: (6) Could not resolve host"
    ),
    "curl recv": lambda: curl_transport_error(CurlECode.RECV_ERROR, "curl: (56) Recv failure"),
    "curl http2 stream": lambda: curl_transport_error(CurlECode.HTTP2_STREAM, "curl: (92) stream"),
    "curl 429": lambda: curl_http_error(429),
    "curl 503": lambda: curl_http_error(503),
    "curl raw CurlError 28": lambda: CurlError(
        "curl: (28) timed out", CurlECode.OPERATION_TIMEDOUT
    ),
    # yfinance
    "yfinance rate limit": yf_errors.YFRateLimitError,
    # the standard library
    "TimeoutError (also socket.timeout)": lambda: TimeoutError("timed out"),
    "socket.gaierror": lambda: socket.gaierror(-3, "Temporary failure in name resolution"),
    "ConnectionResetError": ConnectionResetError,
    "ConnectionRefusedError": ConnectionRefusedError,
    "BrokenPipeError": BrokenPipeError,
    "RemoteDisconnected": lambda: http.client.RemoteDisconnected("closed"),
    "urllib 503": lambda: urllib.error.HTTPError("http://x", 503, "busy", Message(), None),
    "urllib refused": lambda: urllib.error.URLError(ConnectionRefusedError(111, "refused")),
    "ssl eof": lambda: ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
    # messages, as the last resort
    "bare 429": lambda: Exception("429"),
    "requests-style message": lambda: RuntimeError("503 Server Error: Service Unavailable"),
    "HTTP Error 502": lambda: Exception("HTTP Error 502: Bad Gateway"),
    "status code": lambda: Exception("upstream said status code 500"),
    "too many requests text": lambda: Exception("Too Many Requests. Rate limited."),
}

PERMANENT_CASES = {
    # prawcore
    "prawcore invalid token": lambda: praw_errors.InvalidToken(reddit_response(401)),
    "prawcore bare KeyError 401": prawcore_bare_key_error,
    "prawcore forbidden": lambda: praw_errors.Forbidden(reddit_response(403)),
    "prawcore insufficient scope": lambda: praw_errors.InsufficientScope(reddit_response(403)),
    "prawcore not found": lambda: praw_errors.NotFound(reddit_response(404)),
    "prawcore redirect": lambda: praw_errors.Redirect(
        reddit_response(302, {"location": "https://www.reddit.com/subreddits/search"})
    ),
    "prawcore oauth": lambda: praw_errors.OAuthException(reddit_response(200), "invalid_grant"),
    "prawcore token endpoint 401": lambda: praw_errors.ResponseException(reddit_response(401)),
    "prawcore bad request": lambda: praw_errors.BadRequest(reddit_response(400)),
    "prawcore wrapped invalid url": lambda: prawcore_request_error(requests_errors.InvalidURL("x")),
    # requests
    "requests 400": lambda: requests_http_error(400),
    "requests 401": lambda: requests_http_error(401),
    "requests 403": lambda: requests_http_error(403),
    "requests 404": lambda: requests_http_error(404),
    "requests 422": lambda: requests_http_error(422),
    "requests too many redirects": lambda: requests_errors.TooManyRedirects("loop"),
    "requests invalid url": lambda: requests_errors.InvalidURL("bad"),
    "requests certificate": lambda: requests_errors.SSLError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    ),
    # curl_cffi
    "curl 404": lambda: curl_http_error(404),
    "curl 401": lambda: curl_http_error(401),
    "curl certificate": lambda: curl_transport_error(
        CurlECode.PEER_FAILED_VERIFICATION, "curl: (60) SSL certificate problem"
    ),
    "curl invalid url": lambda: curl_transport_error(CurlECode.URL_MALFORMAT, "curl: (3) bad URL"),
    "curl too many redirects": lambda: curl_transport_error(
        CurlECode.TOO_MANY_REDIRECTS, "curl: (47) redirects"
    ),
    "curl session closed": lambda: curl_errors.SessionClosed("closed"),
    "curl unknown code 0": lambda: curl_errors.RequestException("something", 0),
    # yfinance
    "yfinance tz missing": lambda: yf_errors.YFTzMissingError("NOPE"),
    "yfinance prices missing": lambda: yf_errors.YFPricesMissingError("NOPE", "(1d 2024-01-02)"),
    "yfinance ticker missing": lambda: yf_errors.YFTickerMissingError("NOPE", "gone"),
    "yfinance invalid period": lambda: yf_errors.YFInvalidPeriodError("AAPL", "7y", ["1y"]),
    # the standard library and plain bugs
    "ValueError": lambda: ValueError("bad value"),
    "ValueError with a 503 in it": lambda: ValueError("503 Server Error"),
    "KeyError": lambda: KeyError("close"),
    "TypeError": lambda: TypeError("nope"),
    "FileNotFoundError": lambda: FileNotFoundError(2, "missing"),
    "urllib 404": lambda: urllib.error.HTTPError("http://x", 404, "nf", Message(), None),
    "urllib unknown scheme": lambda: urllib.error.URLError("unknown url type: foo"),
    "ssl certificate": lambda: ssl.SSLCertVerificationError(1, "certificate verify failed"),
    "KeyboardInterrupt": KeyboardInterrupt,
    "CancelledError": asyncio.CancelledError,
    # messages
    "HTTP Error 404": lambda: Exception("HTTP Error 404: Not Found"),
    "403 Client Error": lambda: RuntimeError("403 Client Error: Forbidden for url"),
    "no hint at all": lambda: Exception("something broke"),
}


@pytest.mark.parametrize("make_error", TRANSIENT_CASES.values(), ids=TRANSIENT_CASES.keys())
def test_transient_failures_are_retried(make_error):
    assert should_retry(make_error()) is True


@pytest.mark.parametrize("make_error", PERMANENT_CASES.values(), ids=PERMANENT_CASES.keys())
def test_permanent_failures_are_not_retried(make_error):
    assert should_retry(make_error()) is False


def test_wrapped_errors_are_judged_by_their_explicit_cause():
    def wrapped(cause: BaseException) -> Exception:
        try:
            raise RuntimeError("fetching r/stocks failed") from cause
        except RuntimeError as error:
            return error

    assert should_retry(wrapped(requests_errors.ConnectionError("reset"))) is True
    assert should_retry(wrapped(praw_errors.NotFound(reddit_response(404)))) is False
    assert http_status_of(wrapped(requests_http_error(503))) == 503


@pytest.mark.parametrize(
    ("make_error", "status"),
    [
        (lambda: praw_errors.TooManyRequests(reddit_response(429)), 429),
        (lambda: praw_errors.ServerError(reddit_response(522)), 522),
        (
            lambda: praw_errors.Redirect(reddit_response(302, {"location": "/subreddits/search"})),
            302,
        ),
        (prawcore_bare_key_error, 401),
        (lambda: requests_http_error(404), 404),
        (lambda: curl_http_error(503), 503),
        (yf_errors.YFRateLimitError, 429),
        (lambda: urllib.error.HTTPError("http://x", 408, "slow", Message(), None), 408),
        (lambda: Exception("HTTP Error 404: Not Found"), 404),
        (lambda: Exception("503 Server Error: Service Unavailable for url: http://x"), 503),
        (lambda: Exception("received 502 HTTP response"), 502),
        (lambda: Exception("HTTP/1.1 504 Gateway Timeout"), 504),
        (lambda: Exception("Too many requests (429)"), 429),
        (lambda: Exception("status=503"), 503),
        # Transport errors carry no HTTP status, whatever numbers their messages hold.
        (lambda: curl_transport_error(CurlECode.OPERATION_TIMEDOUT, "after 500 ms"), None),
        (lambda: requests_errors.ConnectionError("port=443 refused"), None),
        (lambda: KeyError(401), None),  # a KeyError(401) of our own is just a missing key
        (lambda: prawcore_request_error(requests_errors.ReadTimeout("x")), None),
        (lambda: Exception("ticker 500 has no data on port 5000"), None),
    ],
)
def test_http_status_of_reads_the_status_an_error_carries(make_error, status):
    assert http_status_of(make_error()) == status


@settings(max_examples=200)
@given(
    status=st.integers(400, 599),
    template=st.sampled_from(["HTTP Error {}: x", "{} Server Error: y"]),
)
def test_status_in_a_message_decides_as_the_status_would(status, template):
    error = RuntimeError(template.format(status))
    assert http_status_of(error) == status
    assert should_retry(error) is is_retryable_status(status)
    assert should_retry(error) is (status in (408, 425, 429) or status >= 500)


@given(st.text())
def test_classification_never_raises_on_any_message(text):
    error = RuntimeError(text)
    assert should_retry(error) in (True, False)
    status = http_status_of(error)
    assert status is None or 300 <= status <= 599
    assert isinstance(describe_failure(error), str)


def test_classification_survives_a_broken_str():
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("boom")

    assert should_retry(Unprintable()) is False
    assert describe_failure(Unprintable()) == "Unprintable"


# --------------------------------------------------------------------------------------------------
# describe_failure: readable and free of secrets
# --------------------------------------------------------------------------------------------------


def test_describe_failure_names_class_status_retry_after_and_wrapped_error():
    too_many = praw_errors.TooManyRequests(reddit_response(429, {"Retry-After": "3"}))
    assert describe_failure(too_many).startswith("TooManyRequests, HTTP 429, retry-after 3 s: ")
    wrapped = prawcore_request_error(requests_errors.ReadTimeout("read timed out"))
    assert describe_failure(wrapped).startswith("RequestException (ReadTimeout): ")
    assert describe_failure(TimeoutError()) == "TimeoutError"


def test_describe_failure_shows_no_secret_of_the_request_or_the_url():
    error = requests_http_error(503)
    assert SECRET in str(error)  # requests puts the full URL, query and all, in its message
    assert error.request.headers["Authorization"].endswith(SECRET)
    description = describe_failure(error)
    assert SECRET not in description
    assert "503" in description and "oauth.reddit.com/r/stocks/new" in description


@pytest.mark.parametrize(
    "message",
    [
        f"GET https://oauth.reddit.com/api?access_token={SECRET}&x=1 failed",
        f"https://user:{SECRET}@proxy.example:8080 refused",
        f"headers={{'Authorization': 'bearer {SECRET}'}}",
        f"Authorization: Bearer {SECRET}",
        f"password={SECRET}",
        f"client_secret: '{SECRET}'",
        f"crumb={SECRET}",
        f"cookie: A3={SECRET}",
        f'token endpoint answered {{"access_token": "{SECRET}", "token_type": "bearer"}}',
    ],
)
def test_secrets_in_messages_are_redacted(message):
    assert SECRET not in describe_failure(RuntimeError(message))


@given(
    secret=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~", min_size=8
    ),
    key=st.sampled_from(["token", "access_token", "crumb", "password", "api_key", "sig"]),
)
def test_query_strings_never_reach_the_description(secret, key):
    message = f"503 Server Error for url: https://host.example/path/x?{key}={secret}"
    assert secret not in describe_failure(RuntimeError(message))


def test_long_messages_are_cut():
    assert len(describe_failure(RuntimeError("x" * 5000))) < 260


def test_redact_secrets_keeps_what_is_not_secret():
    text = "Failed to connect to query2.finance.yahoo.com port 443 after 10 ms"
    assert redact_secrets(text) == text


# --------------------------------------------------------------------------------------------------
# The decorators
# --------------------------------------------------------------------------------------------------


class Flaky:
    """A callable that raises the given exceptions in turn, then returns ``result``."""

    def __init__(self, failures: list[BaseException], result: object = "ok") -> None:
        self.failures = list(failures)
        self.result = result
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.result


def decorate(config: RetryConfig, clock: FakeTime, **kwargs):
    kwargs.setdefault("rng", MIDDLE)
    return retry_with_backoff(config, sleep=clock.sleep, clock=clock, **kwargs)


def test_transient_failures_then_success_returns_the_value_after_backoff():
    clock = FakeTime()
    flaky = Flaky([praw_errors.ServerError(reddit_response(503)), requests_errors.ReadTimeout("x")])
    fetch = decorate(REDDIT_CONFIG, clock)(flaky)
    assert fetch() == "ok"
    assert flaky.calls == 3
    assert clock.sleeps == [2.0, 4.0]
    assert fetch.retry_statistics.last == CallStatistics(
        attempts=3, slept=6.0, elapsed=6.0, outcome="succeeded"
    )


def test_jitter_is_drawn_from_the_injected_rng():
    clock = FakeTime()
    fetch = decorate(GENERIC_CONFIG, clock, rng=FixedDraw(0.0))(Flaky([TimeoutError()] * 3))
    fetch()
    assert clock.sleeps == pytest.approx([0.9, 1.8, 3.6])


@pytest.mark.parametrize(
    "make_error",
    [
        PERMANENT_CASES[name]
        for name in (
            "prawcore not found",
            "prawcore forbidden",
            "prawcore invalid token",
            "prawcore bare KeyError 401",
            "requests 401",
            "yfinance prices missing",
            "ValueError",
        )
    ],
)
def test_permanent_errors_raise_after_exactly_one_attempt(make_error):
    clock = FakeTime()
    error = make_error()
    flaky = Flaky([error])
    fetch = decorate(REDDIT_CONFIG, clock)(flaky)
    with pytest.raises(type(error)) as raised:
        fetch()
    assert raised.value is error
    assert flaky.calls == 1
    assert clock.sleeps == []
    assert fetch.retry_statistics.last.outcome == "permanent"
    assert fetch.retry_statistics.attempts == 1


@pytest.mark.parametrize("config", [REDDIT_CONFIG, YFINANCE_CONFIG, GENERIC_CONFIG])
def test_exhausted_retries_reraise_the_original_exception(config):
    clock = FakeTime()
    errors = [praw_errors.ServerError(reddit_response(502)) for _ in range(config.max_attempts)]
    flaky = Flaky(errors)
    fetch = decorate(config, clock)(flaky)
    with pytest.raises(praw_errors.ServerError) as raised:
        fetch()
    assert not isinstance(raised.value, tenacity.RetryError)
    assert raised.value is errors[-1]
    assert flaky.calls == config.max_retries + 1
    assert fetch.retry_statistics.last.attempts == config.max_retries + 1
    assert fetch.retry_statistics.last.outcome == "exhausted"
    assert clock.sleeps == [config.delay_for(n) for n in range(1, config.max_attempts)]
    assert any("gave up after" in note for note in raised.value.__notes__)


def test_retry_after_from_the_server_is_slept_instead_of_the_backoff():
    clock = FakeTime()
    flaky = Flaky(
        [
            praw_errors.TooManyRequests(reddit_response(429, {"Retry-After": "7"})),
            curl_http_error(429, {"Retry-After": "600"}),  # more than the 30 s cap
        ]
    )
    fetch = decorate(YFINANCE_CONFIG, clock, rng=FixedDraw(1.0))(flaky)
    assert fetch() == "ok"
    assert clock.sleeps == [7.0, 30.0]


def test_retry_after_http_date_is_measured_on_the_injected_wall_clock():
    clock = FakeTime()
    retry_at = email.utils.formatdate(NOW + 12, usegmt=True)
    flaky = Flaky([requests_http_error(503, {"Retry-After": retry_at})])
    fetch = decorate(GENERIC_CONFIG, clock, wall_clock=lambda: NOW)(flaky)
    fetch()
    assert clock.sleeps == [12.0]


def test_the_deadline_stops_retrying_before_a_sleep_would_pass_it():
    clock = FakeTime()
    config = RetryConfig(max_retries=10, base_delay=4.0, max_delay=100.0, deadline=20.0)

    def slow_failure():
        clock.advance(1.0)  # each attempt takes a second
        raise TimeoutError("read timed out")

    fetch = decorate(config, clock)(slow_failure)
    with pytest.raises(TimeoutError):
        fetch()
    # t=1 fail, sleep 4; t=6 fail, sleep 8; t=15 fail: a 16 s sleep would end at 31 > 20.
    assert clock.sleeps == [4.0, 8.0]
    assert fetch.retry_statistics.last == CallStatistics(
        attempts=3, slept=12.0, elapsed=15.0, outcome="deadline"
    )


def test_a_retry_after_longer_than_the_remaining_deadline_stops_at_once():
    clock = FakeTime()
    config = RetryConfig(max_retries=5, base_delay=1.0, max_delay=60.0, deadline=30.0)
    flaky = Flaky([praw_errors.TooManyRequests(reddit_response(429, {"Retry-After": "45"}))])
    fetch = decorate(config, clock)(flaky)
    with pytest.raises(praw_errors.TooManyRequests):
        fetch()
    assert flaky.calls == 1 and clock.sleeps == []


def test_on_retry_sees_every_retry_with_attempt_delay_and_cause():
    clock = FakeTime()
    events: list[RetryEvent] = []
    errors = [requests_http_error(503), ConnectionResetError("reset")]
    fetch = decorate(REDDIT_CONFIG, clock, on_retry=events.append)(Flaky(errors))
    fetch()
    assert [(e.attempt, e.max_attempts, e.delay, e.status) for e in events] == [
        (1, 6, 2.0, 503),
        (2, 6, 4.0, None),
    ]
    assert events[0].exception is errors[0]
    assert events[1].cause.startswith("ConnectionResetError")


def test_each_retry_is_logged_with_attempt_delay_and_cause_and_no_secret(caplog):
    clock = FakeTime()
    errors = [requests_http_error(503), praw_errors.ServerError(reddit_response(502))] * 2

    def fetch_listing():
        raise errors.pop(0)

    fetch = decorate(YFINANCE_CONFIG, clock)(fetch_listing)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME), pytest.raises(praw_errors.ServerError):
        fetch()
    retries = [r for r in caplog.records if "sleeping" in r.getMessage()]
    assert [r.getMessage() for r in retries] == [
        (
            f"retry {fetch_listing.__qualname__}: attempt 1/4 failed "
            f"({describe_failure(requests_http_error(503))}); sleeping 1.00 s"
        ),
        (
            f"retry {fetch_listing.__qualname__}: attempt 2/4 failed "
            f"({describe_failure(praw_errors.ServerError(reddit_response(502)))}); sleeping 2.00 s"
        ),
        (
            f"retry {fetch_listing.__qualname__}: attempt 3/4 failed "
            f"({describe_failure(requests_http_error(503))}); sleeping 4.00 s"
        ),
    ]
    assert "HTTP 503" in retries[0].getMessage()
    assert retries[0].retry_attempt == 1 and retries[0].retry_delay == 1.0
    assert "giving up after attempt 4/4" in caplog.text
    assert SECRET not in caplog.text


def test_permanent_failures_are_logged_as_not_retried(caplog):
    clock = FakeTime()
    fetch = decorate(REDDIT_CONFIG, clock)(Flaky([praw_errors.NotFound(reddit_response(404))]))
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME), pytest.raises(praw_errors.NotFound):
        fetch()
    assert "attempt 1/6 failed permanently (NotFound, HTTP 404" in caplog.text
    assert SECRET not in caplog.text


def test_an_injected_logger_is_used():
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("tft_pipeline_tests.retry.injected")
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        clock = FakeTime()
        decorate(GENERIC_CONFIG, clock, logger=logger)(Flaky([TimeoutError()]))()
    finally:
        logger.removeHandler(handler)
    assert len(records) == 1 and "attempt 1/6" in records[0].getMessage()


def test_keyboard_interrupt_is_never_swallowed():
    clock = FakeTime()
    flaky = Flaky([KeyboardInterrupt()])
    with pytest.raises(KeyboardInterrupt):
        decorate(REDDIT_CONFIG, clock)(flaky)()
    assert flaky.calls == 1


def test_arguments_and_metadata_pass_through_and_bare_decoration_works():
    calls = []

    @retry_with_backoff
    def add(a, b=0):
        """Adds."""
        calls.append((a, b))
        return a + b

    assert add(2, b=3) == 5 and calls == [(2, 3)]
    assert add.__name__ == "add" and add.__doc__ == "Adds."
    assert add.retry_config is GENERIC_CONFIG


def test_methods_can_be_decorated():
    clock = FakeTime()

    class Source:
        def __init__(self):
            self.failures = [TimeoutError()]

        @retry_with_backoff(YFINANCE_CONFIG, sleep=clock.sleep, clock=clock, rng=MIDDLE)
        def fetch(self, ticker):
            if self.failures:
                raise self.failures.pop()
            return ticker

    assert Source().fetch("AAPL") == "AAPL"
    assert clock.sleeps == [1.0]


def test_the_wrong_decorator_for_the_function_kind_is_refused():
    async def coroutine():
        return 1

    with pytest.raises(TypeError):
        retry_with_backoff(GENERIC_CONFIG)(coroutine)
    with pytest.raises(TypeError):
        retry_with_backoff_async(GENERIC_CONFIG)(lambda: 1)


def test_statistics_are_kept_per_thread():
    clock = FakeTime()
    lock = threading.Lock()
    failures = {"ok": [], "bad": [TimeoutError(), TimeoutError()]}

    @retry_with_backoff(GENERIC_CONFIG, sleep=lambda s: None, clock=clock, rng=MIDDLE)
    def fetch(name):
        with lock:
            pending = failures[name]
            if pending:
                raise pending.pop()
        return name

    seen: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def run(name):
        fetch(name)
        barrier.wait()  # both calls finished before either reads its statistics
        seen[name] = fetch.retry_statistics.attempts

    threads = [threading.Thread(target=run, args=(name,)) for name in ("ok", "bad")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"ok": 1, "bad": 3}
    assert fetch.retry_statistics.last is None  # this thread made no call


def test_async_variant_retries_with_the_injected_sleep():
    clock = FakeTime()
    calls = 0

    @retry_with_backoff_async(REDDIT_CONFIG, sleep=clock.async_sleep, clock=clock, rng=MIDDLE)
    async def fetch():
        nonlocal calls
        calls += 1
        if calls < 3:
            raise praw_errors.ServerError(reddit_response(503))
        return "ok"

    async def call_and_read_statistics():
        return await fetch(), fetch.retry_statistics.last

    result, statistics = asyncio.run(call_and_read_statistics())
    assert result == "ok" and calls == 3
    assert clock.sleeps == [2.0, 4.0]
    assert statistics.attempts == 3 and statistics.outcome == "succeeded"


def test_async_variant_reraises_the_original_after_the_last_attempt():
    clock = FakeTime()
    errors = [TimeoutError(f"attempt {n}") for n in range(1, 5)]

    @retry_with_backoff_async(YFINANCE_CONFIG, sleep=clock.async_sleep, clock=clock, rng=MIDDLE)
    async def fetch():
        raise errors.pop(0)

    with pytest.raises(TimeoutError, match="attempt 4"):
        asyncio.run(fetch())
    assert errors == [] and clock.sleeps == [1.0, 2.0, 4.0]


def test_async_variant_does_not_retry_permanent_errors():
    clock = FakeTime()
    calls = 0

    @retry_with_backoff_async(REDDIT_CONFIG, sleep=clock.async_sleep, clock=clock)
    async def fetch():
        nonlocal calls
        calls += 1
        raise praw_errors.Forbidden(reddit_response(403))

    with pytest.raises(praw_errors.Forbidden):
        asyncio.run(fetch())
    assert calls == 1 and clock.sleeps == []


# --------------------------------------------------------------------------------------------------
# RateLimiter
# --------------------------------------------------------------------------------------------------


def test_rate_limiter_holds_the_rate_over_a_thousand_calls_on_a_fake_clock():
    clock = FakeTime()
    limiter = RateLimiter(5.0, clock=clock, sleep=clock.sleep)
    call_times = []
    work = [0.0, 0.05, 0.19, 0.01]  # time each call itself takes, all under the 0.2 s interval
    for n in range(1000):
        limiter.wait_if_needed()
        call_times.append(clock())
        clock.advance(work[n % len(work)])
    achieved = (len(call_times) - 1) / (call_times[-1] - call_times[0])
    assert achieved == pytest.approx(5.0, rel=0.05)
    gaps = [b - a for a, b in itertools.pairwise(call_times)]
    assert min(gaps) >= 0.2 - 1e-9


def test_rate_limiter_first_call_does_not_wait_and_returns_the_time_slept():
    clock = FakeTime()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)
    assert limiter.wait_if_needed() == 0.0
    assert limiter.wait_if_needed() == pytest.approx(0.25)
    clock.advance(0.1)
    assert limiter.wait_if_needed() == pytest.approx(0.15)
    assert clock.sleeps == pytest.approx([0.25, 0.15])


def test_rate_limiter_banks_no_credit_while_idle():
    clock = FakeTime()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    limiter.wait_if_needed()
    clock.advance(60.0)
    assert limiter.wait_if_needed() == 0.0
    assert limiter.wait_if_needed() == pytest.approx(0.5)  # no burst after the pause


def test_rate_limiter_gives_each_of_four_threads_its_own_slot():
    calls_per_thread = 500

    def one_round() -> list[float]:
        clock = FakeTime()  # frozen: every reservation is made at the same instant
        limiter = RateLimiter(10.0, clock=clock, sleep=lambda seconds: None)
        delays: list[float] = []
        delays_lock = threading.Lock()
        start = threading.Barrier(4)

        def caller():
            start.wait()
            mine = [limiter.wait_if_needed() for _ in range(calls_per_thread)]
            with delays_lock:
                delays.extend(mine)

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return delays

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
    try:
        rounds = [one_round() for _ in range(5)]
    finally:
        sys.setswitchinterval(switch_interval)
    for delays in rounds:
        slots = sorted(round(delay / 0.1) for delay in delays)
        # No two reservations share a slot and none is skipped.
        assert slots == list(range(4 * calls_per_thread))


def test_rate_limiter_sleeps_outside_its_lock():
    clock = FakeTime()
    first_is_sleeping = threading.Event()
    release_first = threading.Event()

    def blocking_sleep(seconds):
        first_is_sleeping.set()
        release_first.wait(timeout=5)

    limiter = RateLimiter(1.0, clock=clock, sleep=blocking_sleep)
    limiter.wait_if_needed()  # takes the free slot now; the next caller must sleep
    sleeper = threading.Thread(target=limiter.wait_if_needed)
    sleeper.start()
    assert first_is_sleeping.wait(timeout=5)
    reserved: list[float] = []
    reserver = threading.Thread(target=lambda: reserved.append(limiter.reserve()))
    reserver.start()
    reserver.join(timeout=2)
    reserved_while_the_other_sleeps = not reserver.is_alive()
    release_first.set()
    sleeper.join()
    reserver.join()
    # While one caller sleeps, another can still reserve (the lock is free): the third slot.
    assert reserved_while_the_other_sleeps
    assert reserved == [pytest.approx(2.0)]


def test_rate_limiter_on_the_real_clock_spaces_calls():
    limiter = RateLimiter(200.0)
    started = time.monotonic()
    for _ in range(21):
        limiter.wait_if_needed()
    assert time.monotonic() - started >= 20 / 200.0 - 1e-3


def test_rate_limiter_async_wait_reserves_slots_the_same_way():
    clock = FakeTime()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)

    async def three_calls():
        return [await limiter.wait_if_needed_async(clock.async_sleep) for _ in range(3)]

    assert asyncio.run(three_calls()) == pytest.approx([0.0, 0.5, 0.5])


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan")])
def test_rate_limiter_refuses_a_nonsense_rate(rate):
    with pytest.raises(ValueError):
        RateLimiter(rate)


def test_rate_limiter_benchmark_quick_run_reports_its_figures():
    from bench.bench_rate_limiter import run

    figures = run(quick=True)
    assert figures["fake_clock_rate_error_pct"] < 5.0
    assert figures["real_clock_rate_error_pct"] < 20.0  # loose: a busy CI machine oversleeps
    assert figures["real_clock_threads"] == 4


# --------------------------------------------------------------------------------------------------
# Real clients (prawcore, requests, curl_cffi) against a scripted server on 127.0.0.1
# --------------------------------------------------------------------------------------------------

EMPTY_LISTING = {"kind": "Listing", "data": {"children": [], "after": None, "before": None}}


class ScriptedServer:
    """An HTTP server on 127.0.0.1 answering each API request with the next scripted reply.

    The OAuth token endpoint always grants ``SECRET`` as the access token, so tests can check that
    nothing logged carries it. Replies are ``(status, headers)``; once the script is used up every
    request gets 200 and an empty listing.
    """

    def __init__(self, replies: list[tuple[int, dict[str, str]]]) -> None:
        self.replies = list(replies)
        self.api_requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def _answer(self, status: int, headers: dict[str, str], body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                token = {"access_token": SECRET, "expires_in": 3600, "scope": "*"}
                self._answer(200, {}, {**token, "token_type": "bearer"})

            def do_GET(self):
                server.api_requests.append(self.path)
                status, headers = server.replies.pop(0) if server.replies else (200, {})
                self._answer(status, headers, EMPTY_LISTING if status == 200 else {"error": status})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def no_prawcore_sleep(monkeypatch):
    """prawcore sleeps 0-4 s between its own retries of 5xx and 401; tests need not wait."""
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds", lambda self: None)


def prawcore_session(url: str) -> prawcore.Session:
    requestor = prawcore.Requestor(user_agent="tft-tests/1.0", oauth_url=url, reddit_url=url)
    authenticator = prawcore.TrustedAuthenticator(
        client_id="tft-client", client_secret=SECRET, requestor=requestor
    )
    authorizer = prawcore.ReadOnlyAuthorizer(authenticator=authenticator)
    authorizer.refresh()
    return prawcore.Session(authorizer=authorizer)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_prawcore_429_is_retried_after_the_retry_after_the_server_sent(caplog, no_prawcore_sleep):
    clock = FakeTime()
    with ScriptedServer([(429, {"Retry-After": "3"})]) as server:
        session = prawcore_session(server.url)
        fetch = decorate(REDDIT_CONFIG, clock)(
            lambda: session.request(method="GET", path="/r/stocks/new", params={"limit": 1})
        )
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            assert fetch() == EMPTY_LISTING
    assert len(server.api_requests) == 2  # prawcore does not retry a 429 itself; we did, once
    assert clock.sleeps == [3.0]
    assert "TooManyRequests, HTTP 429, retry-after 3 s" in caplog.text
    assert SECRET not in caplog.text


def test_prawcore_server_errors_past_its_own_retries_are_retried_by_us(no_prawcore_sleep):
    clock = FakeTime()
    with ScriptedServer([(503, {})] * 3) as server:
        session = prawcore_session(server.url)
        fetch = decorate(REDDIT_CONFIG, clock)(
            lambda: session.request(method="GET", path="/r/stocks/new")
        )
        assert fetch() == EMPTY_LISTING
    assert len(server.api_requests) == 4  # prawcore's three, then our second attempt
    assert clock.sleeps == [2.0]


@pytest.mark.parametrize(
    ("reply", "expected_type", "status"),
    [
        ((404, {}), praw_errors.NotFound, 404),
        ((403, {}), praw_errors.Forbidden, 403),
        ((302, {"Location": "/subreddits/search.json?q=nosuchsub"}), praw_errors.Redirect, 302),
        ((401, {}), KeyError, 401),  # no www-authenticate header: prawcore's bare KeyError
    ],
)
def test_prawcore_permanent_answers_are_not_retried(
    no_prawcore_sleep, reply, expected_type, status
):
    clock = FakeTime()
    with ScriptedServer([reply] * 3) as server:
        session = prawcore_session(server.url)
        fetch = decorate(REDDIT_CONFIG, clock)(
            lambda: session.request(method="GET", path="/r/nosuchsub/new")
        )
        with pytest.raises(expected_type) as raised:
            fetch()
    assert type(raised.value) is expected_type
    assert http_status_of(raised.value) == status
    assert fetch.retry_statistics.attempts == 1 and clock.sleeps == []


def test_prawcore_connection_refused_is_retried(no_prawcore_sleep):
    clock = FakeTime()
    with ScriptedServer([]) as server:
        session = prawcore_session(server.url)
    # The token is held; the API host now refuses connections.
    session._authorizer._authenticator._requestor.oauth_url = f"http://127.0.0.1:{closed_port()}"
    fetch = decorate(YFINANCE_CONFIG, clock)(lambda: session.request(method="GET", path="/r/x/new"))
    with pytest.raises(praw_errors.RequestException) as raised:
        fetch()
    assert isinstance(raised.value.original_exception, requests_errors.ConnectionError)
    assert fetch.retry_statistics.attempts == YFINANCE_CONFIG.max_attempts
    assert describe_failure(raised.value).startswith("RequestException (ConnectionError)")


def test_requests_and_curl_cffi_http_errors_from_a_real_server():
    with ScriptedServer([(503, {"Retry-After": "5"}), (404, {}), (503, {}), (404, {})]) as server:
        url = f"{server.url}/v8/finance/chart/AAPL?crumb={SECRET}"
        outcomes = []
        for get in (requests.get, curl_requests.get):
            for _ in range(2):
                try:
                    get(url, timeout=5).raise_for_status()
                except Exception as error:  # noqa: BLE001 - the error itself is under test
                    outcomes.append(error)
    assert [(should_retry(e), http_status_of(e), retry_after_of(e)) for e in outcomes] == [
        (True, 503, 5.0),
        (False, 404, None),
        (True, 503, None),
        (False, 404, None),
    ]
    assert isinstance(outcomes[2], curl_errors.HTTPError)
    assert all(SECRET not in describe_failure(e) for e in outcomes)


def test_connection_refused_and_read_timeouts_of_real_clients_are_transient():
    refused_url = f"http://127.0.0.1:{closed_port()}/"
    with socket.socket() as stalled:  # accepts connections (the backlog) and never answers
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(8)
        stalled_url = f"http://127.0.0.1:{stalled.getsockname()[1]}/"
        errors = []
        for get in (requests.get, curl_requests.get):
            for url in (refused_url, stalled_url):
                try:
                    get(url, timeout=0.3)
                except Exception as error:  # noqa: BLE001 - the error itself is under test
                    errors.append(error)
    assert [type(e).__name__ for e in errors] == [
        "ConnectionError",
        "ReadTimeout",
        "ConnectionError",
        "Timeout",
    ]
    assert isinstance(errors[2], curl_errors.ConnectionError) and isinstance(errors[2], OSError)
    assert all(should_retry(e) for e in errors)
    assert all(http_status_of(e) is None for e in errors)
