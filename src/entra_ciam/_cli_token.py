"""``entra-ciam token inspect|validate``: read a token, and say exactly why it is refused.

The token itself is never printed back: only its length and a short fingerprint, so output can
be pasted into a bug report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from entra_ciam.errors import AuthError, ConfigError, MetadataUnavailableError

__all__ = ["add_parser", "describe_delta", "format_time"]

TIME_CLAIMS = ("exp", "nbf", "iat", "auth_time")
# Shown after a failed validation, to compare with the settings at a glance.
KEY_CLAIMS = ("iss", "aud", "tid", "ver", "azp", "appid", "idtyp", "scp", "roles", "exp", "nbf")

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = subparsers.add_parser(
        "token",
        help="inspect or validate an access token",
        description="Decode an access token, or validate it against an authority and audience.",
    )
    actions = token.add_subparsers(dest="token_command", metavar="ACTION")
    actions.required = True

    inspect = actions.add_parser(
        "inspect",
        help="print a token's header and claims without verifying it",
        description="Print the header and claims of TOKEN. Nothing is verified.",
    )
    inspect.add_argument("token", metavar="TOKEN", help="the token, or - to read it from stdin")
    inspect.add_argument("--json", action="store_true", help="print the header and claims as JSON")
    inspect.set_defaults(handler=_inspect)

    validate = actions.add_parser(
        "validate",
        help="validate a token and print the claims, or why it is refused",
        description=(
            "Validate TOKEN as an access token for AUDIENCE issued by AUTHORITY, fetching the "
            "tenant's metadata and keys. Exit status: 0 valid, 1 refused, 2 bad arguments, "
            "3 metadata or keys unavailable."
        ),
    )
    validate.add_argument("token", metavar="TOKEN", help="the token, or - to read it from stdin")
    validate.add_argument(
        "--authority",
        required=True,
        help="e.g. https://contoso.ciamlogin.com/<tenant-id>",
    )
    validate.add_argument(
        "--audience",
        required=True,
        action="append",
        help="the API's client id (repeat to accept several audiences)",
    )
    validate.add_argument(
        "--ca-bundle", metavar="PATH", help="CA certificates to trust instead of the system store"
    )
    validate.set_defaults(handler=_validate)


# -- handlers ---------------------------------------------------------------------------------


def _inspect(args: argparse.Namespace) -> int:
    out, err = sys.stdout, sys.stderr
    token = _read_token(args.token)
    if token is None:
        print("error: no token given (pass it as an argument, or - and pipe it in)", file=err)
        return EXIT_USAGE
    try:
        header, claims = decode_unverified(token)
    except ValueError as exc:
        print(f"error: cannot decode the token: {exc}", file=err)
        return EXIT_USAGE
    if args.json:
        json.dump({"header": header, "claims": claims}, out, indent=2, sort_keys=True)
        out.write("\n")
        return EXIT_OK
    print(f"Token: {fingerprint(token)}", file=out)
    print("NOT VERIFIED: decoded only; signature, issuer and audience were not checked.", file=out)
    _print_section("Header", header, out)
    _print_section("Claims", claims, out)
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    out, err = sys.stdout, sys.stderr
    token = _read_token(args.token)
    if token is None:
        print("error: no token given (pass it as an argument, or - and pipe it in)", file=err)
        return EXIT_USAGE
    from entra_ciam.validator import AccessTokenValidator

    audience = args.audience[0] if len(args.audience) == 1 else tuple(args.audience)
    try:
        validator = AccessTokenValidator(
            authority=args.authority,
            audience=audience,
            verify=args.ca_bundle if args.ca_bundle else True,
        )
    except (ConfigError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    try:
        claims = validator.validate(token)
    except MetadataUnavailableError as exc:
        # A local tool: the operator may see why (a client of an API never does).
        print(f"cannot validate: {exc.internal_detail or exc.description}", file=err)
        return EXIT_UNAVAILABLE
    except AuthError as exc:
        # What the token says, then why it is refused: the reason is the last line a person
        # reads, in a terminal and through ``2>&1`` alike (stdout is flushed before stderr).
        _print_unverified_summary(token, out)
        out.flush()
        print(f"invalid: {exc.description}", file=err)
        return EXIT_INVALID
    print(f"valid: {fingerprint(token)}", file=out)
    _print_section("Claims", claims.to_dict(), out)
    return EXIT_OK


# -- decoding and formatting --------------------------------------------------------------------


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, for display only; ValueError says what is wrong."""
    from entra_ciam.jose import b64url_decode

    parts = token.split(".")
    if len(parts) == 5:
        raise ValueError("it is an encrypted token (JWE, five parts); only its issuer can read it")
    if len(parts) != 3:
        raise ValueError(f"a signed token has three dot-separated parts, this one has {len(parts)}")
    decoded = []
    for segment, what in ((parts[0], "header"), (parts[1], "payload")):
        try:
            raw = b64url_decode(segment.encode("ascii"), what)
            value = json.loads(raw)
        except (AuthError, UnicodeError, ValueError) as exc:
            reason = exc.description if isinstance(exc, AuthError) else f"the {what} is not JSON"
            raise ValueError(reason) from None
        if not isinstance(value, dict):
            raise ValueError(f"the {what} is not a JSON object")
        decoded.append(value)
    return decoded[0], decoded[1]


def fingerprint(token: str) -> str:
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return f"{len(token)} characters, sha256 {digest}"


def format_time(value: float, now: float | None = None, *, claim: str = "") -> str:
    """``2024-05-01 12:00:00 UTC (expires in 42 minutes)``."""
    now = time.time() if now is None else now
    when = datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = value - now
    if claim == "exp":
        words = f"expires in {describe_delta(delta)}" if delta > 0 else None
        words = words or f"expired {describe_delta(-delta)} ago"
    elif claim == "nbf" and delta > 0:
        words = f"not valid for another {describe_delta(delta)}"
    else:
        words = f"in {describe_delta(delta)}" if delta > 0 else f"{describe_delta(-delta)} ago"
    return f"{when} ({words})"


def describe_delta(seconds: float) -> str:
    """A duration in the largest whole unit: ``42 minutes``, ``3 hours``, ``1 day``."""
    seconds = int(abs(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def _render(name: str, value: Any, now: float) -> str:
    if name in TIME_CLAIMS and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return format_time(value, now, claim=name)
        except (OverflowError, OSError, ValueError):
            pass
    if isinstance(value, str) and value.isprintable():
        return value
    # ensure_ascii keeps terminal escape sequences in a hostile token from reaching the screen.
    return json.dumps(value, ensure_ascii=True)


def _print_section(title: str, values: Mapping[str, Any], out: TextIO) -> None:
    now = time.time()
    print(f"{title}:", file=out)
    width = max((len(_render_key(k)) for k in values), default=0)
    for key in sorted(values):
        print(f"  {_render_key(key):<{width}}  {_render(key, values[key], now)}", file=out)


def _render_key(key: str) -> str:
    return key if key.isprintable() else json.dumps(key, ensure_ascii=True)


def _print_unverified_summary(token: str, out: TextIO) -> None:
    try:
        _header, claims = decode_unverified(token)
    except ValueError:
        return
    shown = {k: claims[k] for k in KEY_CLAIMS if k in claims}
    if shown:
        _print_section("What the token says (not verified)", shown, out)


def _read_token(arg: str, stdin: TextIO | None = None) -> str | None:
    text = (stdin or sys.stdin).read() if arg == "-" else arg
    text = text.strip()
    if text[:7].lower() == "bearer ":
        text = text[7:].strip()
    return text or None
