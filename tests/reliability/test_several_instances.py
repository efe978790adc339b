"""Issue 7, several instances: two web apps and two API workers serve one person as one site.

Real separate processes: web apps A and B (``python -m examples.flask_todo``) keep their sessions
in the Redis at 127.0.0.1:6379, under a key prefix of this test's own, with one session secret;
A calls API worker 1 and B calls API worker 2 (``python -m examples.starlette_api``), which share
one SQLite file. The emulator runs in this process. One person signs in on A; from then on every
request goes to the other web app than the one before (a cookie names a host, not a port, so
one cookie jar serves both, as one domain behind a load balancer would), and therefore to the
other API worker: adding, viewing and removing items must all succeed, each item listed exactly
once, first one request at a time, then under concurrent load. Signing out on A ends the session
for B too (even with the old cookie replayed), and no key of the session is left in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from entra_ciam import EntraConfig
from entra_ciam.devidp import DevIdp, defaults
from entra_ciam.devidp.testing import running_devidp
from entra_ciam.sessions import SessionManager
from tests.support.external import require_redis
from tests.support.load import Req, load_clients, load_seconds, record, run_load
from tests.support.todo_api import free_port, start_api_process, start_web_process, stop_process
from tests.support.todo_stack import config_env, csrf_of, descriptions, item_ids, web_config
from tests.support.webapps import AppBrowser, Stack

pytestmark = pytest.mark.load

ADDS = 36  # items added one request at a time; every third one is removed again


@contextlib.contextmanager
def redis_keys(prefix: str) -> Iterator[Any]:
    """A client of the shared Redis that lists the keys under ``prefix``, all deleted at the end."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        yield lambda: sorted(key.decode() for key in client.scan_iter(match=prefix + "*"))
    finally:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


@dataclasses.dataclass
class Instances:
    idp: DevIdp
    webs: list[str]  # web apps A and B
    apis: list[str]  # API workers 1 and 2
    api_processes: list[subprocess.Popen[bytes]]


@contextlib.contextmanager
def several_instances(tmp: Path, store: str) -> Iterator[Instances]:
    """The emulator, API workers 1 and 2, web apps A (calling 1) and B (calling 2)."""
    ports = [free_port(), free_port()]
    webs = [f"http://127.0.0.1:{port}" for port in ports]
    with (
        running_devidp(
            extra_redirect_uris=[f"{web}/auth/redirect" for web in webs],
            extra_post_logout_redirect_uris=[f"{web}/" for web in webs],
        ) as idp,
        contextlib.ExitStack() as processes,
    ):
        api_env = config_env(
            EntraConfig(
                authority=idp.authority,
                api_client_id=defaults.TODO_API_CLIENT_ID,
                ca_bundle=idp.ca_bundle,
            )
        )
        apis, api_processes = [], []
        for _ in range(2):  # one after the other: the first one creates the file's schema
            proc, api = start_api_process(api_env, tmp / "todo.sqlite3")
            processes.callback(stop_process, proc)
            apis.append(api)
            api_processes.append(proc)
        session_secret = web_config(idp, webs[0]).session_secret
        assert session_secret is not None
        for name, port, web, api in zip("AB", ports, webs, apis, strict=True):
            config = web_config(
                idp,
                web,
                session_store=store,
                session_secret=session_secret,  # one key for both, as in production
            )
            env = {**config_env(config), "TODO_API_BASE_URL": api}
            proc, _ = start_web_process(env, port, tmp / f"web-{name}.log")
            processes.callback(stop_process, proc)
        yield Instances(idp, webs, apis, api_processes)


