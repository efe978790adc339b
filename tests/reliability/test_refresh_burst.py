"""Issue 13: one user, 64 concurrent requests, an expired access token: one refresh, no sign-out.

Real servers on 127.0.0.1 (see ``tests.support.burst``): Flask on Werkzeug's threaded server
with SQLite sessions, Starlette on uvicorn with memory sessions, and two Flask processes sharing
Redis with the requests alternating between them; the emulator as Entra behaves (a used refresh
token stays good) and with strict one-time refresh tokens. Redemptions are counted at the
emulator. Then Entra throttling: the token endpoint answers 429 with ``Retry-After`` (respx in
front of the real emulator); the burst meets it once and every request gets the 503 page.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import respx

from entra_ciam.devidp.testing import token_requests
from tests.support.burst import BURST, COOKIE, Site, burst, run_burst, sign_in, site
from tests.support.external import require_redis

pytestmark = pytest.mark.load


@pytest.mark.parametrize("mode", ["entra", "strict"])
@pytest.mark.parametrize("kind", ["flask", "starlette", "redis"])
def test_a_burst_of_64_costs_one_redemption_and_keeps_the_user_signed_in(
    kind: str, mode: str, tmp_path: Path
) -> None:
    if kind == "redis":
        require_redis()
        pytest.importorskip("redis")
    with site(kind, mode, tmp_path) as running:
        result = run_burst(running, kind, mode, tmp_path)
    assert result.redemptions == 1, result
    assert result.served == BURST, result.statuses
    assert result.tokens == 1, "every request got the one refreshed token"
    assert result.signed_in_after, result
    assert result.redemptions_after == 0, "the refreshed token serves the next request"


def _refreshes(running: Site) -> int:
    return token_requests(running.idp, reset=True)["requested"].get("refresh_token", 0)


def _throttling(answers: list[float], retry_after: int) -> respx.MockRouter:
    """The token endpoint answers its first request with 429 + Retry-After, then is the real one.

    ``answers`` collects when each 429 was given (monotonic clock); what passes on is counted by the emulator itself (respx
    may consult a pass-through route more than once per request). Every other request passes
    through untouched.
    """
    router = respx.mock(assert_all_called=False)

    def token_endpoint(request: httpx.Request) -> httpx.Response | httpx.Request:
        if not answers:
            answers.append(time.monotonic())
            body = {"error": "temporarily_unavailable", "error_description": "AADSTS50196"}
            return httpx.Response(429, headers={"Retry-After": str(retry_after)}, json=body)
        return request

    router.route(method="POST", path__regex=r"/oauth2/v2\.0/token$").mock(
        side_effect=token_endpoint
    )
    router.route().pass_through()
    return router


@pytest.mark.parametrize("kind", ["flask", "starlette"])
def test_throttled_token_endpoint_is_met_once_and_answered_with_503_not_a_sign_out(
    kind: str, tmp_path: Path
) -> None:
    retry_after = 3
    with site(kind, "strict", tmp_path) as running:
        cookie = sign_in(running, tmp_path)
        token_requests(running.idp, reset=True)
        answers: list[float] = []
        with _throttling(answers, retry_after):
            responses = asyncio.run(burst(running.webs, cookie))
            statuses = {r.status_code for r in responses}
            assert statuses == {503}, statuses
            waits = {r.headers.get("Retry-After") for r in responses}
            assert waits <= {str(s) for s in range(retry_after + 1)}, waits
            assert len(answers) == 1, "the burst met Entra's 429 once, and nothing was retried"
            assert _refreshes(running) == 0
            # While Entra asked us to wait, nothing more is sent.
            again = httpx.get(f"{running.webs[0]}/token", headers={"Cookie": f"{COOKIE}={cookie}"})
            assert again.status_code == 503, again.text
            assert len(answers) == 1
            time.sleep(max(0.0, answers[0] + retry_after + 0.1 - time.monotonic()))
            # Then the user is still signed in: the next burst gets tokens with one redemption.
            later = asyncio.run(burst(running.webs, cookie))
        assert [r.status_code for r in later] == [200] * BURST
        assert len(answers) == 1
        assert _refreshes(running) == 1


def test_a_short_retry_after_is_waited_out_when_allowed(tmp_path: Path) -> None:
    with site("flask", "strict", tmp_path, retry_after_limit=5) as running:
        cookie = sign_in(running, tmp_path)
        token_requests(running.idp, reset=True)
        answers: list[float] = []
        with _throttling(answers, retry_after=1):
            responses = asyncio.run(burst(running.webs, cookie))
        assert [r.status_code for r in responses] == [200] * BURST
        assert len(answers) == 1, "one throttled answer..."
        assert _refreshes(running) == 1, "...then one redemption after the wait"
