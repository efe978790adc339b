"""The benchmark harness measures what it claims (bench/): behaviour only, never a time.

The signed-in page benchmark must measure a signed-in page: each app signs a user in through the
emulator and its page greets that user with the cookies and not without them. Without wrk the
HTTP parts report "not measured", never ratios. The token acquisition benchmark's variants agree
on the token and never call the token endpoint; the store benchmark reads signed-in sessions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench import acquire, run, signin_load, stores
from bench.signin_load import (
    FLASK_AUTHLIB,
    FLASK_IDENTITY,
    FLASK_MEMORY,
    FLASK_PLAIN,
    STARLETTE_MEMORY,
    Served,
    SignedInPages,
)

from tests.support.todo_api import ROOT

PAGES = (FLASK_PLAIN, FLASK_MEMORY, FLASK_IDENTITY, FLASK_AUTHLIB, STARLETTE_MEMORY)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    with SignedInPages(PAGES, tmp_path_factory.mktemp("pages")).running() as running:
        yield running


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.app)
def test_each_benchmarked_page_is_signed_in_with_its_cookies_only(
    served: dict[str, Served], page: signin_load.Page
) -> None:
    item = served[page.name]
    item.check()  # greets the user with the cookies; without them, not
    if page.signs_in:
        assert item.cookie
        assert item.headers == [f"Cookie: {item.cookie}"]
    else:
        assert item.headers == []


def test_the_check_fails_on_a_page_that_is_not_signed_in(served: dict[str, Served]) -> None:
    for page in (FLASK_MEMORY, FLASK_IDENTITY, FLASK_AUTHLIB, STARLETTE_MEMORY):
        item = served[page.name]
        stranger = Served(page, item.url, item.proc, cookie="session=nobody; entra_ciam_session=x")
        with pytest.raises(RuntimeError, match="not signed in"):
            stranger.check()


def test_without_wrk_signed_in_pages_are_not_measured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no wrk on it
    results, missing, _ = signin_load.run(signin_load.PAGES, 8, 1, 1)
    assert results == {}
    assert set(missing) == {p.name for p in signin_load.PAGES}
    checks = signin_load.ratios(results, missing)
    assert checks and all(c["ratio"] is None and c["met"] is None for c in checks.values())
    rows = run.http_rows({"ratios": checks}, {})
    assert all(row[1] == "not measured" and row[2] is None and row[4] is None for row in rows)


def test_without_wrk_the_api_load_benchmark_reports_not_measured(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "http_load.py"), "--json"],
        env={"PATH": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    part = json.loads(done.stdout)
    assert part["generator"] is None
    assert "wrk" in part["not_measured"]
    rows = run.http_rows(part, run.HTTP_LOAD_TARGETS)
    assert [row[0] for row in rows] == list(run.HTTP_LOAD_TARGETS)
    assert all(row[2] is None and row[4] is None for row in rows)


def test_token_acquisition_variants_agree_and_never_redeem() -> None:
    # measure() raises if the variants disagree on the token or one calls the token endpoint.
    best = acquire.measure(rounds=1, calls=3)
    assert set(best) >= {acquire.OURS, acquire.MEMO_MISS, acquire.IDENTITY}
    checks = acquire.checks(best)
    assert {c["target"] for c in checks.values()} >= {">= 5x", ">= 1.5x"}


def test_store_benchmark_reads_and_writes_signed_in_sessions(tmp_path: Path) -> None:
    data = stores.template_session()
    result = stores.measure("memory", data, clients=4, seconds=0.2, workdir=tmp_path)
    assert result["operations"] > 0
    assert result["failures"] == 0
    assert result["reread_p50_us"] > 0
    assert result["record_bytes"] > len(json.dumps(data)) // 2
    assert result["cookie_bytes"] > 43
