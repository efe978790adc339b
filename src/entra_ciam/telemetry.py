"""What the library reports about its work: the hooks, and the recorder they call.

The validator, the key cache, the token acquirer and the sign-in flow call the functions here at
the moments an operator cares about. Each call logs its structured event when it has one
(:mod:`entra_ciam.events`) and hands the numbers to :data:`recorder`. The default recorder does
nothing, so an app that never asks for metrics imports nothing more and pays one no-op call per
hook (the validator's cache-hit path only tests :data:`active`):
:func:`entra_ciam.opentelemetry.instrument` swaps in one that feeds OpenTelemetry, and
:func:`install` takes any other :class:`Recorder` (Prometheus, StatsD...).

Every label is drawn from a fixed set (outcomes, reasons, sources, steps), never from a token, a
``kid`` read from a token, a user or a URL, so a backend's series stay bounded whatever callers
send.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from entra_ciam.events import emit

if TYPE_CHECKING:
    from entra_ciam.errors import AuthError

__all__ = [
    "IDP_OPERATIONS",
    "REFUSAL_REASONS",
    "SIGNIN_FAILURES",
    "TOKEN_SOURCES",
    "IdpCall",
    "Recorder",
    "acquisition",
    "active",
    "install",
    "key_refresh",
    "key_refresh_failed",
    "memo_answered",
    "recorder",
    "refusal_reason",
    "session_store_error",
    "signin_completed",
    "signin_failed",
    "signin_started",
    "token_refused",
    "token_source",
]


class IdpCall:
    """One call to the identity provider in progress; recorders may attach a span to it."""

    __slots__ = ()

    def __enter__(self) -> IdpCall:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        return None

    def status(self, code: int) -> None:
        """The HTTP status the identity provider answered with."""


_NO_CALL: Final = IdpCall()


class Recorder:
    """Receives the numbers; this base records nothing. Subclass it and :func:`install` it.

    Methods are called on request paths (``cache_hit`` for every repeated token), so an
    implementation must be cheap and must never raise.
    """

    __slots__ = ()

    def cache_hit(self) -> None:
        """A token was answered from the validated-token cache (a valid validation)."""

    def validated(self) -> None:
        """A token passed every check the slow way (signature, claims)."""

    def refused(self, reason: str, status: int) -> None:
        """A token was refused; ``reason`` is one of :data:`REFUSAL_REASONS`."""

    def key_refresh(self, step: str, ok: bool) -> None:
        """A fetch of the discovery document (``step="metadata"``) or the keys ended."""

    def acquisition(self, kind: str, source: str, outcome: str, seconds: float) -> None:
        """A token acquisition ended: ``kind`` user, app or obo; ``source`` from TOKEN_SOURCES."""

    def signin(self, stage: str, reason: str | None) -> None:
        """A sign-in ``started``, ``completed`` or ``failed`` (with a SIGNIN_FAILURES reason)."""

    def session_store_error(self, operation: str) -> None:
        """The session store failed during ``operation`` (load, save, start, route)."""

    def idp_call(self, operation: str, method: str, url: str) -> IdpCall:
        """A context for one HTTP call to the identity provider (operation in IDP_OPERATIONS)."""
        return _NO_CALL


recorder: Recorder = Recorder()
# Whether a recorder other than the no-op one is installed: the validator's cache-hit path (about
# a microsecond) tests this instead of calling a method that does nothing (10 ns against 40).
active = False


def install(new: Recorder | None) -> Recorder:
    """Make ``new`` (None: the no-op recorder) receive every report; return the previous one."""
    global recorder, active
    previous, recorder = recorder, (new if new is not None else Recorder())
    active = new is not None
    return previous


_Table = Callable[[], tuple[tuple[re.Pattern[str], str], ...]]


def _table(pairs: tuple[tuple[str, str], ...]) -> _Table:
    """The patterns, compiled on first use: compiling them all costs milliseconds that every
    cold start of an API importing the validator would pay."""

    @functools.cache
    def compiled() -> tuple[tuple[re.Pattern[str], str], ...]:
        return tuple((re.compile(pattern), label) for pattern, label in pairs)

    return compiled


def _label(table: _Table, text: str) -> str:
    """The label of the first pattern found in ``text``, or ``"other"``."""
    return next((label for pattern, label in table() if pattern.search(text)), "other")


# -- the validator ------------------------------------------------------------------------------

REFUSAL_REASONS: Final = frozenset(
    {
        "malformed",
        "algorithm",
        "header",
        "unknown_key",
        "signature",
        "issuer",
        "audience",
        "tenant",
        "version",
        "expired",
        "not_yet_valid",
        "claims",
        "idp_unavailable",
        "internal",
        "other",
    }
)

# First match wins; the messages are the validator's and jose's own (tests/test_telemetry.py runs
# the whole refusal catalogue through this to keep it honest).
_REFUSALS: Final = _table(
    (
        # anchored: the messages quote attacker-chosen claim values after their first words
        (r"^the token signing key is not one of the issuer's keys$", "unknown_key"),
        (r"^the token signature is invalid", "signature"),
        (
            r"^unsigned tokens|^HMAC-signed|^signing algorithm |names no signing algorithm",
            "algorithm",
        ),
        (
            r"^tokens with |^nested tokens|^encrypted tokens|typ header|has no kid|kid is too long",
            "header",
        ),
        (r"^the token header is too large", "header"),
        (r"^issuer |^the token has no iss ", "issuer"),
        (r"^audience |^the token has no aud ", "audience"),
        (r"^tenant |^the token has no tid |^the API cannot check the token tenant", "tenant"),
        (r"^token version ", "version"),
        (r"^the token expired at ", "expired"),
        (r"^the token is not valid before |^the token was issued in the future", "not_yet_valid"),
        (
            r"^the token carries neither|^the token (scp|roles) claim|^the token has no exp ",
            "claims",
        ),
        (r"^the token \w+ claim is not a valid time", "claims"),
        (r"^the token could not be validated", "internal"),
        (r"base64url|JSON|compact JWS|is empty$|not a string|longer than|non-ASCII", "malformed"),
        (r"characters a bearer token cannot contain|too large", "malformed"),
    )
)


def refusal_reason(error: AuthError) -> str:
    """A reason from :data:`REFUSAL_REASONS` for ``error``: a bounded label, never its text."""
    if error.status_code == 503:
        return "idp_unavailable"
    return _label(_REFUSALS, error.description)


def token_refused(error: AuthError) -> None:
    """The validator refused a token (or could not get keys): count it, log ``token_refused``."""
    reason = refusal_reason(error)
    status = error.status_code
    recorder.refused(reason, status)
    if status != 503:  # the 503 has its own event, metadata_unavailable, with the remedy
        emit("token_refused", reason=reason, status=status, detail=error.description[:300])


def key_refresh(step: str, *, keys: int | None = None, changed: bool = False) -> None:
    """The key cache fetched the discovery document (``step="metadata"``) or the keys."""
    recorder.key_refresh(step, True)
    if step == "keys":
        emit("keys_refreshed", step=step, keys=keys, changed=changed)


def key_refresh_failed(step: str, url: str, error: str, remedy: str, *, kept_keys: bool) -> None:
    """A fetch failed: ``metadata_refresh_failed`` while known-good keys serve, else
    ``metadata_unavailable`` (requests get 503 until a fetch works)."""
    recorder.key_refresh(step, False)
    if kept_keys:
        name, summary = "metadata_refresh_failed", "keeping the last known-good keys"
    else:
        name, summary = "metadata_unavailable", "tokens get 503 until a fetch works"
    emit(name, summary, step=step, url=url, error=error, remedy=remedy)


# -- calls to the identity provider -------------------------------------------------------------

IDP_OPERATIONS: Final = frozenset({"discovery", "keys", "token", "other"})


def idp_call(method: str, url: str, *, keys: bool = False) -> IdpCall:
    """The span context for one call: discovery, keys (``keys=True``), token endpoint or other."""
    if method == "POST":
        operation = "token"
    elif url.split("?", 1)[0].endswith("/.well-known/openid-configuration"):
        operation = "discovery"
    else:
        operation = "keys" if keys else "other"
    return recorder.idp_call(operation, method, url)


# -- token acquisition --------------------------------------------------------------------------

TOKEN_SOURCES: Final = frozenset({"memo", "msal_cache", "identity_provider", "none"})
_MSAL_SOURCES: Final[Mapping[object, str]] = {
    "cache": "msal_cache",
    "identity_provider": "identity_provider",
    "broker": "identity_provider",
}


class _Acquisition:
    __slots__ = ("source",)

    def __init__(self) -> None:
        self.source = "none"


# Set by ``acquisition`` around a call, read back when it ends. asyncio.to_thread copies the
# context, so a source noted in a worker thread lands in the same object.
_current: contextvars.ContextVar[_Acquisition | None] = contextvars.ContextVar(
    "entra_ciam_acquisition", default=None
)


def token_source(result: Mapping[str, Any] | None) -> None:
    """Note where MSAL's answer ``result`` took the token from: its cache or the provider."""
    current = _current.get()
    if current is not None and result is not None and "access_token" in result:
        current.source = _MSAL_SOURCES.get(result.get("token_source"), "identity_provider")


