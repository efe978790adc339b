"""The in-process memo of users' access tokens (``entra_ciam.signin.tokenmemo``).

It makes a warm ``acquire_token_for_user`` skip MSAL, so it must be exactly as strict as MSAL:
expiry (with MSAL's five-minute margin and Entra's ``refresh_in``), the exact scope set, the
state of the user's token cache, sign-out, session rotation and other users. The first half
drives ``UserTokenMemo`` with a clock of its own; the second half drives real sign-ins against a
scripted token endpoint (respx) and shows what a request is answered with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import respx

from entra_ciam import TokenAcquirer
from entra_ciam.sessions import TOKEN_CACHE_KEY, MemoryStore
from entra_ciam.signin import InteractionRequiredError, RequestContext, Response, SignIn
from entra_ciam.signin.context import activated
from entra_ciam.signin.tokenmemo import UserTokenMemo, valid_until
from tests.support.clock import Clock
from tests.support.fake_entra import API_SCOPE, FakeEntra, StepBrowser, make_signin

OTHER_SCOPE = "api://todo/Todolist.ReadWrite"
READ = frozenset({API_SCOPE})


# -- the memo on its own ------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000_000.0)


@pytest.fixture
def memo(clock: Clock) -> UserTokenMemo:
    return UserTokenMemo(maxsize=3, clock=clock)


def test_a_token_is_found_for_its_session_state_user_and_exact_scopes(
    memo: UserTokenMemo, clock: Clock
) -> None:
    memo.put("s1", "blob-1", "user-a", [(READ, "token-1", clock.now + 100)])
    assert memo.get("s1", "blob-1", "user-a", READ) == "token-1"
    assert memo.get("s2", "blob-1", "user-a", READ) is None  # another session
    assert memo.get("s1", "blob-2", "user-a", READ) is None  # the cache changed since
    assert memo.get("s1", "blob-1", "user-b", READ) is None  # another user
    assert memo.get("s1", "blob-1", "user-a", frozenset({OTHER_SCOPE})) is None
    assert memo.get("s1", "blob-1", "user-a", READ | {OTHER_SCOPE}) is None  # superset
    assert memo.get("s1", "blob-1", "user-a", frozenset()) is None  # subset


def test_a_token_is_not_served_at_or_after_its_time(memo: UserTokenMemo, clock: Clock) -> None:
    memo.put("s1", "blob", "u", [(READ, "token", clock.now + 10)])
    clock.now += 9.9
    assert memo.get("s1", "blob", "u", READ) == "token"
    clock.now += 0.1
    assert memo.get("s1", "blob", "u", READ) is None


def test_tokens_already_past_their_time_are_not_stored(memo: UserTokenMemo, clock: Clock) -> None:
    memo.put("s1", "blob", "u", [(READ, "token", clock.now)])
    assert memo.get("s1", "blob", "u", READ) is None


def test_a_new_cache_state_drops_what_the_old_one_had(memo: UserTokenMemo, clock: Clock) -> None:
    other = frozenset({OTHER_SCOPE})
    memo.put("s1", "blob-1", "u", [(READ, "read-token", clock.now + 100)])
    memo.put("s1", "blob-2", "u", [(other, "write-token", clock.now + 100)])
    assert memo.get("s1", "blob-2", "u", other) == "write-token"
    assert memo.get("s1", "blob-2", "u", READ) is None
    assert memo.get("s1", "blob-1", "u", READ) is None


def test_forget_and_clear(memo: UserTokenMemo, clock: Clock) -> None:
    memo.put("s1", "blob", "u", [(READ, "t1", clock.now + 100)])
    memo.put("s2", "blob", "u", [(READ, "t2", clock.now + 100)])
    memo.forget("s1")
    assert not memo.knows("s1") and memo.get("s1", "blob", "u", READ) is None
    assert memo.get("s2", "blob", "u", READ) == "t2"
    memo.clear()
    assert len(memo) == 0


def test_sessions_are_bounded_least_recently_used_first(memo: UserTokenMemo, clock: Clock) -> None:
    for n in range(3):
        memo.put(f"s{n}", "blob", "u", [(READ, f"t{n}", clock.now + 100)])
    assert memo.get("s0", "blob", "u", READ) == "t0"  # s0 is now the most recently used
    memo.put("s3", "blob", "u", [(READ, "t3", clock.now + 100)])
    assert len(memo) == 3
    assert not memo.knows("s1")
    assert memo.knows("s0") and memo.knows("s2") and memo.knows("s3")


def test_scope_sets_per_session_are_bounded(memo: UserTokenMemo, clock: Clock) -> None:
    sets = [frozenset({f"api://x/S{n}"}) for n in range(20)]
    memo.put("s1", "blob", "u", [(s, f"t{n}", clock.now + 100) for n, s in enumerate(sets)])
    found = [memo.get("s1", "blob", "u", s) for s in sets]
    assert found[:4] == [None] * 4  # the oldest four made room
    assert found[4:] == [f"t{n}" for n in range(4, 20)]


def test_maxsize_zero_remembers_nothing(clock: Clock) -> None:
    memo = UserTokenMemo(maxsize=0, clock=clock)
    memo.put("s1", "blob", "u", [(READ, "t", clock.now + 100)])
    assert memo.get("s1", "blob", "u", READ) is None and len(memo) == 0
    with pytest.raises(ValueError):
        UserTokenMemo(maxsize=-1)


def test_valid_until_keeps_msals_margin_and_entras_refresh_time() -> None:
    now = 1000.0
    assert valid_until({"expires_in": 3600}, now, 300) == now + 3300
    assert valid_until({"expires_in": "3600"}, now, 300) == now + 3300
    assert valid_until({"expires_in": 3600, "refresh_in": 1800}, now, 300) == now + 1800
    assert valid_until({"expires_in": 3600, "refresh_on": now + 60}, now, 300) == now + 60
    assert valid_until({"expires_in": 299}, now, 300) is None  # MSAL would refresh it now
    assert valid_until({"expires_in": 3600, "refresh_on": now - 1}, now, 300) is None
    assert valid_until({}, now, 300) is None
    assert valid_until({"expires_in": None}, now, 300) is None
    assert valid_until({"expires_in": 3600, "refresh_in": True}, now, 300) == now + 3300


# -- the memo behind acquire_token_for_user ---------------------------------------------------


@pytest.fixture
def entra() -> Iterator[FakeEntra]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeEntra(router)


@pytest.fixture
def signin(entra: FakeEntra) -> SignIn:
    return make_signin(MemoryStore(), scopes=[API_SCOPE])


def _request(browser: StepBrowser, scopes: str | list[str] = API_SCOPE) -> str:
    """One whole request of ``browser`` that asks for a token; returns the token."""
    opened = browser.open("GET", "/page")
    assert isinstance(opened, RequestContext)
    with activated(opened):
        token = TokenAcquirer().acquire_token_for_user(scopes)
    final, _ = browser.signin.close(opened, Response(200, [], b"ok"))
    browser.keep(final)
    return token


def _blob_and_user(browser: StepBrowser) -> tuple[str, str]:
    session = browser.signin.sessions.load(browser.request("GET", "/").cookie_header)
    user = session["entra_ciam.user"]  # the id token claims the sign-in kept
    return str(session[TOKEN_CACHE_KEY]), str(user["oid"])


def _plant(browser: StepBrowser, scopes: frozenset[str], token: str, seconds: float) -> None:
    """Put ``token`` in the memo for this session's current cache state."""
    memo = browser.signin.clients.user_tokens
    blob, user = _blob_and_user(browser)
    assert browser.session_id is not None
    memo.put(browser.session_id, blob, user, [(scopes, token, memo.clock() + seconds)])


