"""Issue 11, points 1 and 2: metrics, spans and structured log events, read back from the real
OpenTelemetry SDK (in-memory reader and exporter) and from the log records.

The validator runs against the loopback OIDC stub, user tokens against the scripted Entra (respx),
app tokens against the emulator; nothing of ours is replaced.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import respx

from entra_ciam import (
    AccessTokenValidator,
    AuthError,
    MetadataUnavailableError,
    TokenAcquirer,
    telemetry,
)
from entra_ciam.devidp import DevIdp, defaults
from entra_ciam.devidp.testing import running_devidp
from entra_ciam.events import EVENTS, LOGGER_NAME, emit
from entra_ciam.sessions import MemoryStore
from entra_ciam.signin import RequestContext, Response
from entra_ciam.signin.context import activated
from entra_ciam.signin.errors import TokenAcquisitionError
from tests.support.fake_entra import API_SCOPE, FakeEntra, StepBrowser, make_signin
from tests.support.oidc_stub import running_stub
from tests.support.otel import Otel, events, otel
from tests.support.rejections import TOKEN_REJECTIONS, running_tenant
from tests.support.todo_api import free_port
from tests.support.tokens import API_CLIENT_ID, TokenFactory

ROOT = Path(__file__).resolve().parents[1]
VALIDATIONS = "entra_ciam.validations"
REFRESHES = "entra_ciam.key_refreshes"
ACQUISITIONS = "entra_ciam.token_acquisitions"
DURATION = "entra_ciam.token_acquisition.duration"
SIGNINS = "entra_ciam.signins"


@pytest.fixture
def metrics() -> Iterator[Otel]:
    with otel() as installed:
        yield installed


# -- nothing is imported or paid without the extra ---------------------------------------------


def test_the_library_imports_no_opentelemetry() -> None:
    code = (
        "import sys, entra_ciam\n"
        "from entra_ciam import AccessTokenValidator, TokenAcquirer\n"
        "from entra_ciam.wsgi import SignInMiddleware\n"
        "from entra_ciam.asgi import BearerTokenMiddleware\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
        "assert type(entra_ciam.telemetry.recorder) is entra_ciam.telemetry.Recorder\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_default_recorder_records_nothing_and_install_swaps_it() -> None:
    default = telemetry.recorder
    assert type(default) is telemetry.Recorder and not telemetry.active
    with otel():
        assert type(telemetry.recorder).__name__ == "OpenTelemetryRecorder"
        assert telemetry.active  # the validator's cache-hit path reports only then
    assert type(telemetry.recorder) is telemetry.Recorder and not telemetry.active


def test_instrumenting_twice_keeps_one_recorder_per_provider() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from entra_ciam.opentelemetry import instrument, uninstrument

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        first = instrument(meter_provider=provider)
        first.cache_hit()
        second = instrument(meter_provider=provider)  # e.g. an app factory called again
        assert second is first and telemetry.recorder is first
        second.cache_hit()
        data = reader.get_metrics_data()
        assert data is not None
        hits = [
            point.value
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "entra_ciam.validated_token_cache.hits"
            for point in metric.data.data_points
        ]
        assert hits == [2]
    finally:
        uninstrument()
        provider.shutdown()


# -- the validator -------------------------------------------------------------------------------


def refused(validator: AccessTokenValidator, token: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        validator.validate(token)
    return caught.value


EXPECTED_REASONS = {
    "alg-none": "algorithm",
    "alg-RS384-not-allowed": "algorithm",
    "hmac-with-public-key": "algorithm",
    "jku-header": "header",
    "crit-header": "header",
    "missing-kid": "header",
    "unknown-kid": "unknown_key",
    "signature-by-other-key": "signature",
    "tampered-payload": "signature",
    "expired": "expired",
    "nbf-in-future": "not_yet_valid",
    "iat-in-future": "not_yet_valid",
    "wrong-iss": "issuer",
    "wrong-aud": "audience",
    "wrong-tid": "tenant",
    "ver-1.0": "version",
    "no-ver": "version",
    "neither-scp-nor-roles": "claims",
    "malformed-base64-payload": "malformed",
    "payload-not-json": "malformed",
    "over-16-KiB": "malformed",
    "jwe": "header",
    "nested-jwt": "header",
}


def test_every_refusal_of_the_catalogue_has_a_bounded_reason() -> None:
    with running_tenant() as tenant:
        seen = {}
        for case in TOKEN_REJECTIONS:
            error = refused(tenant.validator, case.make(tenant.factory))
            seen[case.id] = telemetry.refusal_reason(error)
    assert set(seen.values()) <= telemetry.REFUSAL_REASONS
    assert "other" not in seen.values(), seen
    for case_id, reason in EXPECTED_REASONS.items():
        assert seen[case_id] == reason, (case_id, seen[case_id])
    # Claim values are the caller's: one that reads like another rule does not change the reason.
    with running_tenant() as tenant:
        decoy = tenant.user_token(aud="issuer tenant expired at signature is invalid")
        assert telemetry.refusal_reason(refused(tenant.validator, decoy)) == "audience"


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_validations_cache_hits_refreshes_and_spans(
    metrics: Otel, caplog: pytest.LogCaptureFixture, twin: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    factory = TokenFactory()
    with running_stub(factory) as stub:
        validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)

        def validate(token: str) -> object:
            if twin == "sync":
                return validator.validate(token)
            return asyncio.run(validator.validate_async(token))

        token = factory.mint()
        validate(token)
        validate(token)  # from the cache
        validate(token)
        validate(factory.mint())
        cases = {c.id: c for c in TOKEN_REJECTIONS}
        for case_id in ("expired", "expired", "wrong-aud", "tampered-payload"):
            with pytest.raises(AuthError):
                validate(cases[case_id].make(factory))
    assert metrics.value(VALIDATIONS, outcome="valid") == 4
    assert metrics.value("entra_ciam.validated_token_cache.hits") == 2
    assert metrics.value(VALIDATIONS, outcome="refused", reason="expired") == 2
    assert metrics.value(VALIDATIONS, outcome="refused", reason="audience") == 1
    assert metrics.value(VALIDATIONS, outcome="refused", reason="signature") == 1
    assert metrics.value(REFRESHES, step="metadata", outcome="ok") == 1
    assert metrics.value(REFRESHES, step="keys", outcome="ok") == 1
    # Labels are bounded: nothing from a token, no kid, no user.
    for series in metrics.points().values():
        for attributes in series:
            for key, value in attributes:
                assert key in {"outcome", "reason", "step"}, key
                assert factory.key.kid not in str(value)
    # One span per call to the identity provider, with no query, body or secret.
    spans = {span.name: span for span in metrics.spans()}
    assert set(spans) == {"entra_ciam discovery", "entra_ciam keys"}
    keys = spans["entra_ciam keys"].attributes or {}
    assert keys["entra_ciam.idp.operation"] == "keys"
    assert keys["http.request.method"] == "GET"
    assert keys["server.address"] == "127.0.0.1"
    assert keys["server.port"] == stub.port
    assert keys["url.path"] == f"/{factory.tenant_id}/discovery/v2.0/keys"
    assert keys["http.response.status_code"] == 200
    # The log events: one per refusal, with its reason, and the keys that were loaded.
    refusals = events(caplog, "token_refused")
    assert [r.__dict__["reason"] for r in refusals] == [
        "expired",
        "expired",
        "audience",
        "signature",
    ]
    assert all(r.__dict__["status"] == 401 for r in refusals)
    assert refusals[0].getMessage().startswith("token_refused reason=expired status=401 detail=")
    loaded = events(caplog, "keys_refreshed")
    assert [(r.__dict__["keys"], r.__dict__["changed"]) for r in loaded] == [(1, True)]


def test_unreachable_keys_are_counted_as_unavailable_with_failed_refreshes(
    metrics: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    factory = TokenFactory()
    with running_stub(factory) as stub:
        stub.fault = "500"
        validator = AccessTokenValidator(stub.authority, API_CLIENT_ID, retry_interval=0)
        for _ in range(2):
            with pytest.raises(MetadataUnavailableError):
                validator.validate(factory.mint())
        stub.fault = None
        validator.validate(factory.mint())
    assert metrics.value(VALIDATIONS, outcome="unavailable", reason="idp_unavailable") == 2
    assert metrics.value(REFRESHES, step="keys", outcome="failed") == 2
    assert metrics.value(REFRESHES, step="keys", outcome="ok") == 1
    assert metrics.value(VALIDATIONS, outcome="valid") == 1
    failed = [s for s in metrics.spans() if s.name == "entra_ciam keys"]
    assert [(s.attributes or {}).get("http.response.status_code") for s in failed] == [
        500,
        500,
        200,
    ]
    assert (failed[0].attributes or {})["error.type"] == "500"
    assert failed[0].status.status_code.name == "ERROR"
    records = events(caplog, "metadata_unavailable")  # no keys known yet: requests get 503
    assert len(records) == 2 and records[0].__dict__["step"] == "keys"
    assert "HTTP 500" in records[0].__dict__["error"]
    assert records[0].__dict__["url"] == stub.jwks_uri
    assert events(caplog, "token_refused") == []  # a 503 is not the token's fault


def test_a_dead_discovery_url_is_a_failed_span() -> None:
    url = f"http://127.0.0.1:{free_port()}/tenant/v2.0/.well-known/openid-configuration"
    with otel() as metrics:
        validator = AccessTokenValidator(metadata_url=url, audience=API_CLIENT_ID)
        with pytest.raises(MetadataUnavailableError):
            validator.validate(TokenFactory().mint())
    (span,) = metrics.spans()
    assert span.name == "entra_ciam discovery"
    assert (span.attributes or {})["error.type"] == "ConnectError"
    assert metrics.value(REFRESHES, step="metadata", outcome="failed") == 1


# -- token acquisition -------------------------------------------------------------------------


@pytest.fixture
def entra() -> Iterator[FakeEntra]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeEntra(router)


def request_context(browser: StepBrowser) -> RequestContext:
    opened = browser.open("GET", "/page")
    assert isinstance(opened, RequestContext)
    return opened


def one_request(browser: StepBrowser, *, use_async: bool = False) -> str:
    ctx = request_context(browser)
    with activated(ctx):
        acquirer = TokenAcquirer()
        if use_async:
            token = asyncio.run(acquirer.acquire_token_for_user_async(API_SCOPE))
        else:
            token = acquirer.acquire_token_for_user(API_SCOPE)
    final, _ = browser.signin.close(ctx, Response(200, [("Content-Type", "text/plain")], b"ok"))
    browser.keep(final)
    return token


def test_user_tokens_by_source_with_latency(
    metrics: Otel, entra: FakeEntra, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    browser = StepBrowser(make_signin(MemoryStore(), scopes=[API_SCOPE]))
    browser.sign_in(entra)
    one_request(browser)  # the token of the sign-in, from MSAL's cache
    one_request(browser)  # now from the memo
    one_request(browser, use_async=True)  # the memo, from the async twin
    entra.expires_in = 60  # too close to expiry: MSAL refreshes at the identity provider
    browser.sign_in(entra)
    one_request(browser)
    entra.token_fault = "down"  # the token needs a refresh, and Entra is down
    ctx = request_context(browser)
    with activated(ctx), pytest.raises(TokenAcquisitionError):
        TokenAcquirer().acquire_token_for_user(API_SCOPE)
    user = {"kind": "user", "outcome": "ok"}
    assert metrics.value(ACQUISITIONS, source="msal_cache", **user) == 1
    assert metrics.value(ACQUISITIONS, source="memo", **user) == 2
    assert metrics.value(ACQUISITIONS, source="identity_provider", **user) == 1
    assert metrics.value(ACQUISITIONS, kind="user", source="none", outcome="failed") == 1
    count, total = metrics.value(DURATION, source="memo", **user)
    assert count == 2 and total > 0
    assert metrics.value(DURATION, source="identity_provider", **user)[0] == 1
    (failure,) = events(caplog, "token_acquisition_failed")
    assert failure.__dict__["kind"] == "user"
    assert failure.__dict__["error"] == "temporarily_unavailable"
    token_calls = [s for s in metrics.spans() if s.name == "entra_ciam token"]
    assert token_calls and all(
        set(s.attributes or {}) <= SPAN_ATTRIBUTES and s.attributes["http.request.method"] == "POST"
        for s in token_calls
    )
    assert token_calls[-1].attributes.get("error.type") == "ConnectError"


SPAN_ATTRIBUTES = {
    "entra_ciam.idp.operation",
    "http.request.method",
    "server.address",
    "server.port",
    "url.path",
    "http.response.status_code",
    "error.type",
}


def test_interaction_required_is_its_own_outcome(metrics: Otel, entra: FakeEntra) -> None:
    browser = StepBrowser(make_signin(MemoryStore(), scopes=[API_SCOPE]))
    ctx = request_context(browser)
    with activated(ctx), pytest.raises(Exception, match="signed in"):
        TokenAcquirer().acquire_token_for_user(API_SCOPE)
    assert (
        metrics.value(ACQUISITIONS, kind="user", source="none", outcome="interaction_required") == 1
    )


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


def test_on_behalf_of_tokens_from_the_provider_then_the_memo(metrics: Otel, idp: DevIdp) -> None:
    from tests.test_token_acquirer import user_token_for_api

    acquirer = TokenAcquirer(idp.entra_config("todo-api"))
    incoming = user_token_for_api(idp)
    first = acquirer.acquire_token_on_behalf_of(incoming, "User.Read")
    assert acquirer.acquire_token_on_behalf_of(incoming, "User.Read") == first
    assert asyncio.run(acquirer.acquire_token_on_behalf_of_async(incoming, "User.Read")) == first
    obo = {"kind": "obo", "outcome": "ok"}
    assert metrics.value(ACQUISITIONS, source="identity_provider", **obo) == 1
    assert metrics.value(ACQUISITIONS, source="memo", **obo) == 2
    assert metrics.value(DURATION, source="memo", **obo)[0] == 2


def test_app_tokens_from_the_provider_then_msals_cache(metrics: Otel, idp: DevIdp) -> None:
    acquirer = TokenAcquirer(idp.entra_config("daemon"))
    scope = f"{defaults.TODO_API_IDENTIFIER_URI}/.default"
    acquirer.acquire_token_for_app(scope)
    acquirer.acquire_token_for_app(scope)
    asyncio.run(acquirer.acquire_token_for_app_async(scope))
    app = {"kind": "app", "outcome": "ok"}
    assert metrics.value(ACQUISITIONS, source="identity_provider", **app) == 1
    assert metrics.value(ACQUISITIONS, source="msal_cache", **app) == 2
    names = [s.name for s in metrics.spans()]
    assert "entra_ciam discovery" in names and "entra_ciam token" in names
    for span in metrics.spans():
        assert set(span.attributes or {}) <= SPAN_ATTRIBUTES
        assert "?" not in str((span.attributes or {}).get("url.path"))


# -- sign-in and the session store ---------------------------------------------------------------


def test_sign_ins_started_completed_and_failed_by_reason(
    metrics: Otel, entra: FakeEntra, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    signin = make_signin(MemoryStore(), scopes=[API_SCOPE])
    browser = StepBrowser(signin)
    browser.sign_in(entra)
    # An answer replayed in another browser, one with no state, a cancelled one, and Entra down
    # at redemption. (A signed-in user reopening the callback is sent home: not a failure.)
    auth_uri = browser.start()
    code, state = entra.issue_code(auth_uri)
    form = {"code": code, "state": state}
    assert browser.send("POST", "/auth/redirect", form=form).status == 302
    assert browser.send("POST", "/auth/redirect", form=form).status == 302  # home
    elsewhere = StepBrowser(signin)
    sent_on = elsewhere.send("POST", "/auth/redirect", form=form)  # cross-site: to a GET
    assert sent_on.status == 303
    resumed = urlsplit(sent_on.header("Location") or "").query
    assert elsewhere.get("/auth/redirect", resumed).status == 400
    assert elsewhere.get("/auth/redirect", "code=abc").status == 400
    auth_uri = browser.start()
    state = re.search(r"state=([^&]+)", auth_uri)
    assert state is not None
    denied = {"error": "access_denied", "state": state.group(1)}
    assert browser.send("POST", "/auth/redirect", form=denied).status == 400
    auth_uri = browser.start()
    entra.token_fault = "down"
    code, state_value = entra.issue_code(auth_uri)
    answer = browser.send("POST", "/auth/redirect", form={"code": code, "state": state_value})
    assert answer.status == 503
    assert metrics.value(SIGNINS, stage="started") == 4
    assert metrics.value(SIGNINS, stage="completed") == 2
    assert metrics.value(SIGNINS, stage="failed", reason="state_unknown") == 1
    assert metrics.value(SIGNINS, stage="failed", reason="state_invalid") == 1
    assert metrics.value(SIGNINS, stage="failed", reason="cancelled") == 1
    assert metrics.value(SIGNINS, stage="failed", reason="idp_unavailable") == 1
    failed = [(r.__dict__["reason"], r.__dict__["status"]) for r in events(caplog, "signin_failed")]
    assert failed == [
        ("state_unknown", 400),
        ("state_invalid", 400),
        ("cancelled", 400),
        ("idp_unavailable", 503),
    ]
    assert len(events(caplog, "signin_completed")) == 2


def test_session_store_errors_are_counted(
    metrics: Otel, caplog: pytest.LogCaptureFixture, entra: FakeEntra
) -> None:
    from entra_ciam.sessions.redis import RedisStore

    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    browser = StepBrowser(make_signin(store))
    browser.cookies[browser.signin.sessions.cookie_name] = "x" * 43
    assert browser.get("/page").status == 503
    assert metrics.value("entra_ciam.session_store.errors", operation="load") == 1
    (record,) = events(caplog, "session_store_unavailable")
    assert record.__dict__["operation"] == "load"
    assert record.levelno == logging.ERROR


# -- the event catalogue -------------------------------------------------------------------------


def test_events_have_fixed_names_and_fields() -> None:
    with pytest.raises(KeyError):
        emit("no_such_event")
    with pytest.raises(ValueError, match="takes the fields"):
        emit("token_refused", reason="expired", status=401)
    reserved = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
    for name, (_level, fields) in EVENTS.items():
        assert re.fullmatch(r"[a-z_]+", name)
        assert not set(fields) & reserved, name


def test_the_operations_page_lists_every_event_and_its_fields() -> None:
    page = (ROOT / "docs" / "operations.md").read_text()
    for name, (level, fields) in EVENTS.items():
        row = re.search(rf"^\| `{name}` \| (\w+) \| (.*?) \|", page, re.M)
        assert row is not None, f"docs/operations.md does not list {name}"
        assert row.group(1) == logging.getLevelName(level), name
        listed = re.findall(r"`(\w+)`", row.group(2))
        assert listed == list(fields), (name, listed)
    for metric in (VALIDATIONS, REFRESHES, ACQUISITIONS, DURATION, SIGNINS):
        assert f"`{metric}`" in page


def test_a_refusal_event_never_carries_the_callers_kid(caplog: pytest.LogCaptureFixture) -> None:
    # docs/security.md: events carry no kid read from a token (an unknown key's refusal quoted it).
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    factory = TokenFactory()
    marker = "attacker-chosen-kid-MARKER"
    with running_stub(factory) as stub:
        validator = AccessTokenValidator(stub.authority, API_CLIENT_ID)
        with pytest.raises(AuthError) as refused:
            validator.validate(factory.mint(header=factory.header(kid=marker)))
    assert telemetry.refusal_reason(refused.value) == "unknown_key"
    [event] = events(caplog, "token_refused")
    assert event.__dict__["reason"] == "unknown_key"
    assert marker not in event.getMessage()
    assert all(marker not in str(value) for value in event.__dict__.values())
