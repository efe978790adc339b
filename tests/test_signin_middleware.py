"""Sign-in end to end behind ``entra_ciam.wsgi.SignInMiddleware`` (Flask on a threaded Werkzeug
server) and ``entra_ciam.asgi.SignInMiddleware`` (Starlette on uvicorn): one suite, both kinds.

Real MSAL against the local emulator, the todo API as the protected endpoint, Flask configured as
in production (its own error handler, exceptions not propagated) and Starlette with the
middleware inside its own error handling, async and sync endpoints.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import signin_scenarios as scenarios
from tests.support.external import require_redis
from tests.support.signin_apps import BUILDERS, flask_app
from tests.support.webapps import RoundRobin, Stack, signin_stack

KINDS = list(BUILDERS)  # wsgi: Flask, asgi: Starlette


@pytest.fixture(scope="module", params=KINDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    kind = str(request.param)
    tmp: Path = tmp_path_factory.mktemp(f"signin-{kind}")
    with signin_stack(kind, tmp, BUILDERS[kind]) as running:
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


@pytest.mark.parametrize("kind", KINDS)
def test_redis_going_away_is_a_503_page(kind: str, tmp_path: Path) -> None:
    scenarios.redis_going_away_is_a_503_page(kind, tmp_path, BUILDERS[kind])


# -- sessions in Redis: several instances (WSGI, behind a round-robin balancer) --------------------


def test_two_app_instances_share_one_session_through_redis(tmp_path: Path) -> None:
    require_redis()
    url = f"redis://127.0.0.1:6379/0?prefix=test-signin-{secrets.token_hex(4)}:"

    def two_instances(stack: Stack) -> RoundRobin:
        config = stack.config(session_store=url)  # one Fernet key for both, as in production
        return RoundRobin([flask_app(stack, config=config) for _ in range(2)])

    with signin_stack("wsgi", tmp_path, two_instances) as stack, stack.browser() as browser:
        balancer: RoundRobin = stack.late.app
        page = browser.sign_in()  # sign-in and redirect land on different instances
        assert page.status_code == 200
        names = {browser.get("/me").json()["name"] for _ in range(6)}
        assert names == {"Ada Lovelace"}
        assert browser.get("/todos").json()["status"] == 200
        assert min(balancer.served) >= 4
