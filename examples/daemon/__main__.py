"""``python -m examples.daemon``: list a user's todo items, and add some, as an app.

Settings come from ``ENTRA_*`` variables (the daemon's own registration, plus the API's client
id); ``TODO_API_URL`` says where the API listens. See examples/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import httpx
from examples.daemon.client import ApiError, TodoApiClient

from entra_ciam import ConfigError, EntraConfig, TokenAcquirer, TokenAcquisitionError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.daemon", description=__doc__)
    parser.add_argument(
        "--api-url",
        default=os.environ.get("TODO_API_URL", "http://127.0.0.1:5000"),
        help="where the todo API listens (TODO_API_URL)",
    )
    parser.add_argument("--owner", help="the user's object id (oid); without it, every item")
    parser.add_argument(
        "--add", action="append", default=[], metavar="TEXT", help="add an item (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.add and not args.owner:
        parser.error("--add needs --owner: an app must say whose list it adds to")

    try:
        config = EntraConfig.from_env()
        config.require("client_id", "client_secret", "api_client_id", purpose="The daemon")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    assert config.api_client_id is not None

    try:
        with TodoApiClient(args.api_url, TokenAcquirer(config), config.api_client_id) as api:
            for text in args.add:
                item = api.add_item(args.owner, text)
                print(f"added #{item['id']} for {item['owner']}: {item['description']}")
            items = api.list_items(args.owner)
    except TokenAcquisitionError as exc:
        print(f"could not get an app token: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(exc, file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        print(f"cannot reach the todo API at {args.api_url}: {type(exc).__name__}", file=sys.stderr)
        return 1
    whose = f"user {args.owner}" if args.owner else "every user"
    print(f"{len(items)} item(s) for {whose}:")
    for item in items:
        print(f"  #{item['id']} [{item['owner']}] {item['description']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
