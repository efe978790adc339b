"""``entra-ciam dev-idp token``: a user's access token from the running emulator, no browser.

It runs the real authorization code flow, as a web app would: MSAL builds the request (PKCE,
nonce, state), the emulator's sign-in pages are filled in over HTTP, and MSAL redeems the code.
Only the token goes to stdout, so ``TOKEN=$(entra-ciam dev-idp token --user ...)`` and then
``curl -H "Authorization: Bearer $TOKEN" ...`` try an API by hand.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any, TextIO

import msal

from entra_ciam.devidp.registrations import AppRegistration, Registrations
from entra_ciam.devidp.server import read_server_info
from entra_ciam.devidp.state import StateDir
from entra_ciam.devidp.testing import Browser, SignInError
from entra_ciam.http import MsalHttpClient

__all__ = ["UserTokenError", "user_token"]


class UserTokenError(RuntimeError):
    """The token could not be had; the message says why and what to do."""


def _client(registrations: Registrations, name: str) -> AppRegistration:
    try:
        app = registrations.app_named(name)
    except KeyError:
        names = ", ".join(a.name for a in registrations.apps if a.redirect_uris)
        raise UserTokenError(
            f"no app registration named {name!r} (apps that sign in: {names})"
        ) from None
    if not app.redirect_uris or not app.client_secret:
        raise UserTokenError(
            f"{name!r} is not a web app with a secret and a redirect URI; pass --client web-app"
        )
    return app


def user_token(
    state: StateDir,
    registrations: Registrations,
    *,
    user: str,
    password: str,
    scopes: list[str],
    client_name: str = "web-app",
) -> dict[str, Any]:
    """Sign ``user`` in to the emulator running on ``state`` and return MSAL's token response."""
    info = read_server_info(state)
    authority, ca = (info or {}).get("authority"), (info or {}).get("ca_bundle")
    if not isinstance(authority, str) or not isinstance(ca, str):
        demo = Path.cwd() / ".entra-ciam" / "dev-idp"
        hint = (
            f"; the demo's emulator uses --state-dir {demo}"
            if demo != state.path and (demo / "server.json").is_file()
            else ""
        )
        raise UserTokenError(
            f"no emulator is running with the state folder {state.path}; start it with "
            f"`entra-ciam dev-idp` (or pass the --state-dir it uses){hint}"
        )
    client = _client(registrations, client_name)
    try:
        app = msal.ConfidentialClientApplication(
            client.client_id,
            client_credential=client.client_secret,
            oidc_authority=f"{authority}/v2.0",
            http_client=MsalHttpClient(verify=ca),
        )
    except (ValueError, OSError, msal.exceptions.MsalError) as exc:
        raise UserTokenError(f"the emulator at {authority} does not answer: {exc}") from exc
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=client.redirect_uris[0])
    if "error" in flow:
        raise UserTokenError(f"{flow['error']}: {flow.get('error_description', '')}")
    try:
        with Browser(verify=ca) as browser:
            result = browser.sign_in(flow["auth_uri"], email=user, password=password)
    except SignInError as exc:
        raise UserTokenError(f"the sign-in was refused: {exc.message}") from exc
    if result.error:
        raise UserTokenError(f"{result.error}: {result.params.get('error_description', '')}")
    tokens: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, result.params)
    if "access_token" not in tokens:
        raise UserTokenError(f"{tokens.get('error')}: {tokens.get('error_description', '')}")
    return tokens


def run_token(
    args: argparse.Namespace,
    registrations: Registrations,
    state: StateDir,
    *,
    out: TextIO | None = None,
) -> int:
    """The command: print the access token alone on stdout; everything else on stderr."""
    out = out or sys.stdout
    configured = registrations.user(args.user)
    password = args.password
    if password is None and configured is not None:
        password = configured.password  # the registrations file's own test user
    if password is None:
        if not sys.stdin.isatty():
            print(
                f"entra-ciam dev-idp token: {args.user} is not in the registrations file; pass "
                "--password",
                file=sys.stderr,
            )
            return 2
        password = getpass.getpass(f"Password for {args.user}: ")
    scopes = [s for value in args.scope for s in value.split()]
    try:
        tokens = user_token(
            state,
            registrations,
            user=args.user,
            password=password,
            scopes=scopes,
            client_name=args.client,
        )
    except UserTokenError as exc:
        print(f"entra-ciam dev-idp token: {exc}", file=sys.stderr)
        return 1
    print(
        f"access token for {args.user}, scope {tokens.get('scope', '')}, expires in "
        f"{tokens.get('expires_in')} s:",
        file=sys.stderr,
    )
    print(tokens["access_token"], file=out)
    return 0
