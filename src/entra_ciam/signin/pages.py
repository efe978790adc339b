"""The few responses the sign-in routes answer with: redirects and short error pages.

Every one of them is personal (it sets or clears a session cookie, or carries a state value), so
none may be cached or framed, and error pages run no script and load nothing.
"""

from __future__ import annotations

import html

from entra_ciam.signin.messages import Response

__all__ = [
    "SECURITY_HEADERS",
    "confirm_sign_out_page",
    "error_page",
    "redirect",
    "store_unavailable_page",
]

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    ),
)

_TITLES = {
    400: "Sign-in failed",
    401: "Sign-in required",
    403: "Access denied",
    405: "Method not allowed",
    500: "Sign-in failed",
    502: "Sign-in service error",
    503: "Sign-in is temporarily unavailable",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto}}</style>
</head><body><h1>{title}</h1><p>{message}</p>{link}</body></html>
"""


def redirect(location: str, status: int = 302) -> Response:
    """A redirect that no cache keeps (it may carry a state value or end a session)."""
    return Response(status, [("Location", location), *SECURITY_HEADERS], b"")


def error_page(
    status: int,
    message: str,
    *,
    retry_link: str | None = None,
    retry_after: int | None = None,
) -> Response:
    """A short HTML page giving the reason; ``message`` is plain text, escaped here."""
    title = _TITLES.get(status, "Error")
    link = f'<p><a href="{html.escape(retry_link)}">Sign in again</a></p>' if retry_link else ""
    body = _PAGE.format(title=html.escape(title), message=html.escape(message), link=link)
    headers = [("Content-Type", "text/html; charset=utf-8"), *SECURITY_HEADERS]
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return Response(status, headers, body.encode())


STORE_DOWN = "Sessions cannot be stored right now. Please try again in a moment."


def store_unavailable_page() -> Response:
    """The 503 for a session store that is gone (Redis down, disk full): never a 500."""
    return error_page(503, STORE_DOWN, retry_after=5)


SIGN_OUT_FROM_ELSEWHERE = (
    "The request to sign out did not come from this site's own pages, so you are still "
    "signed in. To sign out, use the button below."
)


def confirm_sign_out_page(action: str) -> Response:
    """403 for a sign-out not sent from this site: nothing happened; a button signs out.

    The button posts from this site's own page, so the browser names this site in
    ``Sec-Fetch-Site`` and ``Origin``: ``Referrer-Policy: same-origin`` here, because under
    ``no-referrer`` a browser sends ``Origin: null`` even with a same-origin form. The page
    cannot be framed, so nobody can trick a click on the button.
    """
    form = (
        f'<form method="post" action="{html.escape(action)}">'
        '<button type="submit">Sign out</button></form>'
    )
    body = _PAGE.format(title="Sign out?", message=html.escape(SIGN_OUT_FROM_ELSEWHERE), link=form)
    headers = [("Content-Type", "text/html; charset=utf-8")]
    headers += [(k, v) for k, v in SECURITY_HEADERS if k != "Referrer-Policy"]
    headers.append(("Referrer-Policy", "same-origin"))
    return Response(403, headers, body.encode())
