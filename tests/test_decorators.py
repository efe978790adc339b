"""The guards' own rules, whatever the framework: who answers a refusal, and from where the
claims come when the ContextVar is not there. Framework answers are in test_decorators_<name>.py,
test_django.py, test_quart.py and test_frameworks.py (real servers)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from entra_ciam import (
    Claims,
    InsufficientScopeError,
    MissingTokenError,
    require_role,
    require_scope,
    require_scope_or_app_permission,
)
from entra_ciam.context import claims_context
from tests.support.asgi import call_asgi, http_scope, response_of

USER = Claims({"oid": "u1", "sub": "s1", "scp": "Todolist.Read"})
READ = require_scope("Todolist.Read")
WRITE = require_scope("Todolist.ReadWrite")


def plain_view(*args: Any) -> str:
    return "ran"


async def plain_async_view(*args: Any) -> str:
    return "ran"


def test_with_no_framework_a_refusal_is_raised_for_the_middleware() -> None:
    guarded = READ(plain_view)
    with pytest.raises(MissingTokenError):
        guarded()
    with claims_context(USER), pytest.raises(InsufficientScopeError) as info:
        WRITE(plain_view)()
    assert info.value.accepted == ("Todolist.ReadWrite",)
    with claims_context(USER):
        assert guarded() == "ran"


async def test_async_views_alike() -> None:
    with pytest.raises(MissingTokenError):
        await READ(plain_async_view)()
    with claims_context(USER):
        assert await READ(plain_async_view)() == "ran"
        with pytest.raises(InsufficientScopeError):
            await WRITE(plain_async_view)()


def request_with_state(claims: Claims | None) -> Request:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}}
    if claims is not None:
        scope["state"]["claims"] = claims
    return Request(scope)


async def test_claims_left_on_the_request_count_when_the_context_var_is_empty() -> None:
    """A runner that does not carry the ContextVar into the view still sees the claims the
    middleware left in ``scope["state"]``; and a refusal is the framework's response."""
    assert READ(plain_view)(request_with_state(USER)) == "ran"
    assert await READ(plain_async_view)(request_with_state(USER)) == "ran"
    refused = WRITE(plain_view)(request_with_state(USER))
    assert refused.status_code == 403
    assert b"insufficient_scope" in refused.body
    anonymous = await READ(plain_async_view)(request_with_state(None))
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="entra-ciam"'


def test_what_a_guard_cannot_decorate_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="decorates a function"):
        READ(42)

    class NotAView:
        pass

    with pytest.raises(TypeError, match="cannot guard the class"):
        require_role("Admin")(NotAView)


def test_decorated_views_keep_their_name_and_signature() -> None:
    def list_items(request: Any, item_id: int) -> str:
        return "x"

    guarded = READ(list_items)
    assert guarded.__name__ == "list_items"
    assert guarded.__wrapped__ is list_items  # type: ignore[attr-defined]
    assert repr(READ) == "require_scope('Todolist.Read')"


# -- more of the public behaviour (issue 16, point 8) ---------------------------------------------

APP = Claims({"oid": "app-1", "sub": "app-1", "roles": ["Todolist.Read.All"]})
EITHER = require_scope_or_app_permission(
    scopes="Todolist.Read", app_permissions="Todolist.Read.All"
)


def test_arguments_reach_the_view_for_users_and_apps() -> None:
    @EITHER
    def view(item: int, *, verbose: bool = False) -> tuple[int, bool]:
        return item, verbose

    with claims_context(USER):
        assert view(7, verbose=True) == (7, True)
    with claims_context(APP):
        assert view(8) == (8, False)


async def test_an_object_with_an_async_call_is_awaited() -> None:
    class Endpoint:
        async def __call__(self, item: int) -> int:
            return item * 2

    endpoint = EITHER(Endpoint())
    with claims_context(USER):
        assert await endpoint(3) == 6
    with pytest.raises(MissingTokenError):
        await endpoint(4)


def test_check_takes_explicit_claims_or_the_current_ones() -> None:
    guard = require_role("Todolist.Read.All")
    assert guard.check(APP) is APP
    with claims_context(APP):
        assert guard.check() is APP
        with pytest.raises(InsufficientScopeError):
            guard.check(USER)  # explicit claims win over the current ones
    with pytest.raises(MissingTokenError):
        guard.check()


@pytest.mark.parametrize("target", [42, "view", None])
def test_only_callables_can_be_decorated(target: Any) -> None:
    with pytest.raises(TypeError, match=f"decorates a function, got {type(target).__name__}$"):
        READ(target)


def test_either_list_may_be_left_out_but_not_both() -> None:
    assert EITHER.requirement.scopes == ("Todolist.Read",)
    assert EITHER.requirement.app_permissions == ("Todolist.Read.All",)
    assert require_scope_or_app_permission(scopes="Todolist.Read").requirement.app_permissions == ()
    apps_only = require_scope_or_app_permission(app_permissions="Todolist.Read.All")
    assert apps_only.requirement.scopes == ()
    with pytest.raises(ValueError, match="needs scopes=, app_permissions= or both"):
        require_scope_or_app_permission()
    with pytest.raises(ValueError, match="at least one scope"):
        require_scope_or_app_permission(scopes=[], app_permissions="Todolist.Read.All")
    with pytest.raises(ValueError, match="at least one role"):
        require_scope_or_app_permission(scopes="Todolist.Read", app_permissions=[])


async def test_a_callable_object_of_a_framework_is_guarded_not_taken_for_its_request() -> None:
    """An ASGI app object (here Starlette's PlainTextResponse) is callable: the guard wraps it like
    any view instead of treating it as the request of a FastAPI dependency call."""
    from starlette.responses import PlainTextResponse

    guarded = READ(PlainTextResponse("hello"))
    with claims_context(USER):
        sent = await call_asgi(guarded, http_scope())
    assert response_of(sent)[::2] == (200, b"hello")
    with pytest.raises(MissingTokenError):
        await call_asgi(guarded, http_scope())
