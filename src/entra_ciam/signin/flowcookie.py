"""The sign-ins a browser has started, kept in that browser: one sealed cookie per flow.

Redeeming Entra's answer needs what the sign-in started with: the state, the nonce, the PKCE
verifier, the scopes and the page to return to. Kept in the session store, every anonymous visit
to ``/auth/signin`` wrote about a kilobyte (a session record and the flow) that lived up to an
hour, so anonymous traffic could grow any store without bound. Here each flow travels in a cookie
of its own, ``<session cookie name>_flow_<8 characters of the state's hash>``, sealed with the
app's :class:`TokenCacheCipher` (Fernet: the verifier and nonce are encrypted, and only this app
can make one), with the session cookie's attributes (``HttpOnly; SameSite=Lax``, ``Secure`` and
``__Host-`` on https) and ``Max-Age`` of :data:`FLOW_LIFETIME`. Nothing is stored until a sign-in
succeeds.

A flow is found only in the browser that started it, so a state from elsewhere finds nothing
(login CSRF), and the answer that uses it deletes its cookie, so a replayed state is refused
before MSAL sees it. One cookie per flow (not one cookie for all) lets sign-ins started at the
same moment in several tabs all finish.

The flows a browser holds are bounded in number, :data:`MAX_FLOWS`, and in bytes together,
:data:`MAX_TOTAL_BYTES`; the oldest give way first. Bounding each cookie was not enough: a flow
with a long return path is ~3.7 KB, so three of them (three ``/auth/signin?next=<long path>``
navigations, which another site can make a victim's browser open) pushed every Cookie header of
the site past 8 KB, the limit of gunicorn and nginx, and the whole site answered 431 to that
browser for the flows' ten minutes. Within the budget the Cookie header keeps about 4 KB for the
session cookie and the app's own cookies. A usual flow is about 600 bytes, so the several tabs
still all fit; a flow too large for the budget even alone is refused (:class:`FlowTooLargeError`).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any

from entra_ciam.errors import EntraCiamError
from entra_ciam.sessions import SessionManager, TokenCacheCipher
from entra_ciam.sessions.manager import cookie_pairs
from entra_ciam.signin.messages import Request

__all__ = ["FLOW_LIFETIME", "MAX_FLOWS", "MAX_TOTAL_BYTES", "FlowCookies", "FlowTooLargeError"]

FLOW_LIFETIME = 600  # seconds a started sign-in may take (Entra's auth codes live 10 minutes)
MAX_FLOWS = 4  # sign-ins one browser may have under way at once
_PURPOSE = "flow"  # no other value this cipher seals reads as a flow
# All flow cookies of a browser together, as ``name=value`` pairs and the ``; `` between them in
# its Cookie header: half of the 8 KB servers and proxies accept in one header.
MAX_TOTAL_BYTES = 4096
_MAX_VALUE = 4000  # one cookie (browsers keep cookies up to 4096 bytes, name included)
_SEPARATOR = 2  # "; " between cookies in a Cookie header


class FlowTooLargeError(EntraCiamError, ValueError):
    """The flow would not fit in a cookie (an extremely long return path or claims challenge)."""


class FlowCookies:
    """Writes and reads the flow cookies of the sign-in whose session cookie ``sessions`` sets."""

    def __init__(
        self,
        sessions: SessionManager,
        cipher: TokenCacheCipher,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._clock = clock
        self.prefix = f"{sessions.cookie_name}_flow_"

    def name_for(self, state: str) -> str:
        """The cookie of the flow with this state: 48 bits of its hash tell flows apart."""
        digest = hashlib.sha256(state.encode()).digest()[:6]
        return self.prefix + base64.urlsafe_b64encode(digest).decode()

    def put(self, cookie_header: str, record: dict[str, Any]) -> list[str]:
        """Set-Cookie values that keep ``record`` (its ``flow`` has the state), drop any flow
        that no longer opens, and drop the oldest until at most MAX_FLOWS remain, new one
        included, within MAX_TOTAL_BYTES together."""
        state = str(record["flow"]["state"])
        now = self._clock()
        sealed = self._cipher.seal_json(_PURPOSE, {**record, "t": now})
        name = self.name_for(state)
        size = len(name) + 1 + len(sealed)
        if size > _MAX_VALUE:
            raise FlowTooLargeError(f"the sign-in flow needs {len(sealed)} bytes in a cookie")
        headers = [self._sessions.set_cookie(name, sealed, max_age=FLOW_LIFETIME)]
        kept: list[tuple[float, str, int]] = []
        for other, value in self._present(cookie_header):
            if other == name:  # replaced by the new one
                continue
            opened = self._open(value)
            if opened is None:
                headers.append(self._sessions.set_cookie(other, None))
            else:
                kept.append((float(opened["t"]), other, len(other) + 1 + len(value)))
        kept.sort()  # oldest first
        total = size + sum(_SEPARATOR + length for _t, _n, length in kept)
        dropped = 0
        while dropped < len(kept) and (
            len(kept) - dropped > MAX_FLOWS - 1 or total > MAX_TOTAL_BYTES
        ):
            total -= _SEPARATOR + kept[dropped][2]
            headers.append(self._sessions.set_cookie(kept[dropped][1], None))
            dropped += 1
        return headers

    def take(self, cookie_header: str, state: str) -> tuple[dict[str, Any] | None, list[str]]:
        """The flow started with ``state`` in this browser (or None), and the Set-Cookie values
        that delete its cookie. Several cookies of its name are none (cookie tossing)."""
        name = self.name_for(state)
        values = [value for other, value in self._present(cookie_header) if other == name]
        if not values:
            return None, []
        deletion = [self._sessions.set_cookie(name, None)]
        if len(values) != 1:
            return None, deletion
        record = self._open(values[0])
        if record is None or not isinstance(record.get("flow"), dict):
            return None, deletion
        if record["flow"].get("state") != state:
            return None, deletion
        return record, deletion

    def sees_cookies(self, request: Request) -> bool:
        """Whether ``request`` carries any cookie of this sign-in (session or flow): a
        cross-site POST, such as Entra's form_post, carries none of these SameSite=Lax ones."""
        session = self._sessions.cookie_name
        return any(
            name == session or name.startswith(self.prefix)
            for name, _value in cookie_pairs(request.cookie_header)
        )

    def _present(self, cookie_header: str) -> list[tuple[str, str]]:
        return [(n, v) for n, v in cookie_pairs(cookie_header) if n.startswith(self.prefix)]

    def _open(self, value: str) -> dict[str, Any] | None:
        """The record a flow cookie holds, if this app sealed it less than FLOW_LIFETIME ago."""
        record = self._cipher.open_json(_PURPOSE, value, FLOW_LIFETIME)
        if record is None or not isinstance(record.get("t"), int | float):
            return None
        return record
