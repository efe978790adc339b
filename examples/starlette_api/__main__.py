"""Run the todo API with uvicorn: ``python -m examples.starlette_api [--host] [--port] [--db]``.

Settings come from ``ENTRA_*`` variables (see examples/README.md); a missing or placeholder value
stops the server at start with a message naming it, instead of failing on the first request.
"""

from __future__ import annotations

import argparse
import os
import sys

from examples.starlette_api.storage import DEFAULT_DB_PATH

from entra_ciam import ConfigError, EntraConfig


def parse_arguments(
    prog: str, doc: str | None, argv: list[str] | None, servers: tuple[str, ...] = ("uvicorn",)
) -> argparse.Namespace:
    """The command line every todo API example takes; ``servers`` are its ``--server`` choices."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("--host", default=os.environ.get("TODO_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=os.environ.get("TODO_API_PORT", "5000"))
    parser.add_argument(
        "--db",
        default=os.environ.get("TODO_API_DB", DEFAULT_DB_PATH),
        help=f"SQLite file holding the items (TODO_API_DB; default {DEFAULT_DB_PATH}); created "
        "with its folder if missing",
    )
    parser.add_argument(
        "--server",
        choices=servers,
        default=os.environ.get("TODO_API_SERVER", "uvicorn"),
        help="uvicorn (ASGI, the default); runserver is Django's own WSGI server",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments("python -m examples.starlette_api", __doc__, argv)

    import uvicorn
    from examples.starlette_api.app import create_app

    try:
        app = create_app(EntraConfig.from_env(), db_path=args.db)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
