"""``entra-ciam token inspect|validate`` against tokens from TokenFactory and the loopback stub."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from entra_ciam._cli_token import describe_delta, format_time
from entra_ciam.cli import main
from tests.support.rejections import TOKEN_REJECTIONS, Tenant, running_tenant
from tests.support.tokens import API_CLIENT_ID, USER_OID, TokenFactory

REJECTIONS = {r.id: r for r in TOKEN_REJECTIONS}


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- words for times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (42 * 60 + 59, "42 minutes"),
        (3 * 3600 + 5, "3 hours"),
        (86400, "1 day"),
        (-7200, "2 hours"),
    ],
)
def test_describe_delta(seconds: float, words: str) -> None:
    assert describe_delta(seconds) == words


def test_format_time_is_relative_to_now() -> None:
    now = 1_700_000_000.0
    assert format_time(now + 42 * 60 + 10, now, claim="exp").endswith("(expires in 42 minutes)")
    assert format_time(now - 3 * 3600, now, claim="exp").endswith("(expired 3 hours ago)")
    assert format_time(now - 90, now, claim="iat").endswith("(1 minute ago)")
    assert format_time(now + 600, now, claim="nbf").endswith("(not valid for another 10 minutes)")
    assert format_time(now, now).startswith("2023-11-14 22:13:20 UTC")


# -- inspect --------------------------------------------------------------------------------------


def test_inspect_prints_header_claims_and_times_without_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    factory = TokenFactory()
    now = int(time.time())
    token = factory.mint(exp=now + 42 * 60 + 30, iat=now - 5 * 60 - 10)
    code, out, _err = run(capsys, "token", "inspect", token)
    assert code == 0
    assert "NOT VERIFIED" in out
    assert "alg" in out and "RS256" in out
    assert factory.key.kid in out
    assert USER_OID in out
    assert "Todolist.Read Todolist.ReadWrite" in out
    assert "UTC (expires in 42 minutes)" in out
    assert "UTC (5 minutes ago)" in out
    assert token not in out
    assert token.split(".")[2] not in out  # not even the signature


def test_inspect_expired_token_says_how_long_ago(capsys: pytest.CaptureFixture[str]) -> None:
    now = int(time.time())
    token = TokenFactory().mint(exp=now - 3 * 3600 - 60, iat=now - 4 * 3600 - 60)
    code, out, _err = run(capsys, "token", "inspect", token)
    assert code == 0
    assert "(expired 3 hours ago)" in out


def test_inspect_reads_stdin_and_strips_bearer_prefix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = TokenFactory().mint()
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"Bearer {token}\n"))
    code, out, _err = run(capsys, "token", "inspect", "-", "--json")
    assert code == 0
    decoded = json.loads(out)
    assert decoded["header"]["alg"] == "RS256"
    assert decoded["claims"]["oid"] == USER_OID


def test_inspect_shows_dangerous_headers_too(capsys: pytest.CaptureFixture[str]) -> None:
    token = REJECTIONS["alg-none"].make(TokenFactory())
    code, out, _err = run(capsys, "token", "inspect", token)
    assert code == 0
    assert "none" in out


def test_inspect_neutralises_terminal_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    token = TokenFactory().mint(name="\x1b[2J\x1b[31mEvil")
    code, out, _err = run(capsys, "token", "inspect", token)
    assert code == 0
    assert "\x1b" not in out
    assert "\\u001b[31mEvil" in out


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("abc", "three dot-separated parts"),
        (REJECTIONS["jwe"].make(TokenFactory()), "encrypted"),
        ("e30.abcde.c2ln", "base64url"),
        ("bm90IGpzb24.e30.c2ln", "not JSON"),
        ("WzFd.e30.c2ln", "not a JSON object"),
    ],
    ids=["one-part", "jwe", "bad-base64", "not-json", "not-object"],
)
def test_inspect_explains_what_cannot_be_decoded(
    capsys: pytest.CaptureFixture[str], token: str, reason: str
) -> None:
    code, _out, err = run(capsys, "token", "inspect", token)
    assert code == 2
    assert reason in err


def test_inspect_with_empty_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _out, err = run(capsys, "token", "inspect", "-")
    assert code == 2
    assert "no token" in err


# -- validate -------------------------------------------------------------------------------------


def validate(
    capsys: pytest.CaptureFixture[str], tenant: Tenant, token: str, *extra: str
) -> tuple[int, str, str]:
    return run(
        capsys,
        "token",
        "validate",
        token,
        "--authority",
        tenant.stub.authority,
        "--audience",
        API_CLIENT_ID,
        *extra,
    )


def test_validate_valid_token(capsys: pytest.CaptureFixture[str], tenant: Tenant) -> None:
    token = tenant.user_token()
    code, out, _err = validate(capsys, tenant, token)
    assert code == 0
    assert out.startswith("valid")
    assert USER_OID in out
    assert "expires in" in out
    assert token not in out


@pytest.mark.parametrize(
    ("rejection", "reason"),
    [
        ("expired", "expired at"),
        ("wrong-aud", "audience '11111111-2222-4333-8444-555555555555' is not accepted"),
        ("wrong-iss", "issuer"),
        ("wrong-tid", "tenant"),
        ("alg-none", "alg none"),
        ("hmac-with-public-key", "HMAC"),
        ("signature-by-other-key", "signature is invalid"),
        ("jku-header", "jku"),
        ("neither-scp-nor-roles", "neither scp"),
    ],
)
def test_validate_prints_the_exact_reason(
    capsys: pytest.CaptureFixture[str], tenant: Tenant, rejection: str, reason: str
) -> None:
    token = REJECTIONS[rejection].make(tenant.factory)
    code, out, err = validate(capsys, tenant, token)
    assert code == 1
    assert err.startswith("invalid: ")
    assert reason in err
    assert token not in out + err


def test_validate_shows_what_the_refused_token_says(
    capsys: pytest.CaptureFixture[str], tenant: Tenant
) -> None:
    token = REJECTIONS["wrong-aud"].make(tenant.factory)
    _code, out, _err = validate(capsys, tenant, token)
    assert "not verified" in out
    assert "11111111-2222-4333-8444-555555555555" in out


def test_validate_accepts_any_of_several_audiences(
    capsys: pytest.CaptureFixture[str], tenant: Tenant
) -> None:
    token = tenant.user_token()
    code, _out, _err = run(
        capsys,
        "token",
        "validate",
        token,
        "--authority",
        tenant.stub.authority,
        "--audience",
        "11111111-2222-4333-8444-555555555555",
        "--audience",
        API_CLIENT_ID,
    )
    assert code == 0


def test_validate_when_metadata_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    factory = TokenFactory()
    code, _out, err = run(
        capsys,
        "token",
        "validate",
        factory.mint(),
        "--authority",
        f"http://127.0.0.1:{port}/{factory.tenant_id}",
        "--audience",
        API_CLIENT_ID,
    )
    assert code == 3
    assert err.startswith("cannot validate: ")
    # A local tool keeps the detail an API's client never gets: the URL, the error, the fix.
    assert f"GET http://127.0.0.1:{port}/{factory.tenant_id}/v2.0/.well-known" in err
    assert "ConnectError" in err and "fix: check the URL" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--authority", "http://contoso.example/tenant", "--audience", API_CLIENT_ID], "https"),
        (
            ["--authority", "https://contoso.ciamlogin.com/common", "--audience", API_CLIENT_ID],
            "common",
        ),
        (
            [
                "--authority",
                "https://contoso.ciamlogin.com/",
                "--audience",
                API_CLIENT_ID,
                "--ca-bundle",
                "/nope.pem",
            ],
            "verify",
        ),
    ],
    ids=["http-authority", "multi-tenant", "missing-ca-bundle"],
)
def test_validate_bad_settings_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _out, err = run(capsys, "token", "validate", TokenFactory().mint(), *args)
    assert code == 2
    assert err.startswith("error: ")
    assert message in err


def test_console_script_is_wired(tmp_path: Path) -> None:
    token = TokenFactory().mint()
    result = subprocess.run(
        [sys.executable, "-m", "entra_ciam.cli", "token", "inspect", "-"],
        input=token,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "NOT VERIFIED" in result.stdout


def test_output_piped_into_a_reader_that_stops_early_ends_quietly() -> None:
    # Like `entra-ciam token inspect T | head -0`: the reader is gone before the first write.
    token = TokenFactory().mint()
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "entra_ciam.cli", "token", "inspect", token],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
    assert proc.returncode == 1