def signed_in(signin: SignIn, entra: FakeEntra, **claims: str) -> StepBrowser:
    browser = StepBrowser(signin)
    browser.sign_in(entra, **claims)
    return browser


def test_a_warm_request_is_answered_from_the_memo(signin: SignIn, entra: FakeEntra) -> None:
    browser = signed_in(signin, entra)
    first = _request(browser)  # MSAL, from the cache the sign-in filled; remembered after
    assert browser.session_id is not None and signin.clients.user_tokens.knows(browser.session_id)
    posts = len(entra.token_posts)
    assert _request(browser) == first
    _plant(browser, READ, "planted-token", 600)
    assert _request(browser) == "planted-token"  # the memo answered, not MSAL
    assert len(entra.token_posts) == posts


def test_the_memo_never_serves_a_token_past_its_time(signin: SignIn, entra: FakeEntra) -> None:
    browser = signed_in(signin, entra)
    real = _request(browser)
    _plant(browser, READ, "planted-token", 600)
    memo = signin.clients.user_tokens
    memo.clock = lambda: time.time() + 601
    assert _request(browser) == real  # MSAL's cached token, not the one whose time is up


def test_tokens_close_to_expiry_are_left_to_msal(signin: SignIn, entra: FakeEntra) -> None:
    entra.expires_in = 240  # less than MSAL's five-minute margin: MSAL refreshes every time
    browser = signed_in(signin, entra)
    refreshes = len(entra.token_grants("refresh_token"))
    _request(browser)
    _request(browser)
    assert browser.session_id is not None
    assert not signin.clients.user_tokens.knows(browser.session_id)
    assert len(entra.token_grants("refresh_token")) == refreshes + 2


