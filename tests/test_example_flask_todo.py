"""The Flask todo web app (examples/flask_todo) and ``entra-ciam demo``, over real HTTP.

The emulator, the todo API and the web app all run on loopback; a cookie-keeping HTTP client
fills in the emulator's pages the way a person would. Nothing of ours is mocked: a failing API is
a real server that fails. ``entra-ciam demo``, which runs this app, is tested in test_demo.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from examples.flask_todo import create_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from entra_ciam import ConfigError
from entra_ciam.devidp import defaults
from entra_ciam.devidp.testing import running_devidp
from entra_ciam.sessions import generate_key
from tests.support.todo_api import free_port, serving, start_example, stop_process
from tests.support.todo_stack import (
    ADA,
    ALAN,
    TodoStack,
    add,
    csrf_of,
    descriptions,
    item_ids,
    todo_stack,
    web_config,
)
from tests.support.webapps import AppBrowser

ROOT = Path(__file__).resolve().parents[1]
READ_SCOPE = "Todolist.Read"
WRITE_SCOPE = "Todolist.ReadWrite"


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TodoStack]:
    with todo_stack(tmp_path_factory.mktemp("flask-todo")) as running:
        yield running


@contextlib.contextmanager
def browser(stack: TodoStack, user: tuple[str, str, str] = ADA) -> Iterator[AppBrowser]:
    """A person's browser, signed in as ``user`` (on the home page)."""
    with AppBrowser(stack) as b:  # type: ignore[arg-type]
        response = b.open("/profile", user=user)
        assert response.status_code == 200, response.text
        yield b


def remove(b: AppBrowser, item_id: int, token: str | None = None) -> httpx.Response:
    token = token if token is not None else csrf_of(b.get("/todos"))
    return b.client.post(f"{b.stack.base}/todos/{item_id}/remove", data={"csrf_token": token})


def assert_friendly(response: httpx.Response) -> None:
    """A page for people: our layout, no stack trace, no framework error page."""
    assert "text/html" in response.headers["content-type"]
    assert "Contoso Todo" in response.text
    for leak in ("Traceback", 'File "', "Internal Server Error", "httpx.", "Exception"):
        assert leak not in response.text


# -- signed out ---------------------------------------------------------------------------------


def test_home_signed_out_offers_sign_in(stack: TodoStack) -> None:
    response = httpx.get(f"{stack.web}/")
    assert response.status_code == 200
    assert 'href="/auth/signin?next=/todos"' in response.text
    assert "Hi " not in response.text
    assert "/auth/signout" not in response.text


@pytest.mark.parametrize("path", ["/todos", "/profile"])
def test_pages_send_visitors_to_sign_in_and_back(stack: TodoStack, path: str) -> None:
    response = httpx.get(f"{stack.web}{path}")
    assert response.status_code == 302
    assert response.headers["location"] == f"/auth/signin?next=%2F{path[1:]}"


def test_post_while_signed_out_changes_nothing_and_asks_to_sign_in(stack: TodoStack) -> None:
    before = len(stack.recorder.calls)
    response = httpx.post(f"{stack.web}/todos", data={"description": "sneaky"})
    assert response.status_code == 302
    assert response.headers["location"].startswith("/auth/signin?next=")
    assert len(stack.recorder.calls) == before


# -- signed in ----------------------------------------------------------------------------------


def test_home_greets_the_signed_in_user_with_links(stack: TodoStack) -> None:
    with browser(stack) as b:
        page = b.get("/")
        assert page.status_code == 200
        assert "Hi Ada Lovelace" in page.text
        for link in ('href="/todos"', 'href="/profile"', 'href="/auth/signout"'):
            assert link in page.text
        assert "/auth/signin" not in page.text


def test_profile_shows_the_id_token_claims_as_a_table(stack: TodoStack) -> None:
    with browser(stack) as b:
        page = b.get("/profile")
    assert page.status_code == 200
    rows = dict(
        re.findall(
            r'<th scope="row"><code>([^<]+)</code></th><td class="value">([^<]*)</td>', page.text
        )
    )
    assert rows["name"] == "Ada Lovelace"
    assert rows["preferred_username"] == ADA[0]
    assert rows["tid"] == defaults.TENANT_ID
    assert rows["aud"] == defaults.WEB_APP_CLIENT_ID
    assert re.fullmatch(r"\d+ \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", rows["iat"])
    assert "nonce" not in rows


