"""EntraConfig: every authority form of DESIGN.md section 1, from arguments and from ENTRA_*.

Errors must name the setting (argument name, or the variable when read from the environment)
and show a valid example; placeholders left from the portal samples are called out as such.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_ciam import ConfigError, EntraConfig

GUID = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
CLIENT = "00001111-aaaa-2222-bbbb-3333cccc4444"
API = "11112222-bbbb-3333-cccc-4444dddd5555"

# authority as a user may write it -> (normalised authority, tenant_id)
FORMS = {
    "https://contoso.ciamlogin.com/": (
        "https://contoso.ciamlogin.com/contoso.onmicrosoft.com",
        None,
    ),
    "https://contoso.ciamlogin.com": (
        "https://contoso.ciamlogin.com/contoso.onmicrosoft.com",
        None,
    ),
    f"https://contoso.ciamlogin.com/{GUID}": (f"https://contoso.ciamlogin.com/{GUID}", GUID),
    f"https://contoso.ciamlogin.com/{GUID}/": (f"https://contoso.ciamlogin.com/{GUID}", GUID),
    f"https://CONTOSO.ciamlogin.com/{GUID.upper()}": (
        f"https://contoso.ciamlogin.com/{GUID}",
        GUID,
    ),
    "https://contoso.ciamlogin.com/contoso.onmicrosoft.com": (
        "https://contoso.ciamlogin.com/contoso.onmicrosoft.com",
        None,
    ),
    f"https://login.contoso.com/{GUID}": (f"https://login.contoso.com/{GUID}", GUID),
    f"https://login.contoso.com/{GUID}/v2.0": (f"https://login.contoso.com/{GUID}", GUID),
    f"https://login.microsoftonline.com/{GUID}": (
        f"https://login.microsoftonline.com/{GUID}",
        GUID,
    ),
    f"http://localhost:5000/{GUID}": (f"http://localhost:5000/{GUID}", GUID),
    f"http://127.0.0.1:8123/{GUID}/": (f"http://127.0.0.1:8123/{GUID}", GUID),
    f"http://[::1]:8123/{GUID}": (f"http://[::1]:8123/{GUID}", GUID),
}


@pytest.mark.parametrize(("given", "expected"), FORMS.items(), ids=list(FORMS))
def test_authority_forms_from_arguments(given: str, expected: tuple[str, str | None]) -> None:
    authority, tenant_id = expected
    config = EntraConfig(authority=given)
    assert config.authority == authority
    assert config.tenant_id == tenant_id
    assert config.metadata_url == f"{authority}/v2.0/.well-known/openid-configuration"
    assert config.oidc_authority == f"{authority}/v2.0"
    assert config.tenant == authority.rsplit("/", 1)[1]


@pytest.mark.parametrize(("given", "expected"), FORMS.items(), ids=list(FORMS))
def test_authority_forms_from_env(given: str, expected: tuple[str, str | None]) -> None:
    config = EntraConfig.from_env({"ENTRA_AUTHORITY": f"  {given}  "})
    assert (config.authority, config.tenant_id) == expected


def test_subdomain_and_tenant_id_stand_in_for_authority() -> None:
    config = EntraConfig(tenant_subdomain="Contoso", tenant_id=GUID.upper())
    assert config.authority == f"https://contoso.ciamlogin.com/{GUID}"
    assert config.tenant_id == GUID
    env = EntraConfig.from_env({"ENTRA_TENANT_SUBDOMAIN": "contoso", "ENTRA_TENANT_ID": GUID})
    assert env.authority == f"https://contoso.ciamlogin.com/{GUID}"
    alone = EntraConfig.from_env({"ENTRA_TENANT_SUBDOMAIN": "contoso"})
    assert alone.authority == "https://contoso.ciamlogin.com/contoso.onmicrosoft.com"


def test_tenant_id_with_domain_authority_is_kept() -> None:
    config = EntraConfig(authority="https://contoso.ciamlogin.com/", tenant_id=GUID.upper())
    assert config.tenant_id == GUID
    assert config.authority == "https://contoso.ciamlogin.com/contoso.onmicrosoft.com"


def test_from_env_reads_every_setting_and_overrides_win(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "ENTRA_AUTHORITY": f"https://contoso.ciamlogin.com/{GUID}",
        "ENTRA_CLIENT_ID": CLIENT,
        "ENTRA_CLIENT_SECRET": "abc8Q~secret-value",
        "ENTRA_API_CLIENT_ID": API,
        "ENTRA_CA_BUNDLE": str(bundle),
        "ENTRA_REDIRECT_URI": "http://localhost:3000/auth/redirect",
        "ENTRA_POST_LOGOUT_REDIRECT_URI": "https://app.contoso.com/",
        "ENTRA_SESSION_STORE": "memory://",
        "ENTRA_SESSION_SECRET": "k" * 44,
        "ENTRA_TENANT_SUBDOMAIN": "",  # blank variables count as unset
        "UNRELATED": "x",
    }
    config = EntraConfig.from_env(env, client_id=API.upper())
    assert config.client_id == API
    assert config.client_secret == "abc8Q~secret-value"
    assert config.api_client_id == API
    assert config.verify == str(bundle)
    assert config.redirect_uri == "http://localhost:3000/auth/redirect"
    assert config.post_logout_redirect_uri == "https://app.contoso.com/"
    assert config.session_store == "memory://"
    assert config.tenant_subdomain is None
    assert "secret-value" not in repr(config)
    assert "k" * 44 not in repr(config)


def test_verify_defaults_to_the_system_store() -> None:
    assert EntraConfig(authority="https://contoso.ciamlogin.com/").verify is True


def test_is_loopback() -> None:
    assert EntraConfig(authority=f"http://localhost:1/{GUID}").is_loopback
    assert not EntraConfig(authority=f"https://contoso.ciamlogin.com/{GUID}").is_loopback


def test_replace_keeps_validation() -> None:
    config = EntraConfig(authority="https://contoso.ciamlogin.com/")
    assert config.replace(api_client_id=API).api_client_id == API
    with pytest.raises(ConfigError, match="api_client_id"):
        config.replace(api_client_id="nope")


# -- errors -------------------------------------------------------------------------------------

EXAMPLE_AUTHORITY = f"Example: ENTRA_AUTHORITY=https://contoso.ciamlogin.com/{GUID}"


@pytest.mark.parametrize(
    ("authority", "reason"),
    [
        (f"http://contoso.ciamlogin.com/{GUID}", "must use https"),
        (f"ftp://contoso.ciamlogin.com/{GUID}", "must be an https URL"),
        ("contoso.ciamlogin.com", "must be an https URL"),
        ("https://login.contoso.com/", "must end with the tenant"),
        ("https://contoso.ciamlogin.com/common", "not one tenant"),
        ("https://contoso.ciamlogin.com/organizations", "not one tenant"),
        ("https://login.microsoftonline.com/consumers", "not one tenant"),
        ("https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin", "one tenant segment"),
        ("https://contoso.ciamlogin.com/not_a_tenant!", "neither a tenant id nor a domain"),
        ("https://contoso.ciamlogin.com:99999/", "is not a URL"),
        (f"https://contoso.ciamlogin.com/{GUID}?p=1", "no query or fragment"),
    ],
)
def test_bad_authority_names_the_setting_and_shows_an_example(authority: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as info:
        EntraConfig(authority=authority)
    assert "authority (ENTRA_AUTHORITY)" in str(info.value)
    assert EXAMPLE_AUTHORITY in str(info.value)
    with pytest.raises(ConfigError, match=reason) as from_env:
        EntraConfig.from_env({"ENTRA_AUTHORITY": authority})
    assert "ENTRA_AUTHORITY " in str(from_env.value)
    assert "authority (" not in str(from_env.value)


def test_credentials_in_authority_are_not_echoed() -> None:
    with pytest.raises(ConfigError, match="no credentials") as info:
        EntraConfig(authority=f"https://user:hunter2@contoso.ciamlogin.com/{GUID}")
    assert "hunter2" not in str(info.value)


def test_missing_authority() -> None:
    with pytest.raises(ConfigError, match="ENTRA_AUTHORITY is not set") as info:
        EntraConfig.from_env({})
    assert "ENTRA_TENANT_SUBDOMAIN" in str(info.value)
    assert EXAMPLE_AUTHORITY in str(info.value)


def test_authority_and_tenant_id_must_agree() -> None:
    other = "11111111-2222-4333-8444-555555555555"
    with pytest.raises(ConfigError, match="must agree"):
        EntraConfig(authority=f"https://contoso.ciamlogin.com/{GUID}", tenant_id=other)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENTRA_AUTHORITY", "https://Enter_the_Tenant_Subdomain_Here.ciamlogin.com/"),
        ("ENTRA_CLIENT_ID", "Enter_the_Application_Id_Here"),
        ("ENTRA_API_CLIENT_ID", "<your-api-client-id>"),
        ("ENTRA_TENANT_ID", "Enter the Tenant Id Here"),
        ("ENTRA_TENANT_SUBDOMAIN", "your-tenant-subdomain"),
        ("ENTRA_REDIRECT_URI", "http://localhost:3000/<path>"),
    ],
)
def test_placeholders_are_named(variable: str, value: str) -> None:
    env = {"ENTRA_AUTHORITY": f"https://contoso.ciamlogin.com/{GUID}", variable: value}
    with pytest.raises(ConfigError, match="still holds the placeholder") as info:
        EntraConfig.from_env(env)
    message = str(info.value)
    assert variable in message
    assert value.strip() in message
    assert f"Example: {variable}=" in message


def test_placeholder_secret_is_named_but_not_echoed() -> None:
    env = {
        "ENTRA_AUTHORITY": "https://contoso.ciamlogin.com/",
        "ENTRA_CLIENT_SECRET": "Enter_the_Client_Secret_Here",
    }
    with pytest.raises(
        ConfigError, match="ENTRA_CLIENT_SECRET still holds the placeholder"
    ) as info:
        EntraConfig.from_env(env)
    assert "Enter_the_Client_Secret_Here" not in str(info.value)


@pytest.mark.parametrize("field", ["client_id", "api_client_id", "tenant_id"])
def test_guid_settings(field: str) -> None:
    with pytest.raises(ConfigError, match="must be a GUID") as info:
        EntraConfig(authority="https://contoso.ciamlogin.com/", **{field: "contoso"})
    assert f"{field} (ENTRA_{field.upper()})" in str(info.value)
    assert f"Example: ENTRA_{field.upper()}=" in str(info.value)


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        EntraConfig.from_env(
            {
                "ENTRA_AUTHORITY": "https://contoso.ciamlogin.com/",
                "ENTRA_CLIENT_ID": "x",
                "ENTRA_API_CLIENT_ID": "y",
            }
        )
    assert "ENTRA_CLIENT_ID must be a GUID" in str(info.value)
    assert "ENTRA_API_CLIENT_ID must be a GUID" in str(info.value)


def test_bad_subdomain() -> None:
    with pytest.raises(ConfigError, match="first label") as info:
        EntraConfig(tenant_subdomain="contoso.ciamlogin.com")
    assert "Example: ENTRA_TENANT_SUBDOMAIN=contoso" in str(info.value)


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://app.contoso.com/auth/redirect", "https unless the host is loopback"),
        ("/auth/redirect", "absolute http"),
        ("https://app.contoso.com/auth/redirect#x", "no fragment"),
    ],
)
def test_redirect_uris(uri: str, reason: str) -> None:
    for field in ("redirect_uri", "post_logout_redirect_uri"):
        with pytest.raises(ConfigError, match=reason) as info:
            EntraConfig(authority="https://contoso.ciamlogin.com/", **{field: uri})
        assert f"ENTRA_{field.upper()}" in str(info.value)


def test_missing_ca_bundle_file() -> None:
    with pytest.raises(ConfigError, match="names no readable file") as info:
        EntraConfig(authority="https://contoso.ciamlogin.com/", ca_bundle="/no/such/ca.pem")
    assert "Example: ENTRA_CA_BUNDLE=" in str(info.value)


def test_non_string_setting() -> None:
    with pytest.raises(ConfigError, match="must be a string, got int"):
        EntraConfig(authority=5)  # type: ignore[arg-type]


def test_require_names_each_missing_setting() -> None:
    config = EntraConfig.from_env({"ENTRA_AUTHORITY": "https://contoso.ciamlogin.com/"})
    with pytest.raises(ConfigError, match="Sign-in needs more settings") as info:
        config.require("client_id", "client_secret", "redirect_uri", purpose="Sign-in")
    message = str(info.value)
    for variable in ("ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET", "ENTRA_REDIRECT_URI"):
        assert f"{variable} is not set. Example: {variable}=" in message
    config.require("authority", purpose="Anything")
    args = EntraConfig(authority="https://contoso.ciamlogin.com/")
    with pytest.raises(ConfigError, match=r"api_client_id \(ENTRA_API_CLIENT_ID\) is not set"):
        args.require("api_client_id", purpose="Validating access tokens")


def test_the_missing_session_secret_hint_gives_values_that_can_be_pasted() -> None:
    """Both the key shown and the command's output are accepted as ENTRA_SESSION_SECRET (the
    hint once printed ``b'...'``, which the next check refused)."""
    import re
    import shlex
    import subprocess
    import sys

    from entra_ciam.sessions import TokenCacheCipher

    config = EntraConfig(authority=f"https://contoso.ciamlogin.com/{GUID}")
    with pytest.raises(ConfigError) as refused:
        config.require("session_secret", purpose="Sign-in")
    message = str(refused.value)
    shown = re.search(r"Example: ENTRA_SESSION_SECRET=(\S+) \(a new random key", message)
    assert shown, message
    command = re.search(r"make another with (python -c '[^']+')", message)
    assert command, message
    argv = shlex.split(command.group(1))
    made = subprocess.run(
        [sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    for pasted in (shown.group(1), made):
        assert not pasted.startswith("b'")
        TokenCacheCipher(pasted)  # the check the web app runs at start
        assert (
            EntraConfig(
                authority=f"https://contoso.ciamlogin.com/{GUID}", session_secret=pasted
            ).session_secret
            == pasted
        )
    assert shown.group(1) != made  # a fresh key each time, never a fixed example
