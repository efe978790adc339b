"""Users' MSAL token caches, encrypted inside their sessions."""

from __future__ import annotations

import base64
import json
import logging
import time

import msal
import pytest
from cryptography.fernet import Fernet

from entra_ciam import EntraConfig
from entra_ciam.errors import ConfigError
from entra_ciam.sessions import (
    TOKEN_CACHE_KEY,
    MemoryStore,
    SessionManager,
    TokenCacheCipher,
    generate_key,
)
from tests.support.tokens import TENANT_ID, USER_OID, WEB_CLIENT_ID

AUTHORITY_HOST = "contoso.ciamlogin.com"
ACCESS = "eyJ-access-token-SECRET-value"
REFRESH = "refresh-token-SECRET-value"


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _add_tokens(cache: msal.SerializableTokenCache, scope: str = "api://x/Todolist.Read") -> None:
    """Put tokens in the cache the way MSAL does after a code redemption."""
    id_token = ".".join(
        [
            _b64({"alg": "RS256", "kid": "k"}),
            _b64(
                {
                    "iss": f"https://{TENANT_ID}.ciamlogin.com/{TENANT_ID}/v2.0",
                    "aud": WEB_CLIENT_ID,
                    "sub": "sub",
                    "oid": USER_OID,
                    "tid": TENANT_ID,
                    "preferred_username": "ada@example.com",
                    "exp": int(time.time()) + 3600,
                }
            ),
            "sig",
        ]
    )
    cache.add(
        {
            "client_id": WEB_CLIENT_ID,
            "scope": [scope],
            "token_endpoint": f"https://{AUTHORITY_HOST}/{TENANT_ID}/oauth2/v2.0/token",
            "response": {
                "access_token": ACCESS,
                "refresh_token": REFRESH,
                "expires_in": 3600,
                "token_type": "Bearer",
                "id_token": id_token,
                "client_info": _b64({"uid": USER_OID, "utid": TENANT_ID}),
            },
        }
    )


def _access_tokens(cache: msal.SerializableTokenCache) -> list[str]:
    found = cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
    return [entry["secret"] for entry in found]


@pytest.fixture
def cipher() -> TokenCacheCipher:
    return TokenCacheCipher(generate_key())


def _filled_blob(cipher: TokenCacheCipher) -> str:
    cache = msal.SerializableTokenCache()
    _add_tokens(cache)
    blob = cipher.dump(cache)
    assert blob is not None
    return blob


def test_round_trip_keeps_tokens(cipher: TokenCacheCipher) -> None:
    restored = cipher.load(_filled_blob(cipher))
    assert _access_tokens(restored) == [ACCESS]
    refresh = restored.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)
    assert [entry["secret"] for entry in refresh] == [REFRESH]
    assert restored.has_state_changed is False


def test_blob_hides_the_tokens(cipher: TokenCacheCipher) -> None:
    blob = _filled_blob(cipher)
    assert blob.startswith("gAAAA")  # a Fernet token
    for secret in (ACCESS, REFRESH, "ada@example.com", USER_OID, "refresh_token"):
        assert secret not in blob
        assert secret.encode() not in base64.urlsafe_b64decode(blob + "==")


def test_unchanged_cache_is_not_written_back(cipher: TokenCacheCipher) -> None:
    blob = _filled_blob(cipher)
    session = SessionManager(MemoryStore()).load(None)
    session[TOKEN_CACHE_KEY] = blob
    session.modified = False
    cache = cipher.load_from(session)
    list(
        cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
    )  # a read, as a silent lookup does
    assert cipher.save_to(session, cache) is False
    assert session.modified is False and session[TOKEN_CACHE_KEY] == blob


def test_changed_cache_is_written_back(cipher: TokenCacheCipher) -> None:
    session = SessionManager(MemoryStore()).load(None)
    session[TOKEN_CACHE_KEY] = _filled_blob(cipher)
    session.modified = False
    cache = cipher.load_from(session)
    _add_tokens(cache, scope="api://x/Todolist.ReadWrite")
    assert cipher.save_to(session, cache) is True
    assert session.modified is True
    assert sorted(e["target"] for e in cipher.load_from(session).search("AccessToken")) == [
        "api://x/Todolist.Read",
        "api://x/Todolist.ReadWrite",
    ]


def test_empty_session_gives_empty_cache(cipher: TokenCacheCipher) -> None:
    cache = cipher.load_from({})
    assert _access_tokens(cache) == [] and cache.has_state_changed is False
    assert cipher.save_to({}, cache) is False


