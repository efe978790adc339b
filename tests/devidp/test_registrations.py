"""Registrations from TOML, JSON or the built-in default, and the rules they enforce."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from entra_ciam.devidp import defaults
from entra_ciam.devidp.cli import example_config_text
from entra_ciam.devidp.errors import OAuthError
from entra_ciam.devidp.registrations import (
    RegistrationError,
    Registrations,
    default_mapping,
    load_registrations,
)
from entra_ciam.devidp.scopes import resolve_app_only, resolve_delegated


def test_default_tenant_matches_the_documented_constants() -> None:
    regs = Registrations.default()
    web, api, daemon = (regs.app_named(n) for n in ("web-app", "todo-api", "daemon"))
    assert regs.tenant.id == defaults.TENANT_ID
    assert regs.tenant.domain == "contoso-dev.onmicrosoft.com"
    assert web.client_id == defaults.WEB_APP_CLIENT_ID
    assert web.redirect_uris == defaults.WEB_APP_REDIRECT_URIS
    assert api.identifier_uris == (f"api://{defaults.TODO_API_CLIENT_ID}",)
    assert api.scopes == ("Todolist.Read", "Todolist.ReadWrite")
    assert api.app_roles == ("Todolist.Read.All", "Todolist.ReadWrite.All")
    assert daemon.application == {api.client_id: frozenset(api.app_roles)}
    assert [u.email for u in regs.users] == ["ada@example.com", "alan@example.com"]


def test_the_example_config_is_the_default_tenant(tmp_path: Path) -> None:
    path = tmp_path / "devidp.toml"
    path.write_text(example_config_text())
    assert load_registrations(path) == Registrations.default()


def test_json_works_like_toml(tmp_path: Path) -> None:
    path = tmp_path / "devidp.json"
    path.write_text(json.dumps(tomllib.loads(example_config_text())))
    assert load_registrations(path) == Registrations.default()


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[tenant]
id = "not-a-guid"
subdomain = "contoso"

[[apps]]
name = "web"
client_id = "3c9a1f2e-7b4d-4e8a-9c1f-2a5b6d7e8f90"
redirect_uris = ["http://app.example.com/callback"]
colour = "blue"
[apps.delegated_permissions]
api = ["Todolist.Delete"]
nowhere = ["X"]

[[apps]]
name = "api"
client_id = "8e2d4c6a-1f3b-4a5c-9d7e-0b1c2d3e4f56"
scopes = ["Todolist.Read"]

[[users]]
email = "not-an-email"
password = "x"
"""
    )
    with pytest.raises(RegistrationError) as problem:
        load_registrations(path)
    message = str(problem.value)
    for expected in (
        "'id' must be a GUID",
        "must use https unless its host is loopback",
        "unknown key 'colour'",
        "grants ['Todolist.Delete'], which 'api' does not expose",
        "names 'nowhere', which is no app",
        "'email' is not an email address",
    ):
        assert expected in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(RegistrationError, match="cannot read"):
        load_registrations(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[tenant\n")
    with pytest.raises(RegistrationError, match="not valid toml"):
        load_registrations(broken)


def test_loopback_redirect_uris_match_on_any_port_like_entra() -> None:
    web = Registrations.default().app_named("web-app")
    assert web.accepts_redirect_uri("http://localhost:3000/auth/redirect")
    assert web.accepts_redirect_uri("http://localhost:51234/auth/redirect")
    assert web.accepts_redirect_uri("http://127.0.0.1:8000/auth/redirect")
    assert not web.accepts_redirect_uri("http://localhost:3000/auth/other")
    assert not web.accepts_redirect_uri("https://localhost:3000/auth/redirect")
    assert not web.accepts_redirect_uri("http://localhost.evil.example:3000/auth/redirect")
    assert not web.accepts_redirect_uri("http://user@localhost:3000/auth/redirect")

    extra = Registrations.from_mapping(
        default_mapping(extra_redirect_uris=["https://app.example.com/auth/redirect"])
    ).app_named("web-app")
    assert extra.accepts_redirect_uri("https://app.example.com/auth/redirect")
    assert not extra.accepts_redirect_uri("https://app.example.com:8443/auth/redirect")


def test_a_uri_without_a_path_is_the_same_uri_as_with_a_slash_like_entra() -> None:
    mapping = default_mapping(
        extra_redirect_uris=["https://app.example.com", "http://localhost:4000"],
    )
    web = Registrations.from_mapping(mapping).app_named("web-app")
    for uri in ("https://app.example.com/", "https://app.example.com"):
        assert web.accepts_redirect_uri(uri), uri
        assert web.accepts_post_logout_uri(uri), uri
    # Loopback: any port, and "" is "/" whichever side has the slash.
    assert web.accepts_redirect_uri("http://localhost:4000/")
    assert web.accepts_redirect_uri("http://localhost:5999")
    # The built-in post-logout URI is http://localhost:3000/; Microsoft's sample sends it bare.
    assert web.accepts_post_logout_uri("http://localhost:3000", listed_only=True)
    assert web.accepts_post_logout_uri("http://127.0.0.1:3000", listed_only=True)
    # Only the empty path is "/": other paths, queries and hosts still have to match.
    assert not web.accepts_redirect_uri("https://app.example.com/x")
    assert not web.accepts_redirect_uri("https://app.example.com/?x=1")
    assert not web.accepts_redirect_uri("https://app.example.com.evil.example/")
    assert not web.accepts_post_logout_uri("http://localhost:3000//", listed_only=True)


def test_scope_resolution() -> None:
    regs = Registrations.default()
    web, daemon = regs.app_named("web-app"), regs.app_named("daemon")
    prefix = defaults.TODO_API_IDENTIFIER_URI

    grant = resolve_delegated(regs, web, f"openid offline_access {prefix}/.default")
    assert grant.scopes == ("Todolist.Read", "Todolist.ReadWrite")
    assert grant.response_scope == (
        f"{prefix}/Todolist.Read {prefix}/Todolist.ReadWrite openid offline_access"
    )
    by_client_id = resolve_delegated(regs, web, f"{defaults.TODO_API_CLIENT_ID}/todolist.read")
    assert by_client_id.scopes == ("Todolist.Read",)  # case-insensitive, registered casing
    assert not by_client_id.wants_refresh_token

    with pytest.raises(OAuthError) as refused:
        resolve_delegated(regs, daemon, f"{prefix}/Todolist.Read")
    assert refused.value.code == 65001
    with pytest.raises(OAuthError) as refused:
        resolve_delegated(regs, web, f"{prefix}/Todolist.Read.All")  # an app role, not a scope
    assert refused.value.code == 70011

    app_grant = resolve_app_only(regs, daemon, f"{prefix}/.default")
    assert app_grant.roles == ("Todolist.Read.All", "Todolist.ReadWrite.All")
    with pytest.raises(OAuthError) as refused:
        resolve_app_only(regs, web, f"{prefix}/.default")
    assert refused.value.code == 501051
