"""Django and Django REST framework behind real servers: runserver (WSGI) and uvicorn (ASGI).

The project in tests/support/django_site reads the ``ENTRA_*`` variables as a deployed one would.
Tokens come from the loopback OIDC stub; sign-in goes through the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from entra_ciam.devidp import defaults
from entra_ciam.devidp.testing import running_devidp
from tests.support.django_inprocess import configure_django
from tests.support.rejections import Tenant, challenge, running_tenant
from tests.support.servers import DJANGO_API, DJANGO_WEB, running
from tests.support.todo_api import free_port
from tests.support.todo_stack import config_env
from tests.support.tokens import API_CLIENT_ID, USER_OID
from tests.support.webapps import ADA, AppBrowser, Stack

SERVERS = {
    "wsgi-runserver": ("runserver", None),
    "asgi-uvicorn": ("uvicorn", "tests.support.django_site.asgi:application"),
}


def target(kind: str, settings: str) -> tuple[str, str]:
    program, app = SERVERS[kind]
    return program, app or settings


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


@pytest.fixture(scope="module", params=list(SERVERS))
def site(
    request: pytest.FixtureRequest, tenant: Tenant, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    program, app = target(request.param, DJANGO_API)
    env = {
        "ENTRA_AUTHORITY": tenant.stub.authority,
        "ENTRA_API_CLIENT_ID": API_CLIENT_ID,
        "DJANGO_SETTINGS_MODULE": DJANGO_API,
    }
    log = tmp_path_factory.mktemp("django") / "server.log"
    with (
        running(server=program, target=app, env=env, log=log) as base,
        httpx.Client(base_url=base, timeout=20) as client,
    ):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- plain Django views ---------------------------------------------------------------------------


def test_function_views_see_request_claims_and_current_claims(
    site: httpx.Client, tenant: Tenant
) -> None:
    answer = site.get("/scoped", headers=bearer(tenant.user_token()))
    assert answer.status_code == 200
    assert answer.json() == {"oid": USER_OID, "current": USER_OID}


@pytest.mark.parametrize("path", ["/items", "/async-items", "/method"])
def test_class_based_views_are_guarded(site: httpx.Client, tenant: Tenant, path: str) -> None:
    allowed = tenant.user_token(scp="Todolist.ReadWrite Todolist.Read")
    assert site.get(path, headers=bearer(allowed)).status_code == 200
    refused = site.get(path, headers=bearer(tenant.user_token(scp="User.Read")))
    assert refused.status_code == 403
    assert challenge(refused.headers["www-authenticate"])["error"] == "insufficient_scope"
    assert refused.json()["error"] == "insufficient_scope"
    assert refused.headers["content-type"] == "application/json"


def test_app_permission_on_a_decorated_class(site: httpx.Client, tenant: Tenant) -> None:
    app = tenant.app_token(["Todolist.ReadWrite.All"])
    assert site.get("/items", headers=bearer(app)).json()["view"] == "class"
    reader = tenant.app_token(["Todolist.Read.All"])
    assert site.get("/items", headers=bearer(reader)).status_code == 403


def test_a_refusal_raised_inside_a_view_is_answered_by_the_middleware(
    site: httpx.Client, tenant: Tenant
) -> None:
    refused = site.get("/checks-inside", headers=bearer(tenant.user_token(scp="User.Read")))
    assert refused.status_code == 403
    assert refused.json()["scope"] == "Todolist.Read"
    assert site.get("/checks-inside", headers=bearer(tenant.user_token())).json() == {"ok": True}


def test_bearer_answers_before_the_view(site: httpx.Client, tenant: Tenant) -> None:
    assert site.get("/healthz").status_code == 200  # public
    missing = site.get("/scoped")
    assert missing.status_code == 401
    assert challenge(missing.headers["www-authenticate"]) == {"realm": "entra-ciam"}
    in_query = site.get("/scoped", params={"access_token": tenant.user_token()})
    assert in_query.status_code == 401
    assert challenge(in_query.headers["www-authenticate"])["error"] == "invalid_request"
    assert site.get("/no-such-page", headers=bearer(tenant.user_token())).status_code == 404


PREFLIGHT = {"Origin": "https://spa.example", "Access-Control-Request-Method": "GET"}


@pytest.mark.parametrize("path", ["/unguarded", "/claims", "/scoped"])
def test_a_preflight_answered_by_a_view_gets_the_401_challenge(
    site: httpx.Client, path: str
) -> None:
    # /unguarded would answer 200 with its data, /claims a 500 (request.claims is None), and
    # /scoped's guard refuses by itself.
    answer = site.options(path, headers=PREFLIGHT)
    assert answer.status_code == 401
    assert challenge(answer.headers["www-authenticate"]) == {"realm": "entra-ciam"}
    assert answer.json()["error"] == "unauthorized"
    assert "access-control-allow-origin" not in answer.headers


def test_a_preflight_answered_by_a_cors_layer_goes_out_without_its_body(
    site: httpx.Client,
) -> None:
    answer = site.options("/cors/items", headers=PREFLIGHT)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://spa.example"
    assert answer.content == b""
    # The same path without the preflight header is an ordinary request: a token is needed.
    assert site.options("/cors/items").status_code == 401
    assert site.get("/cors/items", headers={"Origin": "https://spa.example"}).status_code == 401


def test_a_validated_token_exempts_the_request_from_csrf(
    site: httpx.Client, tenant: Tenant
) -> None:
    token = tenant.user_token(scp="Todolist.ReadWrite")
    for method in ("POST", "PUT", "DELETE"):
        answer = site.request(method, "/write", headers=bearer(token), content=b"{}")
        assert answer.status_code == 200, (method, answer.text[:200])
        assert answer.json() == {"method": method, "oid": USER_OID}
    # A token that does not validate exempts nothing: the bearer refusal comes first anyway.
    assert site.post("/write", headers=bearer("not.a.token")).status_code == 401


def test_requests_without_a_validated_token_keep_the_csrf_check(
    site: httpx.Client, tenant: Tenant
) -> None:
    # A public path: no token validated, so CsrfViewMiddleware refuses the cookie-less POST.
    assert site.post("/healthz", content=b"{}").status_code == 403
    # A token on a public path is not validated there, so it exempts nothing either.
    public = site.post("/healthz", headers=bearer(tenant.user_token()), content=b"{}")
    assert public.status_code == 403


# -- Django REST framework ------------------------------------------------------------------------


def test_drf_authentication_and_permissions(site: httpx.Client, tenant: Tenant) -> None:
    ok = site.get("/drf/scoped", headers=bearer(tenant.user_token()))
    assert ok.status_code == 200
    assert ok.json() == {"oid": USER_OID, "user": USER_OID}
    app = site.get("/drf/role", headers=bearer(tenant.app_token(["Todolist.Read.All"])))
    assert app.json() == {"oid": app.json()["oid"], "app": True}
    either = tenant.app_token(["Todolist.Read.All"])
    assert site.get("/drf/either", headers=bearer(either)).status_code == 200
    assert site.get("/drf/decorated", headers=bearer(tenant.user_token())).status_code == 200


def test_drf_401_has_the_bearer_challenge(site: httpx.Client, tenant: Tenant) -> None:
    missing = site.get("/drf/scoped")
    assert missing.status_code == 401
    assert challenge(missing.headers["www-authenticate"]) == {"realm": "entra-ciam"}
    assert "detail" in missing.json()  # DRF's usual body
    forged = site.get("/drf/scoped", headers=bearer("not.a.token"))
    assert forged.status_code == 401
    params = challenge(forged.headers["www-authenticate"])
    assert params["error"] == "invalid_token"
    assert forged.json()["detail"] == params["error_description"]


def test_current_claims_works_in_a_view_authenticated_by_drf(
    site: httpx.Client, tenant: Tenant
) -> None:
    # /drf is public to the middleware here: EntraTokenAuthentication alone validates.
    answer = site.get("/drf/current", headers=bearer(tenant.user_token()))
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json() == {"oid": USER_OID, "auth": USER_OID}
    assert site.get("/drf/current").status_code == 401


def test_drf_403_names_the_accepted_scopes(site: httpx.Client, tenant: Tenant) -> None:
    refused = site.get("/drf/scoped", headers=bearer(tenant.user_token(scp="User.Read")))
    assert refused.status_code == 403
    params = challenge(refused.headers["www-authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "Todolist.Read"
    # A user's role is not an application permission.
    user_role = tenant.user_token(scp="User.Read", roles=["Todolist.Read.All"])
    assert site.get("/drf/either", headers=bearer(user_role)).status_code == 403
    decorated = site.get("/drf/decorated", headers=bearer(tenant.user_token(scp="User.Read")))
    assert decorated.status_code == 403
    assert decorated.json()["error"] == "insufficient_scope"


# -- sign-in through the emulator -----------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SERVERS))
def test_sign_in_with_the_emulator(kind: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_devidp(
        extra_redirect_uris=[f"{base}/auth/redirect"],
        extra_post_logout_redirect_uris=[f"{base}/"],
    ) as idp:
        config = idp.entra_config(
            "web-app",
            redirect_uri=f"{base}/auth/redirect",
            post_logout_redirect_uri=f"{base}/",
            session_secret=Fernet.generate_key().decode(),
            session_store="memory://",
            api_client_id=defaults.TODO_API_CLIENT_ID,
        )
        env = {**config_env(config), "DJANGO_SETTINGS_MODULE": DJANGO_WEB}
        program, app = target(kind, DJANGO_WEB)
        log = tmp_path / "server.log"
        with (
            running(server=program, target=app, env=env, log=log, port=port),
            AppBrowser(Stack(idp, base, "", None, tmp_path)) as browser,
        ):
            first = browser.get("/web/")
            assert first.status_code == 302
            assert first.headers["location"] == "/auth/signin?next=%2Fweb%2F"
            page = browser.follow(first, user=ADA)
            assert page.status_code == 200, page.text
            assert page.text == f"Hello {ADA[2]}"
            assert browser.open("/web/async").text == f"Async hello {ADA[2]}"
            cookie = [c for c in browser.client.cookies.jar if c.name == browser.cookie_name]
            assert cookie and cookie[0].has_nonstandard_attr("HttpOnly")
            out = browser.get("/auth/signout", headers={"Sec-Fetch-Site": "same-origin"})
            assert out.status_code == 302
            assert browser.get("/web/").status_code == 302


# -- in this process: the request's state the bearer middleware leaves to views --------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_public_path_keeps_the_claims_an_outer_middleware_validated(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the ASGI and WSGI middlewares do: a public path validates nothing, so what an outer
    # layer validated stays current (request.claims is this middleware's own: None).
    configure_django()
    monkeypatch.setenv("ENTRA_AUTHORITY", "https://contoso.ciamlogin.com/contoso.onmicrosoft.com")
    monkeypatch.setenv("ENTRA_API_CLIENT_ID", API_CLIENT_ID)
    from django.http import HttpRequest, HttpResponse
    from django.test import RequestFactory, override_settings

    from entra_ciam.context import claims_context, get_claims
    from entra_ciam.django.middleware import BearerTokenMiddleware

    seen: list[object] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append((request.claims, get_claims()))  # type: ignore[attr-defined]
        return HttpResponse("ok")

    async def async_view(request: HttpRequest) -> HttpResponse:
        return view(request)

    with override_settings(ENTRA_CIAM={"PUBLIC_PATHS": ["/healthz"]}):
        middleware = BearerTokenMiddleware(view if mode == "sync" else async_view)
        request = RequestFactory().get("/healthz")
        with claims_context({"sub": "outer"}):
            answer = middleware(request)
            response = answer if mode == "sync" else asyncio.run(answer)
            assert get_claims() == {"sub": "outer"}
    assert response.status_code == 200
    assert seen == [(None, {"sub": "outer"})]


@contextlib.contextmanager
def in_process(tenant: Tenant, **settings: Any) -> Iterator[Any]:
    """Django in this process, trusting ``tenant``, with no entra-ciam middleware unless
    ``settings`` adds one; a test client for ``tests.support.django_site.urls``."""
    configure_django()
    from django.test import Client, override_settings

    drf = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "entra_ciam.django.rest_framework.EntraTokenAuthentication"
        ],
        "UNAUTHENTICATED_USER": None,
        **settings.pop("REST_FRAMEWORK", {}),
    }
    entra = {"AUTHORITY": tenant.stub.authority, "API_CLIENT_ID": API_CLIENT_ID}
    if "PUBLIC_PATHS" in settings:
        entra["PUBLIC_PATHS"] = settings.pop("PUBLIC_PATHS")
    with override_settings(ENTRA_CIAM=entra, REST_FRAMEWORK=drf, **settings):
        yield Client(raise_request_exception=False)


def test_drf_claims_are_current_in_the_view_and_unbound_when_the_request_ends(
    tenant: Tenant,
) -> None:
    # Django's test client runs the view in this thread and context, as a WSGI server that
    # reuses its thread does: what the view saw must be gone once the request is over.
    from entra_ciam.context import get_claims

    with in_process(tenant) as client:
        answer = client.get("/drf/current", HTTP_AUTHORIZATION=f"Bearer {tenant.user_token()}")
        assert answer.status_code == 200, answer.content[:300]
        assert answer.json() == {"oid": USER_OID, "auth": USER_OID}
        assert get_claims() is None
        assert client.get("/drf/current").status_code == 401
        assert get_claims() is None


def test_drf_exception_handler_answers_an_auth_error_a_view_lets_through(tenant: Tenant) -> None:
    # An anonymous caller of a view admitting anyone that still reads current_claims().
    with in_process(
        tenant,
        REST_FRAMEWORK={
            "EXCEPTION_HANDLER": "entra_ciam.django.rest_framework.exception_handler",
            "DEFAULT_PERMISSION_CLASSES": [],
        },
    ) as client:
        answer = client.get("/drf/open")
    assert answer.status_code == 401
    assert challenge(answer.headers["WWW-Authenticate"]) == {"realm": "entra-ciam"}
    assert answer.json()["error"] == "unauthorized"


def test_a_guarded_view_without_the_bearer_middleware_says_so(tenant: Tenant) -> None:
    from entra_ciam.django.integration import NO_MIDDLEWARE

    with in_process(tenant, MIDDLEWARE=[]) as client:
        for path in ("/scoped", "/items"):  # a function view, a decorated class
            answer = client.get(path, HTTP_AUTHORIZATION=f"Bearer {tenant.user_token()}")
            assert answer.status_code == 401, path
            assert answer.json()["error_description"] == NO_MIDDLEWARE
            assert challenge(answer.headers["WWW-Authenticate"]) == {"realm": "entra-ciam"}
    # Behind the middleware, a guard on a public path says only that no token was validated.
    bearer_only = ["entra_ciam.django.middleware.BearerTokenMiddleware"]
    with in_process(tenant, MIDDLEWARE=bearer_only, PUBLIC_PATHS=["/scoped"]) as client:
        answer = client.get("/scoped")
    assert answer.status_code == 401
    assert answer.json()["error_description"] == "No bearer token"


@pytest.mark.parametrize(
    ("module", "missing", "named"),
    [
        ("entra_ciam.django.rest_framework", "django", "django"),
        ("entra_ciam.django.middleware", "django", "django"),
        ("entra_ciam.django.middleware", "asgiref", "asgiref"),
        ("entra_ciam.django.settings", "django", "django"),
        # by the name pip installs it under
        ("entra_ciam.django.rest_framework", "rest_framework", "djangorestframework"),
    ],
)
def test_an_integration_without_its_extra_names_the_extra(
    module: str, missing: str, named: str
) -> None:
    # A fresh interpreter in which ``import <missing>`` fails, as it does where it is absent.
    script = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        "from entra_ciam._extras import MissingExtraError\n"
        f"try:\n    import {module}\n"
        "except MissingExtraError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert 'pip install "entra-ciam[django]"' in result.stdout, result.stdout
    assert f"needs {named}" in result.stdout, result.stdout
