"""The sans-IO sign-in steps, driven directly, against a scripted Entra on respx.

Entra's answers (discovery, token endpoint) are faked at the HTTP layer; everything of ours
(sessions, MSAL, the checks) is real. The adapters and the emulator are covered elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import respx

from entra_ciam import ConfigError, EntraConfig
from entra_ciam.sessions import MemoryStore, SessionStoreUnavailableError
from entra_ciam.signin import Request, Response, SignIn
from entra_ciam.signin.context import USER_KEY
from entra_ciam.signin.returnpath import UnsafeReturnPathError, check_return_path
from tests.support.fake_entra import (
    API_SCOPE,
    AUTHORITY,
    BASE,
    END_SESSION,
    REDIRECT_URI,
    FakeEntra,
    make_config,
)
from tests.support.fake_entra import StepBrowser as Browser
from tests.support.tokens import TENANT_ID, WEB_CLIENT_ID


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mocked:
        yield mocked


@pytest.fixture
def entra(router: respx.MockRouter) -> FakeEntra:
    return FakeEntra(router)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def signin(entra: FakeEntra, store: MemoryStore) -> SignIn:
    return SignIn(make_config(), store=store, scopes=[API_SCOPE])


def start(browser: Browser, next_path: str = "/todos") -> str:
    return browser.start(next_path)


def finish(browser: Browser, entra: FakeEntra, auth_uri: str, **claims: Any) -> Response:
    return browser.finish(entra, auth_uri, **claims)


# -- return paths ---------------------------------------------------------------------------------

GOOD_PATHS = ["/", "/todos", "/todos?page=2&q=a%20b", "/a/b/c.html", "/search?q=caf%C3%A9", "/@me"]
BAD_PATHS = [
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "%252F%252Fevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\nSet-Cookie: x=1",
    " //evil.example",
    "evil.example",
    "",
    "data:text/html,hi",
    "/%09/evil.example",
    "/" + "a" * 3000,
    "/\u202e/moc.elpmaxe",
]


@pytest.mark.parametrize("path", GOOD_PATHS)
def test_same_origin_paths_are_accepted(path: str) -> None:
    assert check_return_path(path) == path


def test_non_ascii_is_encoded_and_fragment_dropped() -> None:
    assert check_return_path("/café#top") == "/caf%C3%A9"


@pytest.mark.parametrize("path", BAD_PATHS)
def test_anything_else_is_refused(path: str) -> None:
    with pytest.raises(UnsafeReturnPathError):
        check_return_path(path)


# -- configuration --------------------------------------------------------------------------------


def test_missing_settings_are_named_with_examples(store: MemoryStore) -> None:
    config = EntraConfig(authority=AUTHORITY, client_id=WEB_CLIENT_ID)
    with pytest.raises(ConfigError) as caught:
        SignIn(config, store=store)
    message = str(caught.value)
    for name in ("ENTRA_CLIENT_SECRET", "ENTRA_REDIRECT_URI", "ENTRA_SESSION_SECRET"):
        assert name in message
    assert "Example" in message


@pytest.mark.parametrize(
    ("overrides", "options", "fragment"),
    [
        ({"redirect_uri": "http://localhost:3000/callback"}, {}, "/auth/redirect"),
        ({}, {"prefix": "auth"}, "prefix"),
        ({}, {"response_mode": "fragment"}, "response_mode"),
        ({}, {"default_return_path": "//evil"}, "Invalid sign-in setting"),
        ({"session_secret": "not-a-fernet-key"}, {}, "ENTRA_SESSION_SECRET"),
        ({}, {"cookie_name": "bad name"}, "cookie name"),
    ],
)
def test_wrong_settings_are_config_errors(
    store: MemoryStore, overrides: dict[str, Any], options: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        SignIn(make_config(**overrides), store=store, **options)


# -- sign-in --------------------------------------------------------------------------------------


def test_sign_in_redirects_to_entra_with_pkce_state_and_nonce(
    signin: SignIn, store: MemoryStore
) -> None:
    browser = Browser(signin)
    location = start(browser)
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/authorize"
    query = parse_qs(parts.query)
    assert query["client_id"] == [WEB_CLIENT_ID]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["response_type"] == ["code"]
    assert query["response_mode"] == ["form_post"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 32
    assert query["nonce"][0]
    assert set(query["scope"][0].split()) >= {
        "openid",
        "offline_access",
        API_SCOPE,
    }
    # The flow is kept in this browser, sealed in a cookie of its own: nothing is stored yet.
    assert browser.session_id is None
    assert store._items == {}
    (cookie,) = browser.set_cookies
    assert cookie.startswith("entra_ciam_session_flow_")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Max-Age=600" in cookie
    assert "Secure" not in cookie  # the redirect URI is http
    assert query["state"][0] not in cookie and query["nonce"][0] not in cookie


def _first_cookie(signin: SignIn, host: str) -> str:
    """The session cookie's companion that starting a sign-in sets (same name and attributes),
    then the session cookie's own deletion, asked for by a junk session cookie."""
    flow, session = "", ""
    for cookie_header in ("", f"{signin.sessions.cookie_name}=junk"):
        request = Request(method="GET", path="/auth/signin", host=host, cookie_header=cookie_header)
        ctx = signin.open(request.cookie_header, lambda request=request: request)
        assert not isinstance(ctx, Response)
        response, _ = signin.close(ctx, signin.handle(ctx))
        cookies = [v for k, v in response.headers if k == "Set-Cookie"]
        flow = flow or cookies[0]
        session = session or next((c for c in cookies if "_flow_" not in c.split("=")[0]), "")
    name = signin.sessions.cookie_name
    assert flow.startswith(f"{name}_flow_") and session.startswith(f"{name}=;")
    assert flow.endswith("; Secure") is session.endswith("; Secure")
    return session


