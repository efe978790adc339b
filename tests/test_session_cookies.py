"""The session cookie: its flags, what is accepted from a Cookie header, and when it is sent."""

from __future__ import annotations

import base64
import hashlib
import logging
import re

import pytest

from entra_ciam.errors import ConfigError
from entra_ciam.sessions import MemoryStore, Session, SessionManager
from entra_ciam.sessions.manager import DEFAULT_COOKIE_NAME, default_cookie_name, new_session_id


def _attrs(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    head, *rest = [p.strip() for p in set_cookie.split(";")]
    name, _, value = head.partition("=")
    attrs = {}
    for item in rest:
        key, _, val = item.partition("=")
        attrs[key.lower()] = val
    return name, value, attrs


def _signed_in(manager: SessionManager) -> tuple[Session, str]:
    session = manager.load(None)
    session["user"] = "ada"
    set_cookie = manager.commit(session)
    assert set_cookie is not None
    return session, set_cookie.split(";", 1)[0]


@pytest.fixture
def manager() -> SessionManager:
    return SessionManager(MemoryStore())


# -- flags ----------------------------------------------------------------------------------------


def test_cookie_flags_by_default(manager: SessionManager) -> None:
    session = manager.load(None)
    session["user"] = "ada"
    name, value, attrs = _attrs(manager.commit(session) or "")
    assert name == "__Host-" + DEFAULT_COOKIE_NAME and value == session.id
    assert attrs == {"path": "/", "httponly": "", "samesite": "Lax", "secure": ""}
    assert "max-age" not in attrs and "domain" not in attrs


def test_cookie_flags_without_secure() -> None:
    """What the sign-in flow asks for when its redirect URI is http (loopback, development)."""
    manager = SessionManager(MemoryStore(), secure=False)
    name, _value, attrs = _attrs(manager.cookie(new_session_id()))
    assert name == DEFAULT_COOKIE_NAME
    assert attrs == {"path": "/", "httponly": "", "samesite": "Lax"}


def test_the_default_name_follows_secure_and_path() -> None:
    assert default_cookie_name(secure=True) == "__Host-entra_ciam_session"
    assert default_cookie_name(secure=True, cookie_path="/app") == "__Secure-entra_ciam_session"
    assert default_cookie_name(secure=False) == "entra_ciam_session"
    on_a_path = SessionManager(MemoryStore(), cookie_path="/app")
    name, _value, attrs = _attrs(on_a_path.cookie(new_session_id()))
    assert name == "__Secure-entra_ciam_session" and attrs["path"] == "/app" and "secure" in attrs


def test_deletion_cookie(manager: SessionManager) -> None:
    name, value, attrs = _attrs(manager.deletion_cookie())
    assert (name, value) == (manager.cookie_name, "")
    assert attrs["max-age"] == "0" and "1970" in attrs["expires"]
    assert {"path", "httponly", "samesite", "secure"} <= set(attrs)
    relaxed = SessionManager(MemoryStore(), secure=False)
    assert "secure" not in _attrs(relaxed.deletion_cookie())[2]


def test_configurable_name_and_path() -> None:
    manager = SessionManager(MemoryStore(), cookie_name="myapp_sid", cookie_path="/app")
    name, _value, attrs = _attrs(manager.cookie(new_session_id()))
    assert name == "myapp_sid" and attrs["path"] == "/app" and "secure" in attrs
    relaxed = SessionManager(MemoryStore(), cookie_name="myapp_sid", secure=False)
    assert "secure" not in _attrs(relaxed.cookie(new_session_id()))[2]


@pytest.mark.parametrize("name", ["__Host-sid", "__Secure-sid"])
def test_prefixed_names_are_always_secure(name: str) -> None:
    manager = SessionManager(MemoryStore(), cookie_name=name, secure=False)
    _name, _value, attrs = _attrs(manager.cookie(new_session_id()))
    assert "secure" in attrs and attrs["path"] == "/"
    assert manager.secure


def test_host_prefixed_name_needs_the_root_path() -> None:
    with pytest.raises(ConfigError, match="__Host-"):
        SessionManager(MemoryStore(), cookie_name="__Host-sid", cookie_path="/app")


@pytest.mark.parametrize("name", ["", "has space", "semi;colon", "eq=ual", 'quo"te', "ünï"])
def test_bad_cookie_names_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError, match="cookie name"):
        SessionManager(MemoryStore(), cookie_name=name)


@pytest.mark.parametrize("path", ["", "app", "/a;b", "/a b"])
def test_bad_cookie_paths_are_config_errors(path: str) -> None:
    with pytest.raises(ConfigError, match="path"):
        SessionManager(MemoryStore(), cookie_path=path)


