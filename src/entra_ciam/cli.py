"""The ``entra-ciam`` command: ``dev-idp``, ``demo`` and ``token inspect|validate``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from entra_ciam import __version__
from entra_ciam._extras import MissingExtraError

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entra-ciam",
        description="Microsoft Entra External ID for Python web apps and APIs.",
    )
    parser.add_argument("--version", action="version", version=f"entra-ciam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from entra_ciam import _cli_token

    _cli_token.add_parser(sub)
    for command, module in (("dev-idp", "entra_ciam.devidp.cli"), ("demo", "entra_ciam.demo")):
        try:
            importlib.import_module(module).add_parser(sub)
        except MissingExtraError as exc:
            _add_unavailable(sub, command, exc)
    return parser


def _add_unavailable(subparsers: Any, command: str, missing: MissingExtraError) -> None:
    """The command is listed, and running it says which extra to install (exit status 2)."""
    hint = f'needs: pip install "entra-ciam[{missing.extra}]"'
    # No option prefix: every argument (``--port 0``, ``-h``) is taken, and the answer is the hint.
    parser = subparsers.add_parser(command, help=f"({hint})", add_help=False, prefix_chars="\0")
    parser.add_argument("arguments", nargs="*")

    def report(args: argparse.Namespace) -> int:
        print(f"entra-ciam {command}: {missing}", file=sys.stderr)
        return 2

    parser.set_defaults(handler=report)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
