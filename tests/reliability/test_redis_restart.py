"""Issue 7, Redis restarted under a running web app: people are asked to sign in again, never a 500.

Each web app keeps its sessions in a redis-server of the test's own (a child process on a free
port, nothing persisted). One person signs in; while a bounded load of their requests runs, Redis
is killed (SIGKILL) and then started again, empty, on the same port. Every answer must be one of
three, each a clear one: the signed-in page (before the kill), a 503 page saying the session store
is unavailable and to try again (while Redis is down), or "signed out" (after the restart: the old
cookie names a session nobody has any more, so pages send the person to sign in). Never a 500.
Signing in again then works, and the person finds their todo list as they left it.

Run against the Flask todo example as its own process (``python -m examples.flask_todo``), and
against a Starlette app behind ``entra_ciam.asgi.SignInMiddleware`` (tests/support/signin_apps.py).
``ENTRA_CIAM_LOAD_SECONDS`` sets the length of each run.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from entra_ciam import EntraConfig
from entra_ciam.devidp import defaults
from entra_ciam.devidp.testing import running_devidp
from tests.support.external import RedisChild
from tests.support.load import Fault, LoadResult, Req, load_clients, load_seconds, record, run_load
from tests.support.signin_apps import starlette_app
from tests.support.todo_api import free_port, serving, start_web_process, stop_process
from tests.support.todo_stack import ADA, config_env, csrf_of, descriptions, web_config
from tests.support.webapps import AppBrowser, Stack, signin_stack

pytestmark = pytest.mark.load

ADA_EMAIL, ADA_NAME = ADA[0], ADA[2]
KEPT = "written before Redis went away"  # an item in the todo API, which Redis does not hold
SIGNED_IN, STORE_DOWN, SIGNED_OUT = "signed in", "store unavailable", "signed out"


@dataclasses.dataclass(frozen=True)
class Site:
    """A running web app: where it is, the person's browser, and how to read its answers."""

    name: str
    base: str
    browser: AppBrowser
    paths: tuple[str, ...]  # what the signed-in person keeps asking for
    signed_in: Callable[[str, httpx.Response], bool]
    signed_out: Callable[[str, httpx.Response], bool]


def sent_to_sign_in(response: httpx.Response) -> bool:
    """A redirect to the app's sign-in route, which comes back to the page asked for."""
    location = response.headers.get("location", "")
    return response.status_code == 302 and location.startswith("/auth/signin?next=%2F")


def store_unavailable(response: httpx.Response) -> bool:
    """The library's 503 page for a session store that is gone."""
    return (
        response.status_code == 503
        and response.headers.get("content-type", "").startswith("text/html")
        and bool(response.headers.get("retry-after"))
        and "Sessions cannot be stored right now" in response.text
        and "Please try again in a moment" in response.text
    )


# -- the two web apps ---------------------------------------------------------------------------


@contextlib.contextmanager
def flask_todo_process(tmp: Path, store: str) -> Iterator[Site]:
    """The todo API (in a thread), the Flask todo web app (a process) on ``store``, signed in."""
    from examples.starlette_api import create_app as create_api

    port = free_port()
    web = f"http://127.0.0.1:{port}"
    with running_devidp(
        extra_redirect_uris=[f"{web}/auth/redirect"], extra_post_logout_redirect_uris=[f"{web}/"]
    ) as idp:
        api_config = EntraConfig(
            authority=idp.authority,
            api_client_id=defaults.TODO_API_CLIENT_ID,
            ca_bundle=idp.ca_bundle,
        )
        with serving(create_api(api_config, db_path=tmp / "todo.sqlite3")) as api:
            env = {
                **config_env(web_config(idp, web, session_store=store)),
                "TODO_API_BASE_URL": api,
            }
            proc, _ = start_web_process(env, port, tmp / "web.log")
            try:
                with AppBrowser(Stack(idp, web, api, None, tmp)) as browser:
                    page = browser.open("/todos")
                    assert page.status_code == 200, page.text
                    added = browser.client.post(
                        f"{web}/todos", data={"description": KEPT, "csrf_token": csrf_of(page)}
                    )
                    assert added.status_code == 303, added.text
                    yield Site(
                        "flask-todo-process",
                        web,
                        browser,
                        ("/todos", "/profile", "/"),
                        flask_todo_signed_in,
                        flask_todo_signed_out,
                    )
            finally:
                stop_process(proc)


