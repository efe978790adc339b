"""OpenTelemetry metrics and traces for entra-ciam (the ``opentelemetry`` extra).

Call :func:`instrument` once at start-up, after configuring your meter and tracer providers (or
pass them)::

    from entra_ciam.opentelemetry import instrument

    instrument()  # the global providers; instrument(meter_provider=..., tracer_provider=...)

Metrics (meter ``entra_ciam``; every attribute comes from a fixed set, see docs/operations.md):

- ``entra_ciam.validations`` {outcome, reason}: tokens validated, refused or met with a 503;
- ``entra_ciam.validated_token_cache.hits``: validations answered from the cache;
- ``entra_ciam.key_refreshes`` {step, outcome}: discovery and JWKS fetches, and their failures;
- ``entra_ciam.token_acquisitions`` {kind, source, outcome} and the histogram
  ``entra_ciam.token_acquisition.duration`` (seconds) over the same attributes;
- ``entra_ciam.signins`` {stage, reason}: sign-ins started, completed and failed;
- ``entra_ciam.session_store.errors`` {operation}.

Traces: a CLIENT span per call to the identity provider (``entra_ciam discovery``, ``... keys``,
``... token``) with the method, host, path, status and error type: never a query string, a body,
a header, a secret, a code or a token.

Validations are counted in plain integers and reported through observable counters when the
reader collects: an SDK counter's ``add`` costs microseconds, as much as answering a repeated
token from the cache, so the validator's hot path must not call one.
"""

from __future__ import annotations

from entra_ciam import _extras

_extras.require(
    "opentelemetry", "opentelemetry", purpose="entra_ciam.opentelemetry (metrics and traces)"
)

import itertools
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from entra_ciam import telemetry

__all__ = ["OpenTelemetryRecorder", "instrument", "uninstrument"]

_SCOPE = "entra_ciam"
_VERSION = "0.1.0"


def _value(counter: itertools.count[int]) -> int:
    """The next value ``counter`` would return, i.e. how many times it was advanced.

    ``next()`` on an ``itertools.count`` is one atomic step under the GIL, which makes it the
    cheapest thread-safe counter Python has; its repr is the only public way to read it.
    """
    return int(repr(counter)[6:-1])


class _Span(telemetry.IdpCall):
    __slots__ = ("_answered_error", "_span")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._answered_error = False

    def __enter__(self) -> _Span:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        span = self._span
        if exc_type is not None and not self._answered_error:
            # the exception's type, never its text (which may quote a URL or a body)
            span.set_attribute("error.type", exc_type.__qualname__)
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def status(self, code: int) -> None:
        self._span.set_attribute("http.response.status_code", code)
        if code >= 400:
            self._answered_error = True
            self._span.set_attribute("error.type", str(code))
            self._span.set_status(Status(StatusCode.ERROR))