def memo_answered(token: str | None) -> None:
    """Note that the library's own memo answered (when ``token`` is not None)."""
    current = _current.get()
    if current is not None and token is not None:
        current.source = "memo"


def _outcome(exc: BaseException) -> tuple[str, str]:
    from entra_ciam.signin.errors import InteractionRequiredError, TokenAcquisitionError

    if isinstance(exc, InteractionRequiredError):
        return "interaction_required", "interaction_required"
    if isinstance(exc, TokenAcquisitionError):
        outcome = "interaction_required" if exc.status_code == 401 else "failed"
        return outcome, str(exc.error or "unknown_error")[:64]
    return "failed", type(exc).__name__


class _Timed:
    """One acquisition being timed: its source is noted by the code, its end reported here."""

    __slots__ = ("_kind", "_reset", "_started", "_state")

    def __init__(self, kind: str) -> None:
        self._kind = kind

    def __enter__(self) -> None:
        self._state = _Acquisition()
        self._reset = _current.set(self._state)
        self._started = time.perf_counter()

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        seconds = time.perf_counter() - self._started
        _current.reset(self._reset)
        kind, source = self._kind, self._state.source
        if not isinstance(exc, BaseException):
            recorder.acquisition(kind, source, "ok", seconds)
            return
        outcome, error = _outcome(exc)
        recorder.acquisition(kind, source, outcome, seconds)
        if outcome == "failed":
            emit("token_acquisition_failed", kind=kind, outcome=outcome, error=error)


