"""Issue 7, point 5 (API side): hostile input at every entry point, over real loopback HTTP.

- the emulator's token endpoint: form bodies built from real and random names and values (real
  client ids and secrets, grant types, scopes, a real refresh token and a spent code, each
  possibly mutated), random content types, random Basic credentials, raw bytes;
- the todo API: random Authorization headers, random paths and ids, random JSON bodies sent
  with a valid token.

Every answer must be a 2xx or 4xx with a JSON body, never a 5xx or a stack trace. The token
parser itself is fuzzed in tests/test_token_fuzz.py. ``ENTRA_CIAM_FUZZ_EXAMPLES`` raises the
number of examples per test (200 by default).
"""

from __future__ import annotations

import base64
import json
import ssl
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from examples.starlette_api import create_app
from hypothesis import given
from hypothesis import strategies as st

from entra_ciam import EntraConfig
from entra_ciam.devidp import defaults
from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.testing import Browser, running_devidp
from tests.devidp.helpers import ADA, REDIRECT_URI, TODO_READ, authorize_url, pkce_pair
from tests.support.fuzz import FUZZ
from tests.support.load import record
from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.todo_api import serving
from tests.support.tokens import API_CLIENT_ID, TokenFactory

TALLY: Counter[str] = Counter()  # requests sent and statuses seen, per entry point


def check(entry: str, response: httpx.Response) -> None:
    TALLY[f"{entry}:requests"] += 1
    TALLY[f"{entry}:{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert "Traceback" not in response.text
    if response.status_code >= 400 and response.content:
        assert response.headers.get("content-type", "").startswith("application/json")
        assert isinstance(response.json(), dict)


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    TALLY.clear()
    yield
    entries = sorted({key.split(":")[0] for key in TALLY})
    for entry in entries:
        figures = {k.split(":")[1]: v for k, v in TALLY.items() if k.startswith(entry + ":")}
        record(f"fuzz-{entry}", **figures)


# -- the emulator's token endpoint --------------------------------------------------------------


class Emulator:
    def __init__(self, idp: DevIdp) -> None:
        self.idp = idp
        self.http = httpx.Client(
            verify=ssl.create_default_context(cafile=idp.ca_bundle), timeout=10
        )
        self.token_url = idp.endpoints.token_endpoint
        self.code, self.refresh_token = self._sign_in()

    def _sign_in(self) -> tuple[str, str]:
        """One real sign-in: a spent code to replay and a refresh token to mutate."""
        verifier, challenge = pkce_pair()
        auth = authorize_url(
            self.idp, code_challenge=challenge, scope=f"openid offline_access {TODO_READ}"
        )
        with Browser() as browser:
            result = browser.sign_in(auth, email=ADA[0], password=ADA[1])
        assert result.code is not None, result.params
        answer = self.http.post(
            self.token_url,
            data={
                "grant_type": "authorization_code",
                "client_id": defaults.WEB_APP_CLIENT_ID,
                "client_secret": defaults.WEB_APP_CLIENT_SECRET,
                "code": result.code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "scope": f"openid offline_access {TODO_READ}",
            },
        )
        assert answer.status_code == 200, answer.text
        return result.code, answer.json()["refresh_token"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with running_devidp(extra_redirect_uris=[REDIRECT_URI]) as idp:
        emulator = Emulator(idp)
        yield emulator
        emulator.http.close()


def mutated(value: str) -> st.SearchStrategy[str]:
    """``value`` as is, cut short, with a character changed, or doubled."""
    if not value:
        return st.just(value)
    return st.one_of(
        st.just(value),
        st.integers(0, len(value) - 1).map(lambda i: value[:i]),
        st.tuples(st.integers(0, len(value) - 1), st.characters()).map(
            lambda t: value[: t[0]] + t[1] + value[t[0] + 1 :]
        ),
        st.just(value + value),
    )


def real_values(e: Emulator) -> dict[str, list[str]]:
    return {
        "grant_type": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "password",
        ],
        "client_id": [
            defaults.WEB_APP_CLIENT_ID,
            defaults.DAEMON_CLIENT_ID,
            defaults.TODO_API_CLIENT_ID,
        ],
        "client_secret": [
            defaults.WEB_APP_CLIENT_SECRET,
            defaults.DAEMON_CLIENT_SECRET,
            defaults.TODO_API_CLIENT_SECRET,
        ],
        "scope": [
            f"{defaults.TODO_API_IDENTIFIER_URI}/.default",
            f"openid offline_access {TODO_READ}",
            TODO_READ,
            "openid",
        ],
        "code": [e.code],
        "refresh_token": [e.refresh_token],
        "redirect_uri": [REDIRECT_URI],
        "code_verifier": [pkce_pair()[0]],
        "assertion": [e.refresh_token],
        "requested_token_use": ["on_behalf_of"],
        "client_assertion_type": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
        "client_assertion": ["a.b.c"],
    }


@st.composite
def token_requests(draw: st.DrawFn, e: Emulator) -> tuple[list[tuple[str, str]], dict[str, str]]:
    values = real_values(e)
    names = draw(st.lists(st.sampled_from(sorted(values)) | st.text(max_size=12), max_size=8))
    form: list[tuple[str, str]] = []
    for name in names:
        if name in values:
            value = draw(st.sampled_from(values[name]).flatmap(mutated) | st.text(max_size=40))
        else:
            value = draw(st.text(max_size=40))
        form.append((name, value))
    headers: dict[str, str] = {}
    headers["Content-Type"] = draw(
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=utf-8",
                "application/json",
                "text/plain",
                "multipart/form-data; boundary=x",
            ]
        )
    )
    if draw(st.booleans()):
        user = draw(st.sampled_from(values["client_id"]) | st.text(max_size=20))
        password = draw(st.sampled_from(values["client_secret"]) | st.text(max_size=20))
        raw = f"{user}:{password}".encode()
        encoded = draw(
            st.just(base64.b64encode(raw).decode()) | st.text(alphabet="AZaz09+/=!", max_size=30)
        )
        headers["Authorization"] = f"Basic {encoded}".strip()  # h11 refuses trailing spaces
    return form, headers