def test_list_add_and_remove_items(stack: TodoStack) -> None:
    with browser(stack) as b:
        first = add(b, "  Buy oat milk  ")
        assert first.status_code == 303 and first.headers["location"] == "/todos"
        assert add(b, "Call the plumber").status_code == 303
        page = b.get("/todos")
        assert page.status_code == 200
        assert {"Buy oat milk", "Call the plumber"} <= set(descriptions(page))
        gone = item_ids(page)["Buy oat milk"]
        assert remove(b, gone).status_code == 303
        page = b.get("/todos")
        assert "Buy oat milk" not in descriptions(page)
        assert "Call the plumber" in descriptions(page)


def test_scopes_are_asked_for_when_needed_read_to_view_readwrite_to_change(
    stack: TodoStack,
) -> None:
    with AppBrowser(stack) as b:  # type: ignore[arg-type]
        b.open("/profile")
        authorize = [u for u in b.visited if "/oauth2/v2.0/authorize" in u]
        assert authorize and "Todolist" not in authorize[0]  # sign-in asks for no API scope
        before = len(stack.recorder.calls)
        page = b.get("/todos")
        assert page.status_code == 200
        assert add(b, "Water the plants", csrf_of(page)).status_code == 303
        calls = stack.recorder.calls[before:]
    assert ("GET", "/api/todolist", READ_SCOPE) in calls
    assert ("POST", "/api/todolist", WRITE_SCOPE) in calls
    # Every read made only for viewing used the narrower scope.
    assert calls[0] == ("GET", "/api/todolist", READ_SCOPE)


def test_the_api_reason_is_shown_when_it_refuses_an_item(stack: TodoStack) -> None:
    with browser(stack) as b:
        response = add(b, "x" * 501)
        assert response.status_code == 400
        assert_friendly(response)
        assert "at most 500" in response.text
        assert 'value="' + "x" * 501 + '"' in response.text  # what was typed is kept
        blank = add(b, "   ")
        assert blank.status_code == 400
        assert "The todo list did not accept that" in blank.text


def test_users_see_and_remove_only_their_own_items(stack: TodoStack) -> None:
    with browser(stack, ADA) as ada:
        assert add(ada, "Ada's secret plan").status_code == 303
        ada_item = item_ids(ada.get("/todos"))["Ada's secret plan"]
    with browser(stack, ALAN) as alan:
        page = alan.get("/todos")
        assert "Ada's secret plan" not in page.text
        attempt = remove(alan, ada_item)
        assert attempt.status_code == 404
        assert_friendly(attempt)
        assert "not on your list" in attempt.text
    with browser(stack, ADA) as ada:
        assert "Ada's secret plan" in descriptions(ada.get("/todos"))


# -- CSRF ---------------------------------------------------------------------------------------


def test_forms_without_the_right_token_are_refused_and_change_nothing(stack: TodoStack) -> None:
    with browser(stack, ALAN) as alan:
        alan_token = csrf_of(alan.get("/todos"))
    with browser(stack, ADA) as ada:
        good = csrf_of(ada.get("/todos"))
        attempts = {
            "missing": ada.client.post(f"{stack.web}/todos", data={"description": "forged 1"}),
            "wrong": add(ada, "forged 2", "0" * 64),
            "another user's": add(ada, "forged 3", alan_token),
            "cross-site origin": add(ada, "forged 4", good, Origin="http://evil.example"),
            "null origin": add(ada, "forged 5", good, Origin="null"),
        }
        for name, response in attempts.items():
            assert response.status_code == 400, name
            assert_friendly(response)
            assert "nothing was changed" in response.text, name
        item = next(iter(item_ids(ada.get("/todos")).values()), None)
        if item is not None:
            refused = ada.client.post(f"{stack.web}/todos/{item}/remove", data={})
            assert refused.status_code == 400
            assert item in item_ids(ada.get("/todos")).values()
        listed = descriptions(ada.get("/todos"))
    assert not [d for d in listed if d.startswith("forged")]


def test_a_new_sign_in_gets_a_new_token(stack: TodoStack) -> None:
    with browser(stack) as first, browser(stack) as second:
        assert csrf_of(first.get("/todos")) != csrf_of(second.get("/todos"))


# -- failures are pages, never stack traces -----------------------------------------------------


def failing_api(status: int, body: bytes, content_type: str = "application/json") -> Starlette:
    async def answer(request: Request) -> Response:
        return Response(body, status_code=status, media_type=content_type)

    return Starlette(
        routes=[Route("/{path:path}", answer, methods=["GET", "POST", "DELETE", "PUT"])]
    )


