"""The ``entra-ciam`` command: ``dev-idp``, ``demo`` and ``token inspect|validate``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entra-ciam",
        description="Microsoft Entra External ID for Python web apps and APIs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from entra_ciam import _cli_token

    _cli_token.add_parser(sub)
    try:
        from entra_ciam.devidp import cli as devidp_cli
    except ImportError:  # pragma: no cover - during development only
        pass
    else:
        devidp_cli.add_parser(sub)
    from entra_ciam import demo

    demo.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
