"""The whole scenario of issue 5 inside one test process: emulator, todo API, Flask web app.

Started in the order their URLs depend on: the web app's server first (its port goes into the
emulator's redirect URIs), then the emulator, then the API, and only then the web app itself.
Everything listens on free loopback ports and stops when the block ends.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from entra_ciam import EntraConfig
from entra_ciam.devidp import DevIdp, defaults
from entra_ciam.devidp.testing import running_devidp
from entra_ciam.sessions import MemoryStore
from tests.support.todo_api import serving
from tests.support.webapps import AppBrowser, LateWSGI, serving_wsgi

ADA = defaults.USERS[0]
ALAN = defaults.USERS[1]
CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


class ScopeRecorder:
    """Wraps the API to note which delegated scopes each call's access token carried.

    The payload is only read here, not checked: the API's own validator does that.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[tuple[str, str, str]] = []  # (method, path, scp)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
            self.calls.append((scope["method"], scope["path"], _scp(token)))
        await self.app(scope, receive, send)


def _scp(token: str) -> str:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return ""
    return str(claims.get("scp", "")) if isinstance(claims, dict) else ""


@dataclasses.dataclass
class TodoStack:
    idp: DevIdp
    web: str  # the web app's base URL
    api: str  # the todo API's base URL
    web_config: EntraConfig
    late: LateWSGI
    recorder: ScopeRecorder
    store: MemoryStore  # the web app's sessions: an app built on it again keeps them

    @property
    def base(self) -> str:
        """The web app's base URL, under the name tests.support.webapps.AppBrowser reads."""
        return self.web

    def otp_url(self, email: str) -> str:
        """The emulator's test-mode mailbox: the last passcode sent to ``email``."""
        return f"{self.idp.pages_url}/{defaults.TENANT_ID}/_test/otp?email={email}"


def web_config(idp: DevIdp, web: str, **overrides: Any) -> EntraConfig:
    settings: dict[str, Any] = {
        "redirect_uri": f"{web}/auth/redirect",
        "post_logout_redirect_uri": f"{web}/",
        "session_secret": Fernet.generate_key().decode(),
        "session_store": "memory://",
    }
    settings.update(overrides)
    return idp.entra_config("web-app", **settings)


def config_env(config: EntraConfig) -> dict[str, str]:
    """The ``ENTRA_*`` variables from which ``EntraConfig.from_env()`` reads ``config`` back."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return {
        f"ENTRA_{name.upper()}": value
        for name, value in values.items()
        if not name.startswith("_") and isinstance(value, str)
    }


# -- reading the todo pages -----------------------------------------------------------------------


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token the page's forms carry."""
    match = CSRF_RE.search(page.text)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def add(
    b: AppBrowser, description: str, token: str | None = None, **headers: str
) -> httpx.Response:
    """Submit the todo page's Add form (with its CSRF token unless ``token`` is given)."""
    token = token if token is not None else csrf_of(b.get("/todos"))
    return b.client.post(
        f"{b.stack.base}/todos",
        data={"description": description, "csrf_token": token},
        headers=headers,
    )


def descriptions(page: httpx.Response) -> list[str]:
    """The items on the todo list page, in order."""
    found = re.findall(r'<span class="description">([^<]*)</span>', page.text)
    return [html.unescape(text) for text in found]


def item_ids(page: httpx.Response) -> dict[str, int]:
    """Each item's description and the id its remove form names."""
    found = re.findall(
        r'<span class="description">([^<]*)</span>\s*<form method="post" '
        r'action="/todos/(\d+)/remove">',
        page.text,
    )
    return {html.unescape(text): int(item_id) for text, item_id in found}


@contextlib.contextmanager
def todo_stack(
    tmp: Path, *, api_base_url: str | None = None, api: str = "starlette"
) -> Iterator[TodoStack]:
    """Emulator + todo API + Flask todo web app; ``api_base_url`` overrides where the app calls.

    ``api`` picks the todo API example: ``"starlette"`` or ``"django"`` (same contract).
    """
    from examples.flask_todo import create_app

    if api == "django":
        from examples.django_api import create_app as create_api
    else:
        from examples.starlette_api import create_app as create_api

    late = LateWSGI()
    with (
        serving_wsgi(late) as web,
        running_devidp(
            extra_redirect_uris=[f"{web}/auth/redirect"],
            extra_post_logout_redirect_uris=[f"{web}/"],
        ) as idp,
    ):
        api_config = EntraConfig(
            authority=idp.authority,
            api_client_id=defaults.TODO_API_CLIENT_ID,
            ca_bundle=idp.ca_bundle,
        )
        recorder = ScopeRecorder(create_api(api_config, tmp / "todo.sqlite3"))
        with serving(recorder) as api:
            config = web_config(idp, web)
            store = MemoryStore()
            late.app = create_app(config, api_base_url=api_base_url or api, store=store)
            yield TodoStack(idp, web, api, config, late, recorder, store)
