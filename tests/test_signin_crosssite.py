"""Was a request sent by this site's own pages? (entra_ciam.signin.crosssite), rule by rule.

The cross-site rule as a whole runs in tests/reliability/test_nothing_leaks.py (both adapters and
Chromium); here each part is held to its exact answer: origins of odd shapes (another scheme, an
IPv6 host, a default port), the request's own host with and without its port, and the reasons,
which quote at most a bounded part of what the request sent (issue 16, point 8).
"""

from __future__ import annotations

import pytest

from entra_ciam.signin.crosssite import SAFE_FETCH_SITES, cross_site_reason, origin_of
from entra_ciam.signin.messages import Request


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://app.example", "https://app.example"),
        ("https://App.Example/path?q#f", "https://app.example"),
        ("  https://app.example  ", "https://app.example"),
        ("HTTPS://app.example", "https://app.example"),
        ("https://app.example:443", "https://app.example"),  # default port dropped
        ("http://app.example:80", "http://app.example"),
        ("https://app.example:80", "https://app.example:80"),  # not the default for https
        ("http://app.example:443", "http://app.example:443"),
        ("https://app.example:8443", "https://app.example:8443"),
        ("http://[::1]:8080", "http://[::1]:8080"),  # IPv6 hosts keep their brackets
        ("http://[::1]:80", "http://[::1]"),
        ("https://[2001:DB8::1]", "https://[2001:db8::1]"),
        # not an http(s) origin
        ("ftp://app.example", None),
        ("chrome-extension://abcdef", None),
        ("file:///etc/passwd", None),
        ("javascript:alert(1)", None),
        ("app.example", None),
        ("https://", None),
        ("https://app.example:99999", None),  # a port out of range
        ("https://app.example:port", None),
        ("http://[::1", None),  # an unclosed IPv6 literal
        ("", None),
        (None, None),
    ],
)
def test_origin_of(url: str | None, origin: str | None) -> None:
    assert origin_of(url) == origin


def request(method: str = "POST", host: str = "app.example", **headers: str) -> Request:
    return Request(method, "/auth/signout", host=host, **headers)


@pytest.mark.parametrize(
    ("host", "origin", "same"),
    [
        ("app.example", "https://app.example", True),
        ("App.Example", "https://app.example", True),
        ("app.example:443", "https://app.example", True),  # Host: app:443 is app on https
        ("app.example:443", "http://app.example", False),  # ...but not on http
        ("app.example:80", "http://app.example", True),
        ("app.example:8443", "https://app.example:8443", True),
        ("app.example:8443", "https://app.example", False),
        ("app.example", "https://app.example:8443", False),
        ("[::1]:8080", "http://[::1]:8080", True),
        ("[::1]:80", "http://[::1]", True),
        ("[::1]", "http://[::1]:8080", False),
        ("app.example", "https://evil.example", False),
        ("app.example", "https://app.example.evil.example", False),
        (" app.example ", "https://app.example", True),
    ],
)
def test_the_requests_own_host_is_its_site(host: str, origin: str, same: bool) -> None:
    reason = cross_site_reason(request(host=host, origin=origin))
    assert (reason is None) is same, reason
    if not same:
        assert reason == f"Origin {origin!r} is another site"


def test_configured_origins_count_as_this_site() -> None:
    behind_a_proxy = request(host="127.0.0.1:8000", origin="https://app.contoso.example")
    assert cross_site_reason(behind_a_proxy, {"https://app.contoso.example"}) is None
    assert cross_site_reason(behind_a_proxy, {"https://other.example"}) is not None
    assert cross_site_reason(behind_a_proxy) is not None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, None),  # a program, or an old browser: SameSite=Lax is the protection left
        ({"fetch_site": "same-origin"}, None),
        ({"fetch_site": " Same-Origin "}, None),
        ({"fetch_site": "same-site"}, "Sec-Fetch-Site is 'same-site'"),
        ({"fetch_site": "cross-site"}, "Sec-Fetch-Site is 'cross-site'"),
        ({"fetch_site": "none"}, "Sec-Fetch-Site is 'none'"),
        # Sec-Fetch-Site decides when present, whatever Origin says
        ({"fetch_site": "same-origin", "origin": "https://evil.example"}, None),
        ({"fetch_site": "cross-site", "origin": "https://app.example"}, "Sec-Fetch-Site is"),
        ({"origin": "null"}, "Origin is 'null'"),
        ({"origin": " NULL "}, "Origin is 'null'"),
        ({"origin": "evil"}, "the Origin header 'evil' is not an origin"),
        ({"origin": "ftp://app.example"}, "the Origin header 'ftp://app.example' is not"),
        ({"origin": "https://app.example"}, None),
        ({"origin": "  "}, None),  # blank: as if absent
    ],
)
def test_the_headers_browsers_send(headers: dict[str, str], reason: str | None) -> None:
    answer = cross_site_reason(request(**headers))
    if reason is None:
        assert answer is None
    else:
        assert answer is not None and answer.startswith(reason), answer


def test_reasons_quote_a_bounded_part_of_what_was_sent() -> None:
    site = "x" * 100
    assert cross_site_reason(request(fetch_site=site)) == f"Sec-Fetch-Site is {'x' * 40!r}"
    origin = "not-an-origin-" + "y" * 200
    assert cross_site_reason(request(origin=origin)) == (
        f"the Origin header {origin[:100]!r} is not an origin"
    )
    evil = "https://" + "e" * 200 + ".example"
    assert cross_site_reason(request(origin=evil)) == f"Origin {evil[:100]!r} is another site"


def test_only_same_origin_is_safe() -> None:
    assert frozenset({"same-origin"}) == SAFE_FETCH_SITES
