"""What the tenant remembers between requests: pending sign-ins, codes, refresh tokens, sessions.

Codes and refresh tokens are kept by their SHA-256 digest only. Codes are single use: a second
use means it leaked, so every refresh token descended from the same sign-in is revoked. Refresh
tokens stay good until they expire, as in Entra, unless the tenant asks for one-time rotation
(``[grants] refresh_token_reuse = false``): then a second use revokes the sign-in's family too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import threading
import uuid
from collections.abc import Callable
from typing import Any

from entra_ciam.devidp.errors import OAuthError
from entra_ciam.devidp.scopes import DelegatedGrant

__all__ = [
    "CodeGrant",
    "GrantStore",
    "PendingAuthorization",
    "RefreshGrant",
    "Session",
]

FLOW_LIFETIME = 30 * 60
SESSION_LIFETIME = 24 * 3600
OTP_ATTEMPTS = 5
_PRUNE_EVERY = 256


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", errors="replace")).hexdigest()


@dataclasses.dataclass(slots=True)
class PendingAuthorization:
    """A valid /authorize request waiting for the person to sign in or sign up."""

    client_id: str
    redirect_uri: str
    response_mode: str
    state: str | None
    nonce: str | None
    code_challenge: str | None
    grant: DelegatedGrant
    max_age: int | None
    login_hint: str | None
    expires_at: float
    signup_email: str | None = None
    signup_verified: bool = False
    otp_digest: str | None = None
    otp_expires_at: float = 0.0
    otp_attempts: int = 0
    password_attempts: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """A person signed in at the emulator (its cookie), so the next sign-in needs no password."""

    sid: str  # the ``sid`` claim; not the cookie value
    user_oid: str
    auth_time: int
    expires_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class CodeGrant:
    client_id: str
    redirect_uri: str
    code_challenge: str | None  # None: no PKCE (a confidential client may skip it)
    nonce: str | None
    user_oid: str
    grant: DelegatedGrant
    sid: str
    auth_time: int
    include_auth_time: bool
    expires_at: float
    family: str


@dataclasses.dataclass(frozen=True, slots=True)
class RefreshGrant:
    family: str
    client_id: str
    user_oid: str
    sid: str
    oidc: frozenset[str]
    scope: str  # what the last token response granted; a refresh without ``scope`` repeats it
    issued_at: float
    expires_at: float


@dataclasses.dataclass(slots=True)
class _Browser:
    """What one emulator cookie holds: signed-in accounts and the apps each signed in to."""

    accounts: list[Session] = dataclasses.field(default_factory=list)
    clients: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # sid -> client ids


@dataclasses.dataclass(slots=True)
class _Entry:
    value: Any
    expires_at: float
    used: bool = False


class GrantStore:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._flows: dict[str, PendingAuthorization] = {}
        self._codes: dict[str, _Entry] = {}
        self._refresh: dict[str, _Entry] = {}
        self._revoked_families: set[str] = set()
        self._sessions: dict[str, _Browser] = {}
        self._latest_otp: dict[str, str] = {}
        self._writes = 0

    # -- pending sign-ins -------------------------------------------------------------------

    def add_flow(self, flow: PendingAuthorization) -> str:
        flow_id = secrets.token_urlsafe(24)
        with self._lock:
            self._flows[flow_id] = flow
            self._maybe_prune()
        return flow_id

    def flow(self, flow_id: str) -> PendingAuthorization | None:
        with self._lock:
            flow = self._flows.get(flow_id)
            if flow is None or flow.expires_at <= self._clock():
                self._flows.pop(flow_id, None)
                return None
            return flow

    def end_flow(self, flow_id: str) -> None:
        with self._lock:
            self._flows.pop(flow_id, None)

    # -- one-time passcodes (sign-up) ------------------------------------------------------

    def new_otp(self, flow: PendingAuthorization, email: str, lifetime: int) -> str:
        code = f"{secrets.randbelow(10**8):08d}"
        with self._lock:
            flow.signup_email = email
            flow.signup_verified = False
            flow.otp_digest = _digest(code)
            flow.otp_expires_at = self._clock() + lifetime
            flow.otp_attempts = 0
            self._latest_otp[email] = code
        return code

    def check_otp(self, flow: PendingAuthorization, code: str) -> str | None:
        """None when the code is right; otherwise why not, in words for the page."""
        with self._lock:
            if flow.otp_digest is None:
                return "Request a code first."
            if flow.otp_expires_at <= self._clock():
                return "That code has expired. Send a new code."
            if flow.otp_attempts >= OTP_ATTEMPTS:
                return "Too many wrong codes. Send a new code."
            flow.otp_attempts += 1
            if not hmac.compare_digest(flow.otp_digest, _digest(code.strip())):
                left = OTP_ATTEMPTS - flow.otp_attempts
                return f"That code is wrong. {left} attempt{'s' if left != 1 else ''} left."
            flow.signup_verified = True
            flow.otp_digest = None
            return None

    def latest_otp(self, email: str | None = None) -> str | None:
        """The last passcode sent (to ``email``, or to anyone): for the test-only route."""
        with self._lock:
            if email is not None:
                return self._latest_otp.get(email.strip().lower())
            return next(reversed(self._latest_otp.values()), None)

    # -- authorization codes ---------------------------------------------------------------

    def issue_code(self, grant: CodeGrant) -> str:
        code = secrets.token_urlsafe(48)
        with self._lock:
            self._codes[_digest(code)] = _Entry(grant, grant.expires_at)
            self._maybe_prune()
        return code

    def redeem_code(self, code: str, client_id: str) -> CodeGrant:
        """Consume a code. A second redemption revokes what the first one obtained."""
        with self._lock:
            entry = self._codes.get(_digest(code))
            if entry is None:
                raise OAuthError(
                    "invalid_grant",
                    9002313,
                    "Invalid request. The authorization code is malformed.",
                )
            grant: CodeGrant = entry.value
            if grant.client_id != client_id:
                raise OAuthError(
                    "invalid_grant",
                    70000,
                    "The provided authorization code was issued to a different client.",
                )
            if entry.used:
                self._revoked_families.add(grant.family)
                raise OAuthError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid "
                    "code or use an existing refresh token. Tokens obtained with this code have "
                    "been revoked.",
                )
            entry.used = True
            if entry.expires_at <= self._clock():
                raise OAuthError(
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired due to "
                    "inactivity. Send a new interactive authorization request for this user and "
                    "resource.",
                )
            return grant

    # -- refresh tokens --------------------------------------------------------------------

    def issue_refresh(self, grant: RefreshGrant) -> str:
        token = "1." + secrets.token_urlsafe(64)
        with self._lock:
            self._refresh[_digest(token)] = _Entry(grant, grant.expires_at)
            self._maybe_prune()
        return token

    def redeem_refresh(self, token: str, client_id: str, *, one_time: bool = False) -> RefreshGrant:
        """Redeem a refresh token. ``one_time``: consume it, and a reused one revokes its family.

        Without ``one_time`` (Entra's behaviour) a refresh token may be used again until it
        expires or its sign-in is revoked.
        """
        with self._lock:
            entry = self._refresh.get(_digest(token))
            if entry is None:
                raise OAuthError(
                    "invalid_grant", 9002313, "Invalid request. The refresh token is malformed."
                )
            grant: RefreshGrant = entry.value
            if grant.client_id != client_id:
                raise OAuthError(
                    "invalid_grant", 70000, "The refresh token was issued to a different client."
                )
            if grant.family in self._revoked_families:
                raise _revoked()
            if one_time and entry.used:
                self._revoked_families.add(grant.family)
                raise _revoked(
                    " A refresh token was used twice, so the sign-in it came from was revoked."
                )
            entry.used = True
            if entry.expires_at <= self._clock():
                raise OAuthError(
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity. Sign the user in again.",
                    suberror="bad_token",
                )
            return grant

    def revoke_family(self, family: str) -> None:
        with self._lock:
            self._revoked_families.add(family)

    @staticmethod
    def new_family() -> str:
        return str(uuid.uuid4())

    # -- sessions --------------------------------------------------------------------------
    # One cookie is one browser; it may hold several signed-in accounts (Entra's account picker
    # lists them), each with its own ``sid`` and the apps it signed in to.

    def start_session(self, user_oid: str, cookie: str | None = None) -> tuple[str, Session]:
        """Sign ``user_oid`` in to the browser ``cookie`` names (a new one if None or unknown).

        Return (cookie value, session). Signing the same account in again replaces its session.
        """
        now = self._clock()
        session = Session(str(uuid.uuid4()), user_oid, int(now), now + SESSION_LIFETIME)
        with self._lock:
            browser = self._sessions.get(_digest(cookie)) if cookie else None
            if browser is None or cookie is None:
                cookie = secrets.token_urlsafe(32)
                browser = _Browser()
                self._sessions[_digest(cookie)] = browser
            browser.accounts = [a for a in browser.accounts if a.user_oid != user_oid]
            browser.accounts.append(session)
            self._maybe_prune()
        return cookie, session

    def sessions(self, cookie: str | None) -> list[Session]:
        """The accounts signed in to this browser that have not expired, newest last."""
        if not cookie:
            return []
        now = self._clock()
        with self._lock:
            browser = self._sessions.get(_digest(cookie))
            return [a for a in browser.accounts if a.expires_at > now] if browser else []

    def session(self, cookie: str | None) -> Session | None:
        """The account signed in last in this browser, or None."""
        live = self.sessions(cookie)
        return live[-1] if live else None

    def note_client(self, cookie: str | None, sid: str, client_id: str) -> None:
        """Remember that session ``sid`` signed in to ``client_id`` (for front-channel logout)."""
        if not cookie:
            return
        with self._lock:
            browser = self._sessions.get(_digest(cookie))
            if browser is not None:
                browser.clients.setdefault(sid, set()).add(client_id)

    def end_session(
        self, cookie: str | None, user_oid: str | None = None
    ) -> tuple[list[Session], set[str], bool]:
        """Sign one account (``user_oid``) or every account out of this browser.

        Return (ended sessions, client ids they had signed in to, whether accounts remain).
        """
        if not cookie:
            return [], set(), False
        with self._lock:
            key = _digest(cookie)
            browser = self._sessions.get(key)
            if browser is None:
                return [], set(), False
            ended = [a for a in browser.accounts if user_oid in (None, a.user_oid)]
            browser.accounts = [a for a in browser.accounts if a not in ended]
            clients: set[str] = set()
            for account in ended:
                clients |= browser.clients.pop(account.sid, set())
            if not browser.accounts:
                del self._sessions[key]
            return ended, clients, bool(browser.accounts)

    # -- housekeeping ----------------------------------------------------------------------

    def _maybe_prune(self) -> None:
        self._writes += 1
        if self._writes % _PRUNE_EVERY:
            return
        now = self._clock()
        self._flows = {k: v for k, v in self._flows.items() if v.expires_at > now}
        # Used codes stay a day past expiry, so that a late replay is still recognised as one.
        self._codes = {
            k: v for k, v in self._codes.items() if v.expires_at + (86400 if v.used else 0) > now
        }
        self._refresh = {k: v for k, v in self._refresh.items() if v.expires_at > now}
        for browser in self._sessions.values():
            browser.accounts = [a for a in browser.accounts if a.expires_at > now]
        self._sessions = {k: v for k, v in self._sessions.items() if v.accounts}


def _revoked(extra: str = "") -> OAuthError:
    # bad_token, as Entra sends it: MSAL then drops the refresh token and asks for a sign-in.
    return OAuthError(
        "invalid_grant",
        50173,
        "The provided grant has expired due to it being revoked, and a fresh auth token is needed. "
        "Have the user sign in again." + extra,
        suberror="bad_token",
    )