def test_another_scope_set_goes_to_msal(signin: SignIn, entra: FakeEntra) -> None:
    browser = signed_in(signin, entra)
    read = _request(browser)
    posts = len(entra.token_posts)
    write = _request(browser, OTHER_SCOPE)  # MSAL redeems the refresh token for it
    assert write != read
    assert len(entra.token_posts) == posts + 1
    both = _request(browser, [API_SCOPE, OTHER_SCOPE])
    assert both not in (read, write)


def test_a_changed_token_cache_makes_the_old_entries_unreachable(
    signin: SignIn, entra: FakeEntra
) -> None:
    browser = signed_in(signin, entra)
    _request(browser)
    _plant(browser, READ, "planted-token", 600)
    old_blob, user = _blob_and_user(browser)
    _request(browser, OTHER_SCOPE)  # a new token: MSAL changed the cache, the blob is new
    new_blob, _ = _blob_and_user(browser)
    assert new_blob != old_blob
    assert browser.session_id is not None
    memo = signin.clients.user_tokens
    assert memo.get(browser.session_id, old_blob, user, READ) is None
    assert _request(browser) != "planted-token"


def test_sign_out_forgets_the_session_and_the_old_cookie_gets_no_token(
    signin: SignIn, entra: FakeEntra
) -> None:
    browser = signed_in(signin, entra)
    _request(browser)
    old_cookies = dict(browser.cookies)
    old_id = browser.session_id
    assert old_id is not None and signin.clients.user_tokens.knows(old_id)
    assert browser.get("/auth/signout").status == 302
    assert not signin.clients.user_tokens.knows(old_id)
    browser.cookies = old_cookies  # someone kept the cookie and sends it again
    replay = browser.open("GET", "/page")
    assert isinstance(replay, RequestContext)
    assert replay.session.id != old_id and replay.user is None
    with activated(replay), pytest.raises(InteractionRequiredError):
        TokenAcquirer().acquire_token_for_user(API_SCOPE)


def test_signing_in_again_rotates_the_session_and_forgets_its_tokens(
    signin: SignIn, entra: FakeEntra
) -> None:
    browser = signed_in(signin, entra)
    _request(browser)
    before = browser.session_id
    assert before is not None
    browser.sign_in(entra)  # a second sign-in in the same browser (e.g. another account)
    assert browser.session_id != before
    assert not signin.clients.user_tokens.knows(before)


def test_two_users_never_get_each_others_tokens(signin: SignIn, entra: FakeEntra) -> None:
    ada = signed_in(signin, entra)
    alan = signed_in(signin, entra, oid="0b9e8d7c-6f5a-4e3d-8c2b-1a0f9e8d7c6b", name="Alan")
    ada_token, alan_token = _request(ada), _request(alan)
    assert ada_token != alan_token
    _plant(ada, READ, "ada-only", 600)
    assert _request(alan) == alan_token
    assert _request(ada) == "ada-only"


def test_a_claims_challenge_bypasses_the_memo(signin: SignIn, entra: FakeEntra) -> None:
    browser = signed_in(signin, entra)
    _request(browser)
    _plant(browser, READ, "planted-token", 600)
    opened = browser.open("GET", "/page")
    assert isinstance(opened, RequestContext)
    with activated(opened):
        token = TokenAcquirer().acquire_token_for_user(
            API_SCOPE, claims_challenge='{"access_token":{"acrs":{"essential":true}}}'
        )
    assert token != "planted-token"
    assert "claims" in entra.token_grants("refresh_token")[-1]


async def test_the_async_twin_uses_the_same_memo(signin: SignIn, entra: FakeEntra) -> None:
    browser = signed_in(signin, entra)
    _request(browser)
    _plant(browser, READ, "planted-token", 600)
    opened = browser.open("GET", "/page")
    assert isinstance(opened, RequestContext)
    with activated(opened):
        assert await TokenAcquirer().acquire_token_for_user_async(API_SCOPE) == "planted-token"
