"""Middlewares for ``settings.MIDDLEWARE``: bearer tokens and sign-in, under WSGI and ASGI.

Each is built once when Django loads its middleware (at start-up under every server), so a
missing setting stops the process there. Both run sync or async, as the rest of the chain does;
the blocking steps (session store, Entra) run in a worker thread under ASGI. They also answer the
library's exceptions that a view lets through (``process_exception``), which Django would
otherwise turn into a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from entra_ciam.acquirer import TokenAcquirer
from entra_ciam.bearer import error_response, preflight_answer
from entra_ciam.claims import Claims
from entra_ciam.django import settings as entra_settings
from entra_ciam.django.integration import INTEGRATION, add_cookie, http_response
from entra_ciam.errors import AuthError
from entra_ciam.requeststate import bound, claims_state, signin_state
from entra_ciam.sessions import SessionStoreUnavailableError
from entra_ciam.signin.context import RequestContext
from entra_ciam.signin.errors import InteractionRequiredError
from entra_ciam.signin.flow import SignIn
from entra_ciam.signin.messages import MAX_FORM_BYTES, Request, Response
from entra_ciam.signin.pages import store_unavailable_page

__all__ = ["BearerTokenMiddleware", "SignInMiddleware", "build_signin"]

GetResponse = Callable[[HttpRequest], Any]


def _refusal(err: AuthError) -> HttpResponse:
    status, headers, body = error_response(err)
    return http_response(status, headers, body)


def _route(request: HttpRequest) -> tuple[str, str, bool]:
    """What the bearer policy decides on: the method, the path the app routes on and whether
    the request carries a CORS preflight's ``Access-Control-Request-Method``."""
    return (
        (request.method or "GET").upper(),
        request.path_info or "/",
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META,
    )


def _preflight_answer(response: HttpResponse) -> HttpResponse:
    """What goes out of the app's answer to a preflight that passed unauthenticated: a CORS
    answer without its body, or the 401 challenge (``entra_ciam.bearer.preflight_answer``)."""
    status, headers, body = preflight_answer(response.status_code, list(response.items()))
    return http_response(status, headers, body)


class _Middleware:
    """Sync or async as the next middleware is (Django's "sync_capable and async_capable")."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.acall(request)
        return self.call(request)

    def call(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    async def acall(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError


class BearerTokenMiddleware(_Middleware):
    """Refuse requests without a valid ``Authorization: Bearer`` token (RFC 6750 answers).

    ``PUBLIC_PATHS`` and ``PUBLIC_PREFIXES`` of ``settings.ENTRA_CIAM`` pass unauthenticated
    (matched against ``request.path_info``), as do CORS preflights, whose answer goes out only if
    it is a CORS answer (django-cors-headers answering it, say). Views find the claims in
    ``request.claims`` (None on public paths) and through ``current_claims()``. A request whose
    token validated is exempt from the CSRF check; no other is.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.validator = entra_settings.validator()
        self.policy = entra_settings.bearer_policy()

    def _token(self, request: HttpRequest) -> str | None:
        meta = request.META
        authorization = meta.get("HTTP_AUTHORIZATION")
        method, path, preflight = _route(request)
        return self.policy.token_for(
            method=method,
            path=path,
            authorization=[] if authorization is None else [authorization],
            query_string=meta.get("QUERY_STRING", ""),
            preflight=preflight,
        )

    def _admit(self, request: HttpRequest, claims: Claims | None) -> bool:
        """Leave the claims to the view; True when the request passed as a CORS preflight.

        A request whose bearer token validated is exempt from Django's CSRF check, as DRF
        exempts its token authentication: a browser never attaches an ``Authorization`` header
        by itself, so such a request cannot have been forged by another site. Requests that
        passed without a token (public paths, preflights) keep the check; so do requests that
        rely on a cookie.
        """
        request.claims = claims
        if claims is not None:
            request._dont_enforce_csrf_checks = True  # read by CsrfViewMiddleware.process_view
            return False
        return self.policy.passes_as_preflight(*_route(request))

    def call(self, request: HttpRequest) -> HttpResponse:
        try:
            token = self._token(request)
            claims = None if token is None else self.validator.validate(token)
        except AuthError as err:
            return _refusal(err)
        preflight = self._admit(request, claims)
        with bound(claims_state(INTEGRATION, claims)):
            response: HttpResponse = self.get_response(request)
        return _preflight_answer(response) if preflight else response

    async def acall(self, request: HttpRequest) -> HttpResponse:
        try:
            token = self._token(request)
            claims = None if token is None else await self.validator.validate_async(token)
        except AuthError as err:
            return _refusal(err)
        preflight = self._admit(request, claims)
        with bound(claims_state(INTEGRATION, claims)):
            response: HttpResponse = await self.get_response(request)
        return _preflight_answer(response) if preflight else response

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        """Answer an AuthError a view let through (``current_claims()``, ``guard.check()``)."""
        return _refusal(exception) if isinstance(exception, AuthError) else None