class OpenTelemetryRecorder(telemetry.Recorder):
    """Feeds the reports of :mod:`entra_ciam.telemetry` to OpenTelemetry instruments."""

    __slots__ = (
        "_acquisition_seconds",
        "_acquisitions",
        "_cache_hits",
        "_key_refreshes",
        "_lock",
        "_refused",
        "_session_store_errors",
        "_signins",
        "_tracer",
        "_validated",
    )

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        meter = metrics.get_meter(_SCOPE, _VERSION, meter_provider=meter_provider)
        self._tracer = trace.get_tracer(_SCOPE, _VERSION, tracer_provider=tracer_provider)
        self._cache_hits = itertools.count()
        self._validated = itertools.count()
        self._refused: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        meter.create_observable_counter(
            "entra_ciam.validations",
            callbacks=[self._observe_validations],
            unit="{validation}",
            description="Access tokens validated (outcome valid), refused, or met with a 503",
        )
        meter.create_observable_counter(
            "entra_ciam.validated_token_cache.hits",
            callbacks=[self._observe_cache_hits],
            unit="{hit}",
            description="Validations answered from the validated-token cache",
        )
        self._key_refreshes = meter.create_counter(
            "entra_ciam.key_refreshes",
            unit="{fetch}",
            description="Fetches of the discovery document (step metadata) and the signing keys",
        )
        self._acquisitions = meter.create_counter(
            "entra_ciam.token_acquisitions",
            unit="{acquisition}",
            description="Access tokens asked for, by kind, source and outcome",
        )
        self._acquisition_seconds = meter.create_histogram(
            "entra_ciam.token_acquisition.duration",
            unit="s",
            description="How long token acquisitions took, by kind, source and outcome",
        )
        self._signins = meter.create_counter(
            "entra_ciam.signins",
            unit="{signin}",
            description="Sign-ins started, completed and failed (with a reason)",
        )
        self._session_store_errors = meter.create_counter(
            "entra_ciam.session_store.errors",
            unit="{error}",
            description="Session store operations that failed because the store did not answer",
        )

    # -- collection -------------------------------------------------------------------------------

    def _observe_validations(self, options: CallbackOptions) -> Iterable[Observation]:
        valid = _value(self._cache_hits) + _value(self._validated)
        yield Observation(valid, {"outcome": "valid"})
        with self._lock:
            refused = list(self._refused.items())
        for (outcome, reason), count in refused:
            yield Observation(count, {"outcome": outcome, "reason": reason})

    def _observe_cache_hits(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(_value(self._cache_hits))

    # -- reports ----------------------------------------------------------------------------------

    def cache_hit(self) -> None:
        next(self._cache_hits)

    def validated(self) -> None:
        next(self._validated)

    def refused(self, reason: str, status: int) -> None:
        key = ("unavailable" if status == 503 else "refused", reason)
        with self._lock:
            self._refused[key] = self._refused.get(key, 0) + 1

    def key_refresh(self, step: str, ok: bool) -> None:
        self._key_refreshes.add(1, {"step": step, "outcome": "ok" if ok else "failed"})

    def acquisition(self, kind: str, source: str, outcome: str, seconds: float) -> None:
        attributes = {"kind": kind, "source": source, "outcome": outcome}
        self._acquisitions.add(1, attributes)
        self._acquisition_seconds.record(seconds, attributes)

    def signin(self, stage: str, reason: str | None) -> None:
        attributes = {"stage": stage} if reason is None else {"stage": stage, "reason": reason}
        self._signins.add(1, attributes)

    def session_store_error(self, operation: str) -> None:
        self._session_store_errors.add(1, {"operation": operation})

    def idp_call(self, operation: str, method: str, url: str) -> telemetry.IdpCall:
        parts = urlsplit(url)
        attributes: dict[str, Any] = {
            "entra_ciam.idp.operation": operation,
            "http.request.method": method,
            "server.address": parts.hostname or "",
            "url.path": parts.path,
        }
        if parts.port is not None:
            attributes["server.port"] = parts.port
        span = self._tracer.start_span(
            f"entra_ciam {operation}", kind=SpanKind.CLIENT, attributes=attributes
        )
        return _Span(span)


# One recorder per pair of providers: an instrument name can be registered once per meter, so a
# second recorder on the same provider would have its observable counters ignored.
_recorders: dict[tuple[object, object], OpenTelemetryRecorder] = {}
_lock = threading.Lock()


def instrument(
    meter_provider: MeterProvider | None = None,
    tracer_provider: TracerProvider | None = None,
) -> OpenTelemetryRecorder:
    """Report to OpenTelemetry from now on (the global providers unless given); returns the recorder.

    Calling it again with the same providers installs the same recorder (its counts go on).
    """
    key = (meter_provider, tracer_provider)  # the objects, not their ids, which can be reused
    with _lock:
        recorder = _recorders.get(key)
        if recorder is None:
            recorder = _recorders[key] = OpenTelemetryRecorder(meter_provider, tracer_provider)
    telemetry.install(recorder)
    return recorder


def uninstrument() -> None:
    """Stop reporting: back to the no-op recorder."""
    telemetry.install(None)