def flask_todo_signed_in(path: str, response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    if path == "/todos":
        return descriptions(response) == [KEPT]
    if path == "/profile":
        return ADA_EMAIL in response.text
    return "Hi Ada" in response.text


def flask_todo_signed_out(path: str, response: httpx.Response) -> bool:
    if path == "/":  # the public home page, offering to sign in
        return (
            response.status_code == 200
            and "Hi Ada" not in response.text
            and 'href="/auth/signin?next=/todos"' in response.text
        )
    return sent_to_sign_in(response)


@contextlib.contextmanager
def starlette_signin_app(tmp: Path, store: str) -> Iterator[Site]:
    """tests/support/signin_apps.py's Starlette app (in a thread) on ``store``, signed in."""

    def build(stack: Stack) -> Any:
        return starlette_app(stack, config=stack.config(session_store=store))

    with signin_stack("asgi", tmp, build) as stack, stack.browser() as browser:
        assert browser.sign_in().status_code == 200
        yield Site(
            "starlette-signin-middleware",
            stack.base,
            browser,
            ("/me", "/todos", "/"),
            starlette_signed_in,
            starlette_signed_out,
        )


def starlette_signed_in(path: str, response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    body = response.json()
    if path == "/me":
        return bool(body.get("name") == ADA_NAME)
    if path == "/todos":
        return bool(body.get("status") == 200)
    return bool(body == {"user": ADA_NAME})


def starlette_signed_out(path: str, response: httpx.Response) -> bool:
    if path == "/":
        return response.status_code == 200 and response.json() == {"user": None}
    return sent_to_sign_in(response)


SITES = {"flask-todo-process": flask_todo_process, "starlette": starlette_signin_app}


# -- the run ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Timeline:
    """When each answer came and what it was; when each fault began and ended."""

    answers: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    marks: dict[str, float] = dataclasses.field(default_factory=dict)

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def between(self, start: float, end: float) -> Counter[str]:
        """What the answers that arrived in [start, end) were."""
        whens = [when for when, _ in self.answers]  # appended in time order
        lo, hi = bisect.bisect_left(whens, start), bisect.bisect_left(whens, end)
        return Counter(what for _, what in self.answers[lo:hi])


@pytest.mark.parametrize("site_name", list(SITES))
async def test_redis_killed_and_restarted_empty_under_load(site_name: str, tmp_path: Path) -> None:
    pytest.importorskip("redis")
    seconds = load_seconds(9.0)
    with RedisChild() as redis, SITES[site_name](tmp_path, f"{redis.url}?timeout=1") as site:
        old_sid = site.browser.session_cookie()
        assert old_sid is not None
        cookie = [("Cookie", f"entra_ciam_session={old_sid}")]
        timeline = Timeline()

        def next_request(n: int) -> Req:
            path = site.paths[n % len(site.paths)]
            return Req(path, path=path, headers=cookie)  # the old cookie, whatever happens

        def judge(req: Req, response: httpx.Response) -> str | None:
            if site.signed_in(req.path, response):
                what = SIGNED_IN
            elif store_unavailable(response):
                what = STORE_DOWN
            elif site.signed_out(req.path, response):
                what = SIGNED_OUT
            else:
                what = f"status {response.status_code}"
            timeline.answers.append((time.monotonic(), what))
            return None if what in (SIGNED_IN, STORE_DOWN, SIGNED_OUT) else what

        def kill() -> None:
            timeline.mark("kill")
            redis.stop()
            timeline.mark("killed")

        def restart() -> None:
            timeline.mark("restart")
            redis.start()  # same port, empty
            timeline.mark("restarted")

        result: LoadResult = await run_load(
            site.base,
            next_request,
            judge,
            seconds=seconds,
            clients=load_clients(8),
            faults=[Fault(1 / 3, "redis killed", kill), Fault(2 / 3, "redis restarted", restart)],
        )
        print(result.summary())

        # Signing in again works, and what the API holds is still there.
        again = site.browser.open(site.paths[0])
        new_sid = site.browser.session_cookie()
        signed_in_again = site.signed_in(site.paths[0], again) and new_sid not in (None, old_sid)

    # An answer that came more than the slowest request's time after a fault ended was for a
    # request sent after it: it must show the new state. Answers nearer the faults may show
    # either side (they are still one of the three clear answers: the judge saw to that).
    marks, slack = timeline.marks, result.max_latency + 0.05
    before = timeline.between(0, marks["kill"])
    down = timeline.between(marks["killed"] + slack, marks["restart"])
    after = timeline.between(marks["restarted"] + slack, float("inf"))
    record(
        "redis-restart",
        app=site_name,
        **result.figures(),
        answers=dict(Counter(what for _, what in timeline.answers)),
        before_kill=dict(before),
        while_down=dict(down),
        after_restart=dict(after),
        signed_in_again=signed_in_again,
    )
    assert result.failed == 0, result.failures
    assert all(status < 500 or status == 503 for status in result.statuses), result.statuses
    assert set(before) == {SIGNED_IN}, before
    assert set(down) == {STORE_DOWN}, down
    assert set(after) == {SIGNED_OUT}, after
    assert signed_in_again, (again.status_code, again.text[:500])
