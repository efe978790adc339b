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
from urllib.parse import urlencode, urlsplit

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
from entra_ciam.devidp.registrations import AppRegistration, User, redirect_target
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
            ("POST", "login/select"): self.login_select,
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
        _, rest = self.p.tenant_path(request.path)
        if rest == "" and request.method in ("GET", "HEAD"):
            return self.index(request)
        if rest is None:
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
        """The root page: what to point an app at, the apps and the users (never a secret)."""
        nonce = secrets.token_urlsafe(16)
        e = self.p.endpoints
        regs = self.p.registrations
        rows = [
            ("Tenant", f"{regs.tenant.id} ({regs.tenant.domain})"),
            ("Authority", e.authority),
            ("MSAL oidc_authority", e.oidc_authority),
            ("Issuer", e.issuer),
            ("Discovery", e.metadata_url),
            ("Sign-in pages", f"{e.pages_base}/"),
        ]
        if self.p.state is not None:
            rows.append(("CA bundle", str(self.p.state.file("ca.pem"))))
        for app in regs.apps:
            kind = "confidential" if app.is_confidential else "public"
            if app.spa:
                kind = "single-page app"
            exposes = " ".join(app.scopes + app.app_roles)
            rows.append(
                (
                    f"App: {app.name}",
                    f"{app.client_id} ({kind}{'; exposes ' + exposes if exposes else ''})",
                )
            )
        users = [*regs.users, *self.p.directory.signed_up()]
        rows += [("User", f"{u.email} ({u.display_name})") for u in users]
        page = pages.index(
            nonce,
            regs.tenant.name,
            rows,
            discovery=e.metadata_url,
            note="Client secrets and the test users' passwords are printed on the emulator's "
            "console (and in `entra-ciam dev-idp example-config`).",
        )
        return self._html(page, nonce)

    def authorize(self, request: Request, nonce: str) -> Response:
        try:
            req = parse_authorize(request.query, self.p.registrations)
        except PageError as exc:
            return self._error(exc.error, nonce)
        except RedirectError as exc:
            return self._deliver(exc.target, exc.error.redirect_params(exc.target.state), nonce)
        cookie = request.cookie(SESSION_COOKIE)
        accounts = self._accounts(cookie)
        # prompt=consent keeps SSO: External ID users never see a consent page (an administrator
        # consents), so there is nothing to show but the sign-in Entra would skip too.
        if req.prompt in ("login", "create"):
            candidates: list[tuple[Session, User]] = []
        else:
            candidates = [(s, u) for s, u in accounts if self._account_fits(req, s, u)]
        if req.prompt == "none":
            if len(candidates) == 1:
                session, user = candidates[0]
                return self._complete(self._flow_from(req), user, session, nonce, cookie=cookie)
            error = (
                OAuthError(
                    "interaction_required",
                    16000,
                    "Several accounts are signed in; send login_hint to say which, or let the "
                    "user pick one.",
                )
                if candidates
                else OAuthError(
                    "login_required",
                    50058,
                    "A silent sign-in request was sent but no user is signed in.",
                )
            )
            return self._deliver(req.target, error.redirect_params(req.target.state), nonce)
        if len(candidates) == 1 and req.prompt != "select_account":
            session, user = candidates[0]
            return self._complete(self._flow_from(req), user, session, nonce, cookie=cookie)
        flow = self._flow_from(req)
        flow_id = self.p.store.add_flow(flow)
        view = self._view(flow_id, flow)
        if req.prompt == "create":
            return self._page(pages.sign_up_email(view, nonce), nonce, flow)
        pickable = candidates if req.prompt != "select_account" else accounts
        if pickable:
            listed = [(u.email, u.display_name) for _, u in pickable]
            return self._page(pages.pick_account(view, nonce, listed), nonce, flow)
        hint = self._hinted_email(req.login_hint)
        return self._page(pages.sign_in_email(view, nonce, email=hint), nonce, flow)

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
        cookie, session = self.p.store.start_session(user.oid, request.cookie(SESSION_COOKIE))
        return self._complete(flow, user, session, nonce, cookie=cookie, set_cookie=True)

    def login_select(self, request: Request, nonce: str) -> Response:
        """The account picker: continue as an account already signed in here, no password."""
        form = request.form()
        flow_id = _first(form, "flow")
        flow = self.p.store.flow(flow_id)
        if flow is None:
            return self._expired(nonce)
        email = _first(form, "email").strip().lower()
        cookie = request.cookie(SESSION_COOKIE)
        chosen = next(((s, u) for s, u in self._accounts(cookie) if u.email == email), None)
        if chosen is None or (
            flow.max_age is not None and self.p.clock() - chosen[0].auth_time > flow.max_age
        ):
            # Signed out meanwhile, or too long ago for max_age: ask for the password.
            page = pages.sign_in_email(self._view(flow_id, flow), nonce, email=email)
            return self._page(page, nonce, flow)
        self.p.store.end_flow(flow_id)
        session, user = chosen
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
        cookie, session = self.p.store.start_session(user.oid, request.cookie(SESSION_COOKIE))
        return self._complete(flow, user, session, nonce, cookie=cookie, set_cookie=True)

    def logout(self, request: Request, nonce: str) -> Response:
        """End the session at the emulator, then return to the app if it may be returned to.

        ``logout_hint`` (the ``login_hint`` claim of the app's ID token) signs out that account
        only; without it every account of this browser is signed out. Apps the ended sessions
        signed in to are told through their front-channel logout URL, in hidden frames.
        """
        params: dict[str, list[str]] = {**request.query, **request.form()}
        cookie = request.cookie(SESSION_COOKIE)
        hint = _first(params, "logout_hint")
        user_oid = self.p.minter.oid_from_login_hint(hint) if hint else None
        if hint and user_oid is None:
            user = self.p.directory.find(hint)
            user_oid = user.oid if user else ""  # names nobody signed in here: end nothing
        _, clients, remaining = self.p.store.end_session(cookie, user_oid)
        headers = [] if remaining else [("Set-Cookie", _cookie(SESSION_COOKIE, "", max_age=0))]
        frames = self._frontchannel_urls(clients)
        target = _first(params, "post_logout_redirect_uri")
        tenant_name = self.p.registrations.tenant.name
        if not target:
            page = pages.signed_out(nonce, tenant_name, frames=frames)
            return self._html(page, nonce, headers=headers, frames=frames)
        client = self._logout_client(params)
        apps = [client] if client is not None else list(self.p.registrations.apps)
        listed_only = self.p.registrations.strict.post_logout_uris_listed_only
        if any(app.accepts_post_logout_uri(target, listed_only=listed_only) for app in apps):
            state = _first(params, "state")
            location = with_query(redirect_target(target), {"state": state} if state else {})
            if not frames:
                return redirect(location, headers)
            page = pages.signed_out(nonce, tenant_name, frames=frames, continue_to=location)
            return self._html(page, nonce, headers=headers, frames=frames)
        registered = "post-logout redirect URIs" if listed_only else "redirect URIs"
        note = (
            f"The app asked to return to {target}, which is not one of its registered "
            f"{registered} (AADSTS50011), so you stay here."
        )
        page = pages.signed_out(nonce, tenant_name, note=note, frames=frames)
        return self._html(page, nonce, status=400, headers=headers, frames=frames)

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

    def _accounts(self, cookie: str | None) -> list[tuple[Session, User]]:
        """The accounts signed in to this browser whose users still exist, newest last."""
        found = []
        for session in self.p.store.sessions(cookie):
            user = self.p.directory.by_oid(session.user_oid)
            if user is not None:
                found.append((session, user))
        return found

    def _account_fits(self, req: AuthorizeRequest, session: Session, user: User) -> bool:
        """May this signed-in account answer ``req`` without a password?"""
        if req.max_age is not None and self.p.clock() - session.auth_time > req.max_age:
            return False
        if req.login_hint is None:
            return True
        hint = req.login_hint.strip()
        return hint.lower() == user.email or self.p.minter.oid_from_login_hint(hint) == user.oid

    def _hinted_email(self, login_hint: str | None) -> str:
        """The email to prefill: the hint itself, or the account a login_hint claim names."""
        if not login_hint:
            return ""
        oid = self.p.minter.oid_from_login_hint(login_hint.strip())
        if oid is None:
            return login_hint
        user = self.p.directory.by_oid(oid)
        return user.email if user else ""

    def _frontchannel_urls(self, client_ids: set[str]) -> list[str]:
        urls = []
        for client_id in sorted(client_ids):
            app = self.p.registrations.app(client_id)
            if app is not None and app.frontchannel_logout_url:
                urls.append(app.frontchannel_logout_url)
        return urls

    def _complete(
        self,
        flow: PendingAuthorization,
        user: User,
        session: Session,
        nonce: str,
        *,
        cookie: str | None = None,
        set_cookie: bool = False,
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
        self.p.store.note_client(cookie, session.sid, flow.client_id)
        params = {"code": code}
        if flow.state is not None:
            params["state"] = flow.state
        params["session_state"] = session.sid
        headers = []
        if set_cookie and cookie is not None:
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
        # A path-less redirect URI is answered at "/", as Entra does in every response mode.
        uri = redirect_target(target.redirect_uri)
        if target.response_mode == "form_post":
            page = pages.form_post(uri, params, nonce, self.p.registrations.tenant.name)
            return self._html(page, nonce, targets=(_origin(uri),), headers=headers)
        if target.response_mode == "fragment":
            return redirect(f"{uri}#{urlencode(params)}", headers)
        return redirect(with_query(uri, params), headers)

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
        frames: Sequence[str] = (),
    ) -> Response:
        form_action = " ".join(["'self'", *targets])
        csp = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            f"img-src data:; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        )
        if frames:  # front-channel logout: the apps' logout URLs load in hidden frames
            csp += "; frame-src " + " ".join(sorted({_origin(url) for url in frames}))
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
