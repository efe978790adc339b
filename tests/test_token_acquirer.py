"""``TokenAcquirer``: user tokens (scripted Entra), app and on-behalf-of tokens (the emulator).

User tokens are driven through the sans-IO steps with a scripted token endpoint, so every answer
Entra can give (a refresh, ``invalid_grant``, a claims challenge, an outage) is exercised. App and
on-behalf-of tokens go to the real emulator over https and are checked by the validator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import respx

from entra_ciam import AccessTokenValidator, ConfigError, EntraConfig, TokenAcquirer
from entra_ciam.devidp import DevIdp, defaults
from entra_ciam.devidp.testing import running_devidp
from entra_ciam.http import MsalHttpClient, MsalResponse
from entra_ciam.sessions import TOKEN_CACHE_KEY, MemoryStore
from entra_ciam.signin import InteractionRequiredError, RequestContext, Response, SignIn
from entra_ciam.signin.context import activated
from entra_ciam.signin.errors import TokenAcquisitionError
from tests.support.fake_entra import API_SCOPE, FakeEntra, StepBrowser, make_signin
from tests.support.idp_tokens import user_token
from tests.support.webapps import READ

OTHER_SCOPE = "api://todo/Todolist.ReadWrite"
CLAIMS_CHALLENGE = json.dumps({"access_token": {"acrs": {"essential": True, "value": "c1"}}})


# -- user tokens, scripted Entra ------------------------------------------------------------------


@pytest.fixture
def entra() -> Iterator[FakeEntra]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeEntra(router)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def signin(entra: FakeEntra, store: MemoryStore) -> SignIn:
    return make_signin(store, scopes=[API_SCOPE])


def request_context(browser: StepBrowser, path: str = "/page?x=1") -> RequestContext:
    path_only, _, query = path.partition("?")
    opened = browser.open("GET", path_only, query)
    assert isinstance(opened, RequestContext)
    return opened


def end_request(browser: StepBrowser, ctx: RequestContext) -> Response:
    final, _ = browser.signin.close(ctx, Response(200, [("Content-Type", "text/plain")], b"ok"))
    browser.keep(final)
    return final


def stored_blob(browser: StepBrowser, store: MemoryStore) -> str:
    record = store.get(browser.signin.sessions.store_key(browser.session_id or ""))
    assert record is not None
    blob: str = record["d"][TOKEN_CACHE_KEY]
    return blob


def test_cached_token_needs_no_call_and_no_write(
    signin: SignIn, entra: FakeEntra, store: MemoryStore
) -> None:
    browser = StepBrowser(signin)
    browser.sign_in(entra)
    posts, blob = len(entra.token_posts), stored_blob(browser, store)
    ctx = request_context(browser)
    with activated(ctx):
        token = TokenAcquirer().acquire_token_for_user(API_SCOPE)
    end_request(browser, ctx)
    assert token.count(".") == 2
    assert len(entra.token_posts) == posts
    assert stored_blob(browser, store) == blob


def test_expiring_token_is_refreshed_and_the_cache_written_back(
    signin: SignIn, entra: FakeEntra, store: MemoryStore
) -> None:
    entra.expires_in = 60  # MSAL refreshes tokens that have less than five minutes left
    browser = StepBrowser(signin)
    browser.sign_in(entra)
    blob = stored_blob(browser, store)
    ctx = request_context(browser)
    with activated(ctx):
        token = TokenAcquirer().acquire_token_for_user([API_SCOPE])
    end_request(browser, ctx)
    assert len(entra.token_grants("refresh_token")) == 1
    assert stored_blob(browser, store) != blob
    assert token.count(".") == 2


async def test_async_twin_sees_the_request(
    signin: SignIn, entra: FakeEntra, store: MemoryStore
) -> None:
    browser = StepBrowser(signin)
    browser.sign_in(entra)
    ctx = request_context(browser)
    with activated(ctx):
        token = await TokenAcquirer().acquire_token_for_user_async(API_SCOPE)
    assert token.count(".") == 2


@pytest.mark.parametrize("error", ["invalid_grant", "interaction_required", "consent_required"])
def test_refusals_only_the_user_can_fix_start_a_sign_in_back_to_the_page(
    signin: SignIn, entra: FakeEntra, error: str
) -> None:
    browser = StepBrowser(signin)
    browser.sign_in(entra, login_hint="O.hint")
    entra.refresh_error = error
    ctx = request_context(browser, "/reports?year=2024")
    with activated(ctx), pytest.raises(InteractionRequiredError) as caught:
        TokenAcquirer().acquire_token_for_user(OTHER_SCOPE)
    redirect = end_request(browser, ctx)
    assert caught.value.redirect_response is ctx.pending
    location = caught.value.redirect_response.header("Location") or ""
    query = parse_qs(urlsplit(location).query)
    assert OTHER_SCOPE in query["scope"][0].split()
    assert API_SCOPE not in query["scope"][0].split()  # one resource per request
    assert query["login_hint"] == ["O.hint"]
    assert redirect.status == 302
    # Completing that sign-in brings the user back to the page, and the token is then cached.
    entra.refresh_error = None
    back = browser.finish(entra, location)
    assert back.status == 302 and back.header("Location") == "/reports?year=2024"
    ctx = request_context(browser)
    posts = len(entra.token_posts)
    with activated(ctx):
        TokenAcquirer().acquire_token_for_user(OTHER_SCOPE)
    assert len(entra.token_posts) == posts


def test_a_session_signed_out_by_another_request_is_not_revived_and_sign_in_works(
    signin: SignIn, entra: FakeEntra, store: MemoryStore
) -> None:
    browser = StepBrowser(signin)
    browser.sign_in(entra)
    old_key = signin.sessions.store_key(browser.session_id or "")
    slow = request_context(browser, "/reports")  # loaded before the sign-out below
    signing_out = request_context(browser)
    signin.sessions.destroy(signing_out.session)
    end_request(browser, signing_out)
    assert store.get(old_key) is None
    with activated(slow), pytest.raises(InteractionRequiredError) as caught:
        TokenAcquirer().acquire_token_for_user(OTHER_SCOPE)  # not in the cache: needs Entra
    assert slow.user is None
    end_request(browser, slow)
    assert store.get(old_key) is None, "the signed-out session must not come back"
    # The sign-in it started lives in its flow cookie: no session is made for it.
    assert browser.session_id is None
    location = caught.value.redirect_response.header("Location") or ""
    back = browser.finish(entra, location)  # the sign-in it started completes
    assert back.status == 302 and back.header("Location") == "/reports"


def test_the_redirect_replaces_the_apps_answer_but_keeps_its_cookies(
    signin: SignIn, entra: FakeEntra
) -> None:
    browser = StepBrowser(signin)
    browser.sign_in(entra)
    entra.refresh_error = "invalid_grant"
    ctx = request_context(browser)
    with activated(ctx), pytest.raises(InteractionRequiredError):
        TokenAcquirer().acquire_token_for_user(OTHER_SCOPE)
    app_answer = Response(500, [("Set-Cookie", "flask_session=abc; HttpOnly")], b"oops")
    final, replaced = signin.close(ctx, app_answer)
    assert replaced and final.status == 302
    assert final.header("Location") == (ctx.pending.header("Location") if ctx.pending else None)
    assert ("Set-Cookie", "flask_session=abc; HttpOnly") in final.headers
    assert final.body == b""


def test_claims_challenge_is_carried_to_the_sign_in(signin: SignIn, entra: FakeEntra) -> None:
    browser = StepBrowser(signin)
    browser.sign_in(entra)
    entra.refresh_error = "interaction_required"
    entra.refresh_claims = CLAIMS_CHALLENGE
    ctx = request_context(browser)
    with activated(ctx), pytest.raises(InteractionRequiredError) as caught:
        TokenAcquirer().acquire_token_for_user(API_SCOPE, claims_challenge=CLAIMS_CHALLENGE)
    location = caught.value.redirect_response.header("Location") or ""
    claims = parse_qs(urlsplit(location).query)["claims"][0]
    assert json.loads(claims)["access_token"]["acrs"]["value"] == "c1"
    # The refresh attempt carried the challenge too (MSAL bypasses its cache for it).
    assert "claims" in entra.token_grants("refresh_token")[-1]


def test_nobody_signed_in_means_sign_in(signin: SignIn) -> None:
    browser = StepBrowser(signin)
    ctx = request_context(browser, "/todos")
    with activated(ctx), pytest.raises(InteractionRequiredError):
        TokenAcquirer().acquire_token_for_user(API_SCOPE)
    response = end_request(browser, ctx)
    assert response.status == 302
    # The flow is kept in the browser's flow cookie; nothing is stored for an anonymous visitor.
    assert any(name.startswith(signin.flows.prefix) for name in browser.cookies)
    assert browser.session_id is None


@pytest.mark.parametrize("fault", ["down", "garbage"])
def test_entra_unreachable_is_a_503_error(signin: SignIn, entra: FakeEntra, fault: str) -> None:
    entra.expires_in = 60
    browser = StepBrowser(signin)
    browser.sign_in(entra)
    entra.token_fault = fault
    ctx = request_context(browser)
    with activated(ctx), pytest.raises(TokenAcquisitionError) as caught:
        TokenAcquirer().acquire_token_for_user(API_SCOPE)
    assert caught.value.status_code == 503
    assert ctx.pending is None


def test_entra_refusing_the_app_is_a_502_error(signin: SignIn, entra: FakeEntra) -> None:
    browser = StepBrowser(signin)
    browser.sign_in(entra)
    entra.refresh_error = "invalid_client"
    ctx = request_context(browser)
    with activated(ctx), pytest.raises(TokenAcquisitionError) as caught:
        TokenAcquirer().acquire_token_for_user(OTHER_SCOPE)
    assert caught.value.status_code == 502
    assert caught.value.error == "invalid_client"


def test_outside_a_request_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="SignInMiddleware"):
        TokenAcquirer().acquire_token_for_user(API_SCOPE)


@pytest.mark.parametrize("scopes", ["", [], ["openid", "profile"], ["two words"]])
def test_scopes_are_checked(scopes: Any) -> None:
    with pytest.raises(ValueError, match="scope"):
        TokenAcquirer().acquire_token_for_app(scopes)


def test_app_tokens_need_a_config_outside_requests() -> None:
    with pytest.raises(ConfigError, match="EntraConfig"):
        TokenAcquirer().acquire_token_for_app("api://todo/.default")


# -- the framework hooks, without the middleware's safety net -------------------------------------


def test_flask_answers_the_exception_with_the_redirect_itself() -> None:
    from flask import Flask

    from entra_ciam.flask import INTEGRATION
    from entra_ciam.signin.pages import redirect

    error = INTEGRATION.interaction_error
    app = Flask("hook")
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.errorhandler(Exception)
    def oops(exc: Exception) -> Any:
        return "the app's 500", 500

    @app.get("/")
    def view() -> Any:
        raise error("consent needed", redirect("https://login.example/authorize?x=1"))

    response = app.test_client().get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://login.example/authorize?x=1"
    assert response.headers["Cache-Control"] == "no-store"


async def test_starlette_answers_the_exception_with_the_redirect_itself() -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Route

    from entra_ciam.signin.pages import redirect
    from entra_ciam.starlette import INTEGRATION

    error = INTEGRATION.interaction_error

    async def view(request: Any) -> Any:
        raise error("consent needed", redirect("https://login.example/authorize?x=1"))

    transport = httpx.ASGITransport(Starlette(routes=[Route("/", view)]))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get("/")
    assert response.status_code == 302
    assert response.headers["location"] == "https://login.example/authorize?x=1"


async def test_quart_answers_the_exception_with_the_redirect_itself() -> None:
    from quart import Quart

    from entra_ciam.quart import INTEGRATION
    from entra_ciam.signin.pages import redirect

    app = Quart("hook")

    @app.get("/")
    async def view() -> Any:
        raise INTEGRATION.interaction_error("consent", redirect("https://login.example/a?x=1"))

    response = await app.test_client().get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://login.example/a?x=1"


# -- app and on-behalf-of tokens, the emulator -----------------------------------------------------


class CountingClient(MsalHttpClient):
    """Our MSAL HTTP client, counting the POSTs it makes (token requests)."""

    def __init__(self, verify: str) -> None:
        super().__init__(verify)
        self.posts = 0

    def post(self, url: str, *args: Any, **kwargs: Any) -> MsalResponse:
        self.posts += 1
        return super().post(url, *args, **kwargs)


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


def api_validator(idp: DevIdp) -> AccessTokenValidator:
    return AccessTokenValidator(
        authority=idp.authority, audience=defaults.TODO_API_CLIENT_ID, verify=idp.ca_bundle
    )


def user_token_for_api(idp: DevIdp, user: tuple[str, str, str] = defaults.USERS[0]) -> str:
    """A user's access token for the todo API, the way the web app would get it."""
    return user_token(idp, user[0], user[1])


