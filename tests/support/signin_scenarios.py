"""The end-to-end sign-in scenarios, written once and run against the Flask and Starlette apps.

Each takes a running :class:`Stack` (emulator, todo API, web app) and asserts what a person at
the browser would see.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from entra_ciam.devidp import defaults
from tests.support.webapps import ADA, ALAN, READWRITE, Stack, own_redis, signin_stack

ADA_NAME = ADA[2]


def sign_in_and_session_survives(stack: Stack) -> None:
    with stack.browser() as browser:
        first = browser.get("/me?tab=profile")
        assert first.status_code == 302
        assert first.headers["location"] == "/auth/signin?next=%2Fme%3Ftab%3Dprofile"
        page = browser.follow(first)
        assert page.status_code == 200, page.text
        assert str(page.url).endswith("/me?tab=profile")
        me = page.json()
        assert me["name"] == ADA_NAME
        assert me["aud"] == defaults.WEB_APP_CLIENT_ID
        assert "nonce" not in me
        # The session survives: more requests, no more sign-in.
        for _ in range(3):
            again = browser.get("/me")
            assert again.status_code == 200 and again.json()["oid"] == me["oid"]
        assert browser.get("/").json() == {"user": ADA_NAME}


def user_token_is_accepted(stack: Stack) -> None:
    with stack.browser() as browser:
        browser.sign_in()
        claims = browser.get("/token-claims")
        assert claims.status_code == 200, claims.text
        body = claims.json()
        assert body["aud"] == defaults.TODO_API_CLIENT_ID
        assert "Todolist.Read" in body["scp"]
        me = browser.get("/me").json()
        assert body["oid"] == me["oid"]
        todos = browser.get("/todos")
        assert todos.status_code == 200, todos.text
        assert todos.json()["status"] == 200
        assert todos.json()["items"] == [] or all(
            item["owner"] == me["oid"] for item in todos.json()["items"]
        )


def incremental_consent_redirects_and_returns(stack: Stack) -> None:
    with stack.browser() as browser:
        browser.sign_in()
        me = browser.get("/me").json()
        first = browser.get("/write?from=consent")
        # Not a 500 from the app's error handler: a redirect to Entra for the new scope.
        assert first.status_code == 302, first.text
        location = first.headers["location"]
        assert location.startswith(stack.idp.pages_url)
        query = parse_qs(urlsplit(location).query)
        assert READWRITE in query["scope"][0].split()
        # The ID token's login_hint claim when the registration asks for it (Entra's own hint
        # for this account), else the user name.
        assert query.get("login_hint") == [me.get("login_hint") or ADA[0]]
        assert "Cache-Control" in first.headers and "no-store" in first.headers["Cache-Control"]
        final = browser.follow(first)
        assert final.status_code == 200, final.text
        assert str(final.url).endswith("/write?from=consent")
        assert final.json()["status"] == 201
        assert final.json()["item"]["description"] == "Buy milk"
        # The new token is now cached: no second trip.
        assert browser.get("/write").status_code == 200


def redirect_happens_even_if_the_view_swallows(stack: Stack) -> None:
    with stack.browser() as browser:
        browser.sign_in()
        answer = browser.get("/swallowed")
        assert answer.status_code == 302
        assert answer.headers["location"].startswith(stack.idp.pages_url)
        final = browser.follow(answer)
        assert final.status_code == 200
        assert final.text == "got a token"


def anonymous_token_request_signs_in_first(stack: Stack) -> None:
    with stack.browser() as browser:
        answer = browser.get("/token-claims")
        assert answer.status_code == 302
        assert answer.headers["location"].startswith(stack.idp.pages_url)
        final = browser.follow(answer, user=ALAN)
        assert final.status_code == 200, final.text
        assert str(final.url).endswith("/token-claims")


def sign_out_clears_everything(stack: Stack) -> None:
    with stack.browser() as browser:
        browser.sign_in()
        sid = browser.session_cookie()
        assert sid is not None
        out = browser.get("/auth/signout")
        assert out.status_code == 302
        location = out.headers["location"]
        assert location.startswith(stack.idp.pages_url)
        query = parse_qs(urlsplit(location).query)
        assert query["post_logout_redirect_uri"] == [f"{stack.base}/"]
        assert "Max-Age=0" in out.headers["set-cookie"]
        assert browser.session_cookie() is None
        # The emulator ends its own session and sends the browser back to the app.
        back = browser.client.get(location)
        assert back.status_code in (302, 303)
        assert unquote(back.headers["location"]).startswith(f"{stack.base}/")
        # Signed out here...
        assert browser.get("/").json() == {"user": None}
        assert browser.get("/me").status_code == 302
        # ...the old cookie is worth nothing...
        browser.set_session_cookie(sid)
        assert browser.get("/me").status_code == 302
        # ...and signing in again needs the password (the emulator's session is gone too).
        again = browser.get("/auth/signin")
        shown = browser.client.get(again.headers["location"])
        assert shown.status_code == 200  # a sign-in page, not a redirect back with a code


def redis_going_away_is_a_503_page(kind: str, tmp: Path, build: Callable[..., Any]) -> None:
    with own_redis() as (url, redis):

        def app(stack: Stack) -> Any:
            return build(stack, config=stack.config(session_store=url))

        with signin_stack(kind, tmp, app) as stack, stack.browser() as browser:
            assert browser.sign_in().status_code == 200
            redis.terminate()
            redis.wait(10)
            for path in ("/me", "/todos", "/auth/signin", "/auth/signout"):
                answer = browser.get(path)
                assert answer.status_code == 503, (path, answer.text)
                assert "Sessions cannot be stored right now" in answer.text
                assert answer.headers["retry-after"]
                assert answer.headers["content-type"].startswith("text/html")
            # Pages that need no session still work for visitors without a cookie.
            anonymous = httpx.get(f"{stack.base}/")
            assert anonymous.status_code == 200 and anonymous.json() == {"user": None}
