"""``current_claims()`` and ``current_user()`` behave alike: each raises when the middleware that
provides it did not handle the request, and gives its value (or, for the user, None when nobody
is signed in) when it did."""

from __future__ import annotations

import pytest

from entra_ciam import MissingTokenError, current_claims, current_user
from entra_ciam.claims import Claims
from entra_ciam.context import claims_context
from entra_ciam.signin.errors import SignInNotConfiguredError


def test_outside_any_middleware_both_raise() -> None:
    with pytest.raises(MissingTokenError):
        current_claims()
    with pytest.raises(SignInNotConfiguredError, match="SignInMiddleware"):
        current_user()


def test_inside_the_bearer_middleware_the_claims_are_there() -> None:
    claims = Claims({"oid": "x", "scp": "Todolist.Read"})
    with claims_context(claims):
        assert current_claims() is claims
    with pytest.raises(MissingTokenError):
        current_claims()  # and gone after the request