def test_two_web_apps_and_two_api_workers_serve_one_user_and_share_the_sign_out(
    tmp_path: Path,
) -> None:
    require_redis()
    pytest.importorskip("redis")
    prefix = f"test-several-{secrets.token_hex(4)}:"
    store = f"redis://127.0.0.1:6379/0?prefix={prefix}&timeout=2"
    statuses: Counter[str] = Counter()  # "A 303", "B 200"...
    failures: list[str] = []
    turn = iter(range(1 << 30))  # even: web app A, odd: web app B

    with (
        redis_keys(prefix) as keys,
        several_instances(tmp_path, store) as instances,
        AppBrowser(Stack(instances.idp, instances.webs[0], "", None, tmp_path)) as browser,
    ):
        idp, webs = instances.idp, instances.webs

        def send(method: str, path: str, **kwargs: Any) -> tuple[str, httpx.Response]:
            """To the other web app than last time."""
            index = next(turn) % 2
            name = "AB"[index]
            response = browser.client.request(method, webs[index] + path, **kwargs)
            statuses[f"{name} {response.status_code}"] += 1
            return name, response

        def expect(ok: bool, what: str) -> None:
            if not ok:
                failures.append(what)

        # Signed in on A (the emulator's pages filled in as a person would)...
        page = browser.open("/todos")
        assert page.status_code == 200 and "Your todo list" in page.text, page.text
        sid = browser.session_cookie()
        assert sid is not None
        assert prefix + SessionManager.store_key(sid) in keys()
        # ...and on B without signing in again. Both instances make the same form token.
        on_b = browser.client.get(f"{webs[1]}/todos")
        assert on_b.status_code == 200 and "Your todo list" in on_b.text, on_b.text
        token = csrf_of(page)
        assert csrf_of(on_b) == token

        # One request at a time, each to the other instance.
        expected: list[str] = []
        for i in range(ADDS):
            text = f"several instances {i}"
            name, added = send("POST", "/todos", data={"description": text, "csrf_token": token})
            expect(added.status_code == 303, f"add {i} on {name}: {added.status_code}")
            expected.append(text)
            name, listed = send("GET", "/todos")
            shown = descriptions(listed)
            expect(listed.status_code == 200, f"list after add {i} on {name}: {listed.status_code}")
            expect(shown == expected, f"list after add {i} on {name}: {shown}")
            if i % 3 == 2:
                gone = expected.pop(len(expected) // 2)
                item_id = item_ids(listed).get(gone, 0)
                name, removed = send("POST", f"/todos/{item_id}/remove", data={"csrf_token": token})
                expect(
                    removed.status_code == 303, f"remove {gone} on {name}: {removed.status_code}"
                )
        name, final = send("GET", "/todos")
        expect(descriptions(final) == expected, f"final list on {name}: {descriptions(final)}")
        sequential = sum(statuses.values())

        # Then concurrently: the same person's requests from several tabs, alternating too.
        cookie = [("Cookie", f"entra_ciam_session={sid}")]

        def next_request(n: int) -> Req:
            web = n % 2
            return Req("AB"[web], path=f"{webs[web]}/todos", headers=cookie)

        def judge(req: Req, response: httpx.Response) -> str | None:
            if response.status_code != 200:
                return f"status {response.status_code}"
            shown = descriptions(response)
            if shown != expected:
                return f"{len(shown)} items listed, {len(expected)} expected"
            return None

        load = asyncio.run(
            run_load(
                webs[0],
                next_request,
                judge,
                seconds=load_seconds(4.0),
                clients=load_clients(8),
            )
        )
        print(load.summary())

        # B's calls went to API worker 2 and A's to worker 1: with worker 2 gone, only B notices.
        stop_process(instances.api_processes[1])
        without_2 = browser.client.get(f"{webs[1]}/todos")
        assert without_2.status_code == 503, without_2.text
        assert "The todo list service cannot be reached" in without_2.text
        with_1 = browser.client.get(f"{webs[0]}/todos")
        assert with_1.status_code == 200 and descriptions(with_1) == expected, with_1.text

        # Sign-out on A...
        out = browser.client.get(f"{webs[0]}/auth/signout")
        assert out.status_code == 302 and out.headers["location"].startswith(idp.pages_url)
        back = browser.client.get(out.headers["location"])  # the emulator ends its session
        assert back.status_code in (302, 303), back.text
        assert back.headers["location"].startswith(f"{webs[0]}/")
        # ...is seen by B: its home page is the signed-out one, its pages ask to sign in...
        home = browser.client.get(f"{webs[1]}/")
        assert home.status_code == 200
        assert "Hi Ada" not in home.text and 'href="/auth/signin?next=/todos"' in home.text
        todos = browser.client.get(f"{webs[1]}/todos")
        assert todos.status_code == 302
        assert todos.headers["location"].startswith("/auth/signin?next=")
        # ...even for the old cookie replayed: the session is gone from the store...
        browser.set_session_cookie(sid)
        replayed = browser.client.get(f"{webs[1]}/todos")
        assert replayed.status_code == 302, replayed.text
        assert replayed.headers["location"].startswith("/auth/signin?next=")
        # ...with nothing of it left in Redis.
        left = keys()

    requests = sequential + load.requests
    failed = len(failures) + load.failed
    record(
        "several-instances",
        instances={"web": 2, "api": 2},
        requests=requests,
        failed=failed,
        sequential={"requests": sequential, "failed": len(failures), "statuses": dict(statuses)},
        concurrent=load.figures(),
        items_added=ADDS,
        items_left=len(expected),
        keys_left_after_sign_out=len(left),
    )
    assert not failures, failures[:5]
    assert load.failed == 0, load.failures
    assert min(load.kinds["A"], load.kinds["B"]) > 0, load.kinds
    assert left == [], left
