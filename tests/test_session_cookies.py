"""The session cookie: its flags, what is accepted from a Cookie header, and when it is sent."""

from __future__ import annotations

import re

import pytest

from entra_ciam.errors import ConfigError
from entra_ciam.sessions import MemoryStore, Session, SessionManager
from entra_ciam.sessions.manager import DEFAULT_COOKIE_NAME, new_session_id


def _attrs(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    head, *rest = [p.strip() for p in set_cookie.split(";")]
    name, _, value = head.partition("=")
    attrs = {}
    for item in rest:
        key, _, val = item.partition("=")
        attrs[key.lower()] = val
    return name, value, attrs


def _signed_in(manager: SessionManager, host: str = "app.example.com") -> tuple[Session, str]:
    session = manager.load(None)
    session["user"] = "ada"
    set_cookie = manager.commit(session, host)
    assert set_cookie is not None
    return session, set_cookie.split(";", 1)[0]


@pytest.fixture
def manager() -> SessionManager:
    return SessionManager(MemoryStore())


# -- flags ----------------------------------------------------------------------------------------


def test_cookie_flags_on_a_public_host(manager: SessionManager) -> None:
    session = manager.load(None)
    session["user"] = "ada"
    name, value, attrs = _attrs(manager.commit(session, "app.example.com") or "")
    assert name == DEFAULT_COOKIE_NAME and value == session.id
    assert attrs == {"path": "/", "httponly": "", "samesite": "Lax", "secure": ""}
    assert "max-age" not in attrs and "domain" not in attrs


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:8000",
        "127.0.0.1",
        "127.0.0.1:5000",
        "127.8.9.10",
        "[::1]:8000",
        "[::1]",
        "app.localhost:3000",
    ],
)
def test_no_secure_on_loopback(manager: SessionManager, host: str) -> None:
    _name, _value, attrs = _attrs(manager.cookie(new_session_id(), host))
    assert "secure" not in attrs
    assert attrs["httponly"] == "" and attrs["samesite"] == "Lax"


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "example.com:443",
        "localhost.evil.com",
        "127.0.0.1.nip.io",
        "10.0.0.1",
        "[2001:db8::1]:443",
        "",
        None,
        "[::1",
        "::1:80:x",
    ],
)
def test_secure_everywhere_else(manager: SessionManager, host: str | None) -> None:
    _name, _value, attrs = _attrs(manager.cookie(new_session_id(), host))
    assert "secure" in attrs


def test_deletion_cookie(manager: SessionManager) -> None:
    name, value, attrs = _attrs(manager.deletion_cookie("app.example.com"))
    assert (name, value) == (DEFAULT_COOKIE_NAME, "")
    assert attrs["max-age"] == "0" and "1970" in attrs["expires"]
    assert {"path", "httponly", "samesite", "secure"} <= set(attrs)
    assert "secure" not in _attrs(manager.deletion_cookie("localhost:8000"))[2]


def test_configurable_name_path_and_secure_override() -> None:
    manager = SessionManager(MemoryStore(), cookie_name="myapp_sid", cookie_path="/app")
    name, _value, attrs = _attrs(manager.cookie(new_session_id(), "example.com"))
    assert name == "myapp_sid" and attrs["path"] == "/app"
    forced = SessionManager(MemoryStore(), secure=True)
    assert "secure" in _attrs(forced.cookie(new_session_id(), "localhost"))[2]
    relaxed = SessionManager(MemoryStore(), secure=False)
    assert "secure" not in _attrs(relaxed.cookie(new_session_id(), "example.com"))[2]


def test_host_prefixed_name_is_always_secure() -> None:
    manager = SessionManager(MemoryStore(), cookie_name="__Host-sid", secure=False)
    _name, _value, attrs = _attrs(manager.cookie(new_session_id(), "localhost:8000"))
    assert "secure" in attrs and attrs["path"] == "/"
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
    header = f"theme=dark; x{DEFAULT_COOKIE_NAME}=zzz; {cookie}; other=1"
    loaded = manager.load(header)
    assert loaded.id == session.id and loaded["user"] == "ada"
    assert manager.load(f'{DEFAULT_COOKIE_NAME}="{session.id}"').id == session.id


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
        "'" + "a" * 43 + "'",
        "../../../etc/passwd",
        "%41" * 15,
    ],
)
def test_malformed_values_are_no_session(manager: SessionManager, value: str) -> None:
    assert manager.session_ids(f"{DEFAULT_COOKIE_NAME}={value}") == []
    session = manager.load(f"{DEFAULT_COOKIE_NAME}={value}")
    assert session.is_new and len(session) == 0
    # the browser is told to drop the junk cookie
    assert "Max-Age=0" in (manager.commit(session, "example.com") or "")