HTTPS_REDIRECT_URI = "https://app.contoso.com/auth/redirect"


@pytest.mark.parametrize(
    ("redirect_uri", "host", "name", "secure"),
    [
        # Behind nginx's default proxy_set_header, the app sees its upstream address as Host.
        (HTTPS_REDIRECT_URI, "127.0.0.1:8000", "__Host-entra_ciam_session", True),
        (HTTPS_REDIRECT_URI, "localhost", "__Host-entra_ciam_session", True),
        (HTTPS_REDIRECT_URI, "app.contoso.com", "__Host-entra_ciam_session", True),
        # A development site on http: a forged Host changes nothing either.
        (REDIRECT_URI, "app.contoso.com", "entra_ciam_session", False),
        (REDIRECT_URI, "localhost:3000", "entra_ciam_session", False),
    ],
)
def test_the_cookie_follows_the_redirect_uri_not_the_host(
    entra: FakeEntra, store: MemoryStore, redirect_uri: str, host: str, name: str, secure: bool
) -> None:
    signin = SignIn(
        make_config(redirect_uri=redirect_uri, post_logout_redirect_uri=None), store=store
    )
    cookie = _first_cookie(signin, host)
    assert cookie.startswith(name + "=")
    assert cookie.endswith("; Secure") is secure


def test_secure_cookie_can_be_forced_but_not_dropped_on_https(
    entra: FakeEntra, store: MemoryStore
) -> None:
    forced = SignIn(make_config(), store=store, secure_cookie=True)
    cookie = _first_cookie(forced, "localhost:3000")
    assert cookie.startswith("__Host-entra_ciam_session=") and cookie.endswith("; Secure")
    with pytest.raises(ConfigError, match="secure_cookie=False"):
        SignIn(
            make_config(redirect_uri=HTTPS_REDIRECT_URI, post_logout_redirect_uri=None),
            store=store,
            secure_cookie=False,
        )
    plain = SignIn(make_config(), store=store, secure_cookie=False, cookie_name="sid")
    assert _first_cookie(plain, "app.contoso.com").startswith("sid=")


def test_auth_responses_are_not_cacheable(signin: SignIn) -> None:
    browser = Browser(signin)
    response = browser.get("/auth/signin")
    assert response.header("Cache-Control") == "no-store"
    assert response.header("X-Frame-Options") == "DENY"
    refused = browser.get("/auth/redirect", "state=x")
    assert refused.status == 400
    assert refused.header("Cache-Control") == "no-store"
    assert refused.header("Content-Security-Policy") is not None


