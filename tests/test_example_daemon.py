"""The daemon example (examples/daemon) against the local emulator and the todo API example.

The daemon gets a real app-only token from the emulator (client credentials for
``api://<api>/.default``); the API validates it against the emulator's keys over TLS. A user
signed in through the emulator's pages then sees, as their own, what the daemon added for them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from examples.daemon import TodoApiClient, api_scope
from examples.daemon.__main__ import main as daemon_main
from examples.starlette_api import create_app

from entra_ciam import EntraConfig, TokenAcquirer
from entra_ciam.devidp.defaults import USERS
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import running_devidp
from tests.support.idp_tokens import user_token
from tests.support.todo_api import ROOT, free_port, serving

(ADA_EMAIL, ADA_PASSWORD, _), (ALAN_EMAIL, ALAN_PASSWORD, _) = USERS[:2]


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as idp:
        yield idp


@pytest.fixture(scope="module")
def api_url(idp: DevIdp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("daemon") / "todo.sqlite3"
    with serving(create_app(idp.entra_config("todo-api"), db_path=db)) as url:
        yield url


@pytest.fixture(scope="module")
def daemon_config(idp: DevIdp) -> EntraConfig:
    return idp.entra_config("daemon")


def oid_of(token: str) -> str:
    oid: str = jwt.decode(token, options={"verify_signature": False})["oid"]
    return oid


def daemon_env(idp: DevIdp, api_url: str) -> dict[str, str]:
    config = idp.entra_config("daemon")
    return {
        "ENTRA_AUTHORITY": config.authority,
        "ENTRA_CLIENT_ID": str(config.client_id),
        "ENTRA_CLIENT_SECRET": str(config.client_secret),
        "ENTRA_API_CLIENT_ID": str(config.api_client_id),
        "ENTRA_CA_BUNDLE": str(config.ca_bundle),
        "TODO_API_URL": api_url,
    }


def test_scope_is_the_apis_default() -> None:
    assert api_scope("8e2d4c6a-1f3b-4a5c-9d7e-0b1c2d3e4f56") == (
        "api://8e2d4c6a-1f3b-4a5c-9d7e-0b1c2d3e4f56/.default"
    )


def test_daemon_adds_for_a_user_who_then_sees_them_as_their_own(
    idp: DevIdp, api_url: str, daemon_config: EntraConfig
) -> None:
    ada_token = user_token(idp, ADA_EMAIL, ADA_PASSWORD)
    alan_token = user_token(idp, ALAN_EMAIL, ALAN_PASSWORD)
    ada, alan = oid_of(ada_token), oid_of(alan_token)
    assert daemon_config.api_client_id is not None
    with TodoApiClient(api_url, TokenAcquirer(daemon_config), daemon_config.api_client_id) as api:
        first = api.add_item(ada, "Renew passport")
        second = api.add_item(ada, "Call the plumber")
        other = api.add_item(alan, "Alan's item")
        assert first["owner"] == ada
        assert api.list_items(ada) == [first, second]
        assert api.list_items(alan) == [other]
        assert {i["id"] for i in api.list_items()} >= {first["id"], second["id"], other["id"]}

    # The same items through Ada's own delegated token: the app wrote them into her list.
    def as_user(token: str) -> list[dict[str, object]]:
        response = httpx.get(
            f"{api_url}/api/todolist", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, object]] = response.json()
        return items

    assert as_user(ada_token) == [first, second]
    assert as_user(alan_token) == [other]


def test_app_token_carries_roles_not_scopes(idp: DevIdp, daemon_config: EntraConfig) -> None:
    assert daemon_config.api_client_id is not None
    token = TokenAcquirer(daemon_config).acquire_token_for_app(
        api_scope(daemon_config.api_client_id)
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "scp" not in claims
    assert "Todolist.ReadWrite.All" in claims["roles"]
    assert claims["aud"] == daemon_config.api_client_id


def test_daemon_command_lists_and_adds(idp: DevIdp, api_url: str) -> None:
    ada = oid_of(user_token(idp, ADA_EMAIL, ADA_PASSWORD))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTRA_")}
    env.update(daemon_env(idp, api_url))
    run = subprocess.run(
        [sys.executable, "-m", "examples.daemon", "--owner", ada, "--add", "From the CLI"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert f"for {ada}: From the CLI" in run.stdout
    assert "item(s) for user" in run.stdout
    assert "From the CLI" in run.stdout.split("item(s) for user", 1)[1]
    secret = env["ENTRA_CLIENT_SECRET"]
    assert secret not in run.stdout + run.stderr


@pytest.fixture
def daemon_environ(monkeypatch: pytest.MonkeyPatch, idp: DevIdp, api_url: str) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("ENTRA_"):
            monkeypatch.delenv(name)
    env = daemon_env(idp, api_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_add_without_owner_is_refused_before_any_call(
    daemon_environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        daemon_main(["--add", "for whom?"])
    assert exited.value.code == 2
    assert "--add needs --owner" in capsys.readouterr().err


def test_missing_settings_are_named(
    daemon_environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ENTRA_CLIENT_SECRET")
    assert daemon_main([]) == 2
    assert "ENTRA_CLIENT_SECRET is not set" in capsys.readouterr().err


def test_app_without_the_apis_permission_gets_a_clear_error(
    daemon_environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    idp: DevIdp,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The web app registration holds no application permission on the todo API.
    web = idp.entra_config("web-app")
    monkeypatch.setenv("ENTRA_CLIENT_ID", str(web.client_id))
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", str(web.client_secret))
    assert daemon_main([]) == 1
    err = capsys.readouterr().err
    assert "could not get an app token" in err
    assert "not assigned to a role" in err
    assert str(web.client_secret) not in err


def test_wrong_secret_is_reported_without_the_secret(
    daemon_environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", "not-the-secret-0123")
    assert daemon_main([]) == 1
    err = capsys.readouterr().err
    assert "could not get an app token" in err
    assert "not-the-secret-0123" not in err


def test_unreachable_api_is_reported(
    daemon_environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert daemon_main(["--api-url", url]) == 1
    assert f"cannot reach the todo API at {url}" in capsys.readouterr().err


def test_api_refusal_is_reported_with_its_reason(
    daemon_environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon_main(["--owner", "not-a-guid", "--add", "x"]) == 1
    err = capsys.readouterr().err
    assert "400" in err
    assert "oid" in err


def test_example_files_use_only_the_public_api() -> None:
    for folder in ("daemon", "starlette_api", "flask_todo"):
        for path in Path(ROOT, "examples", folder).glob("*.py"):
            for line in path.read_text().splitlines():
                if line.lstrip().startswith(("from entra_ciam", "import entra_ciam")):
                    module = line.split()[1]
                    assert module in (
                        "entra_ciam",
                        "entra_ciam.asgi",
                        "entra_ciam.wsgi",
                        "entra_ciam.signin",
                    ), f"{path.name} imports {module}"
