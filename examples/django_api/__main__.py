"""Run the todo API: ``python -m examples.django_api [--host] [--port] [--db] [--server]``.

Settings come from ``ENTRA_*`` variables (see examples/README.md); a missing or placeholder value
stops the server at start with a message naming it (Django checks them when it starts).
"""

from __future__ import annotations

import os
import sys

from examples.starlette_api.__main__ import parse_arguments


def main(argv: list[str] | None = None) -> int:
    prog = "python -m examples.django_api"
    args = parse_arguments(prog, __doc__, argv, servers=("uvicorn", "runserver"))
    os.environ["TODO_API_DB"] = args.db
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_api.settings")
    if args.server == "runserver":
        # In this process, not a child: a child would outlive a SIGTERM sent to this one (a
        # supervisor's stop), still serving on the port.
        from django.core.management import execute_from_command_line

        execute_from_command_line([prog, "runserver", "--noreload", f"{args.host}:{args.port}"])
        return 0

    import uvicorn
    from django.core.exceptions import ImproperlyConfigured

    try:
        from examples.django_api.asgi import application
    except ImproperlyConfigured as exc:
        print(exc, file=sys.stderr)
        return 2
    uvicorn.run(application, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