@FUZZ
@given(data=st.data())
def test_token_endpoint_never_fails_on_hostile_forms(
    emulator: Emulator, data: st.DataObject
) -> None:
    form, headers = data.draw(token_requests(emulator))
    body = httpx.QueryParams(form).__str__().encode()
    response = emulator.http.post(emulator.token_url, content=body, headers=headers)
    check("emulator-token-endpoint", response)
    if response.status_code == 200:
        assert "access_token" in response.json()


@FUZZ
@given(
    body=st.binary(max_size=2048), ctype=st.sampled_from(["application/x-www-form-urlencoded", ""])
)
def test_token_endpoint_never_fails_on_raw_bytes(
    emulator: Emulator, body: bytes, ctype: str
) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    response = emulator.http.post(emulator.token_url, content=body, headers=headers)
    check("emulator-token-endpoint", response)
    assert response.status_code != 200 or b"grant_type" in body


# -- the todo API -------------------------------------------------------------------------------


class Api:
    def __init__(self, stub: OIDCStub, base: str) -> None:
        factory = stub.factory
        self.http = httpx.Client(base_url=base, timeout=10)
        self.user = f"Bearer {factory.mint()}"
        self.app = f"Bearer {factory.mint(factory.app_claims(['Todolist.ReadWrite.All']))}"
        self.token = factory.mint()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    db: Path = tmp_path_factory.mktemp("fuzz") / "todo.sqlite3"
    with running_stub(TokenFactory()) as stub:
        app = create_app(EntraConfig(authority=stub.authority, api_client_id=API_CLIENT_ID), db)
        with serving(app) as base:
            api = Api(stub, base)
            yield api
            api.http.close()


HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=120,
)


@FUZZ
@given(data=st.data())
def test_api_never_fails_on_hostile_authorization(api: Api, data: st.DataObject) -> None:
    token = api.token
    value = data.draw(
        st.one_of(
            HEADER_TEXT,
            HEADER_TEXT.map(lambda t: "Bearer " + t),
            mutated(f"Bearer {token}"),
            st.sampled_from(["Bearer", "bearer " + token, "Bearer  " + token, "Basic " + token]),
        )
    )
    path = data.draw(st.sampled_from(["/api/todolist", "/api/todolist/1", "/healthz"]))
    # Any bytes HTTP lets through a header (UTF-8 included), minus the controls h11 refuses.
    raw = bytes(b for b in value.encode() if b >= 0x20 and b != 0x7F).strip() or b"x"
    response = api.http.get(path, headers={"Authorization": raw})
    check("api-authorization", response)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)


@FUZZ
@given(data=st.data())
def test_api_never_fails_on_hostile_bodies_and_paths(api: Api, data: st.DataObject) -> None:
    method = data.draw(st.sampled_from(["POST", "PUT", "GET", "DELETE", "PATCH"]))
    item = data.draw(
        st.integers(-(2**70), 2**70).map(str) | st.text(alphabet="0123456789abc%./-", max_size=25)
    )
    path = data.draw(st.sampled_from(["/api/todolist", f"/api/todolist/{item}", f"/api/{item}"]))
    # JSON is encoded here, not by httpx: Python's encoder writes NaN and Infinity, which a
    # hostile client may send and the API must refuse like any other bad body.
    body = data.draw(
        JSON.map(lambda v: {"content": json.dumps(v).encode(), "json": True})
        | st.fixed_dictionaries(
            {"description": st.text(max_size=300) | JSON, "owner": st.text(max_size=40) | JSON}
        ).map(lambda v: {"content": json.dumps(v).encode(), "json": True})
        | st.binary(max_size=300).map(lambda b: {"content": b, "json": False})
    )
    caller = data.draw(st.sampled_from([api.user, api.app]))
    headers = {"Authorization": caller}
    if body["json"]:
        headers["Content-Type"] = "application/json"
    else:
        headers["Content-Type"] = data.draw(st.sampled_from(["application/json", "text/plain"]))
    response = api.http.request(method, path, headers=headers, content=body["content"])
    check("api-bodies-paths", response)


def test_fuzz_figures_were_counted() -> None:
    """Runs last in this module: the tallies above really counted requests."""
    counted = {k: v for k, v in TALLY.items() if k.endswith(":requests")}
    assert all(n >= 1 for n in counted.values())
    print(dict(TALLY))