@pytest.mark.parametrize("how", ["wrong key", "flipped byte", "truncated", "garbage", "not text"])
def test_unreadable_blob_is_an_empty_cache(
    cipher: TokenCacheCipher, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    blob: object = _filled_blob(cipher)
    assert isinstance(blob, str)
    if how == "wrong key":
        reader = TokenCacheCipher(generate_key())
    else:
        reader = cipher
        if how == "flipped byte":
            blob = blob[:40] + ("A" if blob[40] != "A" else "B") + blob[41:]
        elif how == "truncated":
            blob = blob[:-10]
        elif how == "garbage":
            blob = "ünïcode and spaces, not a token"
        else:
            blob = 12345
    with caplog.at_level(logging.WARNING, logger="entra_ciam.sessions"):
        cache = reader.load(blob)  # type: ignore[arg-type]
    assert _access_tokens(cache) == []
    assert cache.has_state_changed is True, "the unreadable blob should be replaced"
    assert "sign in again" in caplog.text
    assert ACCESS not in caplog.text and str(blob) not in caplog.text


def test_key_rotation() -> None:
    old_key, new_key = generate_key(), generate_key()
    old_blob = _filled_blob(TokenCacheCipher(old_key))
    rotated = TokenCacheCipher(f"{new_key}, {old_key}")
    cache = rotated.load(old_blob)
    assert _access_tokens(cache) == [ACCESS]
    assert cache.has_state_changed is True, "a blob under an old key is re-encrypted"
    new_blob = rotated.dump(cache)
    assert new_blob is not None
    assert _access_tokens(TokenCacheCipher(new_key).load(new_blob)) == [ACCESS]
    current = rotated.load(new_blob)
    assert current.has_state_changed is False and rotated.dump(current) is None


def test_keys_in_every_form() -> None:
    a, b = Fernet.generate_key(), Fernet.generate_key()
    for keys in (a, a.decode(), [a, b], [a.decode(), b.decode()], f"{a.decode()}\n{b.decode()}"):
        cipher = TokenCacheCipher(keys)
        assert cipher.decrypt(cipher.encrypt("x")) == ("x", False)
    assert TokenCacheCipher([b, a]).decrypt(TokenCacheCipher(a).encrypt("y")) == ("y", True)


@pytest.mark.parametrize("keys", ["", " , ", "not-a-key", "c2hvcnQ=", [], ["x"]])
def test_bad_keys_are_config_errors(keys: str | list[str]) -> None:
    with pytest.raises(ConfigError, match="ENTRA_SESSION_SECRET") as info:
        TokenCacheCipher(keys)
    assert "generate_key" in str(info.value)


def test_from_config() -> None:
    key = "VDcI2DEtUokQP4vTEGGLeKbrjCu7xumct3TFOxikLEc="
    config = EntraConfig(authority=f"https://contoso.ciamlogin.com/{TENANT_ID}", session_secret=key)
    cipher = TokenCacheCipher.from_config(config)
    assert TokenCacheCipher(key).decrypt(cipher.encrypt("z")) == ("z", False)
    with pytest.raises(ConfigError, match="session_secret"):
        TokenCacheCipher.from_config(
            EntraConfig(authority=f"https://contoso.ciamlogin.com/{TENANT_ID}")
        )


def test_decrypt_is_deterministic_and_blob_stable(cipher: TokenCacheCipher) -> None:
    """Reading never changes the stored blob, so callers can key an in-process cache on it."""
    blob = _filled_blob(cipher)
    first, second = cipher.load(blob), cipher.load(blob)
    assert first.serialize() == second.serialize()
    assert cipher.dump(cipher.load(blob)) is None


def test_memo_gives_the_same_answers_and_never_skips_authentication() -> None:
    key = generate_key()
    memo, plain = TokenCacheCipher(key), TokenCacheCipher(key, memo_size=0)
    blob = _filled_blob(memo)
    for _ in range(2):  # the second round is served from the memo
        assert _access_tokens(memo.load(blob)) == _access_tokens(plain.load(blob)) == [ACCESS]
    tampered = blob[:-5] + ("A" if blob[-5] != "A" else "B") + blob[-4:]
    assert _access_tokens(memo.load(tampered)) == []
    assert _access_tokens(TokenCacheCipher(generate_key()).load(blob)) == []


def test_decrypt_recent_honours_its_age_limit_even_for_memoized_blobs() -> None:
    """Short-lived values (the sealed sign-in answer) must expire: the memo never answers them."""
    key = Fernet.generate_key()
    cipher = TokenCacheCipher(key)
    old = Fernet(key).encrypt_at_time(b"old", int(time.time()) - 600).decode()
    assert cipher.decrypt(old) == ("old", False)  # now memoized
    assert cipher.decrypt_recent(old, 120) is None
    fresh = cipher.encrypt("fresh")
    assert cipher.decrypt_recent(fresh, 120) == "fresh"
    rotated = TokenCacheCipher([Fernet.generate_key(), key])
    assert rotated.decrypt_recent(fresh, 120) == "fresh"
    assert TokenCacheCipher(Fernet.generate_key()).decrypt_recent(fresh, 120) is None
    assert cipher.decrypt_recent("not a blob \u00e9", 120) is None
