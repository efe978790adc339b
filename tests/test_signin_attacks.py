"""Attacks on the sign-in flow, against the Flask and the Starlette app and the real emulator.

Each test names the attack and asserts the outcome a victim relies on: a clear 400 (never a 500,
never a session), no redirect off-site, no session the attacker knows, no data of another user.
ID tokens the emulator would never issue (a forged nonce) are scripted at the HTTP layer instead.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import respx

from entra_ciam.sessions import MemoryStore
from entra_ciam.signin.context import USER_KEY
from tests.support.fake_entra import FakeEntra, StepBrowser, make_signin
from tests.support.signin_apps import BUILDERS, running_stack
from tests.support.todo_api import serving
from tests.support.webapps import (
    ADA,
    ALAN,
    AppBrowser,
    LateWSGI,
    Stack,
    serving_wsgi,
)

COOKIE = "entra_ciam_session"  # the default name on http
HOST_COOKIE = "__Host-entra_ciam_session"  # and on https


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    yield from running_stack(request, tmp_path_factory, "attacks")


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def https_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The same app served over https (the emulator's CA), its Host a loopback address."""
    yield from running_stack(request, tmp_path_factory, "attacks-https", tls=True)


@pytest.fixture
def browser(stack: Stack) -> Iterator[AppBrowser]:
    with stack.browser() as opened:
        yield opened


def serve_like(stack: Stack, app: Any) -> contextlib.AbstractContextManager[str]:
    """Serve another app on the server kind of ``stack`` (Werkzeug or uvicorn)."""
    return serving_wsgi(app) if isinstance(stack.late, LateWSGI) else serving(app)


def raw_get(stack: Stack, path: str, cookie: str) -> httpx.Response:
    """A GET with exactly this Cookie header and no cookie jar."""
    verify: ssl.SSLContext | bool = True
    if stack.base.startswith("https:"):
        verify = ssl.create_default_context(cafile=stack.idp.ca_bundle)
    with httpx.Client(verify=verify) as client:
        return client.get(f"{stack.base}{path}", headers={"Cookie": cookie})


def authorize_url(browser: AppBrowser, next_path: str = "/me") -> str:
    response = browser.get("/auth/signin", params={"next": next_path})
    assert response.status_code == 302
    location: str = response.headers["location"]
    return location


def code_for(
    browser: AppBrowser, auth_uri: str, user: tuple[str, str, str] = ADA
) -> dict[str, str]:
    """Sign in at the emulator's pages; the parameters it would post back, not yet posted."""
    result = browser.pages.sign_in(auth_uri, email=user[0], password=user[1])
    assert result.code and result.state
    return result.params


def post_back(browser: AppBrowser, params: dict[str, str]) -> httpx.Response:
    return browser.client.post(f"{browser.stack.base}/auth/redirect", data=params)


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 400, response.text
    assert reason in response.text
    assert "location" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert "Traceback" not in response.text


def assert_signed_out(browser: AppBrowser) -> None:
    assert browser.get("/").json() == {"user": None}
    me = browser.get("/me")
    assert me.status_code == 302 and me.headers["location"].startswith("/auth/signin")


# -- state -----------------------------------------------------------------------------------------


def test_missing_state_is_refused(browser: AppBrowser) -> None:
    params = code_for(browser, authorize_url(browser))
    del params["state"]
    assert_refused(post_back(browser, params), "no state")
    assert_signed_out(browser)


def test_mismatched_state_is_refused(browser: AppBrowser) -> None:
    params = code_for(browser, authorize_url(browser))
    params["state"] = params["state"][::-1]
    assert_refused(post_back(browser, params), "does not match a sign-in started in this browser")
    assert_signed_out(browser)


