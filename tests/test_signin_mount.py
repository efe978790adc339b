"""The sign-in of an app mounted under a prefix (``SCRIPT_NAME``, ASGI ``root_path``), against
the real emulator, Flask (Werkzeug's dispatcher) and Starlette (a ``Mount``): one suite, both.

Every target the sign-in picks by itself must be the app's own home under its mount, and no
mount point, even one a proxy header set, may turn a redirect into another site.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.signin_apps import mounted_stack
from tests.support.webapps import ADA, AppBrowser, Stack

MOUNT = "/app"


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with mounted_stack(request, tmp_path_factory, MOUNT) as running:
        yield running


@pytest.fixture
def browser(stack: Stack) -> Iterator[AppBrowser]:
    with stack.browser() as opened:
        yield opened


def test_a_sign_in_without_next_comes_back_to_the_mounted_home(browser: AppBrowser) -> None:
    """``GET /app/auth/signin`` (the link of a sign-in button) used to end at ``/``, outside
    the app, because the default return path was taken as a host path."""
    started = browser.get(f"{MOUNT}/auth/signin")
    assert started.status_code == 302
    result = browser.pages.sign_in(started.headers["location"], email=ADA[0], password=ADA[1])
    assert result.redirect_uri == f"{browser.stack.base}{MOUNT}/auth/redirect"
    answer = browser.client.post(result.redirect_uri, data=result.params)
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"] == f"{MOUNT}/"
    home = browser.get(answer.headers["location"])
    assert home.status_code == 200 and home.json() == {"user": ADA[2]}
    # Signed in, reopening the callback: home, under the mount.
    again = browser.get(f"{MOUNT}/auth/redirect")
    assert again.status_code == 302 and again.headers["location"] == f"{MOUNT}/"


def test_a_page_of_the_mounted_app_is_returned_to(browser: AppBrowser) -> None:
    first = browser.get(f"{MOUNT}/me?tab=1")
    assert first.status_code == 302
    assert first.headers["location"] == f"{MOUNT}/auth/signin?next=%2Fapp%2Fme%3Ftab%3D1"
    page = browser.follow(first)
    assert page.status_code == 200 and page.json()["name"] == ADA[2]
    assert str(page.url) == f"{browser.stack.base}{MOUNT}/me?tab=1"


def test_an_unusable_callback_offers_the_mounted_sign_in(browser: AppBrowser) -> None:
    lost = browser.get(f"{MOUNT}/auth/redirect")
    assert lost.status_code == 400
    assert f'href="{MOUNT}/auth/signin"' in lost.text


@pytest.mark.parametrize("prefix", ["//evil.example", "///evil.example", "/\\evil.example"])
def test_a_forwarded_prefix_cannot_redirect_off_site(stack: Stack, prefix: str) -> None:
    """``X-Forwarded-Prefix: //evil.example`` through ProxyFix (or a ``SCRIPT_NAME`` header
    through gunicorn) made ``Location: //evil.example/auth/signin``: another site."""
    with stack.browser() as browser:
        headers = {"X-Forwarded-Prefix": prefix}
        # A redirect to sign in; a refusal's link to sign in again; the sign-out form's action.
        for path, fetch_site in (
            ("/me", "none"),
            ("/auth/redirect?state=" + "a" * 43, "none"),
            ("/auth/signout", "cross-site"),
        ):
            answer = browser.get(
                f"{MOUNT}{path}", headers={**headers, "Sec-Fetch-Site": fetch_site}
            )
            targets = [answer.headers["location"]] if "location" in answer.headers else []
            for marker in ('href="', 'action="'):
                targets += [part.split('"')[0] for part in answer.text.split(marker)[1:]]
            assert targets, path
            for target in targets:
                assert target.startswith("/") and not target.startswith("//"), (path, target)
                assert "\\" not in target
        signin = browser.get(f"{MOUNT}/me", headers=headers).headers["location"]
        assert signin.startswith("/evil.example/app/auth/signin?next=") or signin.startswith(
            "/%5Cevil.example/app/auth/signin?next="
        )
