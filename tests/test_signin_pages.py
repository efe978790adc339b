"""The sign-in pages: the library's neutral look, in plain words, and an app's own template."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from entra_ciam import ConfigError
from entra_ciam.signin import pages


@pytest.fixture(autouse=True)
def default_template() -> Iterator[None]:
    yield
    pages.use_template(None)


def test_the_default_page_is_styled_escaped_and_runs_nothing() -> None:
    page = pages.error_page(400, "It was <b>already used</b>.", retry_link="/auth/signin?a=1&b=2")
    body = page.body.decode()
    assert "<title>Sign-in could not be completed</title>" in body
    assert "It was &lt;b&gt;already used&lt;/b&gt;." in body
    assert '<a href="/auth/signin?a=1&amp;b=2">Sign in again</a>' in body
    assert "<style>" in body and "<script" not in body
    assert page.header("Content-Security-Policy") == (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    )


def test_an_app_renders_the_pages_with_its_own_template() -> None:
    pages.use_template(
        '<html><body class="contoso"><h2>$title</h2><div>$message</div>$action</body></html>'
    )
    page = pages.error_page(503, "Try <again>.", retry_after=5)
    body = page.body.decode()
    assert body.startswith('<html><body class="contoso"><h2>Sign-in is temporarily unavailable')
    assert "<div>Try &lt;again&gt;.</div>" in body
    assert page.header("Retry-After") == "5"
    confirm = pages.confirm_sign_out_page("/auth/signout").body.decode()
    assert 'class="contoso"' in confirm and '<form method="post" action="/auth/signout">' in confirm
    pages.use_template(None)
    assert "contoso" not in pages.error_page(400, "x").body.decode()


def test_a_template_without_its_placeholders_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\$message"):
        pages.use_template("<h1>$title</h1>")
