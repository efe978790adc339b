"""A scripted Entra at the HTTP layer (respx), and a browser that drives the sans-IO sign-in steps.

Used where a test needs Entra to answer something the emulator never would (a forged nonce, an
ID token for another tenant, a token endpoint that fails on cue). Everything of ours (sessions,
MSAL, the checks) runs for real; only Entra's answers are scripted.
"""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import respx
from cryptography.fernet import Fernet

from entra_ciam import EntraConfig
from entra_ciam.sessions import SessionStore
from entra_ciam.signin import Request, RequestContext, Response, SignIn
from tests.support.tokens import TENANT_ID, WEB_CLIENT_ID, TokenFactory

AUTHORITY = f"https://contoso.ciamlogin.com/{TENANT_ID}"
ISSUER = f"https://{TENANT_ID}.ciamlogin.com/{TENANT_ID}/v2.0"
BASE = f"{AUTHORITY}/oauth2/v2.0"
END_SESSION = f"{BASE}/logout"
REDIRECT_URI = "http://localhost:3000/auth/redirect"
HOST = "localhost:3000"
API_SCOPE = "api://todo/Todolist.Read"


class FakeEntra:
    """Discovery and a token endpoint: codes and refresh tokens map to the user they stand for.

    ``token_fault``: None, ``"down"`` (connection refused), ``"garbage"`` (an HTML error page) or
    an OAuth error code to answer with.
    ``refresh_error``: an OAuth error code for refresh-token grants only (``"invalid_grant"``).
    A code redeemed a second time is refused as Entra does, ``invalid_grant`` with AADSTS54005
    ("already redeemed"); one never issued (or dropped from ``codes``) with AADSTS9002313.
    """

    def __init__(self, router: respx.MockRouter) -> None:
        self.factory = TokenFactory(ISSUER, audience=WEB_CLIENT_ID)
        self.codes: dict[str, dict[str, Any]] = {}
        self.redeemed: set[str] = set()
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.token_posts: list[dict[str, list[str]]] = []
        self.token_fault: str | None = None
        self.refresh_error: str | None = None
        self.refresh_claims: str | None = None
        self.expires_in = 3600
        self.discovery = router.get(f"{AUTHORITY}/v2.0/.well-known/openid-configuration")
        self.discovery.mock(return_value=httpx.Response(200, json=self.document()))
        self.token = router.post(f"{BASE}/token")
        self.token.mock(side_effect=self._token)

    def document(self) -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{BASE}/authorize",
            "token_endpoint": f"{BASE}/token",
            "end_session_endpoint": END_SESSION,
            "jwks_uri": f"{AUTHORITY}/discovery/v2.0/keys",
        }

    def issue_code(self, auth_uri: str, **claims: Any) -> tuple[str, str]:
        """A code for the sign-in that ``auth_uri`` started; returns (code, state)."""
        query = parse_qs(urlsplit(auth_uri).query)
        code = secrets.token_urlsafe(16)
        id_claims = self.factory.claims(aud=WEB_CLIENT_ID, nonce=query["nonce"][0], scp=None)
        id_claims.update(claims)
        self.codes[code] = {k: v for k, v in id_claims.items() if v is not None}
        return code, query["state"][0]

    def token_grants(self, grant_type: str) -> list[dict[str, list[str]]]:
        return [p for p in self.token_posts if p.get("grant_type") == [grant_type]]

    def _error(
        self, error: str, claims: str | None = None, *, code: int = 1, description: str = ""
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "error": error,
            "error_description": f"AADSTS{code}: {description or error}",
            "error_codes": [code],
        }
        if claims:
            body["claims"] = claims
        return httpx.Response(400, json=body)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        self.token_posts.append(form)
        if self.token_fault == "down":
            raise httpx.ConnectError("refused", request=request)
        if self.token_fault == "garbage":
            return httpx.Response(502, text="<html>proxy error</html>")
        if self.token_fault:
            return self._error(self.token_fault)
        grant = form.get("grant_type", [""])[0]
        if grant == "refresh_token":
            if self.refresh_error:
                return self._error(self.refresh_error, self.refresh_claims)
            claims = self.refresh_tokens.get(form.get("refresh_token", [""])[0])
        else:
            code = form.get("code", [""])[0]
            if code in self.redeemed:
                return self._error(
                    "invalid_grant",
                    code=54005,
                    description="OAuth2 Authorization code was already redeemed, please retry "
                    "with a new valid code or use an existing refresh token.",
                )
            claims = self.codes.pop(code, None)
            if claims is not None:
                self.redeemed.add(code)
        if claims is None:
            return self._error("invalid_grant", code=9002313)
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = claims
        scope = form.get("scope", [""])[0]
        access = self.factory.mint(scp=" ".join(s.rsplit("/", 1)[-1] for s in scope.split()))
        id_claims = (
            {k: v for k, v in claims.items() if k != "nonce"}
            if grant != "authorization_code"
            else claims
        )
        return httpx.Response(
            200,
            json={
                "token_type": "Bearer",
                "scope": scope,
                "expires_in": self.expires_in,
                "access_token": access,
                "refresh_token": refresh,
                "id_token": self.factory.mint(id_claims),
            },
        )


