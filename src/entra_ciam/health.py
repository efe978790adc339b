"""Liveness and readiness answers (``/healthz``, ``/readyz``), sans-IO; the WSGI and ASGI
``HealthMiddleware`` only run the probes and write the answer.

Liveness says the process answers: it checks nothing else, so a restart is never triggered by
Entra or Redis being away. Readiness reports what a request needs:

- ``keys``: whether the validator knows signing keys, how many, and how old they are;
- ``identity_provider``: whether the discovery document answers (probed at most every
  ``probe_interval`` seconds, within two seconds);
- ``session_store``: whether the sign-in's session store answers (a read of one fixed key).

The instance is ready when keys are known (with a validator) and the store answers (with a
sign-in). An unreachable identity provider is reported but, unless ``require_identity_provider``,
does not make the instance unready: cached keys and existing sessions keep working, and taking
every instance out of service when Entra blips would turn its outage into the app's.

The answers are public by construction (the middleware answers before any authentication) and
so carry only booleans, counts and ages: no URL, tenant, key id, error text or secret.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

if TYPE_CHECKING:
    from entra_ciam.signin.flow import SignIn
    from entra_ciam.validator import AccessTokenValidator

__all__ = ["Answer", "HealthAdapter", "HealthChecks"]

Answer = tuple[int, list[tuple[str, str]], bytes]

IDENTITY_PROVIDER: Final = "identity_provider"
SESSION_STORE: Final = "session_store"
_PROBE_KEY: Final = "entra-ciam:readyz"  # read, never written: probes cannot grow the store


def _answer(status: int, body: dict[str, Any], *, head: bool = False) -> Answer:
    data = json.dumps(body, sort_keys=True).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(data))),
    ]
    return status, headers, b"" if head else data


class HealthChecks:
    """What ``/healthz`` and ``/readyz`` answer for an app's validator and/or sign-in.

    ``signin`` is a ``SignIn`` or a ``SignInMiddleware`` (its ``signin`` is used).
    """

    def __init__(
        self,
        *,
        validator: AccessTokenValidator | None = None,
        signin: Any = None,
        require_identity_provider: bool = False,
        probe_interval: float = 10.0,
        liveness_path: str = "/healthz",
        readiness_path: str = "/readyz",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if validator is None and signin is None:
            raise ValueError("HealthChecks needs a validator, a signin, or both")
        self.validator = validator
        self.signin: SignIn | None = getattr(signin, "signin", signin)
        self.require_identity_provider = require_identity_provider
        self.probe_interval = probe_interval
        self.liveness_path = liveness_path
        self.readiness_path = readiness_path
        self.clock = clock
        self._probes: dict[str, tuple[bool, float]] = {}

    # -- routing ----------------------------------------------------------------------------------

    def route(self, method: str, path: str) -> str | None:
        """``"live"``, ``"ready"``, ``"method"`` (a 405) for these paths; None for the app's."""
        if path != self.liveness_path and path != self.readiness_path:
            return None
        if method not in ("GET", "HEAD"):
            return "method"
        return "live" if path == self.liveness_path else "ready"

    def liveness(self, method: str = "GET") -> Answer:
        return _answer(200, {"status": "ok"}, head=method == "HEAD")

    def method_not_allowed(self) -> Answer:
        status, headers, body = _answer(405, {"status": "method_not_allowed"})
        return status, [*headers, ("Allow", "GET, HEAD")], body

    # -- probes -----------------------------------------------------------------------------------

    def due(self) -> list[str]:
        """The probes whose last answer is older than ``probe_interval``."""
        wanted = [IDENTITY_PROVIDER] + ([SESSION_STORE] if self.signin is not None else [])
        now = self.clock()
        return [
            name
            for name in wanted
            if name not in self._probes or now - self._probes[name][1] >= self.probe_interval
        ]

    def probe(self, name: str) -> bool:
        """Run one probe now (blocking I/O)."""
        if name == SESSION_STORE:
            return self._store_answers()
        if self.validator is not None:
            return self.validator.probe() is None
        return self._signin_discovery_answers()

    async def probe_async(self, name: str) -> bool:
        """The async twin of :meth:`probe`: the validator's probe is async, the rest threads."""
        if name == IDENTITY_PROVIDER and self.validator is not None:
            return await self.validator.probe_async() is None
        return await asyncio.to_thread(self.probe, name)

    def note(self, name: str, ok: bool) -> None:
        self._probes[name] = (ok, self.clock())

    def _store_answers(self) -> bool:
        assert self.signin is not None
        try:
            self.signin.sessions.store.get(_PROBE_KEY)
        except Exception:  # SessionStoreUnavailableError, or a custom store's own: not ready
            return False
        return True

    def _signin_discovery_answers(self) -> bool:
        assert self.signin is not None
        try:
            self.signin.clients.metadata()
        except Exception:  # IdentityProviderUnavailableError, or anything MSAL let through
            return False
        return True

    # -- the answer -------------------------------------------------------------------------------

    def readiness(self, method: str = "GET") -> Answer:
        """The readiness answer from the keys and the probes' latest results."""
        checks: dict[str, dict[str, Any]] = {}
        ready = True
        now = self.clock()
        if self.validator is not None:
            cache = self.validator.metadata
            loaded = cache.keys_loaded_at
            count = len(cache.keys)
            age = None if loaded is None else max(0, math.floor(cache.clock() - loaded))
            checks["keys"] = {"ok": count > 0, "count": count, "age_seconds": age}
            ready = ready and count > 0
        for name in (IDENTITY_PROVIDER, SESSION_STORE):
            if name not in self._probes:
                continue
            ok, at = self._probes[name]
            checks[name] = {"ok": ok, "checked_seconds_ago": max(0, math.floor(now - at))}
            if not ok and (name == SESSION_STORE or self.require_identity_provider):
                ready = False
        body = {"status": "ready" if ready else "not_ready", "checks": checks}
        return _answer(200 if ready else 503, body, head=method == "HEAD")

    def check(self, method: str = "GET") -> Answer:
        """Sync driver: run the due probes, then answer."""
        for name in self.due():
            self.note(name, self.probe(name))
        return self.readiness(method)

    def answer_now(self, route: str, method: str) -> Answer | None:
        """The answer that needs no probe (liveness, 405); None for readiness."""
        if route == "live":
            return self.liveness(method)
        if route == "method":
            return self.method_not_allowed()
        return None

    async def check_async(self, method: str = "GET") -> Answer:
        """Async driver: the due probes side by side, then answer."""
        due = self.due()
        results = await asyncio.gather(*(self.probe_async(name) for name in due))
        for name, ok in zip(due, results, strict=True):
            self.note(name, ok)
        return self.readiness(method)


AppT = TypeVar("AppT")


class HealthAdapter(Generic[AppT]):
    """What the WSGI and ASGI ``HealthMiddleware`` share: the wrapped app and the checks.

    Give ``checks`` or the options of :class:`HealthChecks` (``validator=``, ``signin=``,
    ``require_identity_provider=``, ``probe_interval=``, ``liveness_path=``, ``readiness_path=``).
    """

    def __init__(
        self,
        app: AppT,
        checks: HealthChecks | None = None,
        *,
        validator: AccessTokenValidator | None = None,
        signin: Any = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.checks = checks or HealthChecks(validator=validator, signin=signin, **options)
