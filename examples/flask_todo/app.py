"""The web app of Microsoft's "sign in users and call an API" sample, in Flask.

People sign in with Entra External ID (``SignInMiddleware``), see their ID token claims, and keep
a todo list held by the todo API (``examples/starlette_api``). Tokens are asked for one scope at a
time, when a page needs them: ``Todolist.Read`` to show the list, ``Todolist.ReadWrite`` only
when something changes (incremental consent). When Entra needs the person again, the library
answers with the sign-in redirect by itself; the views just let it happen.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from examples.flask_todo.csrf import FIELD, CsrfError, CsrfProtection
from examples.flask_todo.todo_api import LIST_PATH, TodoApi, TodoApiError, TodoItem
from flask import Flask, Response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from entra_ciam import (
    ConfigError,
    EntraConfig,
    TokenAcquisitionError,
    current_user,
    is_loopback_url,
    login_required,
    require_secure_url,
)
from entra_ciam.wsgi import SignInMiddleware

__all__ = ["DEFAULT_API_BASE_URL", "create_app"]

log = logging.getLogger("examples.flask_todo")

DEFAULT_API_BASE_URL = "http://127.0.0.1:5000"
MAX_DESCRIPTION = 500  # what the API accepts; the form says so before the API has to

# Our pages load nothing from elsewhere and run no script.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-origin keeps the Origin header on our own forms (the CSRF check reads it).
    "Referrer-Policy": "same-origin",
}

# Short explanations for the profile page's claims table.
CLAIM_NOTES = {
    "aio": "internal to Entra",
    "aud": "audience: this web app's client id",
    "auth_time": "when you entered your credentials",
    "email": "your email address",
    "exp": "when this ID token expires",
    "iat": "when this ID token was issued",
    "iss": "issuer: your tenant",
    "login_hint": "lets sign-out name your account",
    "name": "your display name",
    "nbf": "not valid before",
    "oid": "your object id: the same in every app of the tenant (the todo API keys items on it)",
    "preferred_username": "the name you sign in with",
    "rh": "internal to Entra",
    "sid": "your sign-in session at Entra",
    "sub": "your id for this app only",
    "tid": "the tenant id",
    "uti": "internal to Entra: this token's id",
    "ver": "token version",
}
_TIME_CLAIMS = {"auth_time", "exp", "iat", "nbf"}


def _api_base(url: str) -> str:
    """The API's root URL; the seed's full list endpoint (``.../api/todolist``) is accepted too."""
    url = url.strip().rstrip("/")
    if url.endswith(LIST_PATH):
        url = url[: -len(LIST_PATH)]
    # The access token goes with every call: never over plain http to another machine.
    return require_secure_url(url, "TODO_API_BASE_URL")


def _loopback_origin(url: str | None) -> str | None:
    """``scheme://host:port`` of a loopback URL, or None for any other host."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if is_loopback_url(url) else None


def _scopes(config: EntraConfig) -> tuple[str, str]:
    config.require("api_client_id", purpose="Calling the todo API (examples/flask_todo)")
    prefix = f"api://{config.api_client_id}"
    return f"{prefix}/Todolist.Read", f"{prefix}/Todolist.ReadWrite"