def test_app_token_is_accepted_and_cached(idp: DevIdp) -> None:
    http = CountingClient(idp.ca_bundle)
    acquirer = TokenAcquirer(idp.entra_config("daemon"), http_client=http)
    token = acquirer.acquire_token_for_app(f"{defaults.TODO_API_IDENTIFIER_URI}/.default")
    claims = api_validator(idp).validate(token)
    assert claims.is_app_only
    assert claims.roles == frozenset(defaults.TODO_API_APP_ROLES)
    posts = http.posts
    again = acquirer.acquire_token_for_app([f"{defaults.TODO_API_IDENTIFIER_URI}/.default"])
    assert again == token and http.posts == posts


async def test_app_token_async(idp: DevIdp) -> None:
    acquirer = TokenAcquirer(idp.entra_config("daemon"))
    token = await acquirer.acquire_token_for_app_async(
        f"{defaults.TODO_API_IDENTIFIER_URI}/.default"
    )
    assert api_validator(idp).validate(token).is_app_only


def test_app_token_refusal_names_entras_reason(idp: DevIdp) -> None:
    acquirer = TokenAcquirer(idp.entra_config("web-app"))  # holds no application permission
    with pytest.raises(TokenAcquisitionError) as caught:
        acquirer.acquire_token_for_app(f"{defaults.TODO_API_IDENTIFIER_URI}/.default")
    assert caught.value.status_code == 502
    assert caught.value.error