def test_full_sign_in_rotates_the_session_and_returns_to_next(
    signin: SignIn, entra: FakeEntra, store: MemoryStore
) -> None:
    browser = Browser(signin)
    auth_uri = start(browser, "/todos?page=2")
    before = browser.session_id
    response = finish(browser, entra, auth_uri)
    assert response.status == 302, response.body
    assert response.header("Location") == "/todos?page=2"
    after = browser.session_id
    assert after is not None and after != before
    # The pre-sign-in id is gone from the store; the new one holds the user and a sealed cache.
    assert store.get(signin.sessions.store_key(before or "")) is None
    record = store.get(signin.sessions.store_key(after))
    assert record is not None
    assert record["d"][USER_KEY]["oid"] == entra.factory.claims()["oid"]
    blob = record["d"]["entra_ciam.token_cache"]
    assert "refresh_token" not in blob.lower() and "RefreshToken" not in blob
    # PKCE: the verifier sent to the token endpoint matches the challenge sent to authorize.
    verifier = entra.token_posts[-1]["code_verifier"][0]
    challenge = parse_qs(urlsplit(auth_uri).query)["code_challenge"][0]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge


@pytest.mark.filterwarnings("ignore:response_mode=.form_post. is recommended")
def test_query_response_mode_is_accepted(entra: FakeEntra, store: MemoryStore) -> None:
    signin = SignIn(make_config(), store=store, response_mode="query")
    browser = Browser(signin)
    auth_uri = start(browser)
    assert "response_mode=query" in auth_uri
    code, state = entra.issue_code(auth_uri)
    response = browser.get("/auth/redirect", urlencode({"code": code, "state": state}))
    assert response.status == 302 and response.header("Location") == "/todos"


def test_cross_site_form_post_is_parked_and_resumed(signin: SignIn, entra: FakeEntra) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    code, state = entra.issue_code(auth_uri)
    # SameSite=Lax: the cross-site POST arrives without the session cookie.
    saved = dict(browser.cookies)
    browser.cookies.clear()
    parked = browser.send("POST", "/auth/redirect", form={"code": code, "state": state})
    assert parked.status == 303
    location = parked.header("Location") or ""
    assert location.startswith(REDIRECT_URI + "?resume=")
    assert code not in location
    # The top-level GET that follows carries the cookie again.
    browser.cookies.update(saved)
    resume = urlsplit(location).query
    response = browser.get("/auth/redirect", resume)
    assert response.status == 302 and response.header("Location") == "/todos"
    # A parked answer is single use: the signed-in user reloading it is sent home, and in
    # another browser (nobody signed in) it is refused.
    again = browser.get("/auth/redirect", resume)
    assert again.status == 302 and again.header("Location") == "/"
    assert Browser(signin).get("/auth/redirect", resume).status == 400


# -- refusals -------------------------------------------------------------------------------------


def test_missing_state_is_refused(signin: SignIn, entra: FakeEntra) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    code, _state = entra.issue_code(auth_uri)
    response = browser.send("POST", "/auth/redirect", form={"code": code})
    assert response.status == 400
    assert b"no state" in response.body
    assert entra.token_posts == []


def test_replayed_state_is_refused(signin: SignIn, entra: FakeEntra) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    code, state = entra.issue_code(auth_uri)
    assert browser.send("POST", "/auth/redirect", form={"code": code, "state": state}).status == 302
    # The signed-in user reloading the callback: sent home, nothing redeemed again.
    reload = browser.send("POST", "/auth/redirect", form={"code": code, "state": state})
    assert reload.status == 302 and reload.header("Location") == "/"
    # Replayed from a browser where nobody is signed in: refused, in plain words.
    other = Browser(signin)
    start(other)  # a session of its own, so the POST is not parked as a cross-site one
    replay = other.send("POST", "/auth/redirect", form={"code": code, "state": state})
    assert replay.status == 400
    assert b"already used" in replay.body
    assert len(entra.token_posts) == 1


def test_a_signed_in_user_reopening_the_callback_is_sent_home(
    signin: SignIn, entra: FakeEntra
) -> None:
    browser = Browser(signin)
    code, state = entra.issue_code(start(browser))
    assert browser.send("POST", "/auth/redirect", form={"code": code, "state": state}).status == 302
    for query in ("", "state=" + "a" * 43, "resume=" + "b" * 43):
        answer = browser.get("/auth/redirect", query)
        assert answer.status == 302, query
        assert answer.header("Location") == "/"
    # Before signing in, the bare callback explains itself and offers to start over.
    lost = Browser(signin).get("/auth/redirect", "")
    assert lost.status == 400
    assert b"last step of signing in" in lost.body
    assert b'href="/auth/signin"' in lost.body


