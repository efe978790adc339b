"""The sign-in flow as steps over :class:`Request`, :class:`Session` and :class:`Response`.

Nothing here knows WSGI or ASGI. Each step is synchronous; its only I/O is the session store and
MSAL's calls to Entra, both blocking, so the WSGI adapter calls the steps inline and the ASGI
adapter runs them in a worker thread. Both therefore behave identically by construction.

Auth-code-flow state (state, nonce, PKCE verifier, return path) is kept sealed in a cookie of the
browser that started the sign-in (``flowcookie``) and deleted by the answer that uses it, which
is what refuses a missing, foreign or replayed state before MSAL sees the response. Neither the
flow nor the response is ever stored: only the response's OAuth fields are kept, and a
cross-site form_post is carried on sealed (``authresponse``). Nothing an anonymous request does
writes to the session store; a session is written once someone has signed in.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import msal

from entra_ciam import telemetry as _telemetry
from entra_ciam.config import EntraConfig
from entra_ciam.errors import ConfigError
from entra_ciam.http import FetchError, MsalHttpClient
from entra_ciam.sessions import (
    Session,
    SessionManager,
    SessionStore,
    SessionStoreUnavailableError,
    TokenCacheCipher,
    store_from_config,
)
from entra_ciam.signin.authresponse import (
    AuthResponseError,
    keep_response_fields,
    seal,
    unseal,
)
from entra_ciam.signin.context import USER_KEY, InteractionErrorFactory, RequestContext
from entra_ciam.signin.crosssite import cross_site_reason, origin_of
from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.flowcookie import FlowCookies, FlowTooLargeError
from entra_ciam.signin.idtoken import IdTokenError, check_id_token_claims
from entra_ciam.signin.messages import Request, Response
from entra_ciam.signin.msal_app import IdentityProviderUnavailableError, MsalClients
from entra_ciam.signin.pages import (
    confirm_sign_out_page,
    error_page,
    redirect,
    store_unavailable_page,
)
from entra_ciam.signin.returnpath import UnsafeReturnPathError, check_return_path
from entra_ciam.warmup import OnError, warm_up

__all__ = ["RESERVED_SCOPES", "SignIn", "normalize_scopes"]

log = logging.getLogger("entra_ciam.signin")

# MSAL adds these itself and refuses them as input.
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
_STATE_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_PREFIX_RE = re.compile(r"(/[A-Za-z0-9._~-]+)+")
# Token endpoint errors after which signing in again may help; anything else is Entra's problem.
_USER_ERRORS = frozenset(
    {"invalid_grant", "access_denied", "interaction_required", "consent_required", "login_required"}
)
# Errors, from the authorize or the token endpoint, that say Entra itself is failing: a 503 with
# Retry-After, since starting over would fail the same way until it recovers.
_UNAVAILABLE_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
# The token endpoint's "this code was already redeemed" (invalid_grant): the form_post was
# submitted twice and the other submission redeemed it.
_CODE_ALREADY_REDEEMED = 54005
_ALREADY_REDEEMED_RE = re.compile(rf"AADSTS{_CODE_ALREADY_REDEEMED}\b")
_IDP_DOWN = "Microsoft Entra cannot be reached right now. Please try again in a moment."


def normalize_scopes(scopes: str | Iterable[str], *, allow_empty: bool = False) -> list[str]:
    """A list of scopes from a space-separated string or an iterable; OIDC scopes dropped."""
    items = scopes.split() if isinstance(scopes, str) else [s for s in scopes]
    result: list[str] = []
    for item in items:
        # split() in C: exactly one part means non-empty, with no whitespace inside.
        parts = item.split() if isinstance(item, str) else None
        if parts is None or len(parts) != 1:
            raise ValueError(f"a scope must be a non-empty string without spaces, got {item!r}")
        item = parts[0]
        if item not in RESERVED_SCOPES and item not in result:
            result.append(item)
    if not result and not allow_empty:
        raise ValueError(
            "at least one API scope is needed, e.g. 'api://<api-client-id>/Todolist.Read'"
        )
    return result


def _single(pairs: Sequence[tuple[str, str]]) -> dict[str, str] | None:
    """The parameters as a dict, or None if any name repeats (parameter pollution)."""
    result: dict[str, str] = {}
    for name, value in pairs:
        if name in result:
            return None
        result[name] = value
    return result


class SignIn:
    """The ``/signin``, ``/redirect`` and ``/signout`` routes and the per-request session work.

    ``config`` needs ``client_id``, ``client_secret``, ``redirect_uri`` and ``session_secret``;
    ``post_logout_redirect_uri`` is used when set. ``scopes`` are asked for at every sign-in
    (API scopes to consent to up front); more can be asked later by ``TokenAcquirer``.
    ``response_mode`` is ``"form_post"`` (the default: the code never appears in a URL) or
    ``"query"``.

    The session cookie is ``Secure`` when the redirect URI is https (``secure_cookie=True``
    forces it on http too), decided here once: never from a request's ``Host``, which behind a
    proxy names the proxy's upstream. Its default name is then ``__Host-entra_ciam_session``
    (``entra_ciam_session`` on http, where browsers refuse the prefix).
    """

    def __init__(
        self,
        config: EntraConfig,
        *,
        store: SessionStore | None = None,
        prefix: str = "/auth",
        scopes: str | Iterable[str] = (),
        response_mode: str = "form_post",
        cookie_name: str | None = None,
        idle_timeout: float = 3600.0,
        absolute_timeout: float = 12 * 3600.0,
        secure_cookie: bool | None = None,
        default_return_path: str = "/",
        http_client: MsalHttpClient | None = None,
    ) -> None:
        config.require(
            "client_id",
            "client_secret",
            "redirect_uri",
            "session_secret",
            purpose="Signing users in (SignInMiddleware)",
        )
        assert config.redirect_uri is not None
        prefix = prefix.rstrip("/")
        if not _PREFIX_RE.fullmatch(prefix):
            raise ConfigError(f"The sign-in route prefix must look like '/auth', got {prefix!r}")
        redirect_path = urlsplit(config.redirect_uri).path
        if not redirect_path.endswith(prefix + "/redirect"):
            raise ConfigError(
                f"ENTRA_REDIRECT_URI must point at this app's {prefix}/redirect route, got "
                f"{config.redirect_uri!r}. Example: http://localhost:3000{prefix}/redirect"
            )
        if response_mode not in ("form_post", "query"):
            raise ConfigError(
                f"response_mode must be 'form_post' or 'query', got {response_mode!r}"
            )
        try:
            self.default_return_path = check_return_path(default_return_path)
            self.scopes = normalize_scopes(scopes, allow_empty=True)
        except ValueError as exc:
            raise ConfigError(f"Invalid sign-in setting: {exc}") from exc
        self.config = config
        self.prefix = prefix
        self.response_mode = response_mode
        self.sessions = SessionManager(
            store if store is not None else store_from_config(config),
            cookie_name=cookie_name,
            idle_timeout=idle_timeout,
            absolute_timeout=absolute_timeout,
            secure=_secure_cookie(config.redirect_uri, secure_cookie),
        )
        self.cipher = TokenCacheCipher.from_config(config)
        self.flows = FlowCookies(self.sessions, self.cipher)
        self.clients = MsalClients(
            config, http_client=http_client, shared_store=self.sessions.store
        )
        # This site as browsers name it in Origin headers (behind a proxy, Host may differ).
        configured = (config.redirect_uri, config.post_logout_redirect_uri)
        self.own_origins = frozenset(o for o in map(origin_of, configured) if o is not None)
        self._routes = {
            f"{prefix}/signin": self.sign_in,
            f"{prefix}/redirect": self.complete,
            f"{prefix}/signout": self.sign_out,
        }

    def warm_up(self, *, on_error: OnError = "raise") -> bool:
        """Have MSAL fetch the tenant's discovery now, at start-up (see :mod:`entra_ciam.warmup`).

        ``on_error="raise"`` raises IdentityProviderUnavailableError when Entra cannot be
        reached; ``"log"`` logs ``warm_up_failed`` and returns False.
        """
        return warm_up("signin", self.clients.build, on_error, (IdentityProviderUnavailableError,))

    # -- per request ------------------------------------------------------------------------------

    def is_route(self, path: str) -> bool:
        return path in self._routes

    def needs_body(self, request: Request) -> bool:
        """Only a form_post to the redirect route has a body worth reading."""
        return request.method == "POST" and request.path == f"{self.prefix}/redirect"

    def open(
        self,
        cookie_header: str,
        describe: Callable[[], Request],
        make_interaction_error: InteractionErrorFactory = InteractionRequiredError,
    ) -> RequestContext | Response:
        """Load the browser's session (store I/O); a 503 page if the store is down.

        Only the Cookie header is read now. ``describe`` builds the rest of the request's view
        when something first asks for it (a sign-in route, a redirect to sign in): a page of a
        signed-in user never does, and every request would pay for it.
        """
        try:
            session = self.sessions.load(cookie_header)
        except SessionStoreUnavailableError:
            _telemetry.session_store_error("load")
            return store_unavailable_page()
        return RequestContext(self, describe, session, make_interaction_error)

    def handle(self, ctx: RequestContext) -> Response:
        """Answer a request to one of the sign-in routes (may call Entra).

        HEAD is answered as GET (RFC 9110: same status and headers); the body stays in the
        response so that its Content-Length is GET's, and the adapters send none. A HEAD to the
        sign-out route never signs out: HEAD is a safe method (link checkers and prefetchers
        send it), so it gets what a GET from elsewhere gets, the page with the button.
        """
        request = ctx.request
        step = self._routes[request.path]
        if request.method == "HEAD":
            if step == self.sign_out:
                return confirm_sign_out_page(request.url_for(f"{self.prefix}/signout"))
            request = request._replace(method="GET")
        try:
            return step(request, ctx.session)
        except SessionStoreUnavailableError:
            _telemetry.session_store_error("route")
            return store_unavailable_page()
        except IdentityProviderUnavailableError as exc:
            log.error("sign-in failed: %s", exc)
            return error_page(503, _IDP_DOWN, retry_after=10)
        except Exception:  # a bug: log it, answer without a stack trace
            log.exception("unexpected error in %s", ctx.request.path)
            return error_page(500, "Sign-in failed because of an unexpected error; it was logged.")

    def close(self, ctx: RequestContext, response: Response) -> tuple[Response, bool]:
        """Save the session (store I/O) and add its cookie.

        Returns the response to send and whether it replaces the app's: the pending sign-in
        redirect when token acquisition asked for one, or a 503 page when the store is down.
        """
        replaced = False
        if ctx.pending is not None and response is not ctx.pending:
            # The app's own cookies (its framework's session, say) still go out.
            carried = [(k, v) for k, v in response.headers if k.lower() == "set-cookie"]
            pending = ctx.pending
            response = Response(pending.status, [*pending.headers, *carried], pending.body)
            replaced = True
        added = self.finish(ctx)
        if isinstance(added, Response):
            return added, True
        response.headers.extend(added)
        return response, replaced

    def finish(self, ctx: RequestContext) -> tuple[tuple[str, str], ...] | Response:
        """Save the session (store I/O): the headers to add to the response (its cookie, or
        none), or the 503 page that replaces the response when the store is down.

        ``close`` for an app's answer already encoded for its server, when no sign-in is
        pending (``ctx.pending`` is None): the adapters add these headers to it as they are,
        where ``close`` would need it as a ``Response`` (every page pays for that).
        """
        try:
            ctx.save_token_cache()
            cookie = self.sessions.commit(ctx.session)
        except SessionStoreUnavailableError:
            _telemetry.session_store_error("save")
            return store_unavailable_page()
        return () if cookie is None else (("Set-Cookie", cookie),)

    # -- steps ------------------------------------------------------------------------------------

    def sign_in(self, request: Request, session: Session) -> Response:
        """``GET {prefix}/signin?next=/path``: start a sign-in that comes back to ``next``."""
        if request.method not in ("GET", "POST"):
            return _method_not_allowed()
        params = _single(request.query)
        if params is None:
            return error_page(400, "The sign-in request repeats a parameter.")
        target = params.get("next") or self.home(request)
        try:
            return_path = check_return_path(target)
        except UnsafeReturnPathError as exc:
            return error_page(
                400,
                f"The page to return to after sign-in was refused: {exc}. "
                "Only paths on this site, such as /todos, are accepted.",
            )
        return self.begin(request, scopes=self.scopes, return_path=return_path)

    def begin(
        self,
        request: Request,
        *,
        scopes: Sequence[str],
        return_path: str,
        claims_challenge: str | None = None,
        login_hint: str | None = None,
    ) -> Response:
        """Start a new auth code flow (state, nonce, PKCE) in this browser; redirect to Entra.

        The flow goes into a cookie of its own (``flowcookie``), not the store: starting a
        sign-in stores nothing. ``scopes`` alone are asked for (Entra issues a token for one
        API at a time).
        """
        wanted = normalize_scopes(scopes, allow_empty=True)
        try:
            client = self.clients.build()
        except IdentityProviderUnavailableError as exc:
            log.error("cannot start a sign-in: %s", exc)
            return _idp_down()
        state = secrets.token_urlsafe(32)
        flow = client.initiate_auth_code_flow(
            scopes=wanted,
            redirect_uri=self.config.redirect_uri,
            state=state,
            response_mode=self.response_mode,
            claims_challenge=claims_challenge,
            login_hint=login_hint,
        )
        kept = {k: v for k, v in flow.items() if k != "auth_uri"}  # half its size, not needed
        try:
            cookies = self.flows.put(request.cookie_header, {"flow": kept, "next": return_path})
        except FlowTooLargeError:
            return error_page(
                400,
                "The page to return to after sign-in is too long to remember. "
                "Please sign in from a page with a shorter address.",
            )
        _telemetry.signin_started()
        response = redirect(flow["auth_uri"])
        response.headers.extend(("Set-Cookie", cookie) for cookie in cookies)
        return response

    def complete(self, request: Request, session: Session) -> Response:
        """``{prefix}/redirect``: check the answer against this browser's flow, redeem the code."""
        if request.method not in ("GET", "POST"):
            return _method_not_allowed()
        given = _single(request.form if request.method == "POST" else request.query)
        if given is None:
            return self._bad(
                request,
                "The answer from the sign-in page was changed on its way back "
                "(it repeats a parameter), so it cannot be used.",
            )
        if request.method == "GET" and set(given) == {"resume"}:
            resumed = unseal(self.cipher, given["resume"])
            if resumed is None:
                return self._unusable(
                    request,
                    session,
                    "This sign-in took too long or was already used "
                    "(the response expired or was altered).",
                )
            params = resumed
        else:
            try:
                params = keep_response_fields(given)
            except AuthResponseError as exc:
                return self._bad(request, str(exc))
            cross_site = request.method == "POST" and not self.flows.sees_cookies(request)
            if cross_site and _STATE_RE.fullmatch(params.get("state", "")):
                return self._send_on(params)
        state = params.get("state")
        if not state:
            return self._unusable(
                request,
                session,
                "This address is the last step of signing in: it only works when Microsoft "
                "Entra sends you back to it (the response carries no state).",
            )
        if not _STATE_RE.fullmatch(state):
            return self._bad(
                request,
                "The answer from the sign-in page was changed on its way back "
                "(it carries a malformed state), so it cannot be used.",
            )
        record, forget = self.flows.take(request.cookie_header, state)
        response = self._finish(request, session, record, params)
        response.headers.extend(("Set-Cookie", cookie) for cookie in forget)
        return response

    def sign_out(self, request: Request, session: Session) -> Response:
        """``{prefix}/signout``: forget the session and its tokens, then sign out at Entra.

        Only for requests from this site's pages (see ``crosssite``): another site could
        otherwise sign the user out with a link or a redirect. Any other request gets a page with
        a button that signs out.
        """
        if request.method not in ("GET", "POST"):
            return _method_not_allowed()
        refusal = cross_site_reason(request, self.own_origins)
        if refusal is not None:
            log.warning("refused a sign-out not sent from this site: %s", refusal)
            return confirm_sign_out_page(request.url_for(f"{self.prefix}/signout"))
        user = session.get(USER_KEY)
        hint = user.get("login_hint") if isinstance(user, dict) else None
        self.sessions.destroy(session)
        try:
            endpoint = self.clients.end_session_endpoint()
        except IdentityProviderUnavailableError as exc:
            log.warning("signed out locally only; Entra's end_session_endpoint: %s", exc)
            endpoint = None
        post_logout = self.config.post_logout_redirect_uri
        if endpoint is None:
            return redirect(post_logout or request.url_for("/"))
        query: dict[str, str] = {"client_id": str(self.config.client_id)}
        if post_logout:
            query["post_logout_redirect_uri"] = post_logout
        if isinstance(hint, str) and hint:
            query["logout_hint"] = hint
        separator = "&" if "?" in endpoint else "?"
        return redirect(endpoint + separator + urlencode(query))

    # -- helpers ----------------------------------------------------------------------------------

    def _finish(
        self,
        request: Request,
        session: Session,
        record: dict[str, Any] | None,
        params: dict[str, str],
    ) -> Response:
        """The answer to a response whose state found ``record`` (or None) in this browser."""
        if record is None:
            return self._unusable(
                request,
                session,
                "This sign-in cannot be finished: it was already used, it took too long, or it "
                "was started in another browser (it does not match a sign-in started in this "
                "browser).",
            )
        if "error" in params:
            if params["error"] in _UNAVAILABLE_ERRORS:
                log.error("Entra's authorize endpoint answered %s", params["error"][:64])
                return _idp_down()
            return self._bad(request, _entra_error(params))
        if not params.get("code"):
            return self._bad(request, "The sign-in response carries no authorization code.")
        try:
            return_path = check_return_path(str(record.get("next") or self.home(request)))
        except UnsafeReturnPathError:
            return_path = self.home(request)
        outcome = self._redeem(session, record["flow"], params, return_path)
        return self._bad(request, outcome) if isinstance(outcome, str) else outcome

    def _send_on(self, params: dict[str, str]) -> Response:
        """A cross-site form_post carries no SameSite=Lax cookie: send the answer on, sealed, to
        a top-level GET of the redirect URI, which does carry it. Nothing is stored."""
        assert self.config.redirect_uri is not None
        resume = urlencode({"resume": seal(self.cipher, params)})
        return redirect(f"{self.config.redirect_uri}?{resume}", 303)

    def home(self, request: Request) -> str:
        """``default_return_path`` under the app's mount: where a sign-in with no page of its
        own to return to ends. The setting is a path inside the app, like every route, so an
        app mounted at ``/app`` comes back to ``/app/``, not to whatever the host serves at
        ``/``."""
        return request.url_for(self.default_return_path)

    def _unusable(self, request: Request, session: Session, message: str) -> Response:
        """A callback that cannot complete a sign-in. A user who is signed in has reloaded or
        reopened it (a bookmark, the back button): nothing to do, so home. Anyone else is told
        why, with a way to start over."""
        if isinstance(session.get(USER_KEY), dict):
            log.info("a signed-in user reopened the sign-in callback: sent home")
            return redirect(self.home(request))
        return self._bad(request, message)

    def _bad(self, request: Request, message: str) -> Response:
        """400 with the reason and a way to start over."""
        _telemetry.signin_failed(message)
        return error_page(
            400,
            message + " Please sign in again.",
            retry_link=request.url_for(f"{self.prefix}/signin"),
        )

    def _redeem(
        self, session: Session, flow: dict[str, Any], params: dict[str, str], return_path: str
    ) -> Response | str:
        """The redirect home after a good sign-in, a 5xx page, or the reason it was refused."""
        previous = session.get(USER_KEY)
        cache = (
            self.cipher.load_from(session)
            if isinstance(previous, dict)
            else msal.SerializableTokenCache()
        )
        client = self.clients.build(cache)
        try:
            result = client.acquire_token_by_auth_code_flow(flow, params)
        except (json.JSONDecodeError, msal.exceptions.MsalError) as exc:
            log.error("the token endpoint answered badly: %s", type(exc).__name__)
            return _idp_down()
        except ValueError as exc:  # MSAL's state or scope checks
            return f"The sign-in response does not match its request ({exc})."
        except RuntimeError as exc:  # MSAL's nonce check
            reason = "nonce" if "nonce" in str(exc).lower() else "response"
            return f"The ID token's {reason} does not match this sign-in."
        except (httpx.HTTPError, FetchError) as exc:
            log.error("token endpoint unreachable: %s", type(exc).__name__)
            return _idp_down()
        if "error" in result:
            if _already_redeemed(result):
                # The form_post was submitted twice (a double click, a reload while it loaded):
                # the other request redeemed this code and signed the browser in, or is doing
                # so. Both carried this browser's flow cookie, so its return path (checked when
                # the sign-in started) is this browser's own page: send it there, as a
                # signed-in user reopening the callback is. If nobody signed in after all, that
                # page sends the browser through sign-in again; no session is made here.
                log.info("the authorization code was already redeemed: sent to its page")
                return redirect(return_path)
            return self._token_error(result)
        claims = result.get("id_token_claims") or {}
        try:
            issuer = self.clients.metadata().get("issuer")
            check_id_token_claims(
                claims,
                client_id=str(self.config.client_id),
                issuer=issuer if isinstance(issuer, str) else None,
                tenant_id=self.config.tenant_id,
            )
        except IdTokenError as exc:
            return f"The sign-in was refused: {exc}."
        user_key = claims.get("oid") or claims.get("sub")
        if isinstance(previous, dict) and (previous.get("oid") or previous.get("sub")) != user_key:
            # Someone else signed in: nothing of the previous user may survive.
            for account in client.get_accounts():
                if account.get("local_account_id") != user_key:
                    client.remove_account(account)
            for key in list(session):
                del session[key]
        self.sessions.rotate(session)  # no fixation: the pre-sign-in id dies here
        session[USER_KEY] = {k: v for k, v in claims.items() if k not in ("nonce", "at_hash")}
        self.cipher.save_to(session, cache)
        _telemetry.signin_completed()
        return redirect(return_path)

    def _token_error(self, result: dict[str, Any]) -> Response | str:
        error = str(result.get("error", ""))[:64]
        description = (
            str(result.get("error_description", "")).splitlines()[0][:300]
            if result.get("error_description")
            else ""
        )
        if error in _UNAVAILABLE_ERRORS:
            log.error("token endpoint error %s", error)
            return _idp_down()
        if error in _USER_ERRORS or error == "invalid_request":
            return f"Microsoft Entra refused the sign-in ({error}): {description}"
        log.error("token endpoint refused the app: %s %s", error, description)
        _telemetry.signin_failed(reason="app_refused", status=502)
        return error_page(
            502,
            f"Microsoft Entra refused this application's request ({error}). "
            "The site's configuration needs attention.",
        )


