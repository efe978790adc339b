"""The web app of the refresh-burst runs (issue 13), in Flask and in Starlette.

Routes: ``/token`` gets a token for the todo API's ``Todolist.Read`` for the signed-in user and
answers with a digest of it (never the token), or the app's 503 page when Entra is unavailable;
``/me`` says who is signed in; ``/_stats`` says how many refresh-token redemptions MSAL attempted
in this process (counted around MSAL's own call, those it gave up before sending left out; for the
table only: tests count at the emulator);
``/healthz``. Run as a process: ``python -m tests.support.burst_app --port N`` with ``ENTRA_*``
settings (Flask on Werkzeug's threaded server, as in production).
"""

from __future__ import annotations

import argparse
import hashlib
import threading
from typing import Any

from entra_ciam import EntraConfig, TokenAcquirer, TokenAcquisitionError, current_user
from entra_ciam.devidp import defaults

__all__ = ["READ", "flask_app", "refresh_attempts", "starlette_app", "token_digest"]

READ = f"{defaults.TODO_API_IDENTIFIER_URI}/Todolist.Read"


class _Attempts:
    """How many times MSAL asked the token endpoint to redeem a refresh token, in this process."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        from msal.oauth2cli import oauth2

        with self._lock:
            if self._installed:
                return
            self._installed = True
        original = oauth2.Client.obtain_token_by_refresh_token
        try:  # the library's look into MSAL's cache with the network closed: nothing is sent
            from entra_ciam.signin.throttle import NetworkNeeded as not_sent
        except ImportError:  # the library before issue 13 never does that
            not_sent = type("NeverRaised", (Exception,), {})

        def counted(client: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                result = original(client, *args, **kwargs)
            except not_sent:
                raise
            except BaseException:
                self._add()  # sent, and failed
                raise
            self._add()
            return result

        oauth2.Client.obtain_token_by_refresh_token = counted  # type: ignore[method-assign]

    def _add(self) -> None:
        with self._lock:
            self.count += 1

    def take(self) -> int:
        """The count so far, starting again from zero."""
        with self._lock:
            count, self.count = self.count, 0
        return count


refresh_attempts = _Attempts()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _unavailable(exc: TokenAcquisitionError) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    return {"error": "unavailable", "status": exc.status_code}, exc.status_code, headers


def _acquirer(retry_after_limit: float) -> TokenAcquirer:
    # Without the option the app is the one that measured the "before" figures (no such option).
    if retry_after_limit:
        return TokenAcquirer(retry_after_limit=retry_after_limit)
    return TokenAcquirer()


def flask_app(config: EntraConfig, *, retry_after_limit: float = 0.0) -> Any:
    from flask import Flask, jsonify

    from entra_ciam.wsgi import SignInMiddleware

    refresh_attempts.install()
    app = Flask("refresh-burst")
    acquirer = _acquirer(retry_after_limit)

    @app.get("/token")
    def token() -> Any:
        try:
            value = acquirer.acquire_token_for_user([READ])
        except TokenAcquisitionError as exc:
            body, status, headers = _unavailable(exc)
            return jsonify(body), status, headers
        return jsonify(token=token_digest(value))

    @app.get("/me")
    def me() -> Any:
        user = current_user()
        return jsonify(user=user.get("oid") if user else None)

    @app.get("/_stats")
    def stats() -> Any:
        return jsonify(refresh_attempts=refresh_attempts.take())

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    app.wsgi_app = SignInMiddleware(app.wsgi_app, config)  # type: ignore[method-assign]
    return app


def starlette_app(config: EntraConfig, *, retry_after_limit: float = 0.0) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from entra_ciam.asgi import SignInMiddleware

    refresh_attempts.install()
    acquirer = _acquirer(retry_after_limit)

    async def token(request: Request) -> JSONResponse:
        try:
            value = await acquirer.acquire_token_for_user_async([READ])
        except TokenAcquisitionError as exc:
            body, status, headers = _unavailable(exc)
            return JSONResponse(body, status, headers)
        return JSONResponse({"token": token_digest(value)})

    async def me(request: Request) -> JSONResponse:
        user = current_user()
        return JSONResponse({"user": user.get("oid") if user else None})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"refresh_attempts": refresh_attempts.take()})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/token", token),
        Route("/me", me),
        Route("/_stats", stats),
        Route("/healthz", healthz),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SignInMiddleware, config=config)])


def main(argv: list[str] | None = None) -> int:
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(prog="python -m tests.support.burst_app")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = make_server("127.0.0.1", args.port, flask_app(EntraConfig.from_env()), threaded=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
