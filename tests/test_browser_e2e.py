"""Issue 5 end to end in a real browser: Debian Chromium driven by Playwright.

The emulator, the todo API and the Flask web app run on free loopback ports in this process.
A person opens the web app, signs in on the emulator's page, views the todo list, adds two items,
removes one, signs out; a new person signs up with a one-time passcode, sees none of the first
person's items, and signs out. Screenshots of the main steps go to tests/artifacts/screenshots/,
or to $E2E_SCREENSHOT_DIR (E2E_SCREENSHOT_DIR=docs/screenshots refreshes the quickstart's images).

The sync Playwright API runs in a plain test: it refuses to run inside an asyncio loop.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from entra_ciam.devidp import defaults
from tests.support.external import require_chromium
from tests.support.todo_stack import ADA, TodoStack, todo_stack

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("E2E_SCREENSHOT_DIR") or ROOT / "tests" / "artifacts" / "screenshots")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NEW_USER = ("grace@example.com", "Grace-Hopper-1906", "Grace Hopper")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[TodoStack]:
    with todo_stack(tmp_path) as running:
        yield running


@pytest.fixture
def page() -> Iterator[Any]:
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = chromium.new_context(
                viewport={"width": 1100, "height": 720}, device_scale_factor=1, locale="en-US"
            )
            context.set_default_timeout(15_000)
            yield context.new_page()
            context.close()
        finally:
            chromium.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def read_otp(stack: TodoStack, email: str) -> str:
    """The passcode the emulator 'mailed', from its test-mode route (it may take a moment)."""
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(stack.otp_url(email), timeout=5)
        if response.status_code == 200:
            return str(response.json()["otp"])
        assert time.monotonic() < deadline, f"no passcode for {email}: {response.text}"
        time.sleep(0.1)


def listed(page: Any) -> list[str]:
    return [text.strip() for text in page.locator(".items .description").all_inner_texts()]


def test_sign_in_manage_todos_sign_up_and_sign_out(page: Any, stack: TodoStack) -> None:
    from playwright.sync_api import expect

    started = time.monotonic()
    web = stack.web

    # Signed out: the home page offers to sign in.
    page.goto(f"{web}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Keep your todos in one place")
    shot(page, "01-home-signed-out")

    # Sign in on the emulator's pages, and come back to the todo list.
    page.locator("main").get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{stack.idp.pages_url}/**")
    page.fill("#email", ADA[0])
    shot(page, "02-sign-in")
    page.get_by_role("button", name="Next").click()
    page.fill("#password", ADA[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{web}/todos")
    expect(page.locator(".empty")).to_contain_text("Nothing to do yet")

    # Add two items, remove one.
    for description in ("Buy oat milk", "Book the dentist"):
        page.fill("#description", description)
        page.get_by_role("button", name="Add").click()
        page.wait_for_url(f"{web}/todos")
        expect(page.locator(".items")).to_contain_text(description)
    assert listed(page) == ["Buy oat milk", "Book the dentist"]
    shot(page, "03-todos")
    page.get_by_role("button", name="Remove Buy oat milk").click()
    page.wait_for_url(f"{web}/todos")
    expect(page.locator(".items")).not_to_contain_text("Buy oat milk")
    assert listed(page) == ["Book the dentist"]
    expect(page.locator(".count")).to_have_text("1 item")

    # Signed in: greeting, links and the ID token's claims.
    page.goto(f"{web}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hi Ada Lovelace")
    shot(page, "04-home-signed-in")
    page.get_by_role("link", name="Profile").first.click()
    claims = page.locator("table.claims")
    expect(claims).to_contain_text("preferred_username")
    expect(claims).to_contain_text(ADA[0])
    expect(claims).to_contain_text(defaults.TENANT_ID)
    shot(page, "05-profile")

    # Sign out: at the app and at the emulator, back on the app's home page.
    page.get_by_role("link", name="Sign out").first.click()
    page.wait_for_url(f"{web}/")
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    page.goto(f"{web}/todos")
    page.wait_for_url(f"{stack.idp.pages_url}/**")  # the session is gone: sign in again

    # A new person signs up with a one-time passcode.
    page.get_by_role("link", name="Create one").click()
    page.fill("#email", NEW_USER[0])
    page.get_by_role("button", name="Next").click()
    page.fill("#otp", read_otp(stack, NEW_USER[0]))
    shot(page, "06-sign-up-passcode")
    page.get_by_role("button", name="Next").click()
    page.fill("#password", NEW_USER[1])
    page.fill("#display_name", NEW_USER[2])
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(f"{web}/todos")

    # ...and sees none of the first person's items.
    expect(page.locator(".empty")).to_contain_text("Nothing to do yet")
    assert listed(page) == []
    assert "Book the dentist" not in page.content()
    expect(page.locator(".who")).to_have_text(NEW_USER[2])
    shot(page, "07-new-user-todos")

    # Signing out ends the new person's session too.
    page.get_by_role("link", name="Sign out").first.click()
    page.wait_for_url(f"{web}/")
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    assert not re.search(r"Hi Grace", page.content())

    elapsed = time.monotonic() - started
    assert elapsed < 90, f"the browser scenario took {elapsed:.0f} s"
