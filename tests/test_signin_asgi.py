"""Sign-in end to end with Starlette behind ``entra_ciam.asgi.SignInMiddleware``.

Real MSAL against the local emulator, the todo API as the protected endpoint, uvicorn serving the
app, async and sync endpoints, and the middleware inside Starlette's own error handling.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import signin_scenarios as scenarios
from tests.support.signin_apps import starlette_app
from tests.support.webapps import Stack, signin_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("signin-asgi")
    with signin_stack("asgi", tmp, starlette_app) as running:
        yield running


def test_sign_in_then_the_session_survives(stack: Stack) -> None:
    scenarios.sign_in_and_session_survives(stack)


def test_user_token_is_accepted_by_the_validator_and_the_api(stack: Stack) -> None:
    scenarios.user_token_is_accepted(stack)


def test_incremental_consent_redirects_and_returns(stack: Stack) -> None:
    scenarios.incremental_consent_redirects_and_returns(stack)


def test_redirect_happens_even_if_the_view_swallows_the_exception(stack: Stack) -> None:
    scenarios.redirect_happens_even_if_the_view_swallows(stack)


def test_anonymous_token_request_signs_in_first(stack: Stack) -> None:
    scenarios.anonymous_token_request_signs_in_first(stack)


def test_sign_out_clears_everything(stack: Stack) -> None:
    scenarios.sign_out_clears_everything(stack)


def test_redis_going_away_is_a_503_page(tmp_path: Path) -> None:
    scenarios.redis_going_away_is_a_503_page("asgi", tmp_path, starlette_app)
