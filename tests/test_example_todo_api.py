"""The todo API examples: every route and every scope/permission rule, one suite for both.

``examples/starlette_api`` (Starlette, the guards as decorators) and ``examples/django_api``
(Django REST framework, the guards as permission classes) keep the same contract, so each test
that goes through ``client`` runs against both, served by uvicorn on 127.0.0.1. Tokens are minted
by TokenFactory and the APIs fetch discovery and keys from a real loopback OIDC stub, so the
library's validator, middleware, decorators and DRF classes all run as in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.starlette_api import create_app
from examples.starlette_api.__main__ import main as api_main
from examples.starlette_api.storage import TodoStore
from starlette.applications import Starlette
from starlette.testclient import TestClient

from entra_ciam import EntraConfig
from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.todo_api import serving, start_api_process, start_example, stop_process
from tests.support.tokens import API_CLIENT_ID, USER_OID, SigningKey, TokenFactory

ALICE = USER_OID
BOB = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
DAEMON_OID = "5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716"


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def factory() -> TokenFactory:
    return TokenFactory()


@pytest.fixture(scope="module")
def stub(factory: TokenFactory) -> Iterator[OIDCStub]:
    with running_stub(factory) as stub:
        yield stub


@pytest.fixture
def config(stub: OIDCStub) -> EntraConfig:
    return EntraConfig(authority=stub.authority, api_client_id=API_CLIENT_ID)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "todo.sqlite3"


FLAVORS = ["starlette", "django"]


def build(flavor: str, config: EntraConfig, db_path: Path) -> Any:
    """The API of one example, for ``config`` and the items in ``db_path``."""
    if flavor == "starlette":
        return create_app(config, db_path=db_path)
    from examples.django_api import create_app as create_django_app

    return create_django_app(config, db_path)


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(config: EntraConfig, db_path: Path) -> Starlette:
    return create_app(config, db_path=db_path)


@pytest.fixture
def client(flavor: str, config: EntraConfig, db_path: Path) -> Iterator[httpx.Client]:
    with (
        serving(build(flavor, config, db_path)) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        yield client


class Tokens:
    """Bearer headers for users and apps, minted by one TokenFactory."""

    def __init__(self, factory: TokenFactory) -> None:
        self.factory = factory

    def user(
        self, scp: str = "Todolist.Read Todolist.ReadWrite", oid: str = ALICE, **kw: Any
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.factory.mint(scp=scp, oid=oid, **kw)}"}

    def app(self, *roles: str) -> dict[str, str]:
        token = self.factory.mint(self.factory.app_claims(roles=list(roles)))
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def tokens(factory: TokenFactory) -> Tokens:
    return Tokens(factory)


def add(client: httpx.Client, headers: dict[str, str], description: str, **extra: Any) -> Any:
    response = client.post(
        "/api/todolist", headers=headers, json={"description": description, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


# -- health and authentication ------------------------------------------------------------------


def test_healthz_is_public(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/todolist"),
        ("POST", "/api/todolist"),
        ("GET", "/api/todolist/1"),
        ("PUT", "/api/todolist/1"),
        ("DELETE", "/api/todolist/1"),
    ],
)
def test_every_api_route_needs_a_token(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path, json={"description": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_token_signed_by_another_key_is_refused(
    client: httpx.Client, factory: TokenFactory
) -> None:
    forged = factory.mint(key=SigningKey())
    response = client.get("/api/todolist", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_token_for_another_audience_is_refused(client: httpx.Client, factory: TokenFactory) -> None:
    other = factory.mint(aud="00000000-1111-2222-3333-444444444444")
    response = client.get("/api/todolist", headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 401


def test_v1_style_audience_is_accepted(client: httpx.Client, factory: TokenFactory) -> None:
    token = factory.mint(aud=f"api://{API_CLIENT_ID}")
    response = client.get("/api/todolist", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_user_token_without_oid_is_refused(client: httpx.Client, factory: TokenFactory) -> None:
    token = factory.mint(factory.claims(oid=None))
    response = client.get("/api/todolist", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "oid" in response.json()["error_description"]


# -- delegated scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize("scp", ["Todolist.Read", "Todolist.ReadWrite"])
def test_user_reads_with_either_scope(client: httpx.Client, tokens: Tokens, scp: str) -> None:
    item = add(client, tokens.user("Todolist.ReadWrite"), "Buy milk")
    reader = tokens.user(scp)
    listed = client.get("/api/todolist", headers=reader)
    assert listed.status_code == 200
    assert listed.json() == [item]
    one = client.get(f"/api/todolist/{item['id']}", headers=reader)
    assert one.status_code == 200
    assert one.json() == item == {"id": item["id"], "owner": ALICE, "description": "Buy milk"}


def test_read_scope_cannot_write(client: httpx.Client, tokens: Tokens) -> None:
    item = add(client, tokens.user("Todolist.ReadWrite"), "Keep me")
    reader = tokens.user("Todolist.Read")
    attempts = [
        client.post("/api/todolist", headers=reader, json={"description": "nope"}),
        client.put(f"/api/todolist/{item['id']}", headers=reader, json={"description": "nope"}),
        client.delete(f"/api/todolist/{item['id']}", headers=reader),
    ]
    for response in attempts:
        assert response.status_code == 403
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert 'scope="Todolist.ReadWrite"' in challenge
        assert response.json()["error"] == "insufficient_scope"
        assert "Todolist.ReadWrite" in response.json()["scope"].split()
    assert client.get("/api/todolist", headers=reader).json() == [item]


def test_unrelated_scope_cannot_read(client: httpx.Client, tokens: Tokens) -> None:
    response = client.get("/api/todolist", headers=tokens.user("User.Read"))
    assert response.status_code == 403
    assert set(response.json()["scope"].split()) == {"Todolist.Read", "Todolist.ReadWrite"}


def test_user_with_app_role_but_read_scope_cannot_write(
    client: httpx.Client, tokens: Tokens
) -> None:
    # An application permission held by a user (an assigned app role) is not a delegated scope.
    headers = tokens.user("Todolist.Read", roles=["Todolist.ReadWrite.All"])
    response = client.post("/api/todolist", headers=headers, json={"description": "x"})
    assert response.status_code == 403


# -- application permissions ------------------------------------------------------------------


def test_app_with_read_all_sees_every_user_and_cannot_write(
    client: httpx.Client, tokens: Tokens
) -> None:
    a = add(client, tokens.user(oid=ALICE), "Alice's")
    b = add(client, tokens.user(oid=BOB), "Bob's")
    reader = tokens.app("Todolist.Read.All")
    assert client.get("/api/todolist", headers=reader).json() == [a, b]
    assert client.get(f"/api/todolist/{b['id']}", headers=reader).json() == b
    only_bob = client.get("/api/todolist", headers=reader, params={"owner": BOB})
    assert only_bob.json() == [b]
    refused = client.post(
        "/api/todolist", headers=reader, json={"description": "x", "owner": ALICE}
    )
    assert refused.status_code == 403
    assert 'scope="Todolist.ReadWrite.All"' in refused.headers["www-authenticate"]
    assert client.delete(f"/api/todolist/{a['id']}", headers=reader).status_code == 403


def test_app_with_readwrite_all_manages_any_users_items(
    client: httpx.Client, tokens: Tokens
) -> None:
    writer = tokens.app("Todolist.ReadWrite.All")
    created = add(client, writer, "From the daemon", owner=BOB)
    assert created["owner"] == BOB
    # Bob sees it as his own; Alice does not.
    assert client.get("/api/todolist", headers=tokens.user(oid=BOB)).json() == [created]
    assert client.get("/api/todolist", headers=tokens.user(oid=ALICE)).json() == []
    assert client.get("/api/todolist", headers=writer).json() == [created]
    changed = client.put(
        f"/api/todolist/{created['id']}", headers=writer, json={"description": "Changed"}
    )
    assert changed.status_code == 200
    assert changed.json() == {**created, "description": "Changed"}
    assert client.delete(f"/api/todolist/{created['id']}", headers=writer).status_code == 204
    assert client.get("/api/todolist", headers=writer).json() == []


def test_app_must_name_an_owner(client: httpx.Client, tokens: Tokens) -> None:
    writer = tokens.app("Todolist.ReadWrite.All")
    response = client.post("/api/todolist", headers=writer, json={"description": "for whom?"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "owner is required" in response.json()["error_description"]
    bad = client.post(
        "/api/todolist", headers=writer, json={"description": "x", "owner": "not-a-guid"}
    )
    assert bad.status_code == 400
    assert "oid" in bad.json()["error_description"]
    assert client.get("/api/todolist", headers=writer).json() == []


def test_app_permission_without_todolist_role_is_refused(
    client: httpx.Client, tokens: Tokens
) -> None:
    response = client.get("/api/todolist", headers=tokens.app("Other.Read.All"))
    assert response.status_code == 403
    assert set(response.json()["scope"].split()) == {"Todolist.Read.All", "Todolist.ReadWrite.All"}


# -- a user token is never an app token (issue 16, points 2 and 7) -------------------------------


@pytest.mark.parametrize(
    ("what", "claims"),
    [
        ("idtyp user, no scp", {"idtyp": "user", "scp": None}),
        ("no idtyp, pairwise sub", {"scp": None}),
        ("idtyp user, read scope", {"idtyp": "user", "scp": "Todolist.Read"}),
        ("no idtyp, read scope", {"scp": "Todolist.Read"}),
        ("idtyp user, oid == sub", {"idtyp": "user", "scp": None, "sub": BOB}),
    ],
)
def test_user_token_with_app_permissions_sees_only_its_own_items(
    flavor: str,
    config: EntraConfig,
    db_path: Path,
    tokens: Tokens,
    what: str,
    claims: dict[str, Any],
) -> None:
    """Bob's token holds both application permissions as roles (an admin assigned him the app
    roles): over a real server, it must not list, read, change or delete Alice's items, as an
    app token would. Before the fix the roles without scp made it "app-only" and it could."""
    bob = {
        "Authorization": "Bearer "
        + tokens.factory.mint(
            oid=BOB, roles=["Todolist.Read.All", "Todolist.ReadWrite.All"], **claims
        )
    }
    with serving(build(flavor, config, db_path)) as base, httpx.Client(base_url=base) as http:
        alice_item = http.post(
            "/api/todolist", headers=tokens.user(oid=ALICE), json={"description": "Alice's"}
        ).json()
        bob_item = http.post(
            "/api/todolist", headers=tokens.user(oid=BOB), json={"description": "Bob's"}
        ).json()
        url = f"/api/todolist/{alice_item['id']}"
        listed = http.get("/api/todolist", headers=bob)
        answers = [
            http.get(url, headers=bob),
            http.put(url, headers=bob, json={"description": "hijacked"}),
            http.delete(url, headers=bob),
            http.post("/api/todolist", headers=bob, json={"description": "x", "owner": ALICE}),
        ]
        if claims["scp"] is None:  # no delegated scope at all: refused outright
            assert listed.status_code == 403, what
            assert 'error="insufficient_scope"' in listed.headers["www-authenticate"]
        else:  # a reader: its own items only
            assert listed.status_code == 200, what
            assert listed.json() == [bob_item], what
        for answer in answers:
            assert answer.status_code in (400, 403, 404), (what, answer.request.method)
        alice = http.get("/api/todolist", headers=tokens.user(oid=ALICE)).json()
        assert alice == [alice_item]  # untouched
        # The daemon's real app-only token, through the same server, does see everything.
        daemon = http.get("/api/todolist", headers=tokens.app("Todolist.Read.All")).json()
        assert daemon == [alice_item, bob_item]


# -- user isolation -----------------------------------------------------------------------------


def test_users_see_and_change_only_their_own_items(client: httpx.Client, tokens: Tokens) -> None:
    alice, bob = tokens.user(oid=ALICE), tokens.user(oid=BOB)
    mine = add(client, alice, "Alice's secret")
    theirs = add(client, bob, "Bob's")
    assert client.get("/api/todolist", headers=bob).json() == [theirs]
    url = f"/api/todolist/{mine['id']}"
    assert client.get(url, headers=bob).status_code == 404
    assert client.put(url, headers=bob, json={"description": "hijack"}).status_code == 404
    assert client.delete(url, headers=bob).status_code == 404
    # Indistinguishable from an id that does not exist.
    missing = client.get("/api/todolist/999999", headers=bob)
    assert client.get(url, headers=bob).json()["error"] == missing.json()["error"]
    assert client.get(url, headers=alice).json() == mine


def test_user_cannot_add_to_another_users_list(client: httpx.Client, tokens: Tokens) -> None:
    alice = tokens.user(oid=ALICE)
    response = client.post("/api/todolist", headers=alice, json={"description": "x", "owner": BOB})
    assert response.status_code == 400
    assert client.get("/api/todolist", headers=tokens.user(oid=BOB)).json() == []
    # Naming oneself is harmless.
    assert add(client, alice, "mine", owner=ALICE)["owner"] == ALICE


# -- routes -------------------------------------------------------------------------------------


def test_post_returns_201_with_location_of_the_item(client: httpx.Client, tokens: Tokens) -> None:
    alice = tokens.user()
    response = client.post("/api/todolist", headers=alice, json={"description": "  Walk dog  "})
    assert response.status_code == 201
    item = response.json()
    assert set(item) == {"id", "owner", "description"}
    assert item["description"] == "Walk dog"
    assert response.headers["location"] == f"/api/todolist/{item['id']}"
    assert response.headers["cache-control"] == "no-store"
    assert client.get(response.headers["location"], headers=alice).json() == item


def test_put_changes_the_description(client: httpx.Client, tokens: Tokens) -> None:
    alice = tokens.user()
    item = add(client, alice, "Old")
    url = f"/api/todolist/{item['id']}"
    # The sample's client sends the whole item back.
    response = client.put(url, headers=alice, json={**item, "description": " New "})
    assert response.status_code == 200
    assert response.json() == {**item, "description": "New"}
    assert client.get(url, headers=alice).json()["description"] == "New"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"description": "x", "id": 424242}, "id in the body"),
        ({"description": "x", "owner": BOB}, "cannot be changed"),
        ({"description": ""}, "must not be empty"),
    ],
)
def test_put_refuses_bad_bodies(
    client: httpx.Client, tokens: Tokens, body: dict[str, Any], reason: str
) -> None:
    alice = tokens.user()
    item = add(client, alice, "Unchanged")
    response = client.put(f"/api/todolist/{item['id']}", headers=alice, json=body)
    assert response.status_code == 400
    assert reason in response.json()["error_description"]
    assert client.get(f"/api/todolist/{item['id']}", headers=alice).json() == item


def test_delete_removes_the_item(client: httpx.Client, tokens: Tokens) -> None:
    alice = tokens.user()
    keep, gone = add(client, alice, "Keep"), add(client, alice, "Gone")
    url = f"/api/todolist/{gone['id']}"
    response = client.delete(url, headers=alice)
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(url, headers=alice).status_code == 404
    assert client.delete(url, headers=alice).status_code == 404
    assert client.put(url, headers=alice, json={"description": "x"}).status_code == 404
    assert client.get("/api/todolist", headers=alice).json() == [keep]


@pytest.mark.parametrize(
    "item_id", ["0", "424242", "99999999999999999999999999", "abc", "-1", "1.5"]
)
def test_unknown_or_malformed_ids_are_404(
    client: httpx.Client, tokens: Tokens, item_id: str
) -> None:
    alice = tokens.user()
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(
            method, f"/api/todolist/{item_id}", headers=alice, json={"description": "x"}
        )
        assert response.status_code == 404, (method, item_id, response.text)
        assert response.json()["error"] == "not_found"


def test_wrong_method_is_405_not_500(client: httpx.Client, tokens: Tokens) -> None:
    response = client.patch("/api/todolist/1", headers=tokens.user(), json={})
    assert response.status_code == 405


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "JSON object"),
        (b"{not json", "not valid JSON"),
        (b'"just a string"', "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "larger than"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b"{}", "description is required"),
        (b'{"description": null}', "description is required"),
        (b'{"description": 42}', "must be a string"),
        (b'{"description": ["a"]}', "must be a string"),
        (b'{"description": {"a": 1}}', "must be a string"),
        (b'{"description": ""}', "must not be empty"),
        (b'{"description": "   \\n\\t  "}', "must not be empty"),
        (b'{"description": "\\ud800"}', "not valid Unicode"),
        (json.dumps({"description": "x" * 501}).encode(), "at most 500"),
        (b'{"description": "x", "owner": 7}', "owner must be a string"),
    ],
)
def test_invalid_bodies_get_400_with_a_reason(
    client: httpx.Client, tokens: Tokens, content: bytes, reason: str
) -> None:
    alice = tokens.user()
    headers = {**alice, "Content-Type": "application/json"}
    response = client.post("/api/todolist", headers=headers, content=content)
    assert response.status_code in (400, 413), response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert reason in body["error_description"]
    assert client.get("/api/todolist", headers=alice).json() == []


def test_description_limit_counts_characters_after_trimming(
    client: httpx.Client, tokens: Tokens
) -> None:
    alice = tokens.user()
    exactly = "é" * 500  # 500 characters, 1000 bytes
    assert add(client, alice, f"  {exactly}\n")["description"] == exactly
    too_long = client.post("/api/todolist", headers=alice, json={"description": "a" * 501})
    assert too_long.status_code == 400


# -- durability and concurrency -----------------------------------------------------------------


def test_restart_keeps_data(
    flavor: str, config: EntraConfig, db_path: Path, tokens: Tokens
) -> None:
    with serving(build(flavor, config, db_path)) as base, httpx.Client(base_url=base) as first:
        a = add(first, tokens.user(oid=ALICE), "Survives")
        b = add(first, tokens.user(oid=BOB), "Also survives")
    with serving(build(flavor, config, db_path)) as base, httpx.Client(base_url=base) as second:
        assert second.get("/api/todolist", headers=tokens.app("Todolist.Read.All")).json() == [a, b]
        c = add(second, tokens.user(oid=ALICE), "After restart")
        assert c["id"] > b["id"]


def test_locked_store_answers_503_and_readers_are_not_blocked(
    app: Starlette, db_path: Path, tokens: Tokens
) -> None:
    client = TestClient(app)
    alice = tokens.user()
    item = add(client, alice, "Before the lock")
    app.state.store = TodoStore(db_path, busy_timeout_ms=50)
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another worker holds the write lock
        try:
            blocked = client.post("/api/todolist", headers=alice, json={"description": "x"})
            assert blocked.status_code == 503
            assert blocked.headers["retry-after"] == "1"
            assert blocked.json()["error"] == "temporarily_unavailable"
            # WAL: reading goes on while another connection writes.
            assert client.get("/api/todolist", headers=alice).json() == [item]
        finally:
            other.execute("ROLLBACK")
    assert add(client, alice, "After the lock")["description"] == "After the lock"


def test_concurrent_writers_over_uvicorn_lose_nothing(
    config: EntraConfig, db_path: Path, tokens: Tokens
) -> None:
    """8 threads post through two uvicorn servers sharing one database (two workers)."""
    threads, per_thread = 8, 25
    writer = tokens.app("Todolist.ReadWrite.All")
    users = [ALICE, BOB]
    created: list[dict[str, Any]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def post_many(base: str, n: int) -> None:
        with httpx.Client(base_url=base, headers=writer, timeout=30) as http:
            for i in range(per_thread):
                body = {"description": f"t{n}-{i}", "owner": users[i % 2]}
                response = http.post("/api/todolist", json=body)
                with lock:
                    if response.status_code == 201:
                        created.append(response.json())
                    else:
                        failures.append(f"{response.status_code} {response.text}")

    with (
        serving(create_app(config, db_path=db_path)) as one,
        serving(create_app(config, db_path=db_path)) as two,
    ):
        workers = [
            threading.Thread(target=post_many, args=((one, two)[n % 2], n)) for n in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert not failures
        with httpx.Client(base_url=one, headers=writer) as http:
            listed = http.get("/api/todolist").json()
            alice_only = http.get("/api/todolist", params={"owner": ALICE}).json()

    assert len(created) == threads * per_thread
    ids = Counter(item["id"] for item in created)
    assert all(count == 1 for count in ids.values())
    by_id = {item["id"]: item for item in listed}
    assert Counter(item["id"] for item in listed) == ids  # every 201 present exactly once
    for item in created:
        assert by_id[item["id"]] == item
    assert {f"t{n}-{i}" for n in range(threads) for i in range(per_thread)} == {
        item["description"] for item in listed
    }
    assert sorted(alice_only, key=lambda item: item["id"]) == sorted(
        (item for item in created if item["owner"] == ALICE), key=lambda item: item["id"]
    )


# -- the runnable example ---------------------------------------------------------------------


def test_module_runs_on_uvicorn_and_killed_server_loses_no_acknowledged_item(
    stub: OIDCStub, tmp_path: Path, tokens: Tokens
) -> None:
    """``python -m examples.starlette_api``; SIGKILL while writes are in flight; restart."""
    db = tmp_path / "killed.sqlite3"
    writer = tokens.app("Todolist.ReadWrite.All")
    acknowledged: list[dict[str, Any]] = []
    stop = threading.Event()
    env = {"ENTRA_AUTHORITY": stub.authority, "ENTRA_API_CLIENT_ID": API_CLIENT_ID}
    proc, base = start_api_process(env, db)
    try:
        user = tokens.user(oid=ALICE)
        first = httpx.post(f"{base}/api/todolist", headers=user, json={"description": "first"})
        assert first.status_code == 201
        assert first.headers["location"] == f"/api/todolist/{first.json()['id']}"
        acknowledged.append(first.json())
        assert httpx.get(f"{base}/api/todolist", headers=user).json() == [first.json()]

        def hammer() -> None:
            with httpx.Client(base_url=base, headers=writer, timeout=5) as http:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        r = http.post("/api/todolist", json={"description": f"k{n}", "owner": BOB})
                    except httpx.TransportError:
                        return  # the server is gone: this write was never acknowledged
                    if r.status_code == 201:
                        acknowledged.append(r.json())

        hammerer = threading.Thread(target=hammer)
        hammerer.start()
        deadline = time.monotonic() + 10
        while len(acknowledged) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        hammerer.join(10)
        assert len(acknowledged) >= 30
    finally:
        stop.set()
        stop_process(proc)

    proc, base = start_api_process(env, db)
    try:
        reader = tokens.app("Todolist.Read.All")
        listed = httpx.get(f"{base}/api/todolist", headers=reader).json()
    finally:
        stop_process(proc)
    present = {item["id"]: item for item in listed}
    for item in acknowledged:
        assert present.get(item["id"]) == item


def test_module_refuses_to_start_without_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("ENTRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ENTRA_AUTHORITY", "https://contoso.ciamlogin.com/")
    monkeypatch.setenv("ENTRA_API_CLIENT_ID", "Enter the Client ID (aka 'Application ID')")
    assert api_main(["--db", str(tmp_path / "x.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert "ENTRA_API_CLIENT_ID" in err
    assert "placeholder" in err
    monkeypatch.delenv("ENTRA_API_CLIENT_ID")
    assert api_main(["--db", str(tmp_path / "x.sqlite3")]) == 2
    assert "ENTRA_API_CLIENT_ID is not set" in capsys.readouterr().err


def test_run_by_hand_it_keeps_its_items_in_the_state_folder(stub: OIDCStub, tmp_path: Path) -> None:
    """Started from a clone with no --db, it writes state/todo.sqlite3 (gitignored), nothing
    else in the working directory."""
    env = {"ENTRA_AUTHORITY": stub.authority, "ENTRA_API_CLIENT_ID": API_CLIENT_ID}
    proc, _ = start_example("examples.starlette_api", env, cwd=tmp_path)
    stop_process(proc)
    assert [p.name for p in tmp_path.iterdir()] == ["state"]
    assert (tmp_path / "state" / "todo.sqlite3").is_file()


# -- the Django example as its own process ------------------------------------------------------


@pytest.mark.parametrize("server", ["uvicorn", "runserver"])
def test_django_module_serves_the_api(
    stub: OIDCStub, tmp_path: Path, tokens: Tokens, server: str
) -> None:
    """``python -m examples.django_api`` under uvicorn (ASGI) and Django's runserver (WSGI)."""
    from tests.support.todo_api import start_example

    env = {
        "ENTRA_AUTHORITY": stub.authority,
        "ENTRA_API_CLIENT_ID": API_CLIENT_ID,
        "TODO_API_DB": str(tmp_path / "django.sqlite3"),
    }
    proc, base = start_example("examples.django_api", {**env, "TODO_API_SERVER": server})
    try:
        user = tokens.user(oid=ALICE)
        created = httpx.post(f"{base}/api/todolist", headers=user, json={"description": "d"})
        assert created.status_code == 201, created.text
        assert httpx.get(f"{base}/api/todolist", headers=user).json() == [created.json()]
        assert httpx.get(f"{base}/api/todolist").status_code == 401
    finally:
        stop_process(proc)
    # Stopped means stopped: no server of its own left serving the port (runserver as a child
    # process outlived the SIGTERM).
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=2)


def test_django_module_refuses_to_start_without_settings(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "TODO_", "DJANGO_"))}
    env["ENTRA_AUTHORITY"] = "https://contoso.ciamlogin.com/"
    env["ENTRA_API_CLIENT_ID"] = "Enter the Client ID (aka 'Application ID')"
    argv = [sys.executable, "-m", "examples.django_api", "--db", str(tmp_path / "x.sqlite3")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "ENTRA_API_CLIENT_ID" in done.stderr
    assert "placeholder" in done.stderr