def make_config(**overrides: Any) -> EntraConfig:
    values: dict[str, Any] = {
        "authority": AUTHORITY,
        "client_id": WEB_CLIENT_ID,
        "client_secret": "s3cret-value",
        "redirect_uri": REDIRECT_URI,
        "post_logout_redirect_uri": "http://localhost:3000/",
        "session_secret": Fernet.generate_key().decode(),
    }
    values.update(overrides)
    return EntraConfig(**values)


class StepBrowser:
    """Keeps the session cookie between sans-IO steps, as a browser would."""

    def __init__(self, signin: SignIn, *, root_path: str = "") -> None:
        """``root_path``: where the app is mounted (``SCRIPT_NAME``, ASGI ``root_path``)."""
        self.signin = signin
        self.root_path = root_path
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    def request(
        self, method: str, path: str, query: str = "", form: dict[str, str] | None = None
    ) -> Request:
        return Request(
            method=method,
            path=path,
            root_path=self.root_path,
            query_string=query,
            cookie_header="; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            content_type="application/x-www-form-urlencoded" if form is not None else "",
            body=urlencode(form).encode() if form is not None else b"",
            host=HOST,
        )

    def open(
        self, method: str, path: str, query: str = "", form: dict[str, str] | None = None
    ) -> RequestContext | Response:
        """``signin.open`` for this browser's request, as an adapter calls it."""
        request = self.request(method, path, query, form)
        return self.signin.open(request.cookie_header, lambda: request)

    def send(
        self, method: str, path: str, query: str = "", form: dict[str, str] | None = None
    ) -> Response:
        opened = self.open(method, path, query, form)
        if isinstance(opened, Response):
            return opened
        final, _ = self.signin.close(opened, self.signin.handle(opened))
        self.keep(final)
        return final

    def keep(self, response: Response) -> None:
        """Remember the cookies ``response`` sets."""
        self.set_cookies = [v for k, v in response.headers if k.lower() == "set-cookie"]
        for header in self.set_cookies:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def get(self, path: str, query: str = "") -> Response:
        return self.send("GET", path, query)

    @property
    def session_id(self) -> str | None:
        return self.cookies.get(self.signin.sessions.cookie_name)

    def start(self, next_path: str = "/todos") -> str:
        """GET the sign-in route; the authorize URL it redirects to."""
        response = self.get("/auth/signin", urlencode({"next": next_path}))
        assert response.status == 302, response.body
        location = response.header("Location")
        assert location is not None
        return location

    def finish(self, entra: FakeEntra, auth_uri: str, **claims: Any) -> Response:
        """Entra's form_post back to the redirect route, as user ``claims``."""
        code, state = entra.issue_code(auth_uri, **claims)
        return self.send("POST", "/auth/redirect", form={"code": code, "state": state})

    def sign_in(self, entra: FakeEntra, **claims: Any) -> None:
        response = self.finish(entra, self.start(), **claims)
        assert response.status == 302, response.body


def make_signin(store: SessionStore, **options: Any) -> SignIn:
    config_overrides = options.pop("config", {})
    return SignIn(make_config(**config_overrides), store=store, **options)
