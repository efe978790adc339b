"""Signing keys: published ahead, rotated without breaking a running API, kept through a grace
period, persisted across restarts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from entra_ciam import AccessTokenValidator, InvalidTokenError
from entra_ciam.devidp import defaults
from entra_ciam.devidp.keys import KeyStore
from entra_ciam.devidp.provider import Clock
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.state import StateDir, StateError
from entra_ciam.devidp.testing import running_devidp
from tests.devidp.helpers import header, tls
from tests.support.idp_tokens import app_token


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def published_kids(idp: DevIdp) -> list[str]:
    jwks = httpx.get(idp.endpoints.jwks_uri, verify=tls(idp)).json()
    return [k["kid"] for k in jwks["keys"]]


def test_rotation_is_seen_by_a_running_validator_without_a_restart(devidp: DevIdp) -> None:
    ticker = Ticker()
    validator = AccessTokenValidator(
        authority=devidp.authority,
        audience=defaults.TODO_API_CLIENT_ID,
        verify=devidp.ca_bundle,
        clock=ticker,
    )
    before = app_token(devidp)
    validator.validate(before)
    first_kids = published_kids(devidp)
    assert len(first_kids) == 2  # the signing key and the next one, published ahead

    # First rotation: the new signing key was already published, so the validator (which has
    # not refetched anything) accepts the new tokens at once.
    rotation = devidp.rotate_keys()
    assert rotation.kid == first_kids[1]
    after = app_token(devidp)
    assert header(after)["kid"] == rotation.kid
    assert validator.validate(after).roles == {"Todolist.Read.All", "Todolist.ReadWrite.All"}
    assert validator.validate(before)  # the old key stays published for the grace period

    # Second rotation: this key is new to the validator; once its unknown-kid rate limit
    # allows a refetch (5 minutes by default), it picks the key up by itself.
    second = devidp.rotate_keys()
    latest = app_token(devidp)
    assert header(latest)["kid"] == second.kid not in first_kids
    ticker.now += 301
    assert validator.validate(latest)


def test_a_retired_key_disappears_after_the_grace_period() -> None:
    with running_devidp(lifetimes={"key_grace_period": 120}) as idp:
        old = idp.provider.keys.current.kid
        rotation = idp.rotate_keys()
        assert rotation.retiring == (old,)
        assert old in published_kids(idp)
        idp.clock.advance(119)
        assert old in published_kids(idp)
        idp.clock.advance(2)
        assert old not in published_kids(idp)
        assert rotation.kid in published_kids(idp)


def test_a_token_signed_by_a_removed_key_fails_for_a_new_validator() -> None:
    with running_devidp() as idp:
        token = app_token(idp)
        idp.rotate_keys(grace_period=0)
        validator = AccessTokenValidator(
            authority=idp.authority, audience=defaults.TODO_API_CLIENT_ID, verify=idp.ca_bundle
        )
        with pytest.raises(InvalidTokenError):
            validator.validate(token)
        assert validator.validate(app_token(idp))


def test_keys_persist_across_restarts(tmp_path: Path) -> None:
    with running_devidp(state_dir=str(tmp_path)) as idp:
        signing = header(app_token(idp))["kid"]
        kids = published_kids(idp)
    with running_devidp(state_dir=str(tmp_path)) as idp:
        assert header(app_token(idp))["kid"] == signing
        assert published_kids(idp) == kids
    mode = (tmp_path / "signing-keys.json").stat().st_mode & 0o777
    assert mode == 0o600


def test_a_damaged_key_file_is_reported_not_replaced(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.write_bytes("signing-keys.json", b"{not json")
    with pytest.raises(StateError, match=r"signing-keys\.json is damaged"):
        KeyStore(state, clock=Clock(), grace_period=60)
    assert (tmp_path / "signing-keys.json").read_bytes() == b"{not json"


def test_jwks_holds_public_rsa_keys_only(devidp: DevIdp) -> None:
    jwks = httpx.get(devidp.endpoints.jwks_uri, verify=tls(devidp)).json()
    for key in jwks["keys"]:
        assert key["kty"] == "RSA" and key["use"] == "sig"
        assert key["kid"] == key["x5t"]
        assert key["issuer"] == devidp.issuer
        assert {"n", "e", "x5c"} <= key.keys()
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()
