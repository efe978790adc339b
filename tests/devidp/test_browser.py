"""The pages in a real browser (Debian chromium through playwright): nothing the CSP blocks, the
code reaches the app in both response modes, sign-out comes back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import sync_playwright

from entra_ciam.devidp.server import DevIdp
from tests.devidp.helpers import ADA, TODO_READ, msal_app
from tests.support.external import require_chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended"),
]


class _App(BaseHTTPRequestHandler):
    """The relying party's redirect endpoint: records what arrives, answers a page."""

    received: list[tuple[str, dict[str, str]]]

    def _record(self, method: str, query: str) -> None:
        self.server.received.append((method, dict(parse_qsl(query))))  # type: ignore[attr-defined]
        body = b"<!doctype html><title>app</title><p>signed in</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._record("GET", urlsplit(self.path).query)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._record("POST", self.rfile.read(length).decode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("response_mode", ["query", "form_post"])
def test_sign_in_in_chromium(
    devidp: DevIdp, app_server: ThreadingHTTPServer, response_mode: str
) -> None:
    redirect_uri = f"http://127.0.0.1:{app_server.server_address[1]}/auth/redirect"
    web = msal_app(devidp, "web-app")
    flow = web.initiate_auth_code_flow(
        [TODO_READ], redirect_uri=redirect_uri, response_mode=response_mode
    )
    chromium = require_chromium()
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.goto(flow["auth_uri"])
            page.fill("#email", ADA[0])
            page.click("button[type=submit]")
            page.fill("#password", ADA[1])
            page.click("button[type=submit]")
            page.wait_for_url(f"{redirect_uri}*", timeout=10_000)
            assert "signed in" in page.content()
            # Sign out at the emulator and come back to the app's home page.
            home = f"http://127.0.0.1:{app_server.server_address[1]}/"
            page.goto(f"{devidp.endpoints.end_session_endpoint}?post_logout_redirect_uri={home}")
            page.wait_for_url(home, timeout=10_000)
        finally:
            browser.close()
    assert problems == []  # no CSP violations, no blocked form posts
    (method, params), *_ = app_server.received  # type: ignore[attr-defined]
    assert method == ("POST" if response_mode == "form_post" else "GET")
    tokens = web.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" in tokens, tokens.get("error_description")
