"""Serve the tenant on loopback: https for the back channel, plain http for the pages.

Standard library only (``http.server`` + ``ssl``): one thread per connection, TLS handshakes in
those threads rather than in the accept loop, request bodies capped, and request logs that show
method, path and status but never a query string, a body or a header value.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from entra_ciam.config import EntraConfig
from entra_ciam.devidp.backchannel import BackChannel
from entra_ciam.devidp.frontchannel import FrontChannel
from entra_ciam.devidp.keys import Rotation
from entra_ciam.devidp.messages import Request, Response, json_response
from entra_ciam.devidp.provider import Clock, Endpoints, Provider
from entra_ciam.devidp.registrations import AppRegistration, Registrations
from entra_ciam.devidp.state import StateDir
from entra_ciam.devidp.tls import TlsFiles, ensure_tls, server_ssl_context
from entra_ciam.urls import is_loopback_host

__all__ = ["DevIdp", "DevIdpError", "read_server_info"]

log = logging.getLogger("entra_ciam.devidp")

MAX_BODY = 64 * 1024
SERVER_INFO = "server.json"

App = Callable[[Request], Response]


class DevIdpError(RuntimeError):
    """The emulator cannot start; the message says what to change."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "entra-ciam-dev-idp"
    sys_version = ""
    timeout = 30
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        response = self._response()
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _response(self) -> Response:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return _plain_error(411, "send a Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return _plain_error(413, f"request bodies are limited to {MAX_BODY} bytes")
        body = self.rfile.read(length) if length else b""
        request = Request.build(self.command, self.path, dict(self.headers.items()), body)
        try:
            return self.server.app(request)
        except Exception as exc:  # a bug: answer 500 without details, log the type only
            log.error("%s %s failed: %s", self.command, request.path, type(exc).__name__)
            log.debug("handler failure", exc_info=True)
            return _plain_error(500, "the emulator hit an internal error; see its console")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        log.info("%s %s %s %s", self.server.label, self.command, path, code)

    def log_error(self, format: str, *args: Any) -> None:
        # The standard messages quote the raw request line, which may carry a token.
        log.debug("%s: malformed request or connection error", self.server.label)


def _plain_error(status: int, message: str) -> Response:
    return json_response({"error": "invalid_request", "error_description": message}, status)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self, address: tuple[str, int], app: App, label: str, context: ssl.SSLContext | None
    ) -> None:
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self.label = label
        self._context = context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        # Headers and body leave in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._context is not None:
            # The handshake happens on first read, in the connection's own thread.
            sock = self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._open_lock:
            self._open.add(sock)
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s connection error from %s", self.label, client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def _bind_host(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    return host.strip("[]")


def _url_host(host: str) -> str:
    host = host.strip("[]")
    return f"[{host}]" if ":" in host else host


