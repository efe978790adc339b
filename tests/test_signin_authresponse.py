"""The authorization response: the fields kept, their bounds, and the sealed form a cross-site
form_post travels in; then floods of anonymous posts against every store, through both adapters.

Issue 16, point 1: a cookieless ``POST /auth/redirect`` with any ``state`` used to be stored whole
for 120 s (60 KB each, no cap on requests), and each ``GET /auth/signin`` stored a session and
its flow (about 1 KB, up to an hour). Now an anonymous request stores nothing at all.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import respx
from cryptography.fernet import Fernet

from entra_ciam.events import LOGGER_NAME
from entra_ciam.sessions import MemoryStore, RedisStore, SessionStore, SQLiteStore, TokenCacheCipher
from entra_ciam.signin import SignIn
from entra_ciam.signin.authresponse import (
    MAX_SEALED_LENGTH,
    RESPONSE_FIELDS,
    RESUME_LIFETIME,
    AuthResponseError,
    keep_response_fields,
    seal,
    unseal,
)
from tests.support.fake_entra import API_SCOPE, FakeEntra, StepBrowser, make_config
from tests.support.otel import events
from tests.support.signin_apps import BUILDERS, running_stack
from tests.support.webapps import ADA, LateWSGI, Stack
from tests.test_sessions import _open_backend

STATE = "s" * 43  # well-formed, as ours are (32 random bytes, URL-safe)


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def cipher(key: str) -> TokenCacheCipher:
    return TokenCacheCipher(key)


# -- the fields kept -------------------------------------------------------------------------------


def test_only_the_oauth_response_fields_are_kept() -> None:
    given = {name: "v" for name in RESPONSE_FIELDS} | {"pad": "x" * 60_000, "id_token": "e.y.J"}
    assert keep_response_fields(given) == dict.fromkeys(RESPONSE_FIELDS, "v")
    assert set(RESPONSE_FIELDS) == {
        "state",
        "code",
        "session_state",
        "client_info",
        "error",
        "error_description",
        "error_uri",
    }


@pytest.mark.parametrize("name", list(RESPONSE_FIELDS))
def test_each_field_is_bounded(name: str) -> None:
    limit = RESPONSE_FIELDS[name]
    assert keep_response_fields({name: "a" * limit}) == {name: "a" * limit}
    with pytest.raises(AuthResponseError, match=f"{name} is too long"):
        keep_response_fields({name: "a" * (limit + 1)})


def test_codes_as_long_as_entras_fit() -> None:
    """Azure AD B2C's codes passed 4,000 characters in 2023; Entra's are shorter today."""
    assert RESPONSE_FIELDS["code"] >= 8000


# -- sealing ---------------------------------------------------------------------------------------


def test_sealed_answer_round_trips_and_hides_the_code(cipher: TokenCacheCipher) -> None:
    answer = {"state": STATE, "code": "0.AXoA-the-code", "client_info": "eyJ1aWQiOiIxIn0"}
    sealed = seal(cipher, answer)
    assert "the-code" not in sealed and STATE not in sealed
    assert unseal(cipher, sealed) == answer
    assert unseal(TokenCacheCipher(Fernet.generate_key()), sealed) is None  # another secret


def test_a_rotated_secret_still_opens_an_answer_sealed_a_moment_ago(key: str) -> None:
    sealed = seal(TokenCacheCipher(key), {"state": STATE})
    rotated = TokenCacheCipher([Fernet.generate_key().decode(), key])
    assert unseal(rotated, sealed) == {"state": STATE}


def _sealed_at(key: str, plaintext: str, when: float) -> str:
    """A value sealed with the app's own key at another time (Fernet stamps it inside the MAC)."""
    return Fernet(key).encrypt_at_time(plaintext.encode(), int(when)).decode()


def test_old_future_altered_or_foreign_values_do_not_open(
    key: str, cipher: TokenCacheCipher
) -> None:
    good = seal(cipher, {"state": STATE, "code": "c"})
    plaintext = "entra-ciam.auth-response:" + json.dumps({"state": STATE, "code": "c"})
    now = time.time()
    assert unseal(cipher, _sealed_at(key, plaintext, now - 10)) is not None
    assert unseal(cipher, _sealed_at(key, plaintext, now - RESUME_LIFETIME - 5)) is None
    assert unseal(cipher, _sealed_at(key, plaintext, now + 300)) is None
    flipped = good[:40] + ("A" if good[40] != "A" else "B") + good[41:]
    assert unseal(cipher, flipped) is None
    assert unseal(cipher, good[:-4]) is None
    assert unseal(cipher, "x" * (MAX_SEALED_LENGTH + 1)) is None
    assert unseal(cipher, "not fernet at all") is None
    # Values this cipher seals for other purposes (token caches) are not answers.
    assert unseal(cipher, cipher.encrypt(json.dumps({"state": STATE}))) is None
    assert unseal(cipher, cipher.seal_json("flow", {"state": STATE})) is None
    wrong_shape = ["[1]", '{"state": 1}', "{", '{"code": "' + "c" * 9000 + '"}']
    for body in wrong_shape:
        assert unseal(cipher, cipher.encrypt("entra-ciam.auth-response:" + body)) is None


# -- through the sans-IO steps ---------------------------------------------------------------------


@pytest.fixture
def entra() -> Iterator[FakeEntra]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeEntra(router)


