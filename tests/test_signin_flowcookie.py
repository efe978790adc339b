"""The sign-ins a browser has started, in sealed cookies of their own: nothing stored until a
sign-in succeeds, several tabs at once, each flow used once, and nothing readable or forgeable.

The floods of anonymous ``/auth/signin`` requests against every store and both adapters are in
``test_signin_authresponse.py`` with the floods of anonymous posts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import respx
from cryptography.fernet import Fernet

from entra_ciam.sessions import MemoryStore
from entra_ciam.signin import SignIn, check_return_path
from entra_ciam.signin.flowcookie import (
    FLOW_LIFETIME,
    MAX_FLOWS,
    MAX_TOTAL_BYTES,
    FlowTooLargeError,
)
from tests.support.fake_entra import API_SCOPE, FakeEntra, StepBrowser, make_config


@pytest.fixture
def entra() -> Iterator[FakeEntra]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeEntra(router)


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def signin(key: str, store: MemoryStore, entra: FakeEntra) -> SignIn:
    return SignIn(make_config(session_secret=key), store=store, scopes=[API_SCOPE])


def flow_cookies(browser: StepBrowser) -> dict[str, str]:
    prefix = browser.signin.flows.prefix
    return {k: v for k, v in browser.cookies.items() if k.startswith(prefix)}


def test_starting_sign_ins_stores_nothing_and_hides_the_flow(
    signin: SignIn, store: MemoryStore
) -> None:
    browser = StepBrowser(signin)
    for _ in range(3):
        auth_uri = browser.start()
    assert store._items == {} and browser.session_id is None
    query = parse_qs(urlsplit(auth_uri).query)
    (name,) = [n for n in flow_cookies(browser) if n == signin.flows.name_for(query["state"][0])]
    value = browser.cookies[name]
    for secret in (query["state"][0], query["nonce"][0], "/todos"):
        assert secret not in value


def test_sign_ins_started_in_several_tabs_all_finish(signin: SignIn, entra: FakeEntra) -> None:
    browser = StepBrowser(signin)
    started = [browser.start(f"/tab{i}") for i in range(MAX_FLOWS)]
    assert len(flow_cookies(browser)) == MAX_FLOWS
    for i, auth_uri in reversed(list(enumerate(started))):
        answer = browser.finish(entra, auth_uri)
        assert answer.status == 302 and answer.header("Location") == f"/tab{i}"
    assert flow_cookies(browser) == {}, "each answer deletes its flow's cookie"


def test_the_oldest_flows_give_way(signin: SignIn, entra: FakeEntra) -> None:
    browser = StepBrowser(signin)
    started = []
    for i in range(MAX_FLOWS + 2):
        started.append(browser.start(f"/tab{i}"))
        time.sleep(0.002)  # started one after the other
    assert len(flow_cookies(browser)) == MAX_FLOWS
    assert browser.finish(entra, started[0]).status == 400
    assert browser.finish(entra, started[-1]).status == 302


def test_a_flow_is_used_once(signin: SignIn, entra: FakeEntra) -> None:
    browser = StepBrowser(signin)
    auth_uri = browser.start()
    code, state = entra.issue_code(auth_uri)
    form = {"code": code, "state": state}
    flow_cookie = dict(flow_cookies(browser))
    assert browser.send("POST", "/auth/redirect", form=form).status == 302
    deleted = [c for c in browser.set_cookies if "_flow_" in c.split("=")[0]]
    assert deleted and all("Max-Age=0" in c for c in deleted)
    # The signed-in browser replaying it is sent home (pages.py); nothing reaches Entra.
    again = browser.send("POST", "/auth/redirect", form=form)
    assert again.status == 302 and again.header("Location") == "/"
    # Another browser given the same answer (and even the spent flow cookie, were it stolen
    # before use) does not sign in: without the cookie it is refused here, with it Entra
    # refuses the spent code ("already redeemed": sent to the flow's page, signed out).
    other = StepBrowser(signin)
    refused = other.send("POST", "/auth/redirect", form=form)
    assert refused.status in (303, 400)
    other.cookies = flow_cookie
    spent = other.send("POST", "/auth/redirect", form=form)
    assert spent.status == 302 and spent.header("Location") == "/todos"
    assert other.session_id is None
    assert len(entra.token_posts) == 2


def _forged(key: str, record: dict[str, object], when: float) -> str:
    plaintext = "entra-ciam.flow:" + json.dumps(record)
    return Fernet(key).encrypt_at_time(plaintext.encode(), int(when)).decode()


def test_old_altered_foreign_or_doubled_flow_cookies_are_no_flow(
    signin: SignIn, entra: FakeEntra, key: str
) -> None:
    browser = StepBrowser(signin)
    auth_uri = browser.start()
    code, state = entra.issue_code(auth_uri)
    (name,) = flow_cookies(browser)
    real = browser.cookies[name]
    foreign = TokenCacheCipherLike(Fernet.generate_key().decode())
    old_record = {"flow": {"state": state}, "next": "/", "t": time.time() - FLOW_LIFETIME - 10}
    for value in (
        real[:-6] + "AAAAAA",  # altered
        foreign.seal(real),  # sealed by someone else
        _forged(key, old_record, time.time() - FLOW_LIFETIME - 10),  # expired
        _forged(key, {"flow": {"state": "s" * 43}, "next": "/", "t": time.time()}, time.time()),
    ):
        browser.cookies = {name: value}
        answer = browser.send("POST", "/auth/redirect", form={"code": code, "state": state})
        assert answer.status == 400 and b"started in this browser" in answer.body
    # Cookie tossing: two cookies of the flow's name are none, even if one is real.
    header = f"{name}={real}; {name}={real[:-6]}AAAAAA"
    record, forget = signin.flows.take(header, state)
    assert record is None and forget
    assert signin.flows.take(f"{name}={real}", state)[0] is not None
    assert entra.token_posts == []


class TokenCacheCipherLike:
    """Fernet under another key: what another app (or an attacker) could seal."""

    def __init__(self, key: str) -> None:
        self.fernet = Fernet(key)

    def seal(self, value: str) -> str:
        return self.fernet.encrypt(value.encode()).decode()


def test_a_flow_too_large_for_a_cookie_is_refused(signin: SignIn) -> None:
    record = {"flow": {"state": "s" * 43, "claims_challenge": "c" * 4000}, "next": "/"}
    with pytest.raises(FlowTooLargeError):
        signin.flows.put("", record)
    # The longest return path accepted still fits.
    browser = StepBrowser(signin)
    assert browser.get("/auth/signin", "next=/" + "a" * 2000).status == 302


def flow_bytes(browser: StepBrowser) -> int:
    """What the browser's flow cookies add to its Cookie header: ``name=value; ...``."""
    return len("; ".join(f"{k}={v}" for k, v in flow_cookies(browser).items()))