@contextlib.contextmanager
def app_calling(stack: TodoStack, api_base_url: str) -> Iterator[None]:
    """The web app, for the duration, calling another API (same settings, same sessions)."""
    previous = stack.late.app
    stack.late.app = create_app(stack.web_config, api_base_url=api_base_url, store=stack.store)
    try:
        yield
    finally:
        stack.late.app = previous


def test_api_down_gives_a_friendly_503(stack: TodoStack) -> None:
    with browser(stack) as b:
        token = csrf_of(b.get("/todos"))
        with app_calling(stack, f"http://127.0.0.1:{free_port()}"):  # the API goes away
            page = b.get("/todos")
            assert page.status_code == 503
            assert_friendly(page)
            assert "cannot be reached right now" in page.text
            assert 'action="/todos"' not in page.text  # no form for a list we cannot show
            for response in (add(b, "never stored", token), remove(b, 1, token)):
                assert response.status_code == 503
                assert_friendly(response)
                assert "cannot be reached right now" in response.text


@pytest.mark.parametrize(
    ("status", "body", "content_type", "page_status", "says"),
    [
        (500, b"Traceback (most recent call last): boom", "text/plain", 502, "had a problem"),
        (503, b'{"error": "down"}', "application/json", 503, "unavailable right now"),
        (401, b'{"error": "invalid_token"}', "application/json", 502, "did not accept your"),
        (403, b'{"error": "insufficient_scope"}', "application/json", 403, "not allowed"),
        (200, b"<html>not json</html>", "text/html", 502, "does not understand"),
        (200, b'[{"id": "1"}]', "application/json", 502, "does not understand"),
    ],
)
def test_api_errors_become_friendly_messages(
    stack: TodoStack, status: int, body: bytes, content_type: str, page_status: int, says: str
) -> None:
    with (
        serving(failing_api(status, body, content_type)) as broken,
        app_calling(stack, broken),
        browser(stack) as b,
    ):
        page = b.get("/todos")
    assert page.status_code == page_status
    assert_friendly(page)
    assert says in page.text
    assert "boom" not in page.text


def test_entra_refusing_a_token_gives_a_friendly_page(stack: TodoStack) -> None:
    with browser(stack) as b:  # signed in, but no token for the API asked yet
        previous = stack.late.app
        # The same site, but its client secret was rotated at Entra: the refresh is refused.
        wrong = stack.web_config.replace(client_secret="not-the-secret~anymore")
        stack.late.app = create_app(wrong, api_base_url=stack.api, store=stack.store)
        try:
            before = len(stack.recorder.calls)
            page = b.get("/todos")
        finally:
            stack.late.app = previous
    assert page.status_code == 502
    assert_friendly(page)
    assert "could not get permission" in page.text
    assert len(stack.recorder.calls) == before  # the API was never called without a token


def test_unknown_pages_and_methods_get_friendly_pages(stack: TodoStack) -> None:
    missing = httpx.get(f"{stack.web}/no/such/page")
    assert missing.status_code == 404
    assert_friendly(missing)
    wrong = httpx.put(f"{stack.web}/todos")
    assert wrong.status_code == 405
    assert_friendly(wrong)


def test_a_second_loopback_name_is_sent_to_the_one_sign_in_returns_to(stack: TodoStack) -> None:
    # The redirect URI names 127.0.0.1: a visit to localhost would lose its cookie on the way.
    port = stack.web.rsplit(":", 1)[1]
    visit = httpx.get(f"{stack.web}/todos?page=2", headers={"Host": f"localhost:{port}"})
    assert visit.status_code == 307
    assert visit.headers["location"] == f"{stack.web}/todos?page=2"
    assert httpx.get(f"{stack.web}/").status_code == 200  # the canonical name is served


def test_come_back_after_a_sign_in_started_by_a_form_lands_on_the_list(stack: TodoStack) -> None:
    with browser(stack) as b:
        response = b.get("/todos/12345/remove")
    assert response.status_code == 303
    assert response.headers["location"] == "/todos"


# -- cookies, headers, sign-out -------------------------------------------------------------------


