"""External parts a test may need (Redis, Chromium): skip outside CI, fail in CI."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from entra_ciam.devidp.tls import TlsFiles

REDIS_HOW = "start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''"
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")
CHROMIUM_HOW = "install it with: apt-get install -y chromium"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> None:
    """Skip the test with ``reason``, or fail it when running in CI, where nothing may be missing."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def redis_available(
    host: str = "127.0.0.1", port: int = 6379, *, tls_ca: Path | None = None
) -> bool:
    """Whether Redis answers a PING there (over TLS, verified against ``tls_ca``, when given)."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as raw:
            sock = raw
            if tls_ca is not None:
                context = ssl.create_default_context(cafile=str(tls_ca))
                sock = context.wrap_socket(raw, server_hostname=host)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> None:
    if not redis_available():
        missing(f"no Redis at 127.0.0.1:6379; {REDIS_HOW}")


class RedisChild:
    """A redis-server of the test's own on a free loopback port, which the test may kill and start
    again on the same port. Nothing is persisted (``--save ''``, no AOF): it comes back empty.

    ``start()`` skips the test (fails it in CI) when there is no ``redis-server`` on PATH.
    With ``tls`` (the emulator's loopback CA and a certificate for 127.0.0.1) the server speaks
    only TLS, as a managed Redis does (Azure Cache for Redis: port 6380, ``rediss://``); clients
    are not asked for certificates.
    """

    def __init__(self, tls: TlsFiles | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls is None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca_cert}"

    def _listen(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        ca, cert, key = str(self.tls.ca_cert), str(self.tls.cert), str(self.tls.key)
        return [
            *("--port", "0", "--tls-port", str(self.port)),
            *("--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca),
            *("--tls-auth-clients", "no"),
        ]

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing(
                f"no redis-server on PATH; install it (apt-get install redis-server); {REDIS_HOW}"
            )
        assert binary is not None
        self.proc = subprocess.Popen(
            [binary, *self._listen(), "--bind", "127.0.0.1", *NO_PERSISTENCE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        ca = None if self.tls is None else self.tls.ca_cert
        while not redis_available(port=self.port, tls_ca=ca):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGKILL, as a crash would: clients see their connections drop at once."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def __enter__(self) -> RedisChild:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def require_chromium(path: str = "/usr/bin/chromium") -> str:
    if not os.access(path, os.X_OK):
        missing(f"no Chromium at {path}; {CHROMIUM_HOW}")
    return path
