"""Run the todo web app: ``python -m examples.flask_todo [--host 127.0.0.1] [--port 3000]``.

Settings come from ``ENTRA_*`` variables and ``TODO_API_BASE_URL`` (see examples/README.md). As
in the seed's ``authConfig.js``, the redirect URI defaults to ``http://localhost:<port>/auth/redirect``
and the post-logout URI to ``http://localhost:<port>/``; sessions go to ``state/sessions.sqlite3``
unless ``ENTRA_SESSION_STORE`` says otherwise. A missing or placeholder value stops the
app at start with a message naming the variable.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from entra_ciam import ConfigError, EntraConfig

log = logging.getLogger("examples.flask_todo")

DEFAULT_SESSION_STORE = "sqlite:state/sessions.sqlite3"


class QuietHandler(WSGIRequestHandler):
    """Request logs with method, path and status only: a query string may carry a secret."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        log.info("%s %s %s", self.command, path, getattr(code, "value", code))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.flask_todo", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("TODO_WEB_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("TODO_WEB_PORT", "3000")))
    parser.add_argument(
        "--api",
        default=None,
        help="the todo API's base URL (TODO_API_BASE_URL; default http://127.0.0.1:5000)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    from examples.flask_todo.app import create_app

    defaults: dict[str, Any] = {}
    if not os.environ.get("ENTRA_REDIRECT_URI", "").strip():
        defaults["redirect_uri"] = f"http://localhost:{args.port}/auth/redirect"
    if not os.environ.get("ENTRA_POST_LOGOUT_REDIRECT_URI", "").strip():
        defaults["post_logout_redirect_uri"] = f"http://localhost:{args.port}/"
    if not os.environ.get("ENTRA_SESSION_STORE", "").strip():
        # Run by hand from a clone: sessions go to ./state/ (gitignored), apart from the demo's.
        defaults["session_store"] = DEFAULT_SESSION_STORE
    try:
        config = EntraConfig.from_env(**defaults)
        if config.session_store == DEFAULT_SESSION_STORE:
            os.makedirs("state", exist_ok=True)  # only once the settings are known to be good
        app = create_app(config, args.api)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2

    server = make_server(args.host, args.port, app, threaded=True, request_handler=QuietHandler)

    def _stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever, so it must run outside the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"todo web app on http://{args.host}:{server.port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