def test_throttled_app_token_is_a_503_with_retry_after_and_not_sent_again(idp: DevIdp) -> None:
    acquirer = TokenAcquirer(idp.entra_config("daemon"))
    scope = f"{defaults.TODO_API_IDENTIFIER_URI}/.default"
    with respx.mock(assert_all_called=False) as router:
        token = router.post(idp.endpoints.token_endpoint).respond(
            429, headers={"Retry-After": "120"}, json={"error": "temporarily_unavailable"}
        )
        router.route().pass_through()
        for _ in range(3):
            with pytest.raises(TokenAcquisitionError) as caught:
                acquirer.acquire_token_for_app(scope)
            assert caught.value.status_code == 503
            assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120
    assert token.call_count == 1


def test_unreachable_entra_is_a_503_error(idp: DevIdp) -> None:
    config = idp.entra_config("daemon", authority="https://127.0.0.1:9/" + defaults.TENANT_ID)
    with pytest.raises(TokenAcquisitionError) as caught:
        TokenAcquirer(config).acquire_token_for_app("api://x/.default")
    assert caught.value.status_code == 503


def test_on_behalf_of_is_cached_per_incoming_token(idp: DevIdp) -> None:
    http = CountingClient(idp.ca_bundle)
    acquirer = TokenAcquirer(idp.entra_config("todo-api"), http_client=http)
    incoming = user_token_for_api(idp)
    caller = api_validator(idp).validate(incoming)
    downstream = acquirer.acquire_token_on_behalf_of(incoming, ["User.Read"])
    claims = AccessTokenValidator(
        authority=idp.authority,
        audience=[defaults.GRAPH_CLIENT_ID, defaults.GRAPH_IDENTIFIER_URI],
        verify=idp.ca_bundle,
    ).validate(downstream)
    assert claims.oid == caller.oid
    assert "User.Read" in claims.scopes
    posts = http.posts
    assert acquirer.acquire_token_on_behalf_of(incoming, "User.Read") == downstream
    assert http.posts == posts
    # Another caller's token is another cache entry: never the first caller's result.
    other = user_token_for_api(idp, defaults.USERS[1])
    theirs = acquirer.acquire_token_on_behalf_of(other, ["User.Read"])
    assert http.posts == posts + 1
    assert theirs != downstream


async def test_on_behalf_of_async_and_refusal(idp: DevIdp) -> None:
    acquirer = TokenAcquirer(idp.entra_config("todo-api"))
    incoming = user_token_for_api(idp)
    assert (await acquirer.acquire_token_on_behalf_of_async(incoming, "User.Read")).count(".") == 2
    with pytest.raises(TokenAcquisitionError) as caught:
        # The todo API holds no delegated permission on itself.
        acquirer.acquire_token_on_behalf_of(incoming, READ)
    assert caught.value.status_code == 401
    assert caught.value.error == "invalid_grant"


def test_on_behalf_of_refuses_non_tokens(idp: DevIdp) -> None:
    with pytest.raises(ValueError, match="JWT"):
        TokenAcquirer(idp.entra_config("todo-api")).acquire_token_on_behalf_of("abc", "User.Read")


def test_config_errors_name_the_settings() -> None:
    config = EntraConfig(authority="https://contoso.ciamlogin.com/contoso.onmicrosoft.com")
    with pytest.raises(ConfigError, match="ENTRA_CLIENT_ID"):
        TokenAcquirer(config).acquire_token_for_app("api://x/.default")