def test_replayed_state_is_refused(browser: AppBrowser, stack: Stack) -> None:
    params = code_for(browser, authorize_url(browser))
    assert post_back(browser, params).status_code == 302
    # The same browser, now signed in, reloading the callback is sent home; a replay from
    # another browser is refused.
    reload = post_back(browser, params)
    assert reload.status_code == 302 and reload.headers["location"] == "/"
    with stack.browser() as other:
        other.get("/auth/signin")  # a session of its own
        assert_refused(post_back(other, params), "already used")
        assert_signed_out(other)


def test_foreign_state_login_csrf_is_refused(stack: Stack) -> None:
    """The attacker signs in as themself and feeds their code and state to the victim."""
    with stack.browser() as attacker, stack.browser() as victim:
        stolen = code_for(attacker, authorize_url(attacker), user=ALAN)
        victim.get("/auth/signin")  # the victim has a session of their own
        assert_refused(post_back(victim, stolen), "started in this browser")
        assert_signed_out(victim)


def test_malformed_and_repeated_state_are_refused(browser: AppBrowser) -> None:
    params = code_for(browser, authorize_url(browser))
    bad = {**params, "state": "<script>"}
    assert_refused(post_back(browser, bad), "malformed state")
    repeated = browser.client.post(
        f"{browser.stack.base}/auth/redirect",
        content=urlencode([*params.items(), ("state", "x" * 43)]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_refused(repeated, "repeats a parameter")


# -- codes -----------------------------------------------------------------------------------------


def test_code_replay_is_refused(browser: AppBrowser) -> None:
    first = code_for(browser, authorize_url(browser))
    assert post_back(browser, first).status_code == 302
    # A new sign-in in the same browser, answered with the code already redeemed.
    browser.client.get(f"{browser.stack.base}/auth/signout")
    fresh = parse_qs(urlsplit(authorize_url(browser, "/me?fresh")).query)["state"][0]
    # Entra refuses it as already redeemed: no session, and the browser goes to the page its
    # own flow was started for (as after a double submit), which sends it to sign in.
    replayed = post_back(browser, {"code": first["code"], "state": fresh})
    assert replayed.status_code == 302 and replayed.headers["location"] == "/me?fresh"
    assert_signed_out(browser)


def test_code_from_another_flow_fails_pkce(browser: AppBrowser) -> None:
    one = authorize_url(browser)
    two = authorize_url(browser)
    params = code_for(browser, one)
    other_state = parse_qs(urlsplit(two).query)["state"][0]
    assert_refused(post_back(browser, {**params, "state": other_state}), "invalid_grant")


def test_entra_error_is_shown_escaped(browser: AppBrowser) -> None:
    state = parse_qs(urlsplit(authorize_url(browser)).query)["state"][0]
    answer = post_back(
        browser,
        {"state": state, "error": "invalid_request", "error_description": "<img src=x onerror=1>"},
    )
    assert_refused(answer, "invalid_request")
    assert "<img" not in answer.text and "&lt;img" in answer.text


def test_oversized_form_post_is_refused(browser: AppBrowser) -> None:
    answer = browser.client.post(
        f"{browser.stack.base}/auth/redirect", data={"state": "a" * 40, "pad": "x" * 100_000}
    )
    assert_refused(answer, "no state")


def test_nonce_mismatch_is_refused() -> None:
    """An ID token whose nonce is not this sign-in's (replayed from another sign-in)."""
    with respx.mock(assert_all_called=False) as router:
        entra = FakeEntra(router)
        store = MemoryStore()
        browser = StepBrowser(make_signin(store))
        answer = browser.finish(entra, browser.start(), nonce="nonce-of-another-sign-in")
        assert answer.status == 400
        assert b"nonce does not match" in answer.body
        assert not any(USER_KEY in (store.get(k) or {}).get("d", {}) for k in list(store._items))


# -- redirects ---------------------------------------------------------------------------------------

OPEN_REDIRECTS = [
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(document.cookie)",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "%252F%252Fevil.example",
    "/%5Cevil.example",
    "/\t/evil.example",
    "/\r\n/evil.example",
    " //evil.example",
    "data:text/html,<script>alert(1)</script>",
    "evil.example/path",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_open_redirect_is_refused(browser: AppBrowser, target: str) -> None:
    answer = browser.get("/auth/signin", params={"next": target})
    assert_refused(answer, "refused")


def test_only_same_site_paths_are_returned_to(browser: AppBrowser) -> None:
    final = browser.sign_in(next_path="/me?x=%2F%2Fevil")
    assert str(final.url) == f"{browser.stack.base}/me?x=%2F%2Fevil"
    hops = [h for h in browser.visited if not h.startswith(browser.stack.idp.pages_url)]
    assert all(h.startswith(browser.stack.base) for h in hops)


def test_sign_out_goes_only_to_the_registered_address(browser: AppBrowser) -> None:
    browser.sign_in()
    answer = browser.get("/auth/signout", params={"next": "https://evil.example/"})
    location = answer.headers["location"]
    assert "evil" not in location
    assert parse_qs(urlsplit(location).query)["post_logout_redirect_uri"] == [
        f"{browser.stack.base}/"
    ]


# -- sessions ----------------------------------------------------------------------------------------


def test_session_fixation_planted_id_is_not_kept(stack: Stack) -> None:
    with stack.browser() as attacker, stack.browser() as victim:
        attacker.get("/auth/signin")
        assert attacker.session_cookie() is None  # starting a sign-in makes no session
        attacker.sign_in(user=ALAN)  # the only live sessions are signed-in ones
        planted = attacker.session_cookie()
        assert planted is not None
        victim.set_session_cookie(planted)
        victim.sign_in()
        assert victim.session_cookie() not in (None, planted)
        assert victim.get("/me").json()["name"] == ADA[2]
        attacker.set_session_cookie(planted)
        assert_signed_out(attacker)


def test_two_users_in_parallel_never_see_each_other(stack: Stack) -> None:
    def person(user: tuple[str, str, str]) -> set[str]:
        seen: set[str] = set()
        with stack.browser() as browser:
            browser.sign_in(user=user)
            for _ in range(6):
                me = browser.get("/me").json()
                token = browser.get("/token-claims").json()
                assert me["preferred_username"] == user[0]
                seen.update({me["oid"], token["oid"]})
        return seen

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(person, u) for u in (ADA, ALAN, ADA, ALAN)]
        seen = [f.result(timeout=60) for f in futures]
    assert all(len(s) == 1 for s in seen)
    assert seen[0] == seen[2] and seen[1] == seen[3] and seen[0] != seen[1]


@pytest.mark.parametrize(
    "forge",
    [
        lambda sid: sid[:-1] + ("A" if sid[-1] != "A" else "B"),  # tampered
        lambda sid: "x" * 43,  # well-formed, unknown
        lambda sid: sid + "x",  # extended
        lambda sid: "' OR 1=1 --",  # garbage
        lambda sid: "",  # empty
    ],
)
def test_tampered_or_unknown_cookie_is_signed_out(browser: AppBrowser, forge: Any) -> None:
    browser.sign_in()
    sid = browser.session_cookie()
    assert sid is not None
    browser.client.cookies.delete(COOKIE)
    answer = browser.client.get(
        f"{browser.stack.base}/me", headers={"Cookie": f"{COOKIE}={forge(sid)}"}
    )
    assert answer.status_code == 302
    assert answer.headers["location"].startswith("/auth/signin")


def test_tampered_cookie_is_deleted(browser: AppBrowser) -> None:
    answer = browser.client.get(
        f"{browser.stack.base}/", headers={"Cookie": f"{COOKIE}={'y' * 43}"}
    )
    assert answer.status_code == 200 and answer.json() == {"user": None}
    assert "Max-Age=0" in answer.headers["set-cookie"]


def session_set_cookie(browser: AppBrowser, user: tuple[str, str, str] = ADA) -> str:
    """Sign in step by step; the Set-Cookie that hands the browser its session."""
    started = browser.get("/auth/signin", params={"next": "/me"})
    result = browser.pages.sign_in(started.headers["location"], email=user[0], password=user[1])
    answer = browser.client.post(result.redirect_uri, data=result.params)
    assert answer.status_code == 302, answer.text
    name = browser.cookie_name
    (cookie,) = [c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
    return cookie


def test_cookie_flags(browser: AppBrowser) -> None:
    flow = browser.get("/auth/signin").headers["set-cookie"]
    assert flow.startswith(f"{COOKIE}_flow_") and "Max-Age=600" in flow
    cookie = session_set_cookie(browser)
    assert cookie.startswith(f"{COOKIE}=")  # http: browsers refuse a __Host- cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert len(value) >= 43  # 256 random bits, nothing else
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= flags
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in flags  # the redirect URI is http
    assert "max-age" not in flags and "expires" not in flags  # the server decides
    # The Host header decides nothing: the configuration does.
    remote = httpx.get(
        f"{browser.stack.base}/",
        headers={"Host": "app.contoso.example", "Cookie": f"{COOKIE}=junk"},
    )
    deletion = remote.headers["set-cookie"]
    assert deletion.startswith(f"{COOKIE}=;") and "secure" not in deletion.lower()


def test_secure_comes_from_the_redirect_uri_behind_a_proxy(stack: Stack) -> None:
    """nginx's default ``proxy_set_header Host $proxy_host`` forwards the upstream address.

    The app runs on plain http behind a TLS-terminating proxy and sees ``Host: 127.0.0.1:8000``,
    a loopback name, while browsers use https: the cookie must still be Secure and prefixed.
    """
    public = "https://app.contoso.example"
    config = stack.config(
        redirect_uri=f"{public}/auth/redirect", post_logout_redirect_uri=f"{public}/"
    )
    app = BUILDERS["wsgi" if isinstance(stack.late, LateWSGI) else "asgi"](stack, config=config)
    with serve_like(stack, app) as upstream:
        proxied = {"Host": "127.0.0.1:8000"}
        started = httpx.get(f"{upstream}/auth/signin", headers=proxied)
        junk = httpx.get(f"{upstream}/", headers={**proxied, "Cookie": f"{HOST_COOKIE}=junk"})
    assert started.status_code == 302, started.text
    # The flow cookie, and the session cookie (here its deletion), both Secure and __Host-.
    for cookie, name in (
        (started.headers["set-cookie"], f"{HOST_COOKIE}_flow_"),
        (junk.headers["set-cookie"], f"{HOST_COOKIE}="),
    ):
        assert cookie.startswith(name)
        attributes = [part.strip() for part in cookie.split(";")[1:]]
        assert "Secure" in attributes and "Path=/" in attributes
        assert not any(a.lower().startswith("domain") for a in attributes)


@pytest.mark.parametrize("attacker_first", [True, False], ids=["attacker-first", "victim-first"])
def test_cookie_tossing_gives_no_session(stack: Stack, attacker_first: bool) -> None:
    """A sibling subdomain (or an injected http response) adds its own session cookie beside the
    victim's: neither is used, so the victim is never put into the attacker's account."""
    with stack.browser() as attacker, stack.browser() as victim:
        attacker.sign_in(user=ALAN)
        victim.sign_in(user=ADA)
        cookies = [f"{COOKIE}={attacker.session_cookie()}", f"{COOKIE}={victim.session_cookie()}"]
        header = "; ".join(cookies if attacker_first else cookies[::-1])
        home = raw_get(stack, "/", header)
        assert home.status_code == 200 and home.json() == {"user": None}
        # The victim's own cookie is not deleted: that would leave the planted one alone.
        assert "set-cookie" not in home.headers
        me = raw_get(stack, "/me", header)
        assert me.status_code == 302 and me.headers["location"].startswith("/auth/signin")
        assert victim.get("/me").json()["name"] == ADA[2]
        assert attacker.get("/me").json()["name"] == ALAN[2]


def test_https_sign_in_uses_a_host_prefixed_secure_cookie(https_stack: Stack) -> None:
    """Over https the default name is __Host-: browsers accept it only with Secure, Path=/ and
    no Domain, from https. The app's Host is 127.0.0.1:<port>, a loopback name, as behind a
    proxy; the redirect URI alone decides."""
    with https_stack.browser() as browser:
        cookie = session_set_cookie(browser)
        assert cookie.startswith(f"{HOST_COOKIE}=")
        attributes = [part.strip() for part in cookie.split(";")[1:]]
        assert {"Secure", "Path=/", "HttpOnly", "SameSite=Lax"} <= set(attributes)
        assert browser.get("/me").json()["name"] == ADA[2]
        assert browser.session_cookie(HOST_COOKIE) is not None
        assert browser.session_cookie(COOKIE) is None


def test_https_tossed_cookies_do_not_switch_the_user(https_stack: Stack) -> None:
    with https_stack.browser() as attacker, https_stack.browser() as victim:
        attacker.sign_in(user=ALAN)
        victim.sign_in(user=ADA)
        planted, own = attacker.session_cookie(), victim.session_cookie()
        # What another site can plant is a cookie without the prefix: it is not ours.
        for header in (
            f"{COOKIE}={planted}; {HOST_COOKIE}={own}",
            f"{HOST_COOKIE}={own}; {COOKIE}={planted}",
        ):
            assert raw_get(https_stack, "/me", header).json()["name"] == ADA[2]
        # Two prefixed ones are still never a choice.
        two = raw_get(https_stack, "/", f"{HOST_COOKIE}={planted}; {HOST_COOKIE}={own}")
        assert two.json() == {"user": None}


def test_auth_responses_are_not_cached_or_framed(browser: AppBrowser) -> None:
    for answer in (browser.get("/auth/signin"), browser.get("/auth/redirect")):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_cross_site_form_post_is_resumed_only_by_its_browser(stack: Stack) -> None:
    with stack.browser() as victim, stack.browser() as attacker:
        params = code_for(victim, authorize_url(victim))
        # The form_post arrives cross-site: no SameSite=Lax cookie on it.
        parked = httpx.post(f"{stack.base}/auth/redirect", data=params)
        assert parked.status_code == 303
        resume = parked.headers["location"]
        assert params["code"] not in resume and params["state"] not in resume  # sealed
        # Someone else following the link gets nothing (the flow is bound to the victim's
        # session) and takes nothing from the victim, whose sign-in completes, once.
        assert_refused(attacker.client.get(resume), "started in this browser")
        final = victim.follow(victim.client.get(resume))
        assert final.status_code == 200 and final.json()["name"] == ADA[2]
        again = victim.client.get(resume)  # reopened once signed in: home, nothing redeemed
        assert again.status_code == 302 and again.headers["location"] == "/"
        assert_refused(attacker.client.get(resume), "already used")
        assert_signed_out(attacker)


# -- a browser's own sign-in, against itself ------------------------------------------------------


def test_flow_cookies_cannot_bomb_the_cookie_header(browser: AppBrowser, stack: Stack) -> None:
    """Another site sends the victim's browser to ``/auth/signin?next=<2 KB>`` a few times
    (top-level navigations: the flow cookies are set). Before, each flow cookie was ~3 KB and
    three made a Cookie header past gunicorn's and nginx's 8 KB: every request of the site then
    failed with 431 for ten minutes. The flows now share a 4 KB budget."""
    long_next = "/me?q=" + "x" * 2030
    for i in range(4):
        # A top-level navigation: it carries the SameSite=Lax flow cookies set before.
        started = browser.get("/auth/signin", params={"next": long_next + str(i)})
        assert started.status_code == 302, started.text
        header = "; ".join(f"{c.name}={c.value}" for c in browser.client.cookies.jar)
        assert len(header) <= 4096, len(header)
    final = browser.follow(browser.get("/auth/signin", params={"next": "/me"}))
    assert final.status_code == 200 and final.json()["name"] == ADA[2]


def test_a_double_submitted_form_post_signs_in_once(stack: Stack) -> None:
    """Entra's form_post clicked twice: two cross-site POSTs, two resumed GETs carrying the
    same flow cookie. One redeems the code; the other, refused by Entra as already redeemed
    (AADSTS54005), sends the browser to the flow's own page instead of a 400 that told a
    signed-in user to sign in again."""
    with stack.browser() as victim:
        params = code_for(victim, authorize_url(victim, "/me?tab=1"))
        resumes = [httpx.post(f"{stack.base}/auth/redirect", data=params) for _ in range(2)]
        assert [r.status_code for r in resumes] == [303, 303]
        before = "; ".join(f"{c.name}={c.value}" for c in victim.client.cookies.jar)
        first = victim.client.get(resumes[0].headers["location"])
        assert first.status_code == 302 and first.headers["location"] == "/me?tab=1"
        # The second was sent with the cookies the browser held before the first came back.
        second = httpx.get(resumes[1].headers["location"], headers={"Cookie": before})
        assert second.status_code == 302, second.text
        assert second.headers["location"] == "/me?tab=1"
        assert not [c for c in second.headers.get_list("set-cookie") if c.startswith(COOKIE + "=")]
        # The browser follows it with the session the first answer set: signed in.
        landed = victim.get(second.headers["location"])
        assert landed.status_code == 200 and landed.json()["name"] == ADA[2]


def raw_exchange(stack: Stack, method: str, path: str, cookie: str = "") -> tuple[str, bytes]:
    """One request on its own connection; the response's head and every byte after it."""
    host, port = urlsplit(stack.base).netloc.split(":")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    with socket.create_connection((host, int(port)), timeout=20) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def head_fields(head: str) -> tuple[str, dict[str, str]]:
    status, *lines = head.split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines)
    return status.split(" ", 2)[1], {k.lower(): v for k, v in fields.items()}


VARYING = {"date", "location", "set-cookie", "server"}  # a new state, a new flow each time


@pytest.mark.parametrize("path", ["/auth/signin?next=/me", "/auth/redirect"])
def test_head_is_answered_like_get(stack: Stack, path: str) -> None:
    """RFC 9110: HEAD wherever GET works: the same status and headers (Content-Length
    included). Was 405 on all three routes; the body is test_head_sends_no_body's."""
    get_status, get = head_fields(raw_exchange(stack, "GET", path)[0])
    head, _body = raw_exchange(stack, "HEAD", path)
    head_status, fields = head_fields(head)
    assert head_status == get_status != "405"
    assert {k: v for k, v in fields.items() if k not in VARYING} == {
        k: v for k, v in get.items() if k not in VARYING
    }
    if path.startswith("/auth/signin"):
        assert fields["location"].startswith(stack.idp.pages_url)
        assert fields["set-cookie"].startswith(f"{COOKIE}_flow_")


def test_a_head_never_signs_out(stack: Stack) -> None:
    """HEAD is a safe method (RFC 9110; link checkers and prefetchers send it): the sign-out
    route answers it with the page with the button, where this GET (no sign of another site)
    signs out."""
    head, body = raw_exchange(stack, "HEAD", "/auth/signout")
    status, fields = head_fields(head)
    assert status == "403" and "set-cookie" not in fields and body == b""
    assert head_fields(raw_exchange(stack, "GET", "/auth/signout")[0])[0] == "302"


def test_head_sends_no_body(stack: Stack) -> None:
    """The sign-in steps answer HEAD with GET's Content-Length and no body. uvicorn drops a
    HEAD's body itself; Werkzeug's development server sends what it is given, so the WSGI
    adapter leaves it out (``entra_ciam.wsgi.exchange.respond(head=True)``)."""
    head, body = raw_exchange(stack, "HEAD", "/auth/redirect")  # a 400 page, for GET
    assert head_fields(head)[1]["content-length"] != "0"
    assert body == b""