class DevIdp:
    """The emulator. ``start()`` binds both ports (0 picks free ones); ``stop()`` releases them.

    Also a context manager. The authority is ``https://<host>:<port>/<tenant-id>``; the issuer is
    Entra's ``https://<tenant-id>.ciamlogin.com/<tenant-id>/v2.0`` (or ``<authority>/v2.0`` with
    ``[tenant] issuer = "loopback"``). Pass ``authority`` (or ``oidc_authority`` to MSAL) with
    ``ca_bundle``.
    """

    def __init__(
        self,
        registrations: Registrations | None = None,
        *,
        state_dir: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 8443,
        pages_port: int = 8080,
        test_mode: bool = False,
        announce: Callable[[str], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not is_loopback_host(host):
            raise DevIdpError(
                f"--host {host!r} is not a loopback address; the emulator prints its secrets and "
                "must only listen on 127.0.0.1, ::1 or localhost"
            )
        self.registrations = registrations or Registrations.default()
        self.state = StateDir(state_dir)
        self.host = host
        self._ports = (port, pages_port)
        self.test_mode = test_mode
        self._announce = announce or _stderr
        # Every console announcement (passcodes, rotations), newest last: tests read it.
        self.console: collections.deque[str] = collections.deque(maxlen=1000)
        self.clock = clock or Clock()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._provider: Provider | None = None
        self.tls: TlsFiles | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> DevIdp:
        if self._servers:
            raise DevIdpError("already started")
        self.tls = ensure_tls(self.state)
        context = server_ssl_context(self.tls)
        bind = _bind_host(self.host)
        https_port, pages_port = self._ports
        try:
            backend = _Server((bind, https_port), _unready, "https", context)
        except OSError as exc:
            raise DevIdpError(_bind_problem(bind, https_port, "--port", exc)) from exc
        try:
            pages = _Server((bind, pages_port), _unready, "pages", None)
        except OSError as exc:
            backend.server_close()
            raise DevIdpError(_bind_problem(bind, pages_port, "--pages-port", exc)) from exc
        host = _url_host(self.host)
        endpoints = Endpoints(
            https_base=f"https://{host}:{backend.port}",
            pages_base=f"http://{host}:{pages.port}",
            tenant_id=self.registrations.tenant.id,
            issuer_form=self.registrations.tenant.issuer,
        )
        self._provider = Provider(
            self.registrations,
            endpoints,
            state=self.state,
            clock=self.clock,
            test_mode=self.test_mode,
            announce=self._say,
        )
        pages.app = front = FrontChannel(self._provider)
        backend.app = BackChannel(self._provider, self.state.admin_token(), front)
        self._servers = [backend, pages]
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"dev-idp-{server.label}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        self._write_info()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
        for server in self._servers:
            server.close_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        self.state.remove(SERVER_INFO)

    def __enter__(self) -> DevIdp:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what clients need ------------------------------------------------------------------

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            raise DevIdpError("the emulator is not started")
        return self._provider

    @property
    def endpoints(self) -> Endpoints:
        return self.provider.endpoints

    @property
    def authority(self) -> str:
        """For ``EntraConfig(authority=...)`` and ``AccessTokenValidator(authority=...)``."""
        return self.endpoints.authority

    @property
    def issuer(self) -> str:
        return self.endpoints.issuer

    @property
    def oidc_authority(self) -> str:
        """For ``msal.ConfidentialClientApplication(oidc_authority=...)``: ``<authority>/v2.0``.

        Not the issuer: with the real issuer form, MSAL fetches discovery from here and accepts
        the ``*.ciamlogin.com`` issuer it names, as it does for a real tenant.
        """
        return self.endpoints.oidc_authority

    @property
    def metadata_url(self) -> str:
        return self.endpoints.metadata_url

    @property
    def pages_url(self) -> str:
        return self.endpoints.pages_base

    @property
    def ca_bundle(self) -> str:
        """The local CA certificate: what ``verify=`` and ``EntraConfig(ca_bundle=...)`` take."""
        if self.tls is None:
            raise DevIdpError("the emulator is not started")
        return str(self.tls.ca_cert)

    def rotate_keys(self, grace_period: int | None = None) -> Rotation:
        """Publish a new signing key; the old one stays published for ``grace_period`` seconds."""
        return self.provider.keys.rotate(grace_period)

    def app(self, name: str) -> AppRegistration:
        """A registration by name: ``web-app``, ``todo-api``, ``daemon`` in the default tenant."""
        return self.registrations.app_named(name)

    def last_otp(self, email: str | None = None) -> str | None:
        """The last sign-up passcode sent (to ``email``): what the person would read in the mail."""
        return self.provider.store.latest_otp(email)

    def entra_config(self, app: str = "web-app", **overrides: Any) -> EntraConfig:
        """An ``EntraConfig`` for one of the registrations, trusting the emulator's CA."""
        registration = self.app(app)
        api = next((a for a in self.registrations.apps if a.name == "todo-api"), None)
        settings: dict[str, Any] = {
            "authority": self.authority,
            "client_id": registration.client_id,
            "client_secret": registration.client_secret,
            "api_client_id": api.client_id if api else None,
            "ca_bundle": self.ca_bundle,
        }
        if registration.redirect_uris:
            settings["redirect_uri"] = registration.redirect_uris[0]
        if registration.post_logout_redirect_uris:
            settings["post_logout_redirect_uri"] = registration.post_logout_redirect_uris[0]
        settings.update(overrides)
        return EntraConfig(**settings)

    def _say(self, line: str) -> None:
        self.console.append(line)
        self._announce(line)

    def _write_info(self) -> None:
        e = self.endpoints
        info = {
            "pid": os.getpid(),
            "authority": e.authority,
            "issuer": e.issuer,
            "https_base": e.https_base,
            "pages_base": e.pages_base,
            "ca_bundle": self.ca_bundle,
        }
        self.state.write_bytes(SERVER_INFO, json.dumps(info, indent=2).encode())


def read_server_info(state: StateDir) -> dict[str, Any] | None:
    """What a running emulator wrote about itself, or None."""
    raw = state.read_bytes(SERVER_INFO)
    if raw is None:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _unready(request: Request) -> Response:
    return _plain_error(503, "starting")


def _bind_problem(host: str, port: int, option: str, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"cannot listen on {host}:{port} ({reason}); pass {option} with a free port, or 0"
