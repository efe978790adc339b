"""``entra-ciam dev-idp``: run the emulator in the foreground, rotate its keys, show its config.

The emulator prints its own development secrets on purpose: they exist only on this machine and
are what a newcomer needs to paste into an example's settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import ssl
import sys
import threading
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx

from entra_ciam.devidp import defaults
from entra_ciam.devidp.keys import KeyStore
from entra_ciam.devidp.provider import Clock
from entra_ciam.devidp.registrations import (
    ISSUER_FORMS,
    RegistrationError,
    Registrations,
    load_registrations,
)
from entra_ciam.devidp.server import DevIdp, DevIdpError, read_server_info
from entra_ciam.devidp.state import StateDir, StateError, default_state_dir

__all__ = ["add_parser", "main", "port_number"]

_MAX_PORT = 65535


def port_number(value: str) -> int:
    """argparse ``type=`` for a TCP port, 0 to 65535: every port option of ``dev-idp`` and
    ``demo`` uses it.

    ``type=int`` lets 99999 or -1 through to ``bind``, which fails with a traceback; this
    gives argparse's usage error (exit status 2) instead, as for ``--port abc``.
    """
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= _MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"invalid port {value!r}: a port is a whole number from 0 to {_MAX_PORT}"
        )
    return port


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dev-idp",
        help="run a local Entra External ID tenant (OpenID Connect provider) on 127.0.0.1",
        description=(
            "Run a local Microsoft Entra External ID tenant on loopback: discovery, token and "
            "keys over https (with a local CA), sign-in pages over http. Prints the authority, "
            "client ids, secrets and test users."
        ),
    )
    _add_serve_options(parser)
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="devidp_action", metavar="ACTION")
    rotate = actions.add_parser(
        "rotate-keys",
        help="publish a new signing key; the old one stays published for a grace period",
    )
    rotate.add_argument(
        "--state-dir", dest="rotate_state_dir", help="the running emulator's state folder"
    )
    rotate.add_argument(
        "--grace",
        type=int,
        default=None,
        metavar="SECONDS",
        help=f"how long the old key stays published (default {defaults.KEY_GRACE_PERIOD})",
    )
    rotate.set_defaults(handler=rotate_keys)
    token = actions.add_parser(
        "token",
        help="sign a user in to the running emulator (real auth code flow) and print the token",
        description=(
            "Run the authorization code flow against the running emulator as its web app would "
            "(MSAL, PKCE, the sign-in pages over HTTP) and print the user's access token alone "
            "on stdout: TOKEN=$(entra-ciam dev-idp token --user ada@example.com)."
        ),
    )
    token.add_argument("--user", required=True, help="the user's email address")
    token.add_argument(
        "--password",
        default=None,
        help="the user's password (default: the registrations file's; asked for otherwise)",
    )
    token.add_argument(
        "--scope",
        action="append",
        default=None,
        help=f"a scope to ask for, repeatable (default {_default_scope()})",
    )
    token.add_argument(
        "--client", default="web-app", help="the app registration that signs in (default web-app)"
    )
    token.add_argument(
        "--state-dir", dest="token_state_dir", help="the running emulator's state folder"
    )
    token.set_defaults(handler=print_user_token)
    example = actions.add_parser("example-config", help="print the built-in tenant as TOML")
    example.set_defaults(handler=print_example_config)
    return parser


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="registrations file (.toml or .json); default: built-in")
    parser.add_argument(
        "--host", default=defaults.DEFAULT_HOST, help="loopback address (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=defaults.DEFAULT_PORT,
        help=f"https port for discovery, token and keys (default {defaults.DEFAULT_PORT})",
    )
    parser.add_argument(
        "--pages-port",
        type=port_number,
        default=defaults.DEFAULT_PAGES_PORT,
        help=f"http port for the sign-in pages (default {defaults.DEFAULT_PAGES_PORT})",
    )
    parser.add_argument(
        "--state-dir",
        default=None,
        help=f"keys, local CA and signed-up users (default {default_state_dir()})",
    )
    parser.add_argument(
        "--test-mode",
        action="store_true",
        help="enable the test-only route GET /<tenant>/_test/otp (never for shared machines)",
    )
    parser.add_argument(
        "--one-time-refresh-tokens",
        action="store_true",
        help="make refresh tokens single use, a reuse revoking the sign-in (Entra allows reuse; "
        "same as [grants] refresh_token_reuse = false)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument(
        "--issuer",
        choices=ISSUER_FORMS,
        default=None,
        help="token issuer: 'ciamlogin' (Entra's https://<tenant-id>.ciamlogin.com/<tenant-id>/v2.0, "
        "the default) or 'loopback' (<authority>/v2.0); overrides [tenant] issuer",
    )
    parser.add_argument(
        "--strict-pkce",
        action="store_true",
        help="require PKCE from confidential clients too (Entra requires it of public ones only)",
    )
    parser.add_argument(
        "--strict-logout",
        action="store_true",
        help="accept as post_logout_redirect_uri only an app's post_logout_redirect_uris, not "
        "its redirect URIs (Entra accepts those)",
    )


# -- serve ------------------------------------------------------------------------------------


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        registrations = with_cli_options(load_registrations(args.config), args)
        idp = DevIdp(
            registrations,
            state_dir=args.state_dir or default_state_dir(),
            host=args.host,
            port=args.port,
            pages_port=args.pages_port,
            test_mode=args.test_mode,
            announce=lambda line: print(line, file=out, flush=True),
        )
        _configure_logging(quiet=args.quiet)
        idp.start()
    except (RegistrationError, DevIdpError, StateError) as exc:
        print(f"entra-ciam dev-idp: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    try:
        print(banner(idp), file=out, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        idp.stop()
        print("entra-ciam dev-idp: stopped.", file=out, flush=True)
    return 0


def with_cli_options(registrations: Registrations, args: argparse.Namespace) -> Registrations:
    """The registrations file's settings, overridden by the command line's."""
    tenant, strict = registrations.tenant, registrations.strict
    if getattr(args, "issuer", None):
        tenant = dataclasses.replace(tenant, issuer=args.issuer)
    if getattr(args, "strict_pkce", False):
        strict = dataclasses.replace(strict, pkce_for_confidential_clients=True)
    if getattr(args, "strict_logout", False):
        strict = dataclasses.replace(strict, post_logout_uris_listed_only=True)
    registrations = dataclasses.replace(registrations, tenant=tenant, strict=strict)
    if getattr(args, "one_time_refresh_tokens", False):
        registrations = registrations.with_one_time_refresh_tokens()
    return registrations


def banner(idp: DevIdp) -> str:
    regs = idp.registrations
    e = idp.endpoints
    lines = [
        f"entra-ciam dev-idp: local Entra External ID tenant '{regs.tenant.name}' is running.",
        "",
        f"  Authority       {e.authority}",
        f"  MSAL            oidc_authority={e.oidc_authority}",
        f"  Issuer          {e.issuer}",
        f"  Metadata        {e.metadata_url}",
        f"  Sign-in pages   {e.pages_base}/",
        f"  CA bundle       {idp.ca_bundle}",
        f"  State folder    {idp.state.path}",
        "  Refresh tokens  "
        + (
            "reusable until they expire, as in Entra"
            if regs.grants.refresh_token_reuse
            else "one-time: a reuse revokes the sign-in (--one-time-refresh-tokens)"
        ),
        "",
        "  Apps",
    ]
    for app in regs.apps:
        if app.client_id == defaults.GRAPH_CLIENT_ID:
            continue
        lines.append(f"    {app.name:<12} client id {app.client_id}")
        if app.client_secret:
            lines.append(f"    {'':<12} secret    {app.client_secret}")
        for uri in app.redirect_uris:
            lines.append(f"    {'':<12} redirect  {uri}")
        prefix = app.identifier_uris[0] if app.identifier_uris else app.client_id
        for scope in app.scopes:
            lines.append(f"    {'':<12} scope     {prefix}/{scope}")
        if app.app_roles:
            lines.append(f"    {'':<12} app roles {', '.join(app.app_roles)} (exposed)")
        for resource_id, roles in app.application.items():
            resource = regs.app(resource_id)
            name = resource.name if resource else resource_id
            lines.append(f"    {'':<12} granted   {', '.join(sorted(roles))} on {name}")
    lines += ["", "  Users"]
    for user in regs.users:
        lines.append(f"    {user.email:<22} password {user.password:<20} ({user.display_name})")
    web = next((a for a in regs.apps if a.redirect_uris and a.client_secret), None)
    api = next((a for a in regs.apps if a.scopes), None)
    lines += ["", "  Settings for the examples:"]
    lines.append(f"    export ENTRA_AUTHORITY={e.authority}")
    lines.append(f"    export ENTRA_CA_BUNDLE={idp.ca_bundle}")
    if web is not None:
        lines.append(f"    export ENTRA_CLIENT_ID={web.client_id}")
        lines.append(f"    export ENTRA_CLIENT_SECRET={web.client_secret}")
    if api is not None:
        lines.append(f"    export ENTRA_API_CLIENT_ID={api.client_id}")
    if idp.test_mode:
        lines += ["", "  Test mode: GET /<tenant>/_test/otp on the pages port returns passcodes."]
    lines += ["", "Press Ctrl-C to stop."]
    return "\n".join(lines)


def _configure_logging(*, quiet: bool) -> None:
    logger = logging.getLogger("entra_ciam.devidp")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s dev-idp %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


# -- rotate-keys ------------------------------------------------------------------------------


def rotate_keys(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Ask the running emulator to rotate; with none running, rotate the key file directly."""
    out = out or sys.stdout
    if args.grace is not None and args.grace < 0:
        print("entra-ciam dev-idp rotate-keys: --grace must be >= 0", file=sys.stderr)
        return 2
    folder = Path(args.rotate_state_dir or args.state_dir or default_state_dir()).expanduser()
    if not folder.is_dir():
        # StateDir would create it: a mistyped --state-dir would then "rotate" keys nobody uses
        # and report success while the emulator kept signing with its own.
        print(
            f"entra-ciam dev-idp rotate-keys: there is no state folder at {folder}; pass the "
            "--state-dir the emulator runs with",
            file=sys.stderr,
        )
        return 2
    try:
        state = StateDir(folder)
        info = read_server_info(state)
        if info is not None:
            result = _rotate_online(state, info, args.grace)
            if result is not None:
                print(_rotation_text(result, where=info.get("https_base", "")), file=out)
                return 0
            print(
                f"no emulator answers at {info.get('https_base')}; rotating the key file instead",
                file=out,
            )
        grace = defaults.KEY_GRACE_PERIOD if args.grace is None else args.grace
        store = KeyStore(state, clock=Clock(), grace_period=grace)
        rotation = store.rotate(grace)
        print(_rotation_text(rotation.to_json(), where=str(state.path)), file=out)
    except (StateError, ValueError) as exc:
        print(f"entra-ciam dev-idp rotate-keys: {exc}", file=sys.stderr)
        return 2
    return 0


