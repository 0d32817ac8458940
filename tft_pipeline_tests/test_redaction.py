"""The one redactor masks every credential shape logs and alerts have met, and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_pipeline import alerts, retry
from tft_pipeline.redaction import REDACTED, redact

SECRET = "s3cr3t-T0KEN-value"
# Secrets are tokens of URL-safe characters (Reddit's, webhook tokens, passwords); the mask "***"
# cannot hide a secret without "*" inside it.
secret_text = st.text(
    st.characters(codec="ascii", exclude_characters="*\x00"), min_size=1, max_size=30
)


def test_the_alerts_and_the_scrapers_use_the_same_redactor():
    assert retry.redact_secrets is redact and alerts.redact is redact


@settings(max_examples=150, deadline=None)
@given(
    secrets=st.lists(secret_text, min_size=1, max_size=3),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
def test_no_known_secret_survives_redaction(secrets, before, after):
    text = before + secrets[0] + after + "".join(secrets[1:]) + secrets[0]
    cleaned = redact(text, secrets)
    for secret in secrets:
        assert secret not in cleaned


@pytest.mark.parametrize(
    "text, readable",
    [
        # URL credentials: the user stays, the password goes; a bare user part is the credential.
        (f"postgresql+psycopg2://dagster:{SECRET}@db:5432/dagster", "dagster:***@db:5432/dagster"),
        (f"https://user:{SECRET}@proxy.example:8080 refused", "https://user:***@proxy.example"),
        (f"https://{SECRET}@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
        # Query strings: the path stays.
        (
            f"GET https://oauth.reddit.com/api?access_token={SECRET}&x=1 failed",
            "https://oauth.reddit.com/api?*** failed",
        ),
        (
            f"Max retries exceeded with url: /api/v1/access_token?grant_type=x&code={SECRET} (",
            "url: /api/v1/access_token?*** (",
        ),
        (f"chart/AAPL?crumb={SECRET}", "chart/AAPL?***"),
        # Authorization schemes, in headers or anywhere.
        (f"Authorization: Bearer {SECRET}", "Authorization: Bearer ***"),
        (f"headers={{'Authorization': 'bearer {SECRET}'}}", "{'Authorization': '***'}"),
        (f"sent Basic {SECRET} to the proxy", "sent Basic *** to the proxy"),
        (f"Authorization: token {SECRET}", "Authorization: token ***"),
        # Secret-looking keys, bare and quoted.
        (f"password={SECRET}", "password=***"),
        (f"pwd: {SECRET}", "pwd: ***"),
        (f"client_secret: '{SECRET}'", "client_secret: '***'"),
        (f'token endpoint answered {{"access_token": "{SECRET}"}}', '{"access_token": "***"}'),
        (f"refresh_token={SECRET}&scope=read", "refresh_token=***&scope=read"),
        (f"apikey={SECRET}", "apikey=***"),
        (f"X-Api-Key: {SECRET}", "X-Api-Key: ***"),
        (f"crumb={SECRET}", "crumb=***"),
        (f"cookie: A3={SECRET}", "cookie: ***"),
        (f"session={SECRET}; path=/", "session=***; path=/"),
        (f"client_id={SECRET}", "client_id=***"),
        (f"credentials: {SECRET}", "credentials: ***"),
    ],
)
def test_every_credential_shape_is_masked_and_the_context_stays_readable(text, readable):
    cleaned = redact(text)
    assert SECRET not in cleaned
    assert readable in cleaned
    assert redact(cleaned) == cleaned  # masking twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "Failed to connect to query2.finance.yahoo.com port 443 after 10 ms",
        "no bars for session_date=2024-01-12 (author: deleted)",
        "the token endpoint answered 503",
        "Reddit said the token expired.",
        "SELECT * FROM signals.risk_decisions WHERE ticker IN (?, ?) AND session_date = ?",
        "Is the warehouse locked? Retry later.",
        "https://query2.finance.yahoo.com/v8/finance/chart/AAPL",
        "postgresql://db.internal:5432/dagster",
    ],
)
def test_what_is_not_secret_stays_as_written(text):
    assert redact(text) == text


def test_known_secrets_are_masked_longest_first_even_without_a_telltale_shape():
    cleaned = redact("webhook https://hooks.example/T/abc-123 failed; abc-123 again", [
        "https://hooks.example/T/abc-123", "abc-123", None, "",
    ])
    assert cleaned == f"webhook {REDACTED} failed; {REDACTED} again"
