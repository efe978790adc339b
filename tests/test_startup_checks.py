"""A missing or invalid setting stops the server process at start, naming the variable.

Each setup the docs show is started as a real server process (uvicorn, hypercorn, Django's
runserver, gunicorn) with settings missing, and must exit instead of starting and answering
500s. An API process needs only the API's settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.rejections import Tenant, running_tenant
from tests.support.servers import DJANGO_API, DJANGO_WEB, exit_of, running
from tests.support.tokens import API_CLIENT_ID

AUTHORITY = "https://contoso.ciamlogin.com/aaaabbbb-0000-cccc-1111-dddd2222eeee"
WEB_MISSING = ("ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET", "ENTRA_REDIRECT_URI")


@pytest.mark.parametrize(
    ("server", "target"),
    [
        ("uvicorn", "tests.support.startup_apps:starlette_signin"),
        ("uvicorn", "--factory tests.support.startup_apps:fastapi_signin"),
        ("hypercorn", "tests.support.startup_apps:quart_signin()"),
    ],
    ids=["starlette-Middleware", "fastapi-add_middleware", "quart-asgi_app"],
)
def test_asgi_sign_in_without_its_settings_exits(server: str, target: str, tmp_path: Path) -> None:
    code, log = exit_of(server, target, {"ENTRA_AUTHORITY": AUTHORITY}, tmp_path / "log")
    assert code is not None, f"the server started:\n{log}"
    # hypercorn exits with 0 when the app cannot be loaded; uvicorn with 3 (startup failed).
    assert code != 0 or server == "hypercorn"
    for name in WEB_MISSING:
        assert name in log, log
    assert "Application startup complete" not in log


@pytest.mark.parametrize(
    ("server", "target"),
    [
        ("runserver", DJANGO_API),
        ("gunicorn", "tests.support.django_site.wsgi:application"),
        ("uvicorn", "tests.support.django_site.asgi:application"),
    ],
)
def test_django_api_without_its_settings_exits(server: str, target: str, tmp_path: Path) -> None:
    env = {"ENTRA_AUTHORITY": AUTHORITY, "DJANGO_SETTINGS_MODULE": DJANGO_API}
    code, log = exit_of(server, target, env, tmp_path / "log")
    assert code is not None, f"the server started:\n{log}"
    assert code != 0
    assert "ENTRA_API_CLIENT_ID is not set" in log, log


def test_django_sign_in_with_a_placeholder_exits(tmp_path: Path) -> None:
    env = {
        "ENTRA_AUTHORITY": AUTHORITY,
        "ENTRA_API_CLIENT_ID": API_CLIENT_ID,
        "ENTRA_CLIENT_ID": "Enter_the_Application_Id_Here",
        "DJANGO_SETTINGS_MODULE": DJANGO_WEB,
    }
    code, log = exit_of("runserver", DJANGO_WEB, env, tmp_path / "log")
    assert code not in (None, 0), log
    assert "ENTRA_CLIENT_ID still holds the placeholder" in log, log


def test_drf_alone_is_checked_by_the_app_config(tmp_path: Path) -> None:
    """No entra-ciam middleware: INSTALLED_APPS' entra_ciam.django checks DRF's settings."""
    env = {
        "ENTRA_AUTHORITY": AUTHORITY,
        "DJANGO_SETTINGS_MODULE": "tests.support.django_site.settings_drf",
    }
    code, log = exit_of(
        "gunicorn", "tests.support.django_site.wsgi:application", env, tmp_path / "l"
    )
    assert code not in (None, 0), log
    assert "ENTRA_API_CLIENT_ID is not set" in log, log


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


def test_an_api_process_needs_only_the_api_settings(tenant: Tenant, tmp_path: Path) -> None:
    """No web app settings at all: the API starts and answers."""
    env = {
        "ENTRA_AUTHORITY": tenant.stub.authority,
        "ENTRA_API_CLIENT_ID": API_CLIENT_ID,
        "DJANGO_SETTINGS_MODULE": DJANGO_API,
    }
    target = "tests.support.django_site.asgi:application"
    with running(server="uvicorn", target=target, env=env, log=tmp_path / "log") as base:
        assert httpx.get(f"{base}/scoped").status_code == 401
        token = tenant.user_token()
        ok = httpx.get(f"{base}/scoped", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200


async def test_without_lifespan_requests_get_a_generic_503_not_a_500(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server run without lifespan cannot be stopped by it: requests get a 503 that shows no
    setting, and the reason is in the log."""
    for name in ("ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET", "ENTRA_REDIRECT_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENTRA_AUTHORITY", AUTHORITY)
    from tests.support.startup_apps import fastapi_signin

    transport = httpx.ASGITransport(fastapi_signin())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.get("/healthz")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "60"
    assert "ENTRA" not in answer.text


def test_built_directly_the_middleware_raises_at_once() -> None:
    from starlette.applications import Starlette

    from entra_ciam import ConfigError, EntraConfig
    from entra_ciam.asgi import BearerTokenMiddleware, SignInMiddleware

    with pytest.raises(ConfigError, match="ENTRA_CLIENT_SECRET"):
        SignInMiddleware(Starlette(), EntraConfig.from_env({"ENTRA_AUTHORITY": AUTHORITY}))
    with pytest.raises(ValueError, match="public_paths"):
        BearerTokenMiddleware(Starlette(), validator=object(), public_paths=["nope"])  # type: ignore[arg-type]
