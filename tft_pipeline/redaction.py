"""Masking credentials in text bound for logs, alerts and tables (pure, standard library only)."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "***"

# scheme://user:password@ keeps the user (an operator needs it) and masks the password;
# scheme://token@ (no colon) masks the whole user part, which then is the credential.
_URL_CREDENTIALS = re.compile(
    r"(?i)(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?:(?P<user>[^\s/:@]*):)?(?P<secret>[^\s/@]+)@"
)
# Query strings carry tokens and crumbs: keep the path, drop the query. Only a ``?`` right after
# a path character starts one, so SQL placeholders such as ``IN (?, ?)`` and prose stay as written.
_QUERY_STRING = re.compile(r"(?<=[\w/.~%-])\?[^\s'\"<>()\[\]{}]+")
# Authorization schemes anywhere in the text. After ``token`` only a value with a digit or a
# symbol other than a full stop is a credential: "the token expired." is prose, "token ghp_x1"
# is not.
_AUTHORIZATION_VALUE = re.compile(
    r"(?i)\b(?P<scheme>bearer|basic)(?P<gap>\s+)[A-Za-z0-9._~+/=-]{4,}"
    r"|\b(?P<word>token)(?P<word_gap>\s+)"
    r"(?=[A-Za-z0-9._~+/=-]*[0-9_~+/=-])[A-Za-z0-9._~+/=-]{4,}"
)
# key=value, key: value, 'key': 'value' and "key": "value" for secret-looking keys; a value
# may start with an authorization scheme, which stays readable.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?P<key>\b(?:[\w-]*(?:token|secret|passw(?:or)?d|pwd|crumb|cookie|api[_-]?key"
    r"|authorization|credential|client[_-]?id)[\w-]*|auth|session|sessionid|sid)\b)"
    r"(?P<separator>['\"]?\s*[=:]\s*)(?P<scheme>(?:bearer|basic|token)\s+)?"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&,;'\")\]}]+)"
)


def _mask_assignment(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match['key']}{match['separator']}{match['scheme'] or ''}{quote}{REDACTED}{quote}"


def _mask_authorization(match: re.Match[str]) -> str:
    if match["scheme"]:
        return f"{match['scheme']}{match['gap']}{REDACTED}"
    return f"{match['word']}{match['word_gap']}{REDACTED}"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with credentials masked as ``***``; what is not secret stays as written.

    Masks the known ``secrets`` (values of secret environment variables, say) wherever they
    occur, URL passwords (``scheme://user:***@``) and bare URL credentials (``scheme://***@``),
    URL query strings (``path?***``), ``Bearer``/``Basic``/``token`` values and the values of
    secret-looking keys (``password=``, ``client_secret:``, ``"access_token": "…"``, ``crumb=``,
    ``cookie:``, ``api_key=``, ``Authorization:``, ``session=`` …). Every replacement keeps the
    surrounding characters as they were, so masking never joins text into a new secret.
    """
    known = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    if known:
        # One pass, longest first, so a secret that contains another is masked whole.
        text = re.sub("|".join(re.escape(secret) for secret in known), REDACTED, text)
    text = _URL_CREDENTIALS.sub(
        lambda m: f"{m['scheme']}{m['user'] + ':' if m['user'] is not None else ''}{REDACTED}@",
        text,
    )
    text = _QUERY_STRING.sub(f"?{REDACTED}", text)
    text = _AUTHORIZATION_VALUE.sub(_mask_authorization, text)
    return _SECRET_ASSIGNMENT.sub(_mask_assignment, text)