def build_signin() -> tuple[SignIn, TokenAcquirer]:
    """The sign-in flow and token acquirer from the Django settings."""
    opts = entra_settings.options()
    signin = SignIn(
        entra_settings.entra_config(),
        prefix=str(opts.get("SIGNIN_PREFIX", "/auth")),
        scopes=opts.get("SIGNIN_SCOPES", ()),
    )
    return signin, TokenAcquirer(signin.config, clients=signin.clients)


def request_from_django(request: HttpRequest) -> Request:
    """What the sign-in steps read of a Django request."""
    meta = request.META
    return Request(
        method=(request.method or "GET").upper(),
        path=request.path_info or "/",
        root_path=str(meta.get("SCRIPT_NAME") or "").rstrip("/"),
        query_string=str(meta.get("QUERY_STRING", "")),
        cookie_header=str(meta.get("HTTP_COOKIE", "")),
        content_type=str(meta.get("CONTENT_TYPE", "")),
        host=str(meta.get("HTTP_HOST") or request.get_host()),
        origin=str(meta.get("HTTP_ORIGIN", "")),
        fetch_site=str(meta.get("HTTP_SEC_FETCH_SITE", "")),
    )


class SignInMiddleware(_Middleware):
    """Loads the browser's session before the view and saves it after; with
    ``path("auth/", include("entra_ciam.django.urls"))`` it signs users in.

    Views read ``current_user()`` (or ``request.entra_user``) and get tokens from
    ``request.entra_acquirer``, a ``TokenAcquirer`` sharing this middleware's MSAL set-up.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.signin, self.acquirer = build_signin()
        entra_settings.warm_up(self.signin)  # with WARM_UP set: MSAL's discovery, now

    def _open(self, request: HttpRequest) -> RequestContext | Response:
        seen = request_from_django(request)
        if self.signin.needs_body(seen):
            try:
                body = request.read(MAX_FORM_BYTES + 1)
            except OSError:
                body = b""
            seen = seen.with_body(body)
        opened = self.signin.open(seen.cookie_header, lambda: seen, INTEGRATION.interaction_error)
        if isinstance(opened, RequestContext):
            request.entra_signin = opened
            request.entra_user = opened.user
            request.entra_acquirer = self.acquirer
        return opened

    def _close(self, ctx: RequestContext, response: HttpResponse) -> HttpResponse:
        headers = [(k, v) for k, v in response.items()]
        final, replaced = self.signin.close(ctx, Response(response.status_code, list(headers)))
        if replaced:
            return http_response(final.status, final.headers, final.body)
        for name, value in final.headers[len(headers) :]:
            if name.lower() == "set-cookie":
                add_cookie(response, value)
            else:
                response.headers[name] = value
        return response

    def call(self, request: HttpRequest) -> HttpResponse:
        opened = self._open(request)
        if isinstance(opened, Response):
            return http_response(opened.status, opened.headers, opened.body)
        with bound(signin_state(INTEGRATION, opened)):
            response = self.get_response(request)
        return self._close(opened, response)

    async def acall(self, request: HttpRequest) -> HttpResponse:
        opened = await self._store(self._open, request)
        if isinstance(opened, Response):
            return http_response(opened.status, opened.headers, opened.body)
        with bound(signin_state(INTEGRATION, opened)):
            response = await self.get_response(request)
        return await self._store(self._close, opened, response)

    async def _store(self, func: Callable[..., Any], *args: Any) -> Any:
        if self.signin.sessions.store.blocking:
            return await asyncio.to_thread(func, *args)
        return func(*args)

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        """Answer a sign-in a view needs (token acquisition) or a store that is down."""
        ctx = getattr(request, "entra_signin", None)
        if isinstance(exception, InteractionRequiredError):
            pending = ctx.pending if isinstance(ctx, RequestContext) else None
            answer = pending or exception.redirect_response
            return http_response(answer.status, answer.headers, answer.body)
        if isinstance(exception, SessionStoreUnavailableError):
            page = store_unavailable_page()
            return http_response(page.status, page.headers, page.body)
        return None