def _claim_rows(user: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name in sorted(user):
        value = user[name]
        shown = value if isinstance(value, str) else repr(value)
        if name in _TIME_CLAIMS and isinstance(value, int | float):
            when = datetime.datetime.fromtimestamp(value, datetime.UTC)
            shown = f"{value} ({when:%Y-%m-%d %H:%M:%S} UTC)"
        rows.append((name, shown, CLAIM_NOTES.get(name, "")))
    return rows


def create_app(
    config: EntraConfig | None = None,
    api_base_url: str | None = None,
    **signin_options: Any,
) -> Flask:
    """The web app for ``config`` (``ENTRA_*`` variables when None), calling the API at
    ``api_base_url`` (``TODO_API_BASE_URL``, default http://127.0.0.1:5000).

    ``signin_options`` go to ``SignInMiddleware`` (``store``, ``idle_timeout``...).
    """
    config = config if config is not None else EntraConfig.from_env()
    read_scope, write_scope = _scopes(config)
    config.require("session_secret", purpose="Protecting the todo forms (examples/flask_todo)")
    assert config.session_secret is not None
    try:
        base = _api_base(
            api_base_url or os.environ.get("TODO_API_BASE_URL") or DEFAULT_API_BASE_URL
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    middleware = SignInMiddleware(app.wsgi_app, config, **signin_options)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    acquirer = middleware.acquirer
    api = TodoApi(base, verify=config.verify)
    csrf = CsrfProtection(config.session_secret)
    app.extensions["todo_api"] = api

    @app.context_processor
    def page_globals() -> dict[str, Any]:
        user = current_user()
        return {
            "user": user,
            "csrf_field": FIELD,
            "csrf_token": csrf.token_for(user) if user is not None else "",
            "max_description": MAX_DESCRIPTION,
        }

    canonical = _loopback_origin(config.redirect_uri)

    @app.before_request
    def one_loopback_name() -> Any:
        # Cookies belong to a host name: a sign-in started on http://localhost:3000 cannot finish
        # on http://127.0.0.1:3000. Locally, send visitors to the name the redirect URI uses.
        if canonical is None or request.method not in ("GET", "HEAD"):
            return None
        origin = _loopback_origin(request.host_url)
        if origin is not None and origin != canonical:
            return redirect(canonical + request.full_path.rstrip("?"), 307)
        return None

    @app.before_request
    def refuse_forged_forms() -> Any:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        user = current_user()
        if user is None:
            return None  # nobody to act for: login_required sends them to sign in first
        try:
            csrf.check(
                user,
                request.form.get(FIELD),
                origin=request.headers.get("Origin"),
                host_url=request.host_url,
                fetch_site=request.headers.get("Sec-Fetch-Site"),
            )
        except CsrfError as exc:
            log.warning("refused a form: %s", exc)
            return _error_page(
                400,
                "This form could not be accepted",
                f"For your safety nothing was changed: {exc}. Reload the page and try again.",
            )
        return None

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            # Every page shows personal data or depends on who is signed in.
            response.headers["Cache-Control"] = "no-store"
            response.vary.add("Cookie")
        return response

    # -- pages ------------------------------------------------------------------------------

    @app.get("/")
    def home() -> str:
        return render_template("home.html")

    @app.get("/profile")
    @login_required
    def profile() -> str:
        user = current_user()
        assert user is not None
        return render_template("profile.html", rows=_claim_rows(user))

    @app.get("/todos")
    @login_required
    def todos() -> Any:
        token = acquirer.acquire_token_for_user(read_scope)
        try:
            items = api.list_items(token)
        except TodoApiError as exc:
            return _todos_page([], error=exc.message, status=exc.status, unavailable=True)
        return _todos_page(items)

    @app.post("/todos")
    @login_required
    def add_todo() -> Any:
        description = request.form.get("description", "")
        token = acquirer.acquire_token_for_user(write_scope)
        try:
            api.add_item(token, description)
        except TodoApiError as exc:
            return _todos_after_error(token, exc, description)
        return redirect(url_for("todos"), 303)

    @app.post("/todos/<int:item_id>/remove")
    @login_required
    def remove_todo(item_id: int) -> Any:
        token = acquirer.acquire_token_for_user(write_scope)
        try:
            api.remove_item(token, item_id)
        except TodoApiError as exc:
            return _todos_after_error(token, exc)
        return redirect(url_for("todos"), 303)

    @app.get("/todos/<int:item_id>/remove")
    def remove_todo_page(item_id: int) -> Any:
        # Where a sign-in started by the POST above comes back to: show the list again.
        return redirect(url_for("todos"), 303)

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    # -- errors -----------------------------------------------------------------------------

    @app.errorhandler(TokenAcquisitionError)
    def token_unavailable(exc: TokenAcquisitionError) -> Any:
        log.warning("no access token for the todo API: %s", exc.error)
        status = exc.status_code if 400 <= exc.status_code < 600 else 502
        return _error_page(
            status,
            "Your todo list is out of reach",
            "This site could not get permission to open your todo list from Microsoft Entra "
            "right now. Please try again in a moment.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code is None:  # the library's sign-in redirect: already a response
            return exc
        titles = {404: "Page not found", 405: "Not allowed here", 413: "Too much data"}
        return _error_page(
            exc.code,
            titles.get(exc.code, "Something went wrong"),
            exc.description or "The request could not be handled.",
        )

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.error("unexpected %s in %s", type(exc).__name__, request.path)
        return _error_page(
            500,
            "Something went wrong",
            "An unexpected problem stopped this page. It has been logged; please try again.",
        )

    def _todos_after_error(token: str, exc: TodoApiError, description: str = "") -> Any:
        """The list again, with what went wrong above it and the person's text kept."""
        try:
            items = api.list_items(token)
        except TodoApiError:
            return _todos_page([], error=exc.message, status=exc.status, unavailable=True)
        return _todos_page(items, error=exc.message, status=exc.status, description=description)

    return app


def _todos_page(
    items: list[TodoItem],
    *,
    error: str | None = None,
    status: int = 200,
    description: str = "",
    unavailable: bool = False,
) -> tuple[str, int]:
    page = render_template(
        "todos.html",
        items=items,
        error=error,
        description=description,
        unavailable=unavailable,
    )
    return page, status


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message), status