def test_repeated_parameters_are_refused(signin: SignIn, entra: FakeEntra) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    code, state = entra.issue_code(auth_uri)
    query = urlencode([("code", code), ("state", state), ("state", "x" * 43)])
    assert browser.get("/auth/redirect", query).status == 400


def test_entra_error_answer_is_a_400_page(signin: SignIn) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    state = parse_qs(urlsplit(auth_uri).query)["state"][0]
    response = browser.send(
        "POST",
        "/auth/redirect",
        form={"state": state, "error": "access_denied", "error_description": "<script>x</script>"},
    )
    assert response.status == 400
    assert b"cancelled" in response.body and b"<script>" not in response.body


def test_error_description_is_escaped(signin: SignIn) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    state = parse_qs(urlsplit(auth_uri).query)["state"][0]
    response = browser.send(
        "POST",
        "/auth/redirect",
        form={"state": state, "error": "invalid_request", "error_description": "<b>boom</b>"},
    )
    assert response.status == 400
    assert b"<b>" not in response.body and b"&lt;b&gt;boom" in response.body


@pytest.mark.parametrize("error", ["server_error", "temporarily_unavailable"])
def test_entra_failing_at_the_redirect_is_a_503(
    signin: SignIn, entra: FakeEntra, error: str
) -> None:
    """The authorize endpoint's own "I am failing" answers, as the token endpoint's: a 503
    with Retry-After that says only that Entra is unavailable, not a 400 telling the user to
    sign in again (which fails the same way until Entra recovers)."""
    browser = Browser(signin)
    state = parse_qs(urlsplit(start(browser)).query)["state"][0]
    response = browser.send(
        "POST",
        "/auth/redirect",
        form={"state": state, "error": error, "error_description": "AADSTS90000 internal"},
    )
    assert response.status == 503, response.body
    assert response.header("Retry-After") is not None
    assert response.header("Cache-Control") == "no-store"
    assert b"cannot be reached" in response.body and b"AADSTS90000" not in response.body
    assert browser.session_id is None and entra.token_posts == []
    # The token endpoint failing the same way answers the same page.
    other = Browser(signin)
    entra.token_fault = error
    same = finish(other, entra, start(other))
    assert (same.status, same.body) == (response.status, response.body)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"nonce": "forged"}, b"nonce"),
        ({"aud": "11111111-2222-3333-4444-555555555555"}, b"another application"),
        ({"iss": "https://evil.example/v2.0"}, b"another authority"),
        ({"tid": "11111111-2222-3333-4444-555555555555"}, b"another tenant"),
        ({"exp": int(time.time()) - 3600}, b"expired"),
    ],
)
def test_bad_id_tokens_are_refused(
    entra: FakeEntra, store: MemoryStore, claims: dict[str, Any], reason: bytes
) -> None:
    signin = SignIn(make_config(tenant_id=TENANT_ID), store=store)
    browser = Browser(signin)
    auth_uri = start(browser)
    response = finish(browser, entra, auth_uri, **claims)
    assert response.status == 400, response.body
    assert reason in response.body
    assert not any(USER_KEY in (store.get(k) or {}).get("d", {}) for k in list(store._items))


def test_a_double_submitted_answer_lands_on_its_page(
    signin: SignIn, entra: FakeEntra, store: MemoryStore
) -> None:
    """Entra's form_post submitted twice: both requests carry the flow cookie and redeem the
    code; the second is told "already redeemed" (AADSTS54005). Its browser goes to the flow's
    own page, as a signed-in user reopening the callback does, not to a 400 that tells a user
    whom the other request signed in to sign in again."""
    browser = Browser(signin)
    code, state = entra.issue_code(start(browser, "/todos?page=2"))
    form = {"code": code, "state": state}
    second = Browser(signin)
    second.cookies = dict(browser.cookies)  # sent before the first answer came back
    first = browser.send("POST", "/auth/redirect", form=form)
    assert first.status == 302 and first.header("Location") == "/todos?page=2"
    assert browser.session_id is not None
    late = second.send("POST", "/auth/redirect", form=form)
    assert late.status == 302, late.body
    assert late.header("Location") == "/todos?page=2"
    assert len(entra.token_grants("authorization_code")) == 2
    # It signs nobody in and makes no session: the page it leads to (with the cookie the
    # first answer set, in a real browser) decides.
    assert second.session_id is None
    assert not any("_flow_" not in c.split("=")[0] for c in second.set_cookies)
    assert sum(USER_KEY in (store.get(k) or {}).get("d", {}) for k in list(store._items)) == 1


