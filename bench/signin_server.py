"""A page behind sign-in, served for a load benchmark in a process of its own.

Every app has the same ``GET /page`` that does nothing but greet the signed-in user by name; what
differs is who decides that the user is signed in:

- ``flask-plain`` / ``starlette-plain``: nobody (no auth), the ceiling;
- ``flask-ours`` / ``starlette-ours``: ``SignInMiddleware`` and ``login_required``, with the
  session store ``--store`` (``memory``, ``sqlite`` or ``redis``);
- ``flask-identity``: Microsoft's ``identity.flask.Auth`` as its samples set it up, with its own
  session handling (Flask-Session, ``SESSION_TYPE = "filesystem"``) and ``@auth.login_required``;
- ``flask-authlib``: Authlib's Flask client with Flask's own (signed cookie) session, the user
  kept as its documentation shows (``session["user"] = token["userinfo"]``).

Flask apps run on gunicorn (one worker, ``gthread``), Starlette apps on uvicorn (one process), so
every contender has one process. Sign-in is real: the harness (bench/signin_load.py) signs a
user in through the emulator before measuring. Settings come from ``ENTRA_*`` variables; the
listening socket is inherited (``--fd``). Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from entra_ciam import EntraConfig

PAGE = "/page"
FLASK_APPS = ("flask-plain", "flask-ours", "flask-identity", "flask-authlib")
STARLETTE_APPS = ("starlette-plain", "starlette-ours")
APPS = FLASK_APPS + STARLETTE_APPS
THREADS = 8  # gunicorn gthread worker threads
PLAIN_USER = "Ada Lovelace"  # whom the pages without auth greet: the emulator's first user


def greeting(name: object) -> str:
    return f"hello {name}"


def _store(kind: str, workdir: Path) -> Any:
    from entra_ciam.sessions import from_url

    if kind == "memory":
        return from_url("memory://")
    if kind == "sqlite":
        return from_url(f"sqlite:///{workdir / 'sessions.db'}")
    if kind == "redis":
        prefix = os.environ["BENCH_REDIS_PREFIX"]
        return from_url(f"redis://127.0.0.1:6379/0?prefix={prefix}")
    raise SystemExit(f"unknown store {kind!r}")


def flask_app(kind: str, store: str, workdir: Path) -> Any:
    from flask import Flask, redirect, session

    app = Flask(__name__)
    config = EntraConfig.from_env()
    if kind == "flask-plain":

        @app.get(PAGE)
        def plain_page() -> str:
            return greeting(PLAIN_USER)

    elif kind == "flask-ours":
        from entra_ciam import current_user, login_required
        from entra_ciam.wsgi import SignInMiddleware

        @app.get(PAGE)
        @login_required
        def our_page() -> str:
            user = current_user()
            assert user is not None
            return greeting(user["name"])

        app.wsgi_app = SignInMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, config, store=_store(store, workdir)
        )
    elif kind == "flask-identity":
        from identity.flask import Auth

        # What identity's Flask sample (app_config.py) sets: server-side sessions in files.
        app.config["SESSION_TYPE"] = "filesystem"
        app.config["SESSION_FILE_DIR"] = str(workdir / "flask-session")
        auth = Auth(
            app,
            oidc_authority=config.oidc_authority,
            client_id=config.client_id,
            client_credential=config.client_secret,
            redirect_uri=config.redirect_uri,
        )

        @app.get(PAGE)
        @auth.login_required
        def identity_page(*, context: dict[str, Any]) -> str:
            return greeting(context["user"]["name"])

    elif kind == "flask-authlib":
        from authlib.integrations.flask_client import OAuth

        app.secret_key = os.urandom(32)
        oauth = OAuth(app)
        oauth.register(
            "entra",
            client_id=config.client_id,
            client_secret=config.client_secret,
            server_metadata_url=config.metadata_url,
            client_kwargs={
                "scope": "openid profile offline_access",
                "code_challenge_method": "S256",
            },
        )

        @app.get("/auth/signin")
        def authlib_signin() -> Any:
            return oauth.entra.authorize_redirect(config.redirect_uri)

        @app.get("/auth/redirect")
        def authlib_redirect() -> Any:
            token = oauth.entra.authorize_access_token()
            session["user"] = token["userinfo"]
            return redirect(PAGE)

        @app.get(PAGE)
        def authlib_page() -> Any:
            user = session.get("user")
            if not user:
                return redirect("/auth/signin")
            return greeting(user["name"])

    else:
        raise SystemExit(f"unknown app {kind!r}")
    return app


def starlette_app(kind: str, store: str, workdir: Path) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    if kind == "starlette-plain":

        async def plain_page(request: Request) -> PlainTextResponse:
            return PlainTextResponse(greeting(PLAIN_USER))

        return Starlette(routes=[Route(PAGE, plain_page)])

    from entra_ciam import current_user, login_required
    from entra_ciam.asgi import SignInMiddleware

    @login_required
    async def our_page(request: Request) -> PlainTextResponse:
        user = current_user()
        assert user is not None
        return PlainTextResponse(greeting(user["name"]))

    app = Starlette(routes=[Route(PAGE, our_page)])
    return SignInMiddleware(app, EntraConfig.from_env(), store=_store(store, workdir))


def serve_flask(app: Any, fd: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": [f"fd://{fd}"],
                "workers": 1,
                "worker_class": "gthread",
                "threads": THREADS,
                "keepalive": 30,
                "loglevel": "warning",
                "accesslog": None,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()


def serve_starlette(app: Any, fd: int) -> None:
    import uvicorn

    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=APPS, required=True)
    parser.add_argument("--store", choices=["memory", "sqlite", "redis"], default="memory")
    parser.add_argument("--fd", type=int, required=True, help="an inherited listening socket")
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    if args.app in FLASK_APPS:
        serve_flask(flask_app(args.app, args.store, args.workdir), args.fd)
    else:
        serve_starlette(starlette_app(args.app, args.store, args.workdir), args.fd)


if __name__ == "__main__":
    main()