@pytest.mark.parametrize("header", [None, "", ";;;", "=", "novalue", f"{DEFAULT_COOKIE_NAME}"])
def test_odd_headers_are_no_session(manager: SessionManager, header: str | None) -> None:
    session = manager.load(header)
    assert session.is_new
    assert manager.commit(session, "example.com") is None


def test_tampered_id_is_no_session(manager: SessionManager) -> None:
    session, cookie = _signed_in(manager)
    last = session.id[-1]
    tampered = session.id[:-1] + ("A" if last != "A" else "B")
    loaded = manager.load(f"{DEFAULT_COOKIE_NAME}={tampered}")
    assert loaded.is_new and "user" not in loaded and loaded.id != session.id
    assert manager.load(cookie)["user"] == "ada"


def test_a_planted_cookie_before_ours_does_not_hide_the_session(manager: SessionManager) -> None:
    """A sibling subdomain may add a cookie of the same name; the live session is still found."""
    session, cookie = _signed_in(manager)
    planted = f"{DEFAULT_COOKIE_NAME}={new_session_id()}"
    assert manager.load(f"{planted}; {cookie}").id == session.id


def test_unknown_well_formed_id_gets_a_fresh_session_and_a_deletion(
    manager: SessionManager,
) -> None:
    unknown = new_session_id()
    session = manager.load(f"{DEFAULT_COOKIE_NAME}={unknown}")
    assert session.is_new and session.id != unknown, "never adopt an id the browser chose"
    assert "Max-Age=0" in (manager.commit(session, "example.com") or "")


# -- when Set-Cookie is sent ----------------------------------------------------------------------


def test_untouched_new_session_stores_nothing(manager: SessionManager) -> None:
    store = manager.store
    assert isinstance(store, MemoryStore)
    session = manager.load(None)
    assert manager.commit(session, "example.com") is None
    assert store.get(SessionManager.store_key(session.id)) is None


def test_existing_session_changes_without_new_cookie(manager: SessionManager) -> None:
    _session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    loaded["cart"] = ["book"]
    assert manager.commit(loaded, "example.com") is None
    assert manager.load(cookie)["cart"] == ["book"]


def test_nested_change_needs_mark_modified(manager: SessionManager) -> None:
    _session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    loaded["cart"] = []
    manager.commit(loaded, "example.com")
    loaded = manager.load(cookie)
    loaded["cart"].append("book")
    loaded.mark_modified()
    manager.commit(loaded, "example.com")
    assert manager.load(cookie)["cart"] == ["book"]


def test_rotation_sends_a_new_cookie(manager: SessionManager) -> None:
    session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    manager.rotate(loaded)
    set_cookie = manager.commit(loaded, "example.com")
    assert set_cookie is not None
    _name, value, _ = _attrs(set_cookie)
    assert value == loaded.id != session.id
    assert manager.load(cookie).is_new
    assert manager.load(f"{DEFAULT_COOKIE_NAME}={value}")["user"] == "ada"


def test_rotating_twice_before_commit_leaves_no_orphans(manager: SessionManager) -> None:
    store = manager.store
    assert isinstance(store, MemoryStore)
    _session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    manager.rotate(loaded)
    manager.rotate(loaded)
    manager.commit(loaded, "example.com")
    assert len(store._items) == 1


def test_destroy_deletes_record_and_cookie(manager: SessionManager) -> None:
    session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    manager.destroy(loaded)
    assert len(loaded) == 0
    set_cookie = manager.commit(loaded, "localhost:8000")
    assert set_cookie is not None and "Max-Age=0" in set_cookie
    assert manager.store.get(SessionManager.store_key(session.id)) is None
    assert manager.load(cookie).is_new


def test_data_written_after_destroy_gets_a_fresh_id(manager: SessionManager) -> None:
    session, cookie = _signed_in(manager)
    loaded = manager.load(cookie)
    manager.destroy(loaded)
    loaded["flash"] = "signed out"
    set_cookie = manager.commit(loaded, "example.com")
    assert set_cookie is not None
    _name, value, _ = _attrs(set_cookie)
    assert value != session.id and manager.load(f"{DEFAULT_COOKIE_NAME}={value}")["flash"]
    assert manager.load(cookie).is_new


def test_stash_on_a_new_visitor_sets_the_cookie(manager: SessionManager) -> None:
    session = manager.load(None)
    manager.stash(session, "flow:s", {"state": "s"}, 600)
    set_cookie = manager.commit(session, "example.com")
    assert set_cookie is not None
    back = manager.load(set_cookie.split(";", 1)[0])
    assert manager.take(back, "flow:s") == {"state": "s"}
    assert manager.take(back, "flow:s") is None


def test_repr_hides_the_id(manager: SessionManager) -> None:
    session, _cookie = _signed_in(manager)
    assert session.id not in repr(session)
