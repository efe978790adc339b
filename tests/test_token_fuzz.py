"""Property tests: whatever string arrives, validation answers Claims or InvalidTokenError.

Arbitrary text, real tokens mutated character by character or segment by segment, and tokens
correctly signed over arbitrary JSON must never raise anything else, nor hit the validator's
last-resort "could not be validated" net (which would mean an unexpected exception inside).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entra_ciam import AccessTokenValidator, Claims, InvalidTokenError
from tests.support.oidc_stub import running_stub
from tests.support.tokens import API_CLIENT_ID, TokenFactory, b64url, b64url_json

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INTERNAL = "could not be validated"
CLAIMS = ["aud", "iss", "tid", "exp", "nbf", "iat", "ver", "scp", "roles", "oid", "idtyp"]
B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[TokenFactory, AccessTokenValidator, str]]:
    factory = TokenFactory()
    with running_stub(factory) as stub:
        validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
        token = factory.mint()
        assert isinstance(validator.validate(token), Claims)
        yield factory, validator, token


def outcome(validator: AccessTokenValidator, token: object) -> Claims | InvalidTokenError:
    """Run validate and validate_async; both must agree and raise only InvalidTokenError."""
    results: list[Claims | InvalidTokenError] = []
    for run in (
        lambda: validator.validate(token),  # type: ignore[arg-type]
        lambda: asyncio.run(validator.validate_async(token)),  # type: ignore[arg-type]
    ):
        try:
            results.append(run())
        except InvalidTokenError as exc:
            assert INTERNAL not in exc.description, exc.description
            assert exc.status_code == 401
            results.append(exc)
    sync, async_ = results
    assert type(sync) is type(async_)
    return sync


@FUZZ
@given(st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-=]*"))
def test_arbitrary_strings(setup: Any, text: str) -> None:
    _factory, validator, _token = setup
    assert isinstance(outcome(validator, text), InvalidTokenError)


@FUZZ
@given(st.binary(max_size=64) | st.integers() | st.none() | st.lists(st.text(max_size=5)))
def test_non_strings(setup: Any, value: object) -> None:
    _factory, validator, _token = setup
    assert isinstance(outcome(validator, value), InvalidTokenError)


@FUZZ
@given(
    st.data(),
    st.sampled_from(["replace", "insert", "delete", "swap", "truncate", "segment"]),
)
def test_mutated_real_tokens(setup: Any, data: st.DataObject, how: str) -> None:
    _factory, validator, token = setup
    index = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from(B64_CHARS + ".=+/ \n\x00é"))
    if how == "replace":
        mutated = token[:index] + char + token[index + 1 :]
    elif how == "insert":
        mutated = token[:index] + char + token[index:]
    elif how == "delete":
        mutated = token[:index] + token[index + 1 :]
    elif how == "swap":
        parts = token.split(".")
        order = data.draw(st.permutations(range(3)))
        mutated = ".".join(parts[i] for i in order)
    elif how == "truncate":
        mutated = token[:index]
    else:
        parts = token.split(".")
        which = data.draw(st.integers(0, 2))
        parts[which] = b64url(json.dumps(data.draw(json_values)).encode())
        mutated = ".".join(parts)
    result = outcome(validator, mutated)
    if mutated == token:
        assert isinstance(result, Claims)
    else:
        assert isinstance(result, InvalidTokenError), "a changed token was accepted"


@FUZZ
@given(st.dictionaries(st.sampled_from(CLAIMS), json_values, max_size=5))
def test_signed_tokens_with_arbitrary_claim_values(setup: Any, overrides: dict[str, Any]) -> None:
    factory, validator, _token = setup
    assert set(overrides) <= set(CLAIMS)
    result = outcome(validator, factory.mint(factory.claims(**overrides)))
    if isinstance(result, Claims):
        for name, value in overrides.items():
            if value is not None:
                assert result.to_dict()[name] == value


@FUZZ
@given(
    st.dictionaries(st.text(max_size=6), json_values, max_size=5),
    json_values,
)
def test_signed_tokens_with_arbitrary_header_and_payload(
    setup: Any, header: dict[str, Any], payload: Any
) -> None:
    factory, validator, _token = setup
    head = {**factory.header(), **header}
    signing_input = f"{b64url_json(head)}.{b64url_json(payload)}".encode()
    token = f"{signing_input.decode()}.{b64url(factory.key.sign(signing_input))}"
    assert isinstance(outcome(validator, token), InvalidTokenError)
