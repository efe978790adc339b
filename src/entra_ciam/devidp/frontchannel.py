"""The browser-facing port: /authorize, the sign-in and sign-up pages, and /logout.

Served over plain http on loopback, so the emulator's session cookie is HttpOnly and
SameSite=Lax but not Secure. Each page's CSP lets its forms reach only this port and the
redirect URI of the request being served.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

import jwt

from entra_ciam.devidp import pages
from entra_ciam.devidp.authorize import (
    AuthorizeRequest,
    PageError,
    RedirectError,
    RedirectTarget,
    parse_authorize,
)
from entra_ciam.devidp.errors import OAuthError
from entra_ciam.devidp.messages import Request, Response, html, json_response, redirect, with_query
from entra_ciam.devidp.provider import Provider
from entra_ciam.devidp.registrations import AppRegistration, User
from entra_ciam.devidp.store import CodeGrant, PendingAuthorization, Session

__all__ = ["SESSION_COOKIE", "FrontChannel"]

SESSION_COOKIE = "devidp_session"
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
_MAX_PASSWORD_ATTEMPTS = 10
_MIN_PASSWORD = 8

Handler = Callable[[Request, str], Response]


def _first(values: Mapping[str, Sequence[str]], name: str) -> str:
    found = values.get(name)
    return found[0] if found else ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class FrontChannel:
    def __init__(self, provider: Provider) -> None:
        self.p = provider
        self.base = f"/{provider.registrations.tenant.id}"
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "oauth2/v2.0/authorize"): self.authorize,
            ("GET", "login"): self.login_page,
            ("POST", "login/email"): self.login_email,
            ("POST", "login/password"): self.login_password,
            ("GET", "signup"): self.signup_page,
            ("POST", "signup/email"): self.signup_email,
            ("POST", "signup/code"): self.signup_code,
            ("POST", "signup/details"): self.signup_details,
            ("GET", "oauth2/v2.0/logout"): self.logout,
            ("POST", "oauth2/v2.0/logout"): self.logout,
            ("GET", "_test/otp"): self.test_otp,
        }

    # -- dispatch ---------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        if request.path in ("/", ""):
            return self.index(request)
        tenant, _, rest = request.path.strip("/").partition("/")
        if not self.p.names_tenant(tenant):
            return self._message(
                404,
                "Tenant not found",
                [f"This emulator serves one tenant: {self.p.registrations.tenant.id}."],
            )
        method = "GET" if request.method == "HEAD" else request.method
        handler = self._routes.get((method, rest))
        if handler is None:
            if any(path == rest for _, path in self._routes):
                return self._message(405, "Method not allowed", [f"{request.method} /{rest}"])
            return self._message(404, "Page not found", [f"There is no page at /{rest}."])
        nonce = secrets.token_urlsafe(16)
        return handler(request, nonce)

    # -- pages ------------------------------------------------------------------------------

    def index(self, request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        e = self.p.endpoints
        rows = [
            ("Authority", e.authority),
            ("Issuer", e.issuer),
            ("Metadata", e.metadata_url),
        ]
        if self.p.state is not None:
            rows.append(("CA bundle", str(self.p.state.file("ca.pem"))))
        rows += [(f"App: {a.name}", a.client_id) for a in self.p.registrations.apps]
        rows += [("User", u.email) for u in self.p.registrations.users]
        return self._html(pages.index(nonce, self.p.registrations.tenant.name, rows), nonce)

    def authorize(self, request: Request, nonce: str) -> Response:
        try:
            req = parse_authorize(request.query, self.p.registrations)
        except PageError as exc:
            return self._error(exc.error, nonce)
        except RedirectError as exc:
            return self._deliver(exc.target, exc.error.redirect_params(exc.target.state), nonce)
        session = self.p.store.session(request.cookie(SESSION_COOKIE))
        user = self.p.directory.by_oid(session.user_oid) if session else None
        if session and user and self._session_satisfies(req, session, user):
            return self._complete(self._flow_from(req), user, session, nonce)
        if req.prompt == "none":
            error = OAuthError(
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            )
            return self._deliver(req.target, error.redirect_params(req.target.state), nonce)
        flow = self._flow_from(req)
        flow_id = self.p.store.add_flow(flow)
        view = self._view(flow_id, flow)
        if req.prompt == "create":
            return self._page(pages.sign_up_email(view, nonce), nonce, flow)
        return self._page(pages.sign_in_email(view, nonce, email=req.login_hint or ""), nonce, flow)

    def login_page(self, request: Request, nonce: str) -> Response:
        flow_id = _first(request.query, "flow")
        flow = self.p.store.flow(flow_id)
        if flow is None:
            return self._expired(nonce)
        return self._page(pages.sign_in_email(self._view(flow_id, flow), nonce), nonce, flow)

    def login_email(self, request: Request, nonce: str) -> Response:
        form = request.form()
        flow_id = _first(form, "flow")
        flow = self.p.store.flow(flow_id)
        if flow is None:
            return self._expired(nonce)
        view = self._view(flow_id, flow)
        email = _first(form, "email").strip().lower()
        if not _EMAIL_RE.match(email):
            page = pages.sign_in_email(
                view, nonce, email=email, error="Enter a valid email address."
            )
            return self._page(page, nonce, flow, status=400)
        if self.p.directory.find(email) is None:
            error = (
                "We couldn't find an account with this email address. "
                "Enter a different email or create a new account."
            )
            return self._page(
                pages.sign_in_email(view, nonce, email=email, error=error), nonce, flow, status=401
            )
        return self._page(pages.sign_in_password(view, nonce, email=email), nonce, flow)

    def login_password(self, request: Request, nonce: str) -> Response:
        form = request.form()
        flow_id = _first(form, "flow")
        flow = self.p.store.flow(flow_id)
        if flow is None:
            return self._expired(nonce)
        view = self._view(flow_id, flow)
        email = _first(form, "email").strip().lower()
        user = self.p.directory.find(email)
        if user is None:
            error = "We couldn't find an account with this email address."
            return self._page(
                pages.sign_in_email(view, nonce, email=email, error=error), nonce, flow, status=401
            )
        flow.password_attempts += 1
        if flow.password_attempts > _MAX_PASSWORD_ATTEMPTS:
            self.p.store.end_flow(flow_id)
            return self._message(
                429,
                "Too many attempts",
                ["Too many wrong passwords. Go back to the app and start signing in again."],
            )
        if not self.p.directory.check_password(user, _first(form, "password")):
            error = "Your password is incorrect."
            page = pages.sign_in_password(view, nonce, email=email, error=error)
            return self._page(page, nonce, flow, status=401)
        self.p.store.end_flow(flow_id)
        cookie, session = self.p.store.start_session(user.oid)
        return self._complete(flow, user, session, nonce, cookie=cookie)

    def signup_page(self, request: Request, nonce: str) -> Response:
        flow_id = _first(request.query, "flow")
        flow = self.p.store.flow(flow_id)
        if flow is None:
            return self._expired(nonce)
        return self._page(pages.sign_up_email(self._view(flow_id, flow), nonce), nonce, flow)

    def signup_email(self, request: Request, nonce: str) -> Response:
        form = request.form()
        flow_id = _first(form, "flow")
        flow = self.p.store.flow(flow_id)
        if flow is None:
            return self._expired(nonce)
        view = self._view(flow_id, flow)
        email = _first(form, "email").strip().lower()
        if not _EMAIL_RE.match(email):
            page = pages.sign_up_email(
                view, nonce, email=email, error="Enter a valid email address."
            )
            return self._page(page, nonce, flow, status=400)
        if self.p.directory.find(email) is not None:
            error = "An account with this email address already exists. Sign in instead."
            page = pages.sign_up_email(view, nonce, email=email, error=error)
            return self._page(page, nonce, flow, status=409)
        code = self.p.store.new_otp(flow, email, self.p.registrations.lifetimes.one_time_passcode)
        self.p.announce(f"[dev-idp] one-time passcode for {email}: {code}")
        return self._page(pages.sign_up_code(view, nonce, email=email), nonce, flow)

    def signup_code(self, request: Request, nonce: str) -> Response:
        form = request.form()
        flow_id = _first(form, "flow")
        flow = self.p.store.flow(flow_id)
        if flow is None or flow.signup_email is None:
            return self._expired(nonce)
        view = self._view(flow_id, flow)
        problem = self.p.store.check_otp(flow, _first(form, "otp"))
        if problem is not None:
            page = pages.sign_up_code(view, nonce, email=flow.signup_email, error=problem)
            return self._page(page, nonce, flow, status=400)
        return self._page(pages.sign_up_details(view, nonce, email=flow.signup_email), nonce, flow)

    def signup_details(self, request: Request, nonce: str) -> Response:
        form = request.form()
        flow_id = _first(form, "flow")
        flow = self.p.store.flow(flow_id)
        if flow is None or flow.signup_email is None or not flow.signup_verified:
            return self._expired(nonce)
        view = self._view(flow_id, flow)
        email = flow.signup_email
        password = _first(form, "password")
        display_name = _first(form, "display_name").strip()
        problem = None
        if len(password) < _MIN_PASSWORD:
            problem = f"Use at least {_MIN_PASSWORD} characters for the password."
        elif not display_name:
            problem = "Enter a display name."
        elif len(display_name) > 256:
            problem = "The display name is too long."
        if problem:
            page = pages.sign_up_details(
                view, nonce, email=email, display_name=display_name, error=problem
            )
            return self._page(page, nonce, flow, status=400)
        try:
            user = self.p.directory.sign_up(email, password, display_name)
        except ValueError:
            error = "An account with this email address already exists. Sign in instead."
            return self._page(
                pages.sign_up_email(view, nonce, email=email, error=error), nonce, flow, status=409
            )
        self.p.announce(f"[dev-idp] new account: {email} ({display_name})")
        self.p.store.end_flow(flow_id)
        cookie, session = self.p.store.start_session(user.oid)
        return self._complete(flow, user, session, nonce, cookie=cookie)

    def logout(self, request: Request, nonce: str) -> Response:
        params: dict[str, list[str]] = {**request.query, **request.form()}
        self.p.store.end_session(request.cookie(SESSION_COOKIE))
        clear = [("Set-Cookie", _cookie(SESSION_COOKIE, "", max_age=0))]
        target = _first(params, "post_logout_redirect_uri")
        tenant_name = self.p.registrations.tenant.name
        if not target:
            return self._html(pages.signed_out(nonce, tenant_name), nonce, headers=clear)
        client = self._logout_client(params)
        apps = [client] if client is not None else list(self.p.registrations.apps)
        if any(app.accepts_post_logout_uri(target) for app in apps):
            state = _first(params, "state")
            return redirect(with_query(target, {"state": state} if state else {}), clear)
        note = (
            f"The app asked to return to {target}, which is not one of its registered "
            "post-logout redirect URIs (AADSTS50011), so you stay here."
        )
        return self._html(
            pages.signed_out(nonce, tenant_name, note=note), nonce, status=400, headers=clear
        )

    def test_otp(self, request: Request, nonce: str) -> Response:
        """Test mode only: the last one-time passcode sent (to ``?email=``)."""
        if not self.p.test_mode:
            return self._message(404, "Page not found", ["There is no page at /_test/otp."])
        email = _first(request.query, "email") or None
        code = self.p.store.latest_otp(email)
        if code is None:
            return json_response({"error": "no passcode has been sent"}, 404)
        return json_response({"email": email, "otp": code})

    # -- helpers ----------------------------------------------------------------------------

    def _flow_from(self, req: AuthorizeRequest) -> PendingAuthorization:
        return PendingAuthorization(
            client_id=req.client.client_id,
            redirect_uri=req.target.redirect_uri,
            response_mode=req.target.response_mode,
            state=req.target.state,
            nonce=req.nonce,
            code_challenge=req.code_challenge,
            grant=req.grant,
            max_age=req.max_age,
            login_hint=req.login_hint,
            expires_at=self.p.clock() + 30 * 60,
        )

    def _session_satisfies(self, req: AuthorizeRequest, session: Session, user: User) -> bool:
        if req.prompt in ("login", "create", "select_account", "consent"):
            return False
        if req.max_age is not None and self.p.clock() - session.auth_time > req.max_age:
            return False
        return req.login_hint is None or req.login_hint.strip().lower() == user.email

    def _complete(
        self,
        flow: PendingAuthorization,
        user: User,
        session: Session,
        nonce: str,
        *,
        cookie: str | None = None,
    ) -> Response:
        """Issue the code and send the browser back to the app."""
        code = self.p.store.issue_code(
            CodeGrant(
                client_id=flow.client_id,
                redirect_uri=flow.redirect_uri,
                code_challenge=flow.code_challenge,
                nonce=flow.nonce,
                user_oid=user.oid,
                grant=flow.grant,
                sid=session.sid,
                auth_time=session.auth_time,
                include_auth_time=flow.max_age is not None,
                expires_at=self.p.clock() + self.p.registrations.lifetimes.authorization_code,
                family=self.p.store.new_family(),
            )
        )
        params = {"code": code}
        if flow.state is not None:
            params["state"] = flow.state
        params["session_state"] = session.sid
        headers = []
        if cookie is not None:
            headers.append(("Set-Cookie", _cookie(SESSION_COOKIE, cookie)))
        target = RedirectTarget(flow.redirect_uri, flow.response_mode, flow.state)
        return self._deliver(target, params, nonce, headers=headers)

    def _deliver(
        self,
        target: RedirectTarget,
        params: dict[str, str],
        nonce: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Response:
        if target.response_mode == "form_post":
            page = pages.form_post(
                target.redirect_uri, params, nonce, self.p.registrations.tenant.name
            )
            return self._html(page, nonce, targets=(_origin(target.redirect_uri),), headers=headers)
        return redirect(with_query(target.redirect_uri, params), headers)

    def _logout_client(self, params: Mapping[str, Sequence[str]]) -> AppRegistration | None:
        client_id = _first(params, "client_id")
        if client_id:
            return self.p.registrations.app(client_id)
        hint = _first(params, "id_token_hint")
        if not hint:
            return None
        try:
            kid = jwt.get_unverified_header(hint).get("kid")
            key = self.p.keys.find(kid) if isinstance(kid, str) else None
            if key is None:
                return None
            claims = jwt.decode(
                hint,
                key.private_key.public_key(),
                algorithms=["RS256"],
                issuer=self.p.endpoints.issuer,
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        aud = claims.get("aud")
        return self.p.registrations.app(aud) if isinstance(aud, str) else None

    def _view(self, flow_id: str, flow: PendingAuthorization) -> pages.FlowView:
        client = self.p.registrations.app(flow.client_id)
        return pages.FlowView(
            flow_id=flow_id,
            tenant_name=self.p.registrations.tenant.name,
            app_name=client.name if client else flow.client_id,
            base=self.base,
        )

    def _page(
        self, body: str, nonce: str, flow: PendingAuthorization, *, status: int = 200
    ) -> Response:
        # Chrome applies form-action to the redirect that follows a form post, so the app's origin
        # must be allowed as well as our own.
        return self._html(body, nonce, status=status, targets=(_origin(flow.redirect_uri),))

    def _expired(self, nonce: str) -> Response:
        return self._message(
            400,
            "Your sign-in timed out",
            [
                "This sign-in request has expired or was already used (AADSTS50089).",
                "Go back to the application and sign in again.",
            ],
            nonce=nonce,
        )

    def _error(self, error: OAuthError, nonce: str) -> Response:
        page = pages.error_page(
            code=error.code,
            error=error.error,
            description=error.description,
            correlation_id=str(uuid.uuid4()),
            nonce=nonce,
            tenant_name=self.p.registrations.tenant.name,
        )
        return self._html(page, nonce, status=error.status)

    def _message(
        self, status: int, title: str, lines: list[str], *, nonce: str | None = None
    ) -> Response:
        nonce = nonce or secrets.token_urlsafe(16)
        page = pages.message_page(title, lines, nonce, self.p.registrations.tenant.name)
        return self._html(page, nonce, status=status)

    def _html(
        self,
        body: str,
        nonce: str,
        *,
        status: int = 200,
        targets: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
    ) -> Response:
        form_action = " ".join(["'self'", *targets])
        csp = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            f"img-src data:; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        )
        return html(
            body,
            status,
            [
                ("Content-Security-Policy", csp),
                ("X-Frame-Options", "DENY"),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),
                *headers,
            ],
        )


def _cookie(name: str, value: str, *, max_age: int | None = None) -> str:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)
