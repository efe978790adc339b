"""Issue 7, point 5 (web-app side): hostile input to the sign-in routes and the session cookie.

The same small web app behind ``SignInMiddleware``, served by werkzeug (WSGI) and uvicorn (ASGI)
on loopback, with the emulator and the todo API behind it (``signin_stack``). Hypothesis sends:

- ``/auth/redirect`` by GET (query) and by POST (form_post bodies with random content types):
  the real names (``code``, ``state``, ``error``, ...) and random ones, repeated names, values
  that are a real pending state, a real code, a spent code, or random text (long, non-ASCII,
  control characters);
- ``/auth/signin?next=`` with random return paths;
- random session cookies (a real id mutated, random text, other cookies beside it) on pages,
  the sign-in routes and sign-out.

Every answer must be below 500 and carry no stack trace, and every redirect must go to a
same-origin path or to the tenant's own endpoints. After the run a person still signs in.
``ENTRA_CIAM_FUZZ_EXAMPLES`` sets the examples per test (200 by default).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.fuzz import FUZZ
from tests.support.load import record
from tests.support.signin_apps import BUILDERS
from tests.support.webapps import ADA, AppBrowser, Stack, signin_stack

pytestmark = pytest.mark.load

COOKIE = "entra_ciam_session"
TALLY: Counter[str] = Counter()

NAMES = ["code", "state", "error", "error_description", "session_state", "client_info", "next"]
text = st.text(max_size=80) | st.text(
    alphabet=st.characters(codec="utf-8"), min_size=200, max_size=3000
)
paths = st.sampled_from(
    ["/me", "//evil.example", "/\\evil.example", "https://evil.example/", "javascript:alert(1)"]
) | st.text(max_size=60)


class Fuzzed:
    """One served web app, a raw client for hostile requests, and real values to mutate."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        # No cookie jar: every request carries exactly the cookies the test gives it.
        self.http = httpx.Client(
            base_url=stack.base,
            follow_redirects=False,
            timeout=20,
            event_hooks={"response": [lambda _: self.http.cookies.clear()]},
        )
        idp = stack.idp
        # The app itself (e.g. the resume step after form_post) and the tenant's endpoints.
        self.allowed_hosts = {
            urlsplit(stack.base).netloc,
            urlsplit(idp.pages_url).netloc,
            urlsplit(idp.authority).netloc,
        }

    def pending(self) -> tuple[str, str]:
        """A started sign-in: its flow cookie (``name=value``) and the state Entra would send."""
        response = self.http.get("/auth/signin", params={"next": "/me"})
        assert response.status_code == 302
        state = parse_qs(urlsplit(response.headers["location"]).query)["state"][0]
        cookie = response.headers["set-cookie"].split(";", 1)[0]
        assert cookie.startswith(f"{COOKIE}_flow_")
        return cookie, state

    def check(self, entry: str, response: httpx.Response) -> None:
        TALLY[f"{entry}:requests"] += 1
        TALLY[f"{entry}:{response.status_code // 100}xx"] += 1
        assert response.status_code < 500, (response.status_code, response.text[:300])
        body = response.text
        assert "Traceback" not in body and 'File "' not in body, body[:300]
        location = response.headers.get("location")
        if location is not None:
            parts = urlsplit(location)
            if parts.scheme or parts.netloc:
                assert parts.scheme in ("http", "https"), location
                assert parts.netloc in self.allowed_hosts, location
            else:
                assert location.startswith("/") and not location.startswith(("//", "/\\")), location


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzed]:
    kind: str = request.param
    tmp: Path = tmp_path_factory.mktemp(f"fuzz-signin-{kind}")
    TALLY.clear()
    with signin_stack(kind, tmp, BUILDERS[kind]) as stack:
        target = Fuzzed(stack)
        yield target
        # Whatever was thrown at it, a person still signs in and sees their claims.
        with AppBrowser(stack) as person:
            answer = person.sign_in(user=ADA, next_path="/me")
            assert answer.status_code == 200 and answer.json()["preferred_username"] == ADA[0]
        target.http.close()
    figures = {k: v for k, v in TALLY.items()}
    record(f"fuzz-signin-{kind}", **figures)
    assert figures.get("redirect:requests", 0) >= 1 and figures.get("cookie:requests", 0) >= 1


