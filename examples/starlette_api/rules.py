"""The todo API's rules, framework-free: who owns what, what a body may change.

Shared by the Starlette app (``app.py``) and the Django/DRF one (``examples.django_api``) so that
both keep the same contract. Each function takes the validated claims and the parsed body and
calls the store (blocking: async callers run them in a thread); a refusal is a ``BadRequest``
(400) or an ``InvalidTokenError`` (401), and a missing or foreign item is None, which the apps
answer with 404 (not 403: ids do not reveal what exists).
"""

from __future__ import annotations

from typing import Any

from examples.starlette_api.payload import BadRequest, description_of, owner_of
from examples.starlette_api.storage import TodoItem, TodoStore

from entra_ciam import Claims, InvalidTokenError, require_scope_or_app_permission

__all__ = [
    "READ",
    "WRITE",
    "caller_owner",
    "create_item",
    "delete_item",
    "get_item",
    "list_items",
    "update_item",
]

# Read endpoints: either delegated scope for users, either application permission for apps.
READ = require_scope_or_app_permission(
    scopes=["Todolist.Read", "Todolist.ReadWrite"],
    app_permissions=["Todolist.Read.All", "Todolist.ReadWrite.All"],
)
# Write endpoints: only the ReadWrite grants.
WRITE = require_scope_or_app_permission(
    scopes=["Todolist.ReadWrite"], app_permissions=["Todolist.ReadWrite.All"]
)


def caller_owner(claims: Claims) -> str | None:
    """The owner whose items the caller may touch: its ``oid``, or None (every owner) for apps."""
    if claims.is_app_only:
        return None
    if not claims.oid:
        # Without oid a user has no stable key: refuse rather than pool items under "".
        raise InvalidTokenError("The user token carries no oid claim")
    return claims.oid.lower()


def list_items(store: TodoStore, claims: Claims, owner_param: str | None) -> list[TodoItem]:
    owner = caller_owner(claims)
    if owner is None and owner_param is not None:
        # An app may narrow the list to one user: GET /api/todolist?owner=<oid>
        owner = owner_of({"owner": owner_param})
    return store.list_items(owner)


def get_item(store: TodoStore, claims: Claims, item_id: int) -> TodoItem | None:
    owner = caller_owner(claims)
    return store.get(item_id, owner)


def create_item(store: TodoStore, claims: Claims, data: dict[str, Any]) -> TodoItem:
    description = description_of(data)
    named = owner_of(data)
    own = caller_owner(claims)
    if own is None:  # an app
        if named is None:
            raise BadRequest("owner is required: an app must name the user (oid) the item is for")
        owner = named
    elif named is not None and named != own:
        raise BadRequest("owner may be set only by an app; a user adds items to their own list")
    else:
        owner = own
    return store.add(owner, description)


def update_item(
    store: TodoStore, claims: Claims, item_id: int, data: dict[str, Any]
) -> TodoItem | None:
    owner = caller_owner(claims)
    description = description_of(data)
    # The sample's client sends the whole item back: id and owner may come along, unchanged.
    if "id" in data and data["id"] != item_id:
        raise BadRequest("id in the body does not match the id in the path")
    current = get_item(store, claims, item_id)
    if current is None:
        return None
    named = owner_of(data)
    if named is not None and named != current.owner:
        raise BadRequest("owner of an item cannot be changed")
    return store.update(item_id, owner, description)


def delete_item(store: TodoStore, claims: Claims, item_id: int) -> bool:
    owner = caller_owner(claims)
    return store.delete(item_id, owner)
