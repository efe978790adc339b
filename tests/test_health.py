"""Issue 11, point 4: ``/healthz`` and ``/readyz`` through real servers (werkzeug and uvicorn), one
suite for the WSGI and ASGI ``HealthMiddleware``, over the real emulator, OIDC stub and Redis port.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from entra_ciam import AccessTokenValidator, asgi, wsgi
from entra_ciam.devidp import DevIdp
from entra_ciam.devidp.testing import running_devidp
from entra_ciam.health import HealthChecks
from entra_ciam.sessions import MemoryStore, SessionStore
from entra_ciam.signin import SignIn
from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.todo_api import free_port, serving
from tests.support.tokens import API_CLIENT_ID, TokenFactory
from tests.support.webapps import serving_wsgi

KINDS = ["wsgi", "asgi"]


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the app"]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"the app"})


def served(
    kind: str, checks: HealthChecks, *, protected: AccessTokenValidator | None = None
) -> AbstractContextManager[str]:
    """The app (behind bearer authentication when ``protected``) wrapped in HealthMiddleware."""
    if kind == "wsgi":
        inner: Any = wsgi_app
        if protected is not None:
            inner = wsgi.BearerTokenMiddleware(inner, protected)
        return serving_wsgi(wsgi.HealthMiddleware(inner, checks))
    inner = asgi_app
    if protected is not None:
        inner = asgi.BearerTokenMiddleware(inner, protected)
    return serving(asgi.HealthMiddleware(inner, checks))


@pytest.fixture
def stub() -> Iterator[OIDCStub]:
    with running_stub(TokenFactory()) as running:
        yield running


def validator_for(stub: OIDCStub) -> AccessTokenValidator:
    return AccessTokenValidator(stub.authority, API_CLIENT_ID)


def secretless(text: str, *forbidden: str) -> None:
    assert "http" not in text and "127.0.0.1" not in text
    for value in forbidden:
        assert value not in text


@pytest.mark.parametrize("kind", KINDS)
def test_liveness_readiness_and_the_app_behind(kind: str, stub: OIDCStub) -> None:
    validator = validator_for(stub)
    checks = HealthChecks(validator=validator, probe_interval=0)
    with served(kind, checks, protected=validator) as base, httpx.Client(base_url=base) as client:
        live = client.get("/healthz")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        assert live.headers["cache-control"] == "no-store"
        assert client.head("/healthz").status_code == 200
        refused = client.post("/readyz")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
        # No keys yet: not ready (the identity provider answers, though).
        cold = client.get("/readyz")
        assert cold.status_code == 503
        assert cold.json()["checks"] == {
            "keys": {"ok": False, "count": 0, "age_seconds": None},
            "identity_provider": {"ok": True, "checked_seconds_ago": 0},
        }
        validator.warm_up()
        warm = client.get("/readyz")
        assert warm.status_code == 200, warm.text
        body = warm.json()
        assert body["status"] == "ready"
        assert body["checks"]["keys"] == {"ok": True, "count": 1, "age_seconds": 0}
        secretless(warm.text, stub.factory.tenant_id, stub.factory.key.kid, str(stub.port))
        # Public by construction: no token needed for the probes, while the app still wants one.
        assert client.get("/anything").status_code == 401
        token = stub.factory.mint()
        assert client.get("/anything", headers={"Authorization": f"Bearer {token}"}).text == (
            "the app"
        )


@pytest.mark.parametrize("kind", KINDS)
def test_an_unreachable_identity_provider_is_reported_and_optionally_unready(
    kind: str, stub: OIDCStub
) -> None:
    validator = validator_for(stub)
    validator.warm_up()
    lenient = HealthChecks(validator=validator, probe_interval=0)
    strict = HealthChecks(validator=validator, probe_interval=0, require_identity_provider=True)
    stub.stop()  # Entra goes away; the keys stay cached
    with served(kind, lenient) as first, served(kind, strict) as second:
        answer = httpx.get(f"{first}/readyz")
        assert answer.status_code == 200
        assert answer.json()["checks"]["identity_provider"]["ok"] is False
        assert answer.json()["checks"]["keys"]["ok"] is True
        assert httpx.get(f"{second}/readyz").status_code == 503
        secretless(answer.text, stub.factory.tenant_id)


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


def signin_with(idp: DevIdp, store: SessionStore) -> SignIn:
    config = dataclasses.replace(
        idp.entra_config("web-app"), session_secret=Fernet.generate_key().decode()
    )
    return SignIn(config, store=store)


@pytest.mark.parametrize("kind", KINDS)
def test_the_session_store_decides_readiness_of_a_web_app(kind: str, idp: DevIdp) -> None:
    from entra_ciam.sessions.redis import RedisStore

    good = HealthChecks(signin=signin_with(idp, MemoryStore()), probe_interval=0)
    dead_redis = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    bad = HealthChecks(signin=signin_with(idp, dead_redis), probe_interval=0)
    with served(kind, good) as ok_base, served(kind, bad) as bad_base:
        ready = httpx.get(f"{ok_base}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {
            "identity_provider": {"ok": True, "checked_seconds_ago": 0},
            "session_store": {"ok": True, "checked_seconds_ago": 0},
        }
        unready = httpx.get(f"{bad_base}/readyz")
        assert unready.status_code == 503
        assert unready.json()["checks"]["session_store"]["ok"] is False
        secretless(unready.text, "redis")


def test_probes_are_paced() -> None:
    now = [100.0]
    factory = TokenFactory()
    with running_stub(factory) as stub:
        checks = HealthChecks(
            validator=validator_for(stub), probe_interval=10, clock=lambda: now[0]
        )
        checks.check()
        hits = sum(stub.hits.values())
        now[0] += 5
        _, _, body = checks.check()
        assert sum(stub.hits.values()) == hits  # answered from the last probe
        assert json.loads(body)["checks"]["identity_provider"] == {
            "ok": True,
            "checked_seconds_ago": 5,
        }
        now[0] += 5
        checks.check()
        assert sum(stub.hits.values()) == hits + 1


def test_checks_need_something_to_check() -> None:
    with pytest.raises(ValueError, match="validator, a signin"):
        HealthChecks()