def test_code_replay_is_refused_by_entra(signin: SignIn, entra: FakeEntra) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    code, state = entra.issue_code(auth_uri)
    entra.codes.pop(code)  # already redeemed elsewhere
    response = browser.send("POST", "/auth/redirect", form={"code": code, "state": state})
    assert response.status == 400
    assert b"invalid_grant" in response.body and b"AADSTS9002313" in response.body


def test_token_endpoint_down_is_a_503(signin: SignIn, entra: FakeEntra) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    entra.token_fault = "down"
    response = finish(browser, entra, auth_uri)
    assert response.status == 503
    assert response.header("Retry-After") is not None


def test_token_endpoint_answering_html_is_a_503(signin: SignIn, entra: FakeEntra) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    entra.token_fault = "garbage"
    response = finish(browser, entra, auth_uri)
    assert response.status == 503


def test_token_endpoint_refusing_the_app_is_not_a_500(signin: SignIn, entra: FakeEntra) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    entra.token_fault = "invalid_client"
    response = finish(browser, entra, auth_uri)
    assert response.status == 502
    assert b"configuration" in response.body


def test_discovery_down_is_a_503(entra: FakeEntra, store: MemoryStore) -> None:
    entra.discovery.mock(side_effect=httpx.ConnectError("refused"))
    signin = SignIn(make_config(), store=store)
    response = Browser(signin).get("/auth/signin")
    assert response.status == 503
    assert b"cannot be reached" in response.body


class BrokenStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise SessionStoreUnavailableError("down")

    def get(self, sid: str) -> Any:
        self._check()
        return super().get(sid)

    def set(self, sid: str, data: Any, ttl: float) -> None:
        self._check()
        super().set(sid, data, ttl)

    def pop(self, sid: str) -> Any:
        self._check()
        return super().pop(sid)


def test_store_down_is_a_503(entra: FakeEntra) -> None:
    store = BrokenStore()
    signin = SignIn(make_config(), store=store)
    browser = Browser(signin)
    browser.sign_in(entra)
    store.broken = True
    for response in (
        browser.get("/auth/signin"),
        browser.get("/auth/redirect", "state=" + "a" * 40),
    ):
        assert response.status == 503
        assert b"try again" in response.body.lower()
    # Starting a sign-in stores nothing, so a new visitor can still start one.
    assert Browser(signin).get("/auth/signin").status == 302


def test_unknown_routes_method_is_405(signin: SignIn) -> None:
    for path in ("/auth/signin", "/auth/redirect", "/auth/signout"):
        response = Browser(signin).send("PUT", path)
        assert response.status == 405
        assert response.header("Allow") == "GET, HEAD, POST"


def test_head_is_answered_as_get(signin: SignIn, entra: FakeEntra) -> None:
    """RFC 9110: HEAD wherever GET works, same status and headers. The body stays in the
    step's answer so that the adapters' Content-Length is GET's; servers send no body for a
    HEAD (tests/test_signin_attacks.py checks that on the wire)."""
    browser = Browser(signin)
    head = browser.send("HEAD", "/auth/signin", urlencode({"next": "/todos"}))
    assert head.status == 302
    assert (head.header("Location") or "").startswith(f"{BASE}/authorize?")
    assert [c.split("_flow_")[0] for c in browser.set_cookies] == ["entra_ciam_session"]
    # The flow it started finishes like any other.
    code, state = entra.issue_code(head.header("Location") or "")
    done = browser.send("POST", "/auth/redirect", form={"code": code, "state": state})
    assert done.status == 302 and done.header("Location") == "/todos"
    # The callback: a signed-in user is sent home; anyone else gets the 400 page's headers.
    assert browser.send("HEAD", "/auth/redirect").header("Location") == "/"
    get, head = (
        Browser(signin).get("/auth/redirect"),
        Browser(signin).send("HEAD", "/auth/redirect"),
    )
    assert (head.status, head.headers, head.body) == (get.status, get.headers, get.body)
    assert head.status == 400
    # Sign-out: a HEAD, a safe method, never signs out; it gets the page with the button.
    out = browser.send("HEAD", "/auth/signout")
    assert out.status == 403 and b'action="/auth/signout"' in out.body
    assert browser.session_id is not None
    assert browser.get("/auth/signout").status == 302  # the GET from this site still does