# Near the longest return paths accepted (2,048 characters once percent-encoded), ASCII and
# non-ASCII: what another site can make a victim's browser start, one navigation each.
LONG_NEXTS = ["/search?q=" + "x" * 2030, "/" + "\u00e9" * 341]


@pytest.mark.parametrize("long_next", LONG_NEXTS, ids=["ascii", "non-ascii"])
def test_flows_with_long_return_paths_stay_within_the_budget(
    signin: SignIn, entra: FakeEntra, long_next: str
) -> None:
    """A cookie bomb: each flow was bounded, not their sum, so a few sign-ins with long return
    paths (~3.7 KB each) pushed the Cookie header past servers' 8 KB, and every request of the
    site failed with 431 for ten minutes. The oldest flows now give way to the budget."""
    browser = StepBrowser(signin)
    started = []
    for i in range(MAX_FLOWS):
        started.append(browser.start(long_next + str(i)))
        assert flow_bytes(browser) <= MAX_TOTAL_BYTES
        time.sleep(0.002)
    header = browser.request("GET", "/").cookie_header
    # Half of the 8,190 bytes gunicorn accepts: the rest is for the session and the app.
    assert len(header) <= MAX_TOTAL_BYTES <= 4096
    # The newest sign-in finishes, where it was started to return to.
    answer = browser.finish(entra, started[-1])
    assert answer.status == 302, answer.body
    assert answer.header("Location") == check_return_path(long_next + str(MAX_FLOWS - 1))


def test_a_long_flow_displaces_only_what_it_must(signin: SignIn, entra: FakeEntra) -> None:
    """Usual tabs stay as long as they fit beside a long one; the oldest go first."""
    browser = StepBrowser(signin)
    short = []
    for i in range(MAX_FLOWS - 1):
        short.append(browser.start(f"/tab{i}"))
        time.sleep(0.002)
    assert len(flow_cookies(browser)) == MAX_FLOWS - 1
    long_one = browser.start("/search?q=" + "x" * 1890)
    kept = flow_cookies(browser)
    assert flow_bytes(browser) <= MAX_TOTAL_BYTES
    assert 1 < len(kept) < MAX_FLOWS  # some room was made, not all of it
    assert browser.finish(entra, short[0]).status == 400  # the oldest gave way
    assert browser.finish(entra, short[-1]).status == 302
    assert browser.finish(entra, long_one).status == 302
