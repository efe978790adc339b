"""Quart: the guards, the bearer middleware and the sign-in middleware give Quart's answers.

The bearer side is also in tests/test_frameworks.py (hypercorn and uvicorn); here, what only
Quart has: views without a request argument (sync ones run in a thread), WebSocket handlers, and
sign-in through the emulator with token acquisition that needs the user again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.quart_site import create_app
from tests.support.rejections import Tenant, challenge, running_tenant
from tests.support.signin_apps import quart_app
from tests.support.tokens import USER_OID
from tests.support.webapps import ADA, signin_stack


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_sync_and_async_views(tenant: Tenant) -> None:
    client = create_app(tenant.validator).test_client()
    for path in ("/scoped", "/sync-scoped"):
        ok = await client.get(path, headers=bearer(tenant.user_token()))
        assert ok.status_code == 200
        assert (await ok.get_json()) == {"oid": USER_OID}
        refused = await client.get(path, headers=bearer(tenant.user_token(scp="User.Read")))
        assert refused.status_code == 403
        assert challenge(refused.headers["WWW-Authenticate"])["scope"] == "Todolist.Read"
        assert (await refused.get_json())["error"] == "insufficient_scope"


async def test_websocket_handler_is_closed_with_1008(tenant: Tenant) -> None:
    from quart.testing.connections import WebsocketDisconnectError

    client = create_app(tenant.validator).test_client()
    async with client.websocket("/ws", headers=bearer(tenant.user_token())) as ws:
        assert await ws.receive_json() == {"oid": USER_OID}
    with pytest.raises(WebsocketDisconnectError) as info:
        async with client.websocket(
            "/ws", headers=bearer(tenant.user_token(scp="User.Read"))
        ) as ws:
            await ws.receive()
    assert info.value.args == (1008,)


def test_sign_in_and_tokens_through_the_emulator(tmp_path: Path) -> None:
    with signin_stack("asgi", tmp_path, quart_app) as stack, stack.browser() as browser:
        first = browser.get("/me")
        assert first.status_code == 302
        assert first.headers["location"] == "/auth/signin?next=%2Fme"
        me = browser.follow(first, user=ADA)
        assert me.status_code == 200, me.text
        assert me.json()["name"] == ADA[2]
        todos = browser.get("/todos")
        assert todos.json() == {"status": 200, "items": []}
        # A scope not consented at sign-in: the sync view's acquirer needs the user again, and
        # Quart answers with the redirect (not a 500), which comes back and writes.
        again = browser.get("/write")
        assert again.status_code == 302, again.text
        written = browser.follow(again, user=ADA)
        assert written.status_code == 200, written.text
        assert written.json()["status"] == 201
