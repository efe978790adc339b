"""Calling the todo API with the user's access token; every failure becomes a sentence for people.

The web app never shows what went wrong inside the API or the network (no stack trace, no raw
body): a ``TodoApiError`` carries the status the page should have and a message a person can act
on. Only a 400's reason comes through, because it is about what the person typed.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httpx

__all__ = ["TodoApi", "TodoApiError", "TodoItem"]

log = logging.getLogger("examples.flask_todo")

LIST_PATH = "/api/todolist"
TIMEOUT = httpx.Timeout(10.0, connect=3.0)

TodoItem = dict[str, Any]


class TodoApiError(Exception):
    """The API could not do what was asked; ``message`` is shown as is, ``status`` is the page's."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _reason(response: httpx.Response) -> str:
    """The API's ``error_description`` (one line, bounded), or an empty string."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    description = body.get("error_description")
    if not isinstance(description, str):
        return ""
    return description.splitlines()[0][:300] if description else ""


def _failure(response: httpx.Response, doing: str) -> TodoApiError:
    status = response.status_code
    log.warning("todo API answered %s while %s", status, doing)
    if status in (400, 413, 422):
        reason = _reason(response).rstrip(". ") or "the request was not valid"
        return TodoApiError(f"The todo list did not accept that: {reason}.", 400)
    if status == 404:
        return TodoApiError("That item is not on your list any more.", 404)
    if status == 401:
        return TodoApiError(
            "The todo list service did not accept your sign-in. Signing out and in again may "
            "help; if it does not, the site's configuration needs attention.",
            502,
        )
    if status == 403:
        return TodoApiError(
            "You are signed in, but not allowed to do that with the todo list.", 403
        )
    if status in (502, 503, 504):
        return TodoApiError(
            "The todo list service is unavailable right now. Please try again in a moment.", 503
        )
    return TodoApiError(
        f"The todo list service had a problem while {doing} (HTTP {status}). "
        "Please try again later.",
        502,
    )


class TodoApi:
    """A small client for ``GET/POST /api/todolist`` and ``DELETE /api/todolist/{id}``.

    ``verify`` is a CA bundle path (``ENTRA_CA_BUNDLE``, for an API behind a private CA) or True.
    """

    def __init__(self, base_url: str, *, verify: str | bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        trust: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._client = httpx.Client(timeout=TIMEOUT, verify=trust, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def list_items(self, token: str) -> list[TodoItem]:
        response = self._send("GET", LIST_PATH, token, doing="reading your list")
        if response.status_code != 200:
            raise _failure(response, "reading your list")
        items = self._json(response, "reading your list")
        if not isinstance(items, list) or not all(_is_item(i) for i in items):
            raise _unexpected("reading your list")
        return items

    def add_item(self, token: str, description: str) -> TodoItem:
        response = self._send(
            "POST", LIST_PATH, token, json={"description": description}, doing="adding the item"
        )
        if response.status_code != 201:
            raise _failure(response, "adding the item")
        item = self._json(response, "adding the item")
        if not _is_item(item):
            raise _unexpected("adding the item")
        return dict(item)

    def remove_item(self, token: str, item_id: int) -> None:
        doing = "removing the item"
        response = self._send("DELETE", f"{LIST_PATH}/{item_id}", token, doing=doing)
        if response.status_code not in (200, 204):
            raise _failure(response, doing)

    def _send(self, method: str, path: str, token: str, *, doing: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            return self._client.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            log.warning("todo API timed out while %s: %s", doing, type(exc).__name__)
            raise TodoApiError(
                "The todo list service is taking too long to answer. Please try again.", 504
            ) from exc
        except httpx.HTTPError as exc:
            log.warning("todo API unreachable while %s: %s", doing, type(exc).__name__)
            raise TodoApiError(
                "The todo list service cannot be reached right now. Please try again in a moment.",
                503,
            ) from exc

    @staticmethod
    def _json(response: httpx.Response, doing: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise _unexpected(doing) from exc


def _is_item(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), int)
        and isinstance(value.get("description"), str)
    )


def _unexpected(doing: str) -> TodoApiError:
    log.warning("todo API sent an unexpected answer while %s", doing)
    return TodoApiError(
        f"The todo list service sent an answer this site does not understand while {doing}.", 502
    )
