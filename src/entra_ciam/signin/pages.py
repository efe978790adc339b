"""The few responses the sign-in routes answer with: redirects and short error pages.

Every one of them is personal (it sets or clears a session cookie, or carries a state value), so
none may be cached or framed, and error pages run no script and load nothing.
"""

from __future__ import annotations

import html
import string

from entra_ciam.errors import ConfigError
from entra_ciam.signin.messages import Response

__all__ = [
    "DEFAULT_TEMPLATE",
    "SECURITY_HEADERS",
    "confirm_sign_out_page",
    "error_page",
    "redirect",
    "store_unavailable_page",
    "use_template",
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
    400: "Sign-in could not be completed",
    401: "Please sign in",
    403: "Access denied",
    404: "Page not found",
    405: "This address does not accept that request",
    500: "Sign-in could not be completed",
    502: "Sign-in is not working right now",
    503: "Sign-in is temporarily unavailable",
}

# The library's own look: neutral, readable on any screen, no script, nothing loaded.
DEFAULT_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body{margin:0;background:#f4f5f7;color:#1f2328;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
main{max-width:32rem;margin:12vh auto;padding:2rem 2.25rem;background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.35rem;margin:0 0 .75rem}
p{margin:0 0 1rem}
a,button{display:inline-block;padding:.55rem 1.1rem;border-radius:6px;border:0;background:#0f6cbd;color:#fff;font:inherit;text-decoration:none;cursor:pointer}
@media (prefers-color-scheme:dark){body{background:#1b1d21;color:#e6e6e6}main{background:#25282d}}
</style>
</head><body><main><h1>$title</h1><p>$message</p>$action</main></body></html>
"""

_template = string.Template(DEFAULT_TEMPLATE)


def use_template(template: str | None) -> None:
    """Render the sign-in pages (errors, sign-out confirmation) with ``template`` instead.

    One look per process, as a site has one: call it at start-up. ``template`` is HTML with
    ``$title``, ``$message`` (plain text, escaped here) and ``$action`` (a link or button the page
    needs, or nothing); None restores the library's own. A template missing ``$title`` or
    ``$message`` is refused at once. The pages' Content-Security-Policy stays: inline styles
    only, no script, nothing loaded.
    """
    global _template
    if template is None:
        _template = string.Template(DEFAULT_TEMPLATE)
        return
    missing = [name for name in ("$title", "$message") if name not in template]
    if missing:
        raise ConfigError(f"the sign-in page template needs {' and '.join(missing)}")
    _template = string.Template(template)


def _render(title: str, message: str, action: str) -> bytes:
    page = _template.safe_substitute(
        title=html.escape(title), message=html.escape(message), action=action
    )
    return page.encode()


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
    headers = [("Content-Type", "text/html; charset=utf-8"), *SECURITY_HEADERS]
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return Response(status, headers, _render(title, message, link))


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
    body = _render("Sign out?", SIGN_OUT_FROM_ELSEWHERE, form)
    headers = [("Content-Type", "text/html; charset=utf-8")]
    headers += [(k, v) for k, v in SECURITY_HEADERS if k != "Referrer-Policy"]
    headers.append(("Referrer-Policy", "same-origin"))
    return Response(403, headers, body)