# -- sign-out -------------------------------------------------------------------------------------


def test_sign_out_forgets_everything_and_ends_the_entra_session(
    signin: SignIn, entra: FakeEntra, store: MemoryStore
) -> None:
    browser = Browser(signin)
    auth_uri = start(browser)
    finish(browser, entra, auth_uri, login_hint="O.ada-hint")
    sid = browser.session_id
    assert sid is not None
    response = browser.get("/auth/signout")
    assert response.status == 302
    location = response.header("Location") or ""
    assert location.startswith(END_SESSION + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["post_logout_redirect_uri"] == ["http://localhost:3000/"]
    assert query["logout_hint"] == ["O.ada-hint"]
    assert store.get(signin.sessions.store_key(sid)) is None
    assert any("Max-Age=0" in c for c in browser.set_cookies)
    assert browser.session_id is None


def test_sign_out_without_end_session_endpoint_goes_home(
    entra: FakeEntra, store: MemoryStore
) -> None:
    document = entra.document()
    del document["end_session_endpoint"]
    entra.discovery.mock(return_value=httpx.Response(200, json=document))
    signin = SignIn(make_config(post_logout_redirect_uri=None), store=store)
    response = Browser(signin).get("/auth/signout")
    assert response.status == 302
    assert response.header("Location") == "/"


# -- an app mounted under a prefix (SCRIPT_NAME / root_path) ---------------------------------------


def test_a_mounted_app_comes_back_under_its_mount(entra: FakeEntra, store: MemoryStore) -> None:
    """Every target the sign-in picks by itself (no ``next``, a signed-in user reopening the
    callback, sign-out without Entra's endpoint) is the app's home under its mount, as every
    route is: ``/app/``, not the host's ``/``, which is another app or nothing."""
    config = make_config(
        redirect_uri="http://localhost:3000/app/auth/redirect", post_logout_redirect_uri=None
    )
    signin = SignIn(config, store=store, default_return_path="/welcome")
    browser = Browser(signin, root_path="/app")
    started = browser.get("/auth/signin")
    assert started.status == 302
    code, state = entra.issue_code(started.header("Location") or "")
    done = browser.send("POST", "/auth/redirect", form={"code": code, "state": state})
    assert done.status == 302 and done.header("Location") == "/app/welcome"
    reopened = browser.get("/auth/redirect")
    assert reopened.status == 302 and reopened.header("Location") == "/app/welcome"
    # A next given by the app's own redirect already names the mount: kept as it is.
    again = browser.get("/auth/signin", urlencode({"next": "/app/todos"}))
    code, state = entra.issue_code(again.header("Location") or "")
    done = browser.send("POST", "/auth/redirect", form={"code": code, "state": state})
    assert done.header("Location") == "/app/todos"
    # Refusals link to the mounted sign-in route.
    lost = Browser(signin, root_path="/app").get("/auth/redirect")
    assert lost.status == 400 and b'href="/app/auth/signin"' in lost.body


@pytest.mark.parametrize(
    ("root_path", "mount"),
    [
        ("//evil.example", "/evil.example"),
        ("///evil.example", "/evil.example"),
        ("https://evil.example", "/https://evil.example"),
        ("/\\evil.example", "/%5Cevil.example"),
        ("/app", "/app"),
    ],
)
def test_urls_built_on_the_mount_stay_on_this_site(
    signin: SignIn, root_path: str, mount: str
) -> None:
    """A mount point a proxy header set (``X-Forwarded-Prefix: //evil.example`` through
    ProxyFix, gunicorn's ``SCRIPT_NAME`` header) must not turn a redirect into another site."""
    request = Request(method="GET", path="/todos", root_path=root_path)
    assert request.url_for("/auth/signin") == f"{mount}/auth/signin"
    assert request.url_for("/") == f"{mount}/"
    assert request.return_path == f"{mount}/todos"
    refused = Browser(signin, root_path=root_path).get("/auth/redirect")
    assert refused.status == 400
    assert f'href="{mount}/auth/signin"'.encode() in refused.body
