"""Sign-in in a real browser (Chromium), where SameSite=Lax is enforced as in production.

The web app is ``http://localhost:<port>`` and the emulator's pages ``http://127.0.0.1:<port>``:
two sites, so the emulator's form_post back to the app is a cross-site POST that carries no
SameSite=Lax cookie, exactly as with a real tenant. The middleware must still finish the sign-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.external import require_chromium
from tests.support.signin_apps import BUILDERS
from tests.support.webapps import ADA, Stack, signin_stack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    kind: str = request.param
    with signin_stack(
        kind, tmp_path_factory.mktemp(f"browser-{kind}"), BUILDERS[kind], app_host="localhost"
    ) as running:
        yield running


def test_cross_site_form_post_signs_in_in_chromium(stack: Stack, tmp_path: Path) -> None:
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    redirects: list[tuple[str, int]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--host-resolver-rules=MAP localhost 127.0.0.1", "--no-sandbox"],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.on(
                "response",
                lambda r: (
                    redirects.append((r.url.split("?")[0], r.status))
                    if "/auth/redirect" in r.url
                    else None
                ),
            )
            page.goto(f"{stack.base}/me")
            page.fill("input[name=email]", ADA[0])
            page.click("button[type=submit]")
            page.fill("input[name=password]", ADA[1])
            page.click("button[type=submit]")
            page.wait_for_url(f"{stack.base}/me")
            assert ADA[2] in page.content()
            # The cross-site POST came without the cookie and was resumed with a same-site GET.
            assert (f"{stack.base}/auth/redirect", 303) in redirects
            assert (f"{stack.base}/auth/redirect", 302) in redirects
            cookies = {c["name"]: c for c in page.context.cookies(stack.base)}
            session = cookies["entra_ciam_session"]
            assert session["httpOnly"] and session["sameSite"] == "Lax"
            # Signed in for later pages too.
            page.goto(f"{stack.base}/")
            assert ADA[2] in page.content()
        finally:
            browser.close()
