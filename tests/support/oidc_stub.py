"""A loopback HTTP server publishing discovery and JWKS for a TokenFactory, with fault switches.

Used where a test needs the validator to cross real HTTP without the full emulator.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.tokens import TokenFactory


class OIDCStub:
    """Serves ``/<tenant>/v2.0/.well-known/openid-configuration`` and ``/<tenant>/discovery/v2.0/keys``.

    ``hits`` counts requests per path; ``fault`` (None, "500", "garbage", "slow") changes the JWKS
    answer; ``jwks`` may be replaced at any time to rotate keys.
    """

    def __init__(self, factory: TokenFactory) -> None:
        self.factory = factory
        self.hits: Counter[str] = Counter()
        self.fault: str | None = None
        self.slow_seconds = 5.0
        self.jwks: dict[str, Any] = factory.jwks()
        self.extra_routes: dict[str, Callable[[], tuple[int, bytes]]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}/{factory.tenant_id}"
        self.authority = self.base
        self.metadata_url = f"{self.base}/v2.0/.well-known/openid-configuration"
        self.jwks_uri = f"{self.base}/discovery/v2.0/keys"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                stub.hits[path] = stub.hits[path] + 1
                status, body = stub._answer(path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _answer(self, path: str) -> tuple[int, bytes]:
        if path in self.extra_routes:
            return self.extra_routes[path]()
        if path == f"/{self.factory.tenant_id}/v2.0/.well-known/openid-configuration":
            return 200, json.dumps(self.factory.discovery(self.base, self.jwks_uri)).encode()
        if path == f"/{self.factory.tenant_id}/discovery/v2.0/keys":
            if self.fault == "500":
                return 500, b'{"error":"server_error"}'
            if self.fault == "garbage":
                return 200, b"<html>not json</html>"
            if self.fault == "slow":
                time.sleep(self.slow_seconds)
            return 200, json.dumps(self.jwks).encode()
        return 404, b'{"error":"not_found"}'

    def start(self) -> OIDCStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def running_stub(factory: TokenFactory) -> Iterator[OIDCStub]:
    """Start an OIDCStub whose issuer is its own loopback URL, and stop it afterwards."""
    stub = OIDCStub(factory)
    factory.issuer = f"{stub.base}/v2.0"
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()
