"""The https port apps and APIs call: discovery, keys, token, userinfo, the admin routes, and
redirects to the sign-in pages for the browser endpoints."""

from __future__ import annotations

import hmac
import json
import uuid

from entra_ciam.devidp.errors import OAuthError
from entra_ciam.devidp.frontchannel import FrontChannel
from entra_ciam.devidp.messages import Request, Response, json_response, redirect
from entra_ciam.devidp.provider import Provider
from entra_ciam.devidp.userinfo import userinfo

__all__ = ["BackChannel"]

ADMIN_PREFIX = "/_devidp/admin/"
_PUBLIC_CACHE = (("Cache-Control", "max-age=3600"),)
# Discovery and keys are public: Entra lets any page read them (a SPA fetches both).
_ANY_ORIGIN = (("Access-Control-Allow-Origin", "*"),)
_PREFLIGHT_MAX_AGE = "86400"


_DISCOVERY = ("v2.0/.well-known/openid-configuration", ".well-known/openid-configuration")
_BROWSER_ENDPOINTS = ("oauth2/v2.0/authorize", "oauth2/v2.0/logout")


class BackChannel:
    """The authority's https origin. It serves every endpoint, as a real tenant's host does.

    Browser endpoints (authorize, logout) are redirected, path and query unchanged, to the plain
    http pages origin, where the sign-in pages and the emulator's session cookie live; the root
    and the tenant's own path show the tenant's page.
    """

    def __init__(self, provider: Provider, admin_token: str, pages: FrontChannel) -> None:
        self.p = provider
        self._admin_token = admin_token
        self._pages = pages

    def __call__(self, request: Request) -> Response:
        if request.path == "/_devidp/health":
            return json_response({"status": "ok", "issuer": self.p.endpoints.issuer})
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request, request.path.removeprefix(ADMIN_PREFIX))
        if request.path.rstrip("/") == "/oidc/userinfo":
            return userinfo(self.p, request)
        tenant, rest = self.p.tenant_path(request.path)
        if rest is None:
            return self._error(
                OAuthError(
                    "invalid_tenant",
                    90002,
                    f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                    f"ID and are signing into the correct cloud. This emulator serves "
                    f"{self.p.registrations.tenant.id}.",
                )
            )
        method = "GET" if request.method == "HEAD" else request.method
        if rest == "" and method == "GET":
            return self._pages.index(request)
        if rest in _BROWSER_ENDPOINTS:
            return self._to_pages(request)
        if rest in _DISCOVERY:
            # Entra also answers without /v2.0 (its v1.0 document); identity reads
            # end_session_endpoint from there. The emulator has one document for both.
            return self._only(method, "GET") or json_response(
                self.p.discovery(), headers=(*_PUBLIC_CACHE, *_ANY_ORIGIN)
            )
        if rest == "discovery/v2.0/keys":
            return self._only(method, "GET") or json_response(
                self.p.keys.jwks(self.p.endpoints.issuer), headers=_ANY_ORIGIN
            )
        if rest == "oauth2/v2.0/token":
            if method == "OPTIONS":
                return _preflight(request)
            return self._only(method, "POST") or self._token(request)
        return json_response({"error": "not_found", "error_description": "No such endpoint."}, 404)

    def _to_pages(self, request: Request) -> Response:
        """Send the browser on to the pages origin; 307 keeps a POSTed logout's body."""
        target = request.target if request.target.startswith("/") else request.path
        target = self.p.endpoints.pages_base + target
        return redirect(target, status=302 if request.method in ("GET", "HEAD") else 307)

    def _token(self, request: Request) -> Response:
        correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        echo = [("client-request-id", correlation_id)]
        origin = request.headers.get("origin") or None
        if origin is not None:
            # A browser may read the answer, refusals included, so a SPA sees Entra's error.
            echo += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if ctype != "application/x-www-form-urlencoded":
                raise OAuthError(
                    "invalid_request",
                    900144,
                    "The request body must be application/x-www-form-urlencoded and contain the "
                    "following parameter: 'grant_type'.",
                )
            body = self.p.tokens.handle(
                request.form(), request.headers.get("authorization"), origin=origin
            )
        except OAuthError as exc:
            return json_response(exc.body(correlation_id, now=self.p.clock()), exc.status, echo)
        return json_response(body, 200, echo)

    def _admin(self, request: Request, action: str) -> Response:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {self._admin_token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return json_response(
                {
                    "error": "unauthorized",
                    "error_description": "Send 'Authorization: Bearer <admin-token>'; the token "
                    "is in the admin-token file of the state folder.",
                },
                401,
                [("WWW-Authenticate", 'Bearer realm="dev-idp-admin"')],
            )
        if action != "rotate-keys":
            return json_response({"error": "not_found"}, 404)
        if request.method != "POST":
            return json_response({"error": "method_not_allowed"}, 405, [("Allow", "POST")])
        grace: int | None = None
        if request.body:
            try:
                payload = json.loads(request.body)
                raw = payload.get("grace_period") if isinstance(payload, dict) else None
            except ValueError:
                raw = "bad"
            if raw is not None and (not isinstance(raw, int) or isinstance(raw, bool) or raw < 0):
                return json_response(
                    {"error": "invalid_request", "error_description": "grace_period: seconds >= 0"},
                    400,
                )
            grace = raw
        rotation = self.p.keys.rotate(grace)
        self.p.announce(
            f"[dev-idp] signing keys rotated: signing with {rotation.kid}, next {rotation.next_kid}, "
            f"retiring {', '.join(rotation.retiring) or 'none'}"
        )
        return json_response(rotation.to_json())

    def _only(self, method: str, allowed: str) -> Response | None:
        if method == allowed:
            return None
        error = OAuthError(
            "invalid_request",
            900561,
            f"The endpoint only accepts {allowed} requests. Received a {method} request.",
            status=405,
        )
        return json_response(error.body(now=self.p.clock()), 405, [("Allow", allowed)])

    def _error(self, error: OAuthError) -> Response:
        return json_response(error.body(now=self.p.clock()), error.status)


def _preflight(request: Request) -> Response:
    """A browser's CORS preflight for the token endpoint, answered as Entra does.

    A SPA's form POST needs none, but a client that adds a header (``client-request-id``...)
    makes the browser ask first; a 405 here would fail the sign-in before it starts.
    """
    headers = [
        ("Access-Control-Allow-Origin", request.headers.get("origin") or "*"),
        ("Access-Control-Allow-Methods", "POST, OPTIONS"),
        ("Access-Control-Max-Age", _PREFLIGHT_MAX_AGE),
        ("Vary", "Origin"),
    ]
    asked = request.headers.get("access-control-request-headers")
    if asked:
        headers.append(("Access-Control-Allow-Headers", asked))
    return Response(200, headers)  # not 204: the server always sends Content-Length
