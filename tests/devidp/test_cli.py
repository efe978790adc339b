"""``entra-ciam dev-idp`` as a person runs it: in the foreground, stopped with Ctrl-C."""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from entra_ciam import AccessTokenValidator, cli
from entra_ciam.devidp import defaults
from tests.devidp.helpers import ISSUER

STARTUP_TIMEOUT = 20.0


class Running:
    """A dev-idp process whose stdout is read line by line in the background."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "entra_ciam.cli", "dev-idp", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = STARTUP_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return line
        stderr = self.process.stderr.read() if self.process.poll() is not None else ""
        raise AssertionError(f"never printed {text!r}; got {self.output} {stderr}")

    def value(self, label: str) -> str:
        for line in self.output:
            match = re.match(rf"\s+{re.escape(label)}\s+(\S+)$", line)
            if match:
                return match.group(1)
        raise AssertionError(f"no {label!r} line in {self.output}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    proc = Running("--port", "0", "--pages-port", "0", "--state-dir", str(tmp_path), "--quiet")
    try:
        proc.wait_for("Press Ctrl-C to stop.")
        yield proc
    finally:
        proc.stop()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entra_ciam.cli", "dev-idp", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_prints_what_a_newcomer_needs_and_serves_it(running: Running, tmp_path: Path) -> None:
    text = "\n".join(running.output)
    authority = running.value("Authority")
    ca_bundle = running.value("CA bundle")
    assert authority.startswith("https://127.0.0.1:")
    assert authority.endswith(f"/{defaults.TENANT_ID}")
    assert ca_bundle == str(tmp_path / "ca.pem")
    for expected in (
        "Refresh tokens  reusable until they expire, as in Entra",
        defaults.WEB_APP_CLIENT_ID,
        defaults.WEB_APP_CLIENT_SECRET,
        defaults.TODO_API_CLIENT_ID,
        defaults.DAEMON_CLIENT_ID,
        "ada@example.com",
        "Ada-Lovelace-1815",
        f"export ENTRA_AUTHORITY={authority}",
        f"export ENTRA_CA_BUNDLE={ca_bundle}",
    ):
        assert expected in text

    # Entra's issuer form: the tenant id as the host, not the authority's host.
    assert running.value("Issuer") == ISSUER
    assert running.value("MSAL") == f"oidc_authority={authority}/v2.0"
    context = ssl.create_default_context(cafile=ca_bundle)
    metadata = f"{authority}/v2.0/.well-known/openid-configuration"
    assert httpx.get(metadata, verify=context).json()["issuer"] == ISSUER

    assert running.stop() == 0  # Ctrl-C
    running.wait_for("entra-ciam dev-idp: stopped.", timeout=5)
    assert not (tmp_path / "server.json").exists()


def test_one_time_refresh_tokens_flag_reaches_the_running_tenant(tmp_path: Path) -> None:
    proc = Running(
        "--port", "0", "--pages-port", "0", "--state-dir", str(tmp_path), "--quiet",
        "--one-time-refresh-tokens",
    )  # fmt: skip
    try:
        proc.wait_for("Press Ctrl-C to stop.")
        text = "\n".join(proc.output)
        assert "Refresh tokens  one-time: a reuse revokes the sign-in" in text
    finally:
        proc.stop()


def test_rotate_keys_talks_to_the_running_emulator(running: Running, tmp_path: Path) -> None:
    context = ssl.create_default_context(cafile=running.value("CA bundle"))
    jwks_uri = f"{running.value('Authority')}/discovery/v2.0/keys"
    before = [k["kid"] for k in httpx.get(jwks_uri, verify=context).json()["keys"]]

    result = run_cli("rotate-keys", "--state-dir", str(tmp_path), "--grace", "0")

    assert result.returncode == 0, result.stderr
    assert f"now signing with  {before[1]}" in result.stdout
    after = [k["kid"] for k in httpx.get(jwks_uri, verify=context).json()["keys"]]
    assert after[0] == before[1]  # the published next key now signs
    assert before[0] not in after  # grace 0: the old one is gone at once
    running.wait_for("signing keys rotated", timeout=5)  # announced on the console


def test_rotate_keys_without_a_running_emulator_edits_the_key_file(tmp_path: Path) -> None:
    first = run_cli("rotate-keys", "--state-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    second = run_cli("rotate-keys", "--state-dir", str(tmp_path))
    assert second.returncode == 0, second.stderr
    kid = re.search(r"published next\s+(\S+)", first.stdout)
    assert kid and f"now signing with  {kid.group(1)}" in second.stdout


def test_rotate_keys_refuses_a_state_folder_that_does_not_exist(tmp_path: Path) -> None:
    typo = tmp_path / "no-such-state"
    result = run_cli("rotate-keys", "--state-dir", str(typo))
    assert result.returncode == 2
    assert f"there is no state folder at {typo}" in result.stderr
    assert "Traceback" not in result.stderr and not typo.exists()  # nothing was made there


def test_refuses_a_busy_port_a_public_host_and_a_broken_config(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("--port", str(port), "--pages-port", "0", "--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr

    public = run_cli("--host", "0.0.0.0", "--state-dir", str(tmp_path))  # noqa: S104
    assert public.returncode == 2 and "not a loopback address" in public.stderr

    config = tmp_path / "bad.toml"
    config.write_text('[tenant]\nid = "x"\nsubdomain = "y"\n')
    broken = run_cli("--config", str(config), "--state-dir", str(tmp_path))
    assert broken.returncode == 2 and "'id' must be a GUID" in broken.stderr


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("dev-idp", ("--port", "99999")),
        ("dev-idp", ("--pages-port", "-1")),
        ("dev-idp", ("--port", "65536")),
        ("dev-idp", ("--port", "abc")),
        # entra-ciam demo takes its ports through the same type
        ("demo", ("--api-port", "70000")),
        ("demo", ("--idp-port", "-3")),
        ("demo", ("--port", "65536")),
        ("demo", ("--idp-pages-port", "x")),
    ],
)
def test_a_port_out_of_range_is_a_usage_error_not_a_traceback(
    command: str, option: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, *option])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: entra-ciam {command}")
    assert f"argument {option[0]}: invalid port '{option[1]}'" in err and "0 to 65535" in err


def test_every_port_from_0_to_65535_is_accepted() -> None:
    for port in ("0", "65535"):
        args = cli.build_parser().parse_args(["dev-idp", "--port", port, "--pages-port", port])
        assert (args.port, args.pages_port) == (int(port), int(port))


def test_example_config_prints_loadable_toml() -> None:
    result = run_cli("example-config")
    assert result.returncode == 0
    assert tomllib.loads(result.stdout)["tenant"]["id"] == defaults.TENANT_ID


def test_token_prints_a_users_access_token_from_the_real_flow(
    running: Running, tmp_path: Path
) -> None:
    result = run_cli(
        "token", "--state-dir", str(tmp_path), "--user", "ada@example.com",
        "--scope", f"{defaults.TODO_API_IDENTIFIER_URI}/Todolist.ReadWrite",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token  # the token alone: TOKEN=$(...)
    assert "Todolist.ReadWrite" in result.stderr
    validator = AccessTokenValidator(
        authority=running.value("Authority"),
        audience=defaults.TODO_API_CLIENT_ID,
        verify=running.value("CA bundle"),
    )
    claims = validator.validate(token)
    assert (
        claims.scopes == {"Todolist.ReadWrite"}
        and claims["preferred_username"] == "ada@example.com"
    )

    wrong = run_cli(
        "token", "--state-dir", str(tmp_path), "--user", "ada@example.com", "--password", "nope"
    )
    assert wrong.returncode == 1 and "password is incorrect" in wrong.stderr
    assert wrong.stdout == ""


def test_token_says_when_no_emulator_is_running(tmp_path: Path) -> None:
    result = run_cli("token", "--state-dir", str(tmp_path), "--user", "ada@example.com")
    assert result.returncode == 1
    assert "no emulator is running" in result.stderr and "entra-ciam dev-idp" in result.stderr


def test_the_command_line_options_override_the_file() -> None:
    from entra_ciam.devidp.cli import with_cli_options
    from entra_ciam.devidp.registrations import Registrations

    args = argparse.Namespace(issuer="loopback", strict_pkce=True, strict_logout=True)
    changed = with_cli_options(Registrations.default(), args)
    assert changed.tenant.issuer == "loopback"
    assert changed.strict.pkce_for_confidential_clients
    assert changed.strict.post_logout_uris_listed_only
    unchanged = with_cli_options(Registrations.default(), argparse.Namespace(issuer=None))
    assert unchanged == Registrations.default()


def test_serves_the_loopback_issuer_when_asked(tmp_path: Path) -> None:
    proc = Running(
        "--port", "0", "--pages-port", "0", "--state-dir", str(tmp_path), "--quiet",
        "--issuer", "loopback",
    )  # fmt: skip
    try:
        proc.wait_for("Press Ctrl-C to stop.")
        assert proc.value("Issuer") == f"{proc.value('Authority')}/v2.0"
    finally:
        proc.stop()
