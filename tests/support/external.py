"""External parts a test may need (Redis, Chromium): skip outside CI, fail in CI."""

from __future__ import annotations

import os
import socket

import pytest

REDIS_HOW = "start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''"
CHROMIUM_HOW = "install it with: apt-get install -y chromium"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> None:
    """Skip the test with ``reason``, or fail it when running in CI, where nothing may be missing."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def redis_available(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> None:
    if not redis_available():
        missing(f"no Redis at 127.0.0.1:6379; {REDIS_HOW}")


def require_chromium(path: str = "/usr/bin/chromium") -> str:
    if not os.access(path, os.X_OK):
        missing(f"no Chromium at {path}; {CHROMIUM_HOW}")
    return path