def test_cookies_and_security_headers(stack: TodoStack) -> None:
    with AppBrowser(stack) as b:  # type: ignore[arg-type]
        first = b.get("/auth/signin", params={"next": "/todos"})
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # loopback over http: Secure would drop the cookie
        page = b.follow(first)
        assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text
    css = httpx.get(f"{stack.web}/static/style.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


def test_sign_out_ends_the_session(stack: TodoStack) -> None:
    with browser(stack) as b:
        response = b.get("/auth/signout")
        assert response.status_code == 302
        logout = response.headers["location"]
        assert logout.startswith(f"{stack.idp.pages_url}/")
        back = b.client.get(logout)
        assert back.status_code in (302, 303)
        assert back.headers["location"].startswith(f"{stack.web}/")
        home = b.get("/")
        assert "Hi Ada" not in home.text and "/auth/signin" in home.text
        assert b.get("/todos").status_code == 302


# -- configuration ------------------------------------------------------------------------------


def test_create_app_refuses_plain_http_to_a_remote_api(stack: TodoStack) -> None:
    with pytest.raises(ConfigError, match="https"):
        create_app(web_config(stack.idp, stack.web), api_base_url="http://api.example.com")


def test_create_app_needs_the_api_client_id(stack: TodoStack) -> None:
    config = web_config(stack.idp, stack.web, api_client_id=None)
    with pytest.raises(ConfigError, match="ENTRA_API_CLIENT_ID"):
        create_app(config, api_base_url=stack.api)


def test_the_seed_endpoint_form_of_the_api_url_is_accepted(stack: TodoStack) -> None:
    app = create_app(web_config(stack.idp, stack.web), api_base_url=f"{stack.api}/api/todolist/")
    assert app.extensions["todo_api"].base_url == stack.api


def test_main_stops_with_the_variable_named_when_a_placeholder_is_left() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTRA_")}
    env.update(
        {
            "ENTRA_TENANT_SUBDOMAIN": "contoso",
            "ENTRA_CLIENT_ID": "Enter_the_Application_Id_Here",
            "ENTRA_CLIENT_SECRET": "Enter_the_Client_Secret_Here",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "examples.flask_todo", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "ENTRA_CLIENT_ID" in done.stderr and "placeholder" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_by_hand_it_keeps_its_sessions_in_the_state_folder(tmp_path: Path) -> None:
    """With no ENTRA_SESSION_STORE, sessions go to state/sessions.sqlite3 (gitignored), not
    into the working directory (once the clone's root)."""
    port = free_port()
    with running_devidp() as idp:
        web = idp.entra_config("web-app")
        env = {
            "ENTRA_AUTHORITY": web.authority,
            "ENTRA_CLIENT_ID": str(web.client_id),
            "ENTRA_CLIENT_SECRET": str(web.client_secret),
            "ENTRA_API_CLIENT_ID": str(web.api_client_id),
            "ENTRA_CA_BUNDLE": str(web.ca_bundle),
            "ENTRA_SESSION_SECRET": generate_key(),
            "ENTRA_REDIRECT_URI": f"http://127.0.0.1:{port}/auth/redirect",
        }
        proc, base = start_example("examples.flask_todo", env, port=port, cwd=tmp_path)
        try:
            started = httpx.get(f"{base}/auth/signin", timeout=10)  # keeps the flow in a session
            assert started.status_code == 302
        finally:
            stop_process(proc)
    assert [p.name for p in tmp_path.iterdir()] == ["state"]
    assert (tmp_path / "state" / "sessions.sqlite3").is_file()


# -- the same web app over the Django/DRF todo API ----------------------------------------------


def test_the_web_app_works_the_same_over_the_django_api(tmp_path: Path) -> None:
    """examples/django_api keeps the Starlette API's contract: the web app lists, adds and
    removes items through it, with the same scopes, and shows its refusals."""
    with todo_stack(tmp_path, api="django") as django_stack, browser(django_stack) as b:
        page = b.get("/todos")
        assert page.status_code == 200
        assert add(b, "Buy oat milk", csrf_of(page)).status_code == 303
        page = b.get("/todos")
        assert descriptions(page) == ["Buy oat milk"]
        refused = add(b, "x" * 501, csrf_of(page))
        assert refused.status_code in (200, 400)
        assert "at most 500" in refused.text
        assert remove(b, item_ids(page)["Buy oat milk"]).status_code == 303
        assert descriptions(b.get("/todos")) == []
        calls = django_stack.recorder.calls
    assert ("GET", "/api/todolist", READ_SCOPE) in calls
    assert ("POST", "/api/todolist", WRITE_SCOPE) in calls