F = TypeVar("F", bound=Callable[..., Any])


def acquisition(kind: str) -> Callable[[F], F]:
    """Time a token acquisition method and report its source and outcome when it ends."""

    def decorate(method: F) -> F:
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                with _Timed(kind):
                    return await method(*args, **kwargs)

            return timed_async  # type: ignore[return-value]

        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with _Timed(kind):
                return method(*args, **kwargs)

        return timed  # type: ignore[return-value]

    return decorate


# -- sign-in ------------------------------------------------------------------------------------

SIGNIN_FAILURES: Final = frozenset(
    {
        "cancelled",
        "idp_error",
        "state_unknown",
        "state_invalid",
        "parameter_repeated",
        "response_oversized",
        "code_missing",
        "response_mismatch",
        "nonce",
        "id_token",
        "token_refused",
        "idp_unavailable",
        "app_refused",
        "session_store",
        "other",
    }
)

_SIGNIN_FAILURES: Final = _table(
    (
        (r"cancelled or access was denied", "cancelled"),
        (r"^Microsoft Entra answered", "idp_error"),
        (
            r"does not match a sign-in started|expired or was (already used|altered)",
            "state_unknown",
        ),
        (r"carries no state|malformed state", "state_invalid"),
        (r"repeats a parameter", "parameter_repeated"),
        (r"^The sign-in response's \w+ is too long", "response_oversized"),
        (r"no authorization code", "code_missing"),
        (r"nonce", "nonce"),
        (r"does not match its request|does not match this sign-in", "response_mismatch"),
        (r"^The sign-in was refused", "id_token"),
        (r"^Microsoft Entra refused the sign-in", "token_refused"),
    )
)


def signin_started() -> None:
    recorder.signin("started", None)
    emit("signin_started")


def signin_completed() -> None:
    recorder.signin("completed", None)
    emit("signin_completed")


def signin_failed(message: str = "", *, reason: str | None = None, status: int = 400) -> None:
    """A sign-in answer was refused: ``reason`` from SIGNIN_FAILURES, or read from ``message``.

    ``message`` is the page's text, used only to pick the reason; it is never logged.
    """
    if reason is None:
        reason = _label(_SIGNIN_FAILURES, message)
    recorder.signin("failed", reason)
    emit("signin_failed", reason=reason, status=status)


def session_store_error(operation: str) -> None:
    """The session store did not answer during ``operation``: load, save or route."""
    recorder.session_store_error(operation)
    emit("session_store_unavailable", operation=operation)