def _rotate_online(state: StateDir, info: dict[str, Any], grace: int | None) -> Any:
    base, ca = info.get("https_base"), info.get("ca_bundle")
    if not isinstance(base, str) or not isinstance(ca, str):
        return None
    body = {} if grace is None else {"grace_period": grace}
    try:
        response = httpx.post(
            f"{base}/_devidp/admin/rotate-keys",
            json=body,
            headers={"Authorization": f"Bearer {state.admin_token()}"},
            verify=ssl.create_default_context(cafile=ca),
            timeout=10.0,
        )
    except (httpx.HTTPError, OSError):
        return None
    if response.status_code != 200:
        raise StateError(f"the emulator refused to rotate: HTTP {response.status_code}")
    return response.json()


def _rotation_text(result: dict[str, Any], *, where: str) -> str:
    retiring = ", ".join(result.get("retiring", [])) or "none"
    return (
        f"signing keys rotated at {where}\n"
        f"  now signing with  {result['kid']} (published since the previous rotation)\n"
        f"  published next    {result['next_kid']}\n"
        f"  retiring          {retiring}, published until unix time {result['remove_after']:.0f}"
    )


# -- token ------------------------------------------------------------------------------------


def _default_scope() -> str:
    return f"{defaults.TODO_API_IDENTIFIER_URI}/Todolist.Read"


def print_user_token(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    from entra_ciam.devidp.usertoken import run_token  # MSAL only for this command

    if not args.scope:
        args.scope = [_default_scope()]
    try:
        registrations = load_registrations(args.config)
        state = StateDir(args.token_state_dir or args.state_dir or default_state_dir())
    except (RegistrationError, StateError) as exc:
        print(f"entra-ciam dev-idp token: {exc}", file=sys.stderr)
        return 2
    return run_token(args, registrations, state, out=out)


# -- example-config ---------------------------------------------------------------------------


def example_config_text() -> str:
    return resources.files("entra_ciam.devidp").joinpath("example-config.toml").read_text("utf-8")


def print_example_config(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    print(example_config_text(), file=out or sys.stdout, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m entra_ciam.devidp``: the same command without the ``entra-ciam`` wrapper."""
    parser = argparse.ArgumentParser(prog="entra-ciam")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_parser(sub)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result
