"""MSAL's logs, kept free of authorization codes, PKCE verifiers and tokens.

At DEBUG, MSAL logs every token it obtains (``msal.token_cache``: ``event={...}``). It masks the
tokens themselves, but not the request's authorization ``code`` and PKCE ``code_verifier``, nor
the ``client_info`` it gets back; and at ERROR its OAuth client logs a token endpoint's body when
it is not JSON. A filter on MSAL's loggers rewrites such records before any handler sees them:
the values of fields that carry a secret and anything shaped like a JWT become ``********``.
Nothing else about a record, or about what MSAL does, changes.

Installed when entra_ciam first builds MSAL clients (importing :mod:`entra_ciam.signin.msal_app`);
``install()`` may be called again at no cost.
"""

from __future__ import annotations

import logging
import re

__all__ = ["MASK", "MSAL_LOGGERS", "RedactSecrets", "install", "redact"]

# A logger's filters see only the records logged to that very logger, so each one is named.
MSAL_LOGGERS = (
    "msal.application",
    "msal.authority",
    "msal.oauth2cli.assertion",
    "msal.oauth2cli.authcode",
    "msal.oauth2cli.oauth2",
    "msal.oauth2cli.oidc",
    "msal.telemetry",
    "msal.token_cache",
)
MASK = "********"
_FIELDS = (
    "access_token",
    "assertion",
    "client_assertion",
    "client_info",
    "client_secret",
    "code",
    "code_verifier",
    "device_code",
    "id_token",
    "password",
    "refresh_token",
)
_NAMES = "|".join(_FIELDS)
# "code": "value" (MSAL's JSON) and 'code': 'value' (a dict's repr).
_QUOTED = re.compile(rf"""(["'](?:{_NAMES})["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2""")
# code=value (a form body or a query string).
_FORM = re.compile(rf"(?<![A-Za-z0-9_])((?:{_NAMES})=)[^&\s\"']+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}")


def redact(text: str) -> str:
    """``text`` with secret-bearing field values and JWT-shaped strings masked."""
    text = _QUOTED.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text)
    text = _FORM.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _JWT.sub(MASK, text)


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message (formatted with its arguments); keeps every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format: the handler reports it, as it would without us
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_FILTER = RedactSecrets()


def install() -> None:
    """Put the filter on MSAL's loggers (once)."""
    for name in MSAL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(_FILTER)
