"""Was a request sent by this site's own pages? The check that keeps sign-out from being forged.

A page on another site can make a signed-in browser open ``/auth/signout`` with a link, a
redirect or ``window.location``: a top-level navigation, which carries a ``SameSite=Lax`` cookie.
Browsers say where such a request comes from in headers no page can set or forge:

- ``Sec-Fetch-Site`` (every current browser, to https and loopback sites): only ``same-origin``
  passes. Across a redirect chain the browser reports the least trusted hop, except that a
  navigation the person started (typed into the address bar, a bookmark, a link opened from a
  mail program) stays ``none`` through the redirects of whatever site it went to first: ``none``
  does not pass either. Nor does ``same-site``: a sibling subdomain may be run by someone else.
- ``Origin``, when there is no ``Sec-Fetch-Site`` (older browsers send it with POSTs): it must
  name this site, i.e. the origin of a configured URL or the request's own host. ``null`` (a
  sandboxed frame, or a page under ``Referrer-Policy: no-referrer``) is refused.

A request with neither comes from a program rather than a browser, or from a browser too old to
send them; it passes, with the ``SameSite=Lax`` cookie as the remaining protection.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from entra_ciam.signin.messages import Request

__all__ = ["SAFE_FETCH_SITES", "cross_site_reason", "origin_of"]

SAFE_FETCH_SITES = frozenset({"same-origin"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, lower-cased, default port dropped."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def _host_of(origin: str) -> str:
    return origin.split("://", 1)[1]


def _normal_host(host: str, scheme: str) -> str:
    host = host.strip().lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default and host.endswith(f":{default}") and not host.endswith("]"):
        host = host[: -len(default) - 1]
    return host


def cross_site_reason(request: Request, own_origins: Collection[str] = ()) -> str | None:
    """Why ``request`` looks sent by another site, or None when nothing says so."""
    fetch_site = request.fetch_site.strip().lower()
    if fetch_site:
        if fetch_site in SAFE_FETCH_SITES:
            return None
        return f"Sec-Fetch-Site is {fetch_site[:40]!r}"
    raw = request.origin.strip()
    if not raw:
        return None
    if raw.lower() == "null":
        return "Origin is 'null'"
    origin = origin_of(raw)
    if origin is None:
        return f"the Origin header {raw[:100]!r} is not an origin"
    if origin in own_origins:
        return None
    scheme = origin.split("://", 1)[0]
    if _host_of(origin) == _normal_host(request.host, scheme):
        return None
    return f"Origin {origin[:100]!r} is another site"