PENDING_STATE = "<the pending state>"  # replaced after drawing: draws never see live values
redirect_params = st.lists(
    st.tuples(
        st.sampled_from(NAMES) | st.text(min_size=1, max_size=20),
        st.sampled_from([PENDING_STATE, "", "x", "None", "%00", "a" * 5000]) | text,
    ),
    max_size=8,
)


@FUZZ
@given(data=st.data())
def test_redirect_route_never_fails_on_hostile_parameters(
    fuzzed: Fuzzed, data: st.DataObject
) -> None:
    cookie, state = fuzzed.pending()
    params = [(k, state if v == PENDING_STATE else v) for k, v in data.draw(redirect_params)]
    use_cookie = data.draw(st.booleans())
    headers = {"Cookie": cookie} if use_cookie else {}
    if data.draw(st.booleans()):
        query = urlencode(params)
        response = fuzzed.http.get("/auth/redirect?" + query, headers=headers)
    else:
        kind = data.draw(
            st.sampled_from(
                [
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=x",
                    "application/json",
                    "text/plain",
                    "",
                ]
            )
        )
        raw = data.draw(st.booleans())
        body = data.draw(st.binary(max_size=2000)) if raw else urlencode(params).encode()
        response = fuzzed.http.post(
            "/auth/redirect", content=body, headers={**headers, "Content-Type": kind}
        )
    fuzzed.check("redirect", response)
    # Nothing in a hostile answer signs anybody in.
    if use_cookie:
        me = fuzzed.http.get("/me", headers={"Cookie": cookie})
        fuzzed.check("redirect", me)
        assert me.status_code == 302


@FUZZ
@given(next_path=paths, extra=st.lists(st.tuples(st.sampled_from(NAMES), text), max_size=3))
def test_signin_route_never_fails_and_never_redirects_off_site(
    fuzzed: Fuzzed, next_path: str, extra: list[tuple[str, str]]
) -> None:
    response = fuzzed.http.get("/auth/signin?" + urlencode([("next", next_path), *extra]))
    fuzzed.check("signin", response)


MUTATIONS = {
    "real": lambda real: real,
    "shortened": lambda real: real[:-1],
    "longer": lambda real: real + "A",
    "upper": lambda real: real.upper(),
    "reversed": lambda real: real[::-1],
    "empty": lambda real: "",
    "zeros": lambda real: "0" * 43,
    "repeated": lambda real: real * 20,
}
printable = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=";,")


@st.composite
def cookie_headers(draw: st.DrawFn, real: str) -> str:
    # What is drawn never depends on ``real`` (a new random id each example): only its use does.
    how = draw(st.sampled_from(sorted(MUTATIONS)) | st.text(alphabet=printable, max_size=200))
    mutated = MUTATIONS[how](real) if how in MUTATIONS else how
    others = draw(
        st.lists(
            st.tuples(
                st.sampled_from([COOKIE, "other", "session", COOKIE.upper()]),
                st.text(alphabet=printable, max_size=40),
            ),
            max_size=3,
        )
    )
    pairs = [(COOKIE, mutated), *others]
    if draw(st.booleans()):
        pairs.reverse()
    separator = draw(st.sampled_from(["; ", ";", ", ", "; ; "]))
    return separator.join(
        f"{name}={value}".replace("\r", "").replace("\n", "") for name, value in pairs
    )


@FUZZ
@given(data=st.data())
def test_hostile_session_cookies_are_signed_out_never_errors(
    fuzzed: Fuzzed, data: st.DataObject
) -> None:
    real, _ = fuzzed.pending()
    header = data.draw(cookie_headers(real))
    path = data.draw(st.sampled_from(["/", "/me", "/auth/signin?next=/me", "/auth/signout"]))
    try:
        response = fuzzed.http.get(path, headers={"Cookie": header})
    except httpx.LocalProtocolError:
        return  # httpx refuses to send it: not a request a server can see
    fuzzed.check("cookie", response)
    if path == "/me":
        assert response.status_code == 302  # a pending sign-in or a forged id is nobody
