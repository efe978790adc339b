"""Where a user may be sent after sign-in (entra_ciam.signin.returnpath): each refusal, by reason.

tests/test_signin_flow.py checks a list of accepted and refused paths; here every rule is checked
on its own, with the reason it gives, at its limits (length, decoding rounds), so that a rule
dropped or moved by one (issue 16, point 8: mutation testing) fails a test.
"""

from __future__ import annotations

from typing import Any

import pytest

from entra_ciam.signin.returnpath import (
    MAX_LENGTH,
    UnsafeReturnPathError,
    check_return_path,
    is_safe_return_path,
)


def refused(value: Any) -> str:
    with pytest.raises(UnsafeReturnPathError) as info:
        check_return_path(value)
    assert not is_safe_return_path(value)
    return str(info.value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        (None, "is empty"),
        (b"/todos", "is empty"),  # not a string at all
        ("todos", "must start with '/'"),
        ("https://evil.example/", "must start with '/'"),
        ("//evil.example", "names another host"),
        ("/\\evil.example", "backslash"),
        ("/%5Cevil.example", "backslash"),  # once decoded
        ("/\t/evil.example", "control characters"),
        ("/%0A/evil.example", "control characters"),
        ("/\u202e/moc.elpmaxe", "control characters"),
        ("%2F%2Fevil.example", "must start with '/'"),  # as received
        ("/%2F/evil.example", "names another host"),  # decoded once: "///evil.example"
        # Decoded twice ("%25" is "%"): "/%2F%2Fevil.example", then "///evil.example".
        ("/%252F%252Fevil.example", "names another host"),
        ("/%25252F%25252Fevil.example", "names another host"),  # three rounds
    ],
)
def test_each_rule_refuses_with_its_reason(value: Any, reason: str) -> None:
    assert reason in refused(value)


def test_the_length_limit_is_exact() -> None:
    longest = "/" + "a" * (MAX_LENGTH - 1)
    assert check_return_path(longest) == longest
    assert f"longer than {MAX_LENGTH} characters" in refused(longest + "a")
    assert MAX_LENGTH == 2048


def test_the_length_limit_holds_once_encoded() -> None:
    """A path accepted when a sign-in starts is kept encoded and checked again when the user
    comes back: 400 characters "é" (2,400 encoded) passed the first check and failed the
    second, so the user landed on the home page instead, with a flow cookie of 3.7 KB."""
    longest = "/" + "\u00e9" * ((MAX_LENGTH - 1) // 6) + "a" * ((MAX_LENGTH - 1) % 6)
    encoded = check_return_path(longest)
    assert len(encoded) == MAX_LENGTH and check_return_path(encoded) == encoded
    assert "once percent-encoded" in refused(longest + "a")
    assert "once percent-encoded" in refused("/" + "\u00e9" * 400)


def test_three_rounds_of_encoding_are_read_and_a_fourth_is_refused() -> None:
    # "A" percent-encoded, then its "%" encoded again and again.
    encoded = ["/%41", "/%2541", "/%252541"]
    for value in encoded:  # one, two and three rounds: decoded to "/A", and kept as given
        assert check_return_path(value) == value
        assert is_safe_return_path(value)
    assert "encoded too many times" in refused("/%25252541")


def test_the_value_is_kept_but_made_ready_for_a_location_header() -> None:
    assert check_return_path("/todos?page=2&q=a%20b") == "/todos?page=2&q=a%20b"
    assert check_return_path("/café?q=ü#section") == "/caf%C3%A9?q=%C3%BC"
    assert check_return_path("/a b") == "/a%20b"
    assert check_return_path("/") == "/"
    assert is_safe_return_path("/todos")
