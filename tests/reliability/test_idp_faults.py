"""Issue 7, point 1: the todo API under load while its identity provider misbehaves.

The API (examples/starlette_api on uvicorn, loopback) validates every request afresh
(``cache_size=0``) and refreshes keys every second, so each fault is met many times during the
run rather than once. Valid tokens signed by a known key must all be accepted; tokens signed by a
key never published get 401 (503 only while no key at all is known); nothing is a 500 and no
request waits past the key-fetch timeout.

``ENTRA_CIAM_LOAD_SECONDS`` sets the length of each run (30 for the full figures).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from examples.starlette_api import create_app

from entra_ciam import AccessTokenValidator
from entra_ciam.devidp import defaults
from entra_ciam.devidp.server import DevIdp
from tests.support.load import Fault, Req, fetch, record, run_load
from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.todo_api import serving
from tests.support.tokens import API_CLIENT_ID, SigningKey, TokenFactory

pytestmark = pytest.mark.load

HTTP_TIMEOUT = 1.0  # the validator's bound on each key fetch
SLOW_JWKS = 5.0  # how long the slow JWKS takes to answer
# No request may take as long as the slow JWKS: it would mean a request waited for it.
LATENCY_BOUND = SLOW_JWKS - 0.5
LIST = "/api/todolist"


def fast_refresh_validator(authority: str, audience: str, **kw: Any) -> AccessTokenValidator:
    """Keys refreshed twice a second, failures and unknown kids retried after 0.2 s, no cache."""
    return AccessTokenValidator(
        authority=authority,
        audience=audience,
        cache_size=0,
        refresh_interval=0.5,
        unknown_kid_interval=0.2,
        retry_interval=0.2,
        http_timeout=HTTP_TIMEOUT,
        **kw,
    )


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


def judge_known_or_foreign(req: Req, response: httpx.Response) -> str | None:
    """good-*: 200; foreign: 401 invalid_token (keys are always known in these runs)."""
    if req.kind.startswith("good"):
        return None if response.status_code == 200 else f"status {response.status_code}"
    if response.status_code != 401:
        return f"status {response.status_code}"
    if 'error="invalid_token"' not in response.headers.get("www-authenticate", ""):
        return "no invalid_token challenge"
    return None


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# -- the loopback stub: slow, failing and garbage JWKS, and a key rotation ---------------------


@pytest.fixture
def stub() -> Iterator[OIDCStub]:
    with running_stub(TokenFactory()) as stub:
        stub.slow_seconds = SLOW_JWKS
        yield stub


async def test_jwks_slow_500_garbage_and_rotation_under_load(
    stub: OIDCStub, tmp_path: Path
) -> None:
    factory = stub.factory
    validator = fast_refresh_validator(stub.authority, API_CLIENT_ID)
    old_key, new_key = factory.key, SigningKey()
    app_claims = factory.app_claims(["Todolist.Read.All"])
    old_tokens = [factory.mint(factory.app_claims(["Todolist.Read.All"])) for _ in range(50)]
    new_tokens = [factory.mint(app_claims, key=new_key) for _ in range(50)]
    foreign = [factory.mint(app_claims, key=SigningKey()) for _ in range(20)]
    signing_with_new = threading.Event()
    jwks_path = urlsplit(stub.jwks_uri).path
    fetches: dict[str, int] = {}

    def mark(name: str) -> None:
        fetches[name] = stub.hits[jwks_path]

    def publish_new_key() -> None:
        mark("publish")
        stub.jwks = factory.jwks(new_key)  # both keys published, as Entra does before a switch

    def sign_with_new_key() -> None:
        wait_until(lambda: new_key.kid in validator.metadata.keys)
        signing_with_new.set()
        mark("switch")

    def fault(kind: str | None, after: str | None = None) -> Callable[[], None]:
        def set_fault() -> None:
            if after is not None:
                # A phase ends only once the validator met the IdP in it: a fetch still
                # waiting out its timeout from the phase before must not hide this one.
                wait_until(lambda: stub.hits[jwks_path] > fetches[after], seconds=4 * HTTP_TIMEOUT)
            mark(kind or "healthy")
            stub.fault = kind

        return set_fault

    def next_request(n: int) -> Req:
        if n % 10 == 0:
            return Req("foreign-key", path=LIST, headers=bearer(foreign[n % len(foreign)]))
        if signing_with_new.is_set() and n % 2:
            return Req("good-new-key", path=LIST, headers=bearer(new_tokens[n % 50]))
        return Req("good-old-key", path=LIST, headers=bearer(old_tokens[n % 50]))

    with serving(create_app(validator=validator, db_path=tmp_path / "todo.sqlite3")) as base:
        assert (await fetch(base + LIST, bearer(old_tokens[0]))).status_code == 200
        result = await run_load(
            base,
            next_request,
            judge_known_or_foreign,
            faults=[
                Fault(0.10, "new key published", publish_new_key),
                Fault(0.25, "tokens signed with the new key", sign_with_new_key),
                Fault(0.35, "JWKS slow (5 s)", fault("slow")),
                Fault(0.55, "JWKS 500", fault("500", after="slow")),
                Fault(0.70, "JWKS garbage", fault("garbage", after="500")),
                Fault(0.85, "JWKS healthy", fault(None, after="garbage")),
            ],
        )
    mark("end")
    print(result.summary(), fetches)
    record(
        "idp-faults-stub",
        **result.figures(),
        jwks_fetches_during_faults=fetches["healthy"] - fetches["slow"],
        good_tokens=len(old_tokens) + len(new_tokens),
        foreign_tokens=len(foreign),
    )
    assert result.failed == 0, result.failures
    assert result.server_errors == 0
    assert result.statuses[503] == 0  # keys were known throughout
    assert result.max_latency < LATENCY_BOUND
    # Every phase really met the IdP: the validator went back to the JWKS in each of them.
    for phase, following in [
        ("slow", "500"),
        ("500", "garbage"),
        ("garbage", "healthy"),
        ("healthy", "end"),
    ]:
        assert fetches[following] > fetches[phase], (phase, fetches)
    assert result.kinds["good-new-key"] > 0 and result.kinds["foreign-key"] > 0
    assert old_key.kid in validator.metadata.keys and new_key.kid in validator.metadata.keys


async def test_cold_start_while_jwks_fails_is_503_then_recovers(
    stub: OIDCStub, tmp_path: Path
) -> None:
    """No key known at all: 503 with Retry-After, never 500; served once the JWKS answers."""
    factory = stub.factory
    validator = fast_refresh_validator(stub.authority, API_CLIENT_ID)
    good = [factory.mint(factory.app_claims(["Todolist.Read.All"])) for _ in range(20)]
    foreign = factory.mint(factory.app_claims(["Todolist.Read.All"]), key=SigningKey())
    stub.fault = "500"
    healthy = threading.Event()

    def heal() -> None:
        healthy.set()
        stub.fault = None

    def next_request(n: int) -> Req:
        # Whether any key was known when the request left decides which answers are right.
        known = "keys known" if validator.metadata.keys else "no keys yet"
        if n % 5 == 0:
            return Req(f"foreign-key, {known}", path=LIST, headers=bearer(foreign))
        return Req(f"good, {known}", path=LIST, headers=bearer(good[n % 20]))

    def judge(req: Req, response: httpx.Response) -> str | None:
        status = response.status_code
        if status == 503:
            if "no keys yet" not in req.kind:
                return "503 although keys were known"
            return None if response.headers.get("retry-after", "").isdigit() else "no Retry-After"
        if status == 200 and req.kind.startswith("good") and healthy.is_set():
            return None
        if status == 401 and req.kind.startswith("foreign") and healthy.is_set():
            return None
        return f"status {status}"

    with serving(create_app(validator=validator, db_path=tmp_path / "todo.sqlite3")) as base:
        result = await run_load(
            base,
            next_request,
            judge,
            seconds=3.0,
            faults=[Fault(0.4, "JWKS healthy again", heal)],
        )
    print(result.summary())
    record("idp-cold-start-fault", **result.figures())
    assert result.failed == 0, result.failures
    assert result.statuses[503] > 0 and result.statuses[200] > 0 and result.statuses[401] > 0
    assert result.server_errors == 0
    assert result.max_latency < LATENCY_BOUND


# -- the emulator: stopped, restarted on the same port, keys rotated --------------------------


def client_credentials_tokens(idp: DevIdp, count: int) -> list[str]:
    """App-only tokens for the todo API, from the emulator's token endpoint (the daemon's grant)."""
    tls = ssl.create_default_context(cafile=idp.ca_bundle)
    form = {
        "grant_type": "client_credentials",
        "client_id": defaults.DAEMON_CLIENT_ID,
        "client_secret": defaults.DAEMON_CLIENT_SECRET,
        "scope": f"{defaults.TODO_API_IDENTIFIER_URI}/.default",
    }
    with httpx.Client(verify=tls, timeout=10) as http:
        tokens = []
        for _ in range(count):
            response = http.post(idp.endpoints.token_endpoint, data=form)
            assert response.status_code == 200, response.text
            tokens.append(response.json()["access_token"])
    return tokens


def kid_of(token: str) -> str:
    import base64
    import json

    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


async def test_emulator_stopped_restarted_and_keys_rotated_under_load(tmp_path: Path) -> None:
    state = tmp_path / "idp-state"
    quiet: Callable[[str], None] = lambda line: None  # noqa: E731
    idp = DevIdp(state_dir=state, port=0, pages_port=0, test_mode=True, announce=quiet).start()
    idps = [idp]
    try:
        port = urlsplit(idp.authority).port
        validator = fast_refresh_validator(
            idp.authority,
            defaults.TODO_API_CLIENT_ID,
            verify=idp.ca_bundle,
            accept_v1_audience=True,
        )
        pool = client_credentials_tokens(idp, 30)
        first_kid = kid_of(pool[0])
        foreign_factory = TokenFactory(
            idp.issuer,
            tenant_id=idp.registrations.tenant.id,
            audience=defaults.TODO_API_CLIENT_ID,
        )
        foreign = foreign_factory.mint(foreign_factory.app_claims(["Todolist.Read.All"]))
        tokens: list[str] = list(pool)
        rotated: dict[str, str] = {}

        def stop() -> None:
            idps[-1].stop()

        def restart() -> None:
            again = DevIdp(
                state_dir=state, port=port or 0, pages_port=0, test_mode=True, announce=quiet
            )
            idps.append(again.start())
            assert again.authority == idp.authority

        def rotate() -> None:
            rotation = idps[-1].rotate_keys()
            fresh = client_credentials_tokens(idps[-1], 30)
            rotated["kid"] = rotation.kid
            rotated["first_token_kid"] = kid_of(fresh[0])
            tokens.extend(fresh)  # from now on half the good tokens use the new key

        def next_request(n: int) -> Req:
            if n % 10 == 0:
                return Req("foreign-key", path=LIST, headers=bearer(foreign))
            if len(tokens) > len(pool) and n % 2:
                return Req("good-new-key", path=LIST, headers=bearer(tokens[-1 - n % 30]))
            return Req("good-first-key", path=LIST, headers=bearer(tokens[n % 30]))

        app = create_app(validator=validator, db_path=tmp_path / "todo.sqlite3")
        with serving(app) as base:
            assert (await fetch(base + LIST, bearer(pool[0]))).status_code == 200
            result = await run_load(
                base,
                next_request,
                judge_known_or_foreign,
                faults=[
                    Fault(0.2, "emulator stopped", stop),
                    Fault(0.45, "emulator restarted", restart),
                    Fault(0.6, "keys rotated", rotate),
                ],
            )
    finally:
        for running in idps:
            running.stop()
    print(result.summary())
    record("idp-emulator-restart-rotation", **result.figures())
    assert result.failed == 0, result.failures
    assert result.server_errors == 0 and result.statuses[503] == 0
    assert result.max_latency < LATENCY_BOUND
    assert rotated["first_token_kid"] == rotated["kid"] != first_kid
    assert result.kinds["good-new-key"] > 0 and result.kinds["foreign-key"] > 0