def test_a_cross_site_post_is_sent_on_sealed_and_stores_nothing(entra: FakeEntra) -> None:
    store = MemoryStore()
    signin = SignIn(make_config(), store=store, scopes=[API_SCOPE])
    browser = StepBrowser(signin)
    auth_uri = browser.start()
    code, state = entra.issue_code(auth_uri)
    before = dict(store._items)
    cookies = dict(browser.cookies)
    browser.cookies.clear()  # SameSite=Lax: the cross-site POST carries no cookie
    form = {"code": code, "state": state, "session_state": "x", "pad": "p" * 60_000}
    parked = browser.send("POST", "/auth/redirect", form=form)
    assert parked.status == 303 and parked.header("Set-Cookie") is None
    assert store._items == before, "nothing written for a request without a session"
    location = parked.header("Location") or ""
    sealed = parse_qs(urlsplit(location).query)["resume"][0]
    assert unseal(signin.cipher, sealed) == {"code": code, "state": state, "session_state": "x"}
    assert len(location) < 2 * len(code) + 600
    browser.cookies.update(cookies)
    done = browser.get("/auth/redirect", urlsplit(location).query)
    assert done.status == 302 and done.header("Location") == "/todos"


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"state": STATE, "code": "c" * 9000}, b"code is too long"),
        ({"state": STATE, "error": "e", "error_description": "d" * 5000}, b"error_description"),
        ({"state": STATE, "client_info": "i" * 3000}, b"client_info is too long"),
    ],
)
def test_oversized_fields_are_refused_before_anything_else(
    entra: FakeEntra, form: dict[str, str], reason: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    store = MemoryStore()
    browser = StepBrowser(SignIn(make_config(), store=store))
    for same_site in (False, True):  # cross-site (no cookie), then with the session cookie
        if same_site:
            browser.start()
        answer = browser.send("POST", "/auth/redirect", form=form)
        assert answer.status == 400 and reason in answer.body
    assert entra.token_posts == []
    failed = [r.__dict__["reason"] for r in events(caplog, "signin_failed")]
    assert failed == ["response_oversized", "response_oversized"]


def test_a_resume_that_does_not_open_is_refused(
    entra: FakeEntra, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    browser = StepBrowser(SignIn(make_config(), store=MemoryStore()))
    browser.start()
    for value in ("", "garbage", "gAAAAA" + "A" * 100):
        answer = browser.get("/auth/redirect", urlencode({"resume": value}))
        assert answer.status == 400 and b"expired or was altered" in answer.body
    assert {r.__dict__["reason"] for r in events(caplog, "signin_failed")} == {"state_unknown"}


# -- floods through both adapters and every store --------------------------------------------------


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    yield from running_stack(request, tmp_path_factory, "authresponse")


def footprint(store: SessionStore) -> tuple[int, int]:
    """(records, bytes) the store holds, read from the backend itself."""
    if isinstance(store, MemoryStore):
        return len(store._items), sum(len(raw) for _expiry, raw in store._items.values())
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            row = conn.execute(
                "SELECT count(*), coalesce(sum(length(data)), 0) FROM entra_ciam_sessions"
            ).fetchone()
        return int(row[0]), int(row[1])
    assert isinstance(store, RedisStore)
    keys = list(store.client.scan_iter(match=store.prefix + "*", count=1000))
    return len(keys), sum(int(store.client.strlen(k)) for k in keys)


def flood_forms() -> Iterator[dict[str, str]]:
    """60 KB anonymous posts shaped every way the old code stored whole."""
    padding = "x" * 60_000
    shapes: list[dict[str, str]] = [
        {"state": STATE, "code": "c", "pad": padding},
        {"state": STATE, "code": padding},
        {"state": STATE, "error": "e", "error_description": padding},
        {"state": STATE} | {f"f{i}": "y" * 615 for i in range(98)},
        {"state": "not-a-state!", "pad": padding},
    ]
    while True:
        yield from shapes


POSTS = 1000


@pytest.mark.parametrize("backend_name", ["memory", "sqlite", "redis"])
def test_anonymous_floods_leave_every_store_as_it_was(
    stack: Stack, backend_name: str, tmp_path: Path
) -> None:
    with _open_backend(backend_name, tmp_path) as backend:
        store = backend.make()
        kind = "wsgi" if isinstance(stack.late, LateWSGI) else "asgi"
        previous = stack.late.app
        stack.late.app = BUILDERS[kind](stack, store=store)
        try:
            before = footprint(store)
            statuses: dict[int, int] = {}
            forms = flood_forms()
            with httpx.Client(timeout=20.0) as anonymous:
                for _ in range(POSTS):
                    body = urlencode(next(forms)).encode()
                    assert 60_000 <= len(body) <= 64 * 1024
                    answer = anonymous.post(
                        f"{stack.base}/auth/redirect",
                        content=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                    assert "set-cookie" not in answer.headers
                for _ in range(POSTS // 2):  # and anonymous sign-in starts
                    started = anonymous.get(f"{stack.base}/auth/signin", params={"next": "/me"})
                    assert started.status_code == 302
                    assert "_flow_" in started.headers["set-cookie"].split("=", 1)[0]
                    anonymous.cookies.clear()
            assert set(statuses) <= {303, 400}, statuses
            assert footprint(store) == before == (0, 0)
            # A real sign-in through the same path (a cross-site form_post) still works.
            with stack.browser() as person:
                started = person.get("/auth/signin", params={"next": "/me"})
                result = person.pages.sign_in(
                    started.headers["location"], email=ADA[0], password=ADA[1]
                )
                parked = httpx.post(result.redirect_uri, data=result.params)  # no cookie
                assert parked.status_code == 303
                final = person.follow(person.client.get(parked.headers["location"]))
                assert final.status_code == 200 and final.json()["name"] == ADA[2]
            records, size = footprint(store)
            assert records == 1 and size < 16 * 1024  # the signed-in session, nothing else
        finally:
            stack.late.app = previous
