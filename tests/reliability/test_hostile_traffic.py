"""Issue 7, point 2: good tokens mixed with the whole rejection catalogue, under load.

Every request carries its expected verdict: 200 for good tokens (users and apps), 403
insufficient_scope for a valid token without the scope, and for each entry of the validator's
rejection catalogue (tests/support/rejections.py) its own status and error code. Nothing may be a
5xx, and the memory of the process (API, validator caches and load clients together) stays flat.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from examples.starlette_api import create_app

from tests.support.load import Req, fetch, load_seconds, record, rss_bytes, run_load
from tests.support.rejections import (
    REQUEST_REJECTIONS,
    TOKEN_REJECTIONS,
    Tenant,
    challenge,
    fill,
    running_tenant,
)
from tests.support.todo_api import serving

pytestmark = pytest.mark.load

LIST = "/api/todolist"
GOOD_TOKENS = 400  # distinct, so the validated-token cache keeps filling during the run
RSS_GROWTH_BOUND = 64 * 1024 * 1024  # generous: a leak per request would pass it within seconds


@pytest.fixture
def tenant() -> Iterator[Tenant]:
    with running_tenant() as tenant:
        yield tenant


def catalogue(tenant: Tenant) -> list[tuple[Req, int, str | None]]:
    """(request, expected status, expected error code) for every bad case, made once."""
    cases: list[tuple[Req, int, str | None]] = []
    for rejection in TOKEN_REJECTIONS:
        token = rejection.make(tenant.factory)
        headers = [("Authorization", f"Bearer {token}")]
        cases.append(
            (Req(f"token:{rejection.id}", path=LIST, headers=headers), 401, "invalid_token")
        )
    good = tenant.user_token()
    for case in REQUEST_REJECTIONS:
        headers, query = fill(case, good)
        path = f"{LIST}?{query}" if query else LIST
        cases.append(
            (Req(f"request:{case.id}", path=path, headers=headers), case.status, case.error)
        )
    no_scope = tenant.user_token(scp="User.Read")
    cases.append(
        (
            Req(
                "scope:unrelated-scope",
                path=LIST,
                headers=[("Authorization", f"Bearer {no_scope}")],
            ),
            403,
            "insufficient_scope",
        )
    )
    read_only = tenant.app_token(["Todolist.Read.All"])
    cases.append(
        (
            Req(
                "scope:read-app-writes",
                method="POST",
                path=LIST,
                headers=[("Authorization", f"Bearer {read_only}")],
                json={"description": "x", "owner": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
            ),
            403,
            "insufficient_scope",
        )
    )
    return cases


async def test_mixed_hostile_traffic_every_verdict_right(tenant: Tenant, tmp_path: Path) -> None:
    good_user = [tenant.user_token() for _ in range(GOOD_TOKENS // 2)]
    good_app = [tenant.app_token(["Todolist.Read.All"]) for _ in range(GOOD_TOKENS // 2)]
    bad = catalogue(tenant)
    expected = {req.kind: (status, error) for req, status, error in bad}
    assert len(expected) == len(bad)  # ids are unique

    def next_request(n: int) -> Req:
        if n % 2:  # half the traffic is hostile, cycling through the whole catalogue
            return bad[(n // 2) % len(bad)][0]
        pool = good_user if n % 4 else good_app
        return Req("good", path=LIST, headers=[("Authorization", f"Bearer {pool[(n // 4) % 200]}")])

    def judge(req: Req, response: httpx.Response) -> str | None:
        if req.kind == "good":
            return None if response.status_code == 200 else f"status {response.status_code}"
        status, error = expected[req.kind]
        if response.status_code != status:
            return f"status {response.status_code}, expected {status}"
        params = challenge(response.headers.get("www-authenticate"))
        if params.get("error") != error:
            return f"error {params.get('error')!r}, expected {error!r}"
        if response.headers.get("cache-control") != "no-store":
            return "refusal without Cache-Control: no-store"
        if "Traceback" in response.text:
            return "stack trace in the body"
        return None

    app = create_app(validator=tenant.validator, db_path=tmp_path / "todo.sqlite3")
    with serving(app) as base:
        token = good_user[0]
        assert (await fetch(base + LIST, [("Authorization", f"Bearer {token}")])).status_code == 200
        # A short warm-up fills the caches and pools, so the figure after is growth, not setup.
        await run_load(base, next_request, judge, seconds=min(2.0, load_seconds() / 3))
        gc.collect()
        rss_before = rss_bytes()
        result = await run_load(base, next_request, judge)
        gc.collect()
        rss_after = rss_bytes()
    growth = rss_after - rss_before
    print(result.summary(), f"RSS {rss_before >> 20} -> {rss_after >> 20} MiB")
    record(
        "hostile-mix",
        **result.figures(),
        cases=len(bad) + 1,
        rss_before_mib=rss_before >> 20,
        rss_after_mib=rss_after >> 20,
    )
    assert result.failed == 0, result.failures
    assert not any(status >= 500 for status in result.statuses), result.statuses
    # Each case was tried; the whole catalogue went through more than once.
    assert set(result.kinds) == {"good", *expected}
    assert min(result.kinds.values()) >= 2
    assert growth < RSS_GROWTH_BOUND, f"RSS grew by {growth >> 20} MiB"
