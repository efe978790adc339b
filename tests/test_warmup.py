"""Issue 11, point 3: warm-up of the validator (loopback OIDC stub) and of the sign-in side (MSAL's
discovery, scripted Entra), sync and async, and what an unreachable identity provider does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import respx

from entra_ciam import AccessTokenValidator, ConfigError, MetadataUnavailableError, asgi, wsgi
from entra_ciam.devidp import DevIdp, defaults
from entra_ciam.devidp.testing import running_devidp
from entra_ciam.events import LOGGER_NAME
from entra_ciam.sessions import MemoryStore
from entra_ciam.signin.msal_app import IdentityProviderUnavailableError
from tests.support.fake_entra import FakeEntra, StepBrowser, make_config
from tests.support.oidc_stub import running_stub
from tests.support.otel import events
from tests.support.todo_api import free_port
from tests.support.todo_stack import config_env, web_config
from tests.support.tokens import API_CLIENT_ID, TokenFactory

ROOT = Path(__file__).resolve().parents[1]
TWINS = ["sync", "async"]


def warm(validator: AccessTokenValidator, twin: str, **options: str) -> bool:
    if twin == "sync":
        return validator.warm_up(**options)  # type: ignore[arg-type]
    return asyncio.run(validator.warm_up_async(**options))  # type: ignore[arg-type]


@pytest.mark.parametrize("twin", TWINS)
def test_the_validator_fetches_discovery_and_keys_at_start(
    twin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    factory = TokenFactory()
    with running_stub(factory) as stub:
        validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
        assert warm(validator, twin) is True
        fetched = dict(stub.hits)
        assert sorted(fetched.values()) == [1, 1]  # discovery and keys, once each
        assert validator.metadata.keys and validator.metadata.keys_loaded_at is not None
        assert warm(validator, twin) is True  # fresh keys: nothing fetched again
        validator.validate(factory.mint())  # the first request waits for nothing
        assert dict(stub.hits) == fetched
    (done, _again) = events(caplog, "warm_up_completed")
    assert done.__dict__["side"] == "validator" and done.__dict__["keys"] == 1


@pytest.mark.parametrize("twin", TWINS)
def test_an_unreachable_provider_stops_the_start_or_is_logged(
    twin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    url = f"http://127.0.0.1:{free_port()}/t/v2.0/.well-known/openid-configuration"
    validator = AccessTokenValidator(metadata_url=url, audience=API_CLIENT_ID)
    with pytest.raises(MetadataUnavailableError):
        warm(validator, twin)
    assert warm(validator, twin, on_error="log") is False
    stopped, started = events(caplog, "warm_up_failed")
    assert stopped.levelno == logging.ERROR
    assert stopped.__dict__["action"] == "stopping the start"
    assert started.__dict__["action"] == "starting anyway"
    assert "ConnectError" in started.__dict__["error"]
    with pytest.raises(ConfigError, match="on_error"):
        warm(validator, twin, on_error="ignore")


@pytest.fixture
def entra() -> Iterator[FakeEntra]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeEntra(router)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_the_sign_in_side_has_msal_fetch_discovery(
    kind: str, entra: FakeEntra, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    store = MemoryStore()
    if kind == "wsgi":
        middleware = wsgi.SignInMiddleware(lambda e, s: [], make_config(), store=store)
        assert middleware.warm_up() is True
    else:
        middleware = asgi.SignInMiddleware(lambda *a: None, make_config(), store=store)  # type: ignore[assignment]
        assert asyncio.run(middleware.warm_up_async()) is True
    assert entra.discovery.call_count == 1
    StepBrowser(middleware.signin).start()  # the first sign-in needs no discovery
    assert entra.discovery.call_count == 1
    (done,) = events(caplog, "warm_up_completed")
    assert done.__dict__["side"] == "signin"


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_the_sign_in_side_with_entra_down(kind: str, entra: FakeEntra) -> None:
    entra.discovery.mock(side_effect=httpx.ConnectError("refused"))
    if kind == "wsgi":
        middleware = wsgi.SignInMiddleware(lambda e, s: [], make_config(), store=MemoryStore())
        with pytest.raises(IdentityProviderUnavailableError):
            middleware.warm_up()
        assert middleware.warm_up(on_error="log") is False
    else:
        middleware = asgi.SignInMiddleware(lambda *a: None, make_config(), store=MemoryStore())  # type: ignore[assignment]
        with pytest.raises(IdentityProviderUnavailableError):
            asyncio.run(middleware.warm_up_async())
        assert asyncio.run(middleware.warm_up_async(on_error="log")) is False


# -- Django: ENTRA_CIAM["WARM_UP"] warms the validator and the sign-in when Django starts ---------

STARTS_DJANGO = (
    "import django.core.wsgi\n"
    "django.core.wsgi.get_wsgi_application()\n"  # loads the apps and the middlewares
    "print('started')\n"
)


def start_django(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STARTS_DJANGO],
        env={
            **os.environ,
            **env,
            "DJANGO_SETTINGS_MODULE": "tests.support.django_site.settings_warm",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


def django_env(idp: DevIdp, warm_up: str, *, reachable: bool = True) -> dict[str, str]:
    config = web_config(idp, "http://localhost:3000", api_client_id=defaults.TODO_API_CLIENT_ID)
    env = {**config_env(config), "DJANGO_TEST_WARM_UP": warm_up}
    if not reachable:  # the same tenant behind a port where nothing listens
        port = urlsplit(idp.authority).port
        env["ENTRA_AUTHORITY"] = idp.authority.replace(f":{port}/", f":{free_port()}/")
    return env


def test_django_warms_up_at_start(idp: DevIdp) -> None:
    started = start_django(django_env(idp, "raise"))
    assert started.returncode == 0, started.stderr[-2000:]
    assert "started" in started.stdout


def test_django_with_entra_unreachable_stops_or_logs(idp: DevIdp) -> None:
    stopped = start_django(django_env(idp, "raise", reachable=False))
    assert stopped.returncode != 0 and "started" not in stopped.stdout
    assert "MetadataUnavailableError" in stopped.stderr
    assert "warm_up_failed side=validator" in stopped.stderr
    logged = start_django(django_env(idp, "log", reachable=False))
    assert logged.returncode == 0, logged.stderr[-2000:]
    assert "warm_up_failed side=validator" in logged.stderr
    assert "warm_up_failed side=signin" in logged.stderr
    assert "starting anyway" in logged.stderr
    wrong = start_django(django_env(idp, "ignore"))
    assert wrong.returncode != 0 and "on_error must be 'raise' or 'log'" in wrong.stderr
