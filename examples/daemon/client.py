"""The todo API seen from a daemon: no user, an app-only token with the API's app permissions.

Client credentials cannot ask for individual permissions: the app requests
``api://<api-client-id>/.default`` and gets every application permission an admin granted it
(``Todolist.ReadWrite.All`` here), which the token carries in ``roles``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

from entra_ciam import TokenAcquirer

__all__ = ["ApiError", "AppTokenAuth", "TodoApiClient", "api_scope"]


def api_scope(api_client_id: str) -> str:
    """The only scope form client credentials accept: the API's ``.default``."""
    return f"api://{api_client_id}/.default"


class AppTokenAuth(httpx.Auth):
    """Adds a fresh app token to each request; MSAL reuses a cached one until it nears expiry."""

    def __init__(self, acquirer: TokenAcquirer, scope: str) -> None:
        self.acquirer = acquirer
        self.scope = scope

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.acquirer.acquire_token_for_app(self.scope)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class ApiError(Exception):
    """The API refused; ``str(exc)`` carries its status and reason, never the token."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        reason = ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            reason = str(body.get("error_description") or body.get("error") or "")
        super().__init__(
            f"the todo API answered {response.status_code}: {reason or response.reason_phrase}"
        )


class TodoApiClient:
    """List and add todo items for any user of the tenant, as the daemon app."""

    def __init__(
        self, base_url: str, acquirer: TokenAcquirer, api_client_id: str, *, timeout: float = 10
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            auth=AppTokenAuth(acquirer, api_scope(api_client_id)),
            timeout=timeout,
            follow_redirects=False,
        )

    def __enter__(self) -> TodoApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def list_items(self, owner: str | None = None) -> list[dict[str, Any]]:
        """Every item, or one user's when ``owner`` (an oid) is given."""
        params = {"owner": owner} if owner else None
        response = self._http.get("/api/todolist", params=params)
        if response.status_code != 200:
            raise ApiError(response)
        items: list[dict[str, Any]] = response.json()
        return items

    def add_item(self, owner: str, description: str) -> dict[str, Any]:
        """Add an item to ``owner``'s list: an app must always say whose list it writes to."""
        response = self._http.post(
            "/api/todolist", json={"owner": owner, "description": description}
        )
        if response.status_code != 201:
            raise ApiError(response)
        item: dict[str, Any] = response.json()
        return item