def test_bad_timeouts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="idle_timeout"):
        SessionManager(MemoryStore(), idle_timeout=0)
    with pytest.raises(ConfigError, match="absolute_timeout"):
        SessionManager(MemoryStore(), idle_timeout=100, absolute_timeout=50)


# -- ids ------------------------------------------------------------------------------------------


def test_ids_are_random_and_url_safe() -> None:
    ids = {new_session_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", i) for i in ids)


# -- reading the Cookie header --------------------------------------------------------------------


def test_valid_cookie_among_others(manager: SessionManager) -> None:
    session, cookie = _signed_in(manager)
    header = f"theme=dark; x{manager.cookie_name}=zzz; {cookie}; other=1"
    loaded = manager.load(header)
    assert loaded.id == session.id and loaded["user"] == "ada"
    assert manager.load(f'{manager.cookie_name}="{session.id}"').id == session.id
    assert manager.load(f"{manager.cookie_name}= {session.id} ; other=1").id == session.id


@pytest.mark.parametrize(
    "value",
    [
        "",
        "short",
        "a" * 42,
        "a" * 44,
        "a" * 42 + "!",
        "a" * 42 + "=",
        "a" * 42 + ".",
        "a" * 42 + "\x00",
        # 43 characters, one outside the id's alphabet (the length alone does not make an id)
        "a" * 42 + "\u00e9",
        "\udcff" + "a" * 42,
        "a" * 21 + "+" + "a" * 21,
        "a" * 21 + "/" + "a" * 21,
        "a" * 21 + " " + "a" * 21,
        "'" + "a" * 43 + "'",
        "../../../etc/passwd",
        "%41" * 15,
    ],
)
def test_malformed_values_are_no_session(manager: SessionManager, value: str) -> None:
    assert manager.session_id(f"{manager.cookie_name}={value}") is None
    session = manager.load(f"{manager.cookie_name}={value}")
    assert session.is_new and len(session) == 0
    # the browser is told to drop the junk cookie
    assert "Max-Age=0" in (manager.commit(session) or "")


@pytest.mark.parametrize("header", [None, "", ";;;", "=", "novalue", "{name}"])
def test_odd_headers_are_no_session(manager: SessionManager, header: str | None) -> None:
    session = manager.load(header.format(name=manager.cookie_name) if header else header)
    assert session.is_new
    assert manager.commit(session) is None


def test_tampered_id_is_no_session(manager: SessionManager) -> None:
    session, cookie = _signed_in(manager)
    last = session.id[-1]
    tampered = session.id[:-1] + ("A" if last != "A" else "B")
    loaded = manager.load(f"{manager.cookie_name}={tampered}")
    assert loaded.is_new and "user" not in loaded and loaded.id != session.id
    assert manager.load(cookie)["user"] == "ada"


@pytest.mark.parametrize("attacker_first", [True, False])
def test_two_session_cookies_are_no_session(
    manager: SessionManager, attacker_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Cookie tossing: a sibling subdomain adds a cookie of our name for a session it knows.

    Neither live session is used, whichever comes first, and the user's cookie is not deleted
    (that would leave the planted one alone in the browser).
    """
    _victim, victims = _signed_in(manager)
    _attacker, attackers = _signed_in(manager)
    header = f"{attackers}; {victims}" if attacker_first else f"{victims}; {attackers}"
    with caplog.at_level(logging.WARNING, logger="entra_ciam.sessions"):
        session = manager.load(f"theme=dark; {header}")
    assert session.is_new and "user" not in session
    assert manager.commit(session) is None, "no deletion cookie, no session written"
    assert "several" in caplog.text and victims.split("=")[1] not in caplog.text
    session["flash"] = "hello"  # a fresh session starts as for a new visitor
    set_cookie = manager.commit(session)
    assert set_cookie is not None and set_cookie.startswith(f"{manager.cookie_name}=")


@pytest.mark.parametrize(
    "extra", ["{name}={sid}", "{name}=junk", "{name}=", " {name} = {sid} "], ids=repr
)
def test_any_second_cookie_of_our_name_means_no_session(
    manager: SessionManager, extra: str
) -> None:
    session, cookie = _signed_in(manager)
    second = extra.format(name=manager.cookie_name, sid=session.id)
    assert manager.load(f"{cookie}; {second}").is_new
    assert manager.load(f"{second}; {cookie}").is_new


def test_cookies_of_other_names_are_not_ours(manager: SessionManager) -> None:
    """A sibling can set ``entra_ciam_session`` (no prefix) or a lowercase look-alike, never
    ``__Host-entra_ciam_session``: those are other cookies, and the user's session stands."""
    assert manager.cookie_name == "__Host-entra_ciam_session"
    victim, cookie = _signed_in(manager)
    _attacker, attackers = _signed_in(manager)
    attacker_sid = attackers.split("=", 1)[1]
    for tossed in (
        "entra_ciam_session",
        "__host-entra_ciam_session",
        "__Secure-entra_ciam_session",
    ):
        assert manager.load(f"{tossed}={attacker_sid}; {cookie}").id == victim.id
        assert manager.load(f"{cookie}; {tossed}={attacker_sid}").id == victim.id


def test_unknown_well_formed_id_gets_a_fresh_session_and_a_deletion(
    manager: SessionManager,
) -> None:
    unknown = new_session_id()
    session = manager.load(f"{manager.cookie_name}={unknown}")
    assert session.is_new and session.id != unknown, "never adopt an id the browser chose"
    assert "Max-Age=0" in (manager.commit(session) or "")


# -- when Set-Cookie is sent ----------------------------------------------------------------------


def test_untouched_new_session_stores_nothing(manager: SessionManager) -> None:
    store = manager.store
    assert isinstance(store, MemoryStore)
    session = manager.load(None)
    assert manager.commit(session) is None
    assert store.get(SessionManager.store_key(session.id)) is None


def test_existing_session_changes_without_new_cookie(manager: SessionManager) -> None:
    _session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    loaded["cart"] = ["book"]
    assert manager.commit(loaded) is None
    assert manager.load(cookie)["cart"] == ["book"]


def test_nested_change_needs_mark_modified(manager: SessionManager) -> None:
    _session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    loaded["cart"] = []
    manager.commit(loaded)
    loaded = manager.load(cookie)
    loaded["cart"].append("book")
    loaded.mark_modified()
    manager.commit(loaded)
    assert manager.load(cookie)["cart"] == ["book"]


def test_rotation_sends_a_new_cookie(manager: SessionManager) -> None:
    session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    manager.rotate(loaded)
    set_cookie = manager.commit(loaded)
    assert set_cookie is not None
    _name, value, _ = _attrs(set_cookie)
    assert value == loaded.id != session.id
    assert manager.load(cookie).is_new
    assert manager.load(f"{manager.cookie_name}={value}")["user"] == "ada"


def test_rotating_twice_before_commit_leaves_no_orphans(manager: SessionManager) -> None:
    store = manager.store
    assert isinstance(store, MemoryStore)
    _session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    manager.rotate(loaded)
    manager.rotate(loaded)
    manager.commit(loaded)
    assert len(store._items) == 1


def test_destroy_deletes_record_and_cookie(manager: SessionManager) -> None:
    session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    manager.destroy(loaded)
    assert len(loaded) == 0
    set_cookie = manager.commit(loaded)
    assert set_cookie is not None and "Max-Age=0" in set_cookie
    assert manager.store.get(SessionManager.store_key(session.id)) is None
    assert manager.load(cookie).is_new


def test_data_written_after_destroy_gets_a_fresh_id(manager: SessionManager) -> None:
    session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    manager.destroy(loaded)
    loaded["flash"] = "signed out"
    set_cookie = manager.commit(loaded)
    assert set_cookie is not None
    _name, value, _ = _attrs(set_cookie)
    assert value != session.id and manager.load(f"{manager.cookie_name}={value}")["flash"]
    assert manager.load(cookie).is_new


def test_stash_on_a_new_visitor_sets_the_cookie(manager: SessionManager) -> None:
    session = manager.load(None)
    manager.stash(session, "flow:s", {"state": "s"}, 600)
    set_cookie = manager.commit(session)
    assert set_cookie is not None
    back = manager.load(set_cookie.split(";", 1)[0])
    assert manager.take(back, "flow:s") == {"state": "s"}
    assert manager.take(back, "flow:s") is None


def test_repr_hides_the_id(manager: SessionManager) -> None:
    session, _cookie = _signed_in(manager)
    assert session.id not in repr(session)


def test_store_keys_stay_what_stored_sessions_were_written_under() -> None:
    # Sessions in Redis or SQLite outlive a release: a changed key would sign everyone out.
    sid = "Rp6IYcI3sFo9z0_uw913Ds6ygfdoDl-POY80Y-lYcg4"
    assert SessionManager.store_key(sid) == "s:aEQFynQHM9lmvZV_K76eCQgKcw3C2CuJLGXRlnd-RYE"
    for sid in (new_session_id() for _ in range(50)):
        digest = base64.urlsafe_b64encode(hashlib.sha256(sid.encode()).digest())
        assert SessionManager.store_key(sid) == "s:" + digest.rstrip(b"=").decode()