def _idp_down() -> Response:
    """The 503 for Entra failing (unreachable, garbage, ``server_error``): counted, and saying
    only that the identity provider is unavailable; the caller logs why."""
    _telemetry.signin_failed(reason="idp_unavailable", status=503)
    return error_page(503, _IDP_DOWN, retry_after=10)


def _already_redeemed(result: dict[str, Any]) -> bool:
    """Whether the token endpoint refused the code as already redeemed (AADSTS54005)."""
    if result.get("error") != "invalid_grant":
        return False
    codes = result.get("error_codes")
    if isinstance(codes, list) and _CODE_ALREADY_REDEEMED in codes:
        return True
    description = result.get("error_description")
    return isinstance(description, str) and bool(_ALREADY_REDEEMED_RE.match(description))


def _entra_error(params: dict[str, str]) -> str:
    error = params.get("error", "")
    if error == "access_denied":
        return "Sign-in was cancelled or access was denied."
    description = params.get("error_description", "").splitlines()[0:1]
    return f"Microsoft Entra answered {error[:64]!r}: {''.join(description)[:300]}"


def _secure_cookie(redirect_uri: str, forced: bool | None) -> bool:
    """``Secure`` for a site the browser reaches over https, as the redirect URI says."""
    https = urlsplit(redirect_uri).scheme == "https"
    if forced is False and https:
        raise ConfigError(
            "secure_cookie=False with an https ENTRA_REDIRECT_URI would let browsers send the "
            "session cookie over plain http; leave secure_cookie unset"
        )
    return https or bool(forced)


def _method_not_allowed() -> Response:
    """405 for the sign-in routes, which take GET (and so HEAD) and POST."""
    allow = "GET, HEAD, POST"
    response = error_page(405, f"This address accepts {allow} only.")
    response.headers.append(("Allow", allow))
    return response
