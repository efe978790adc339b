"""What the benchmarks share: one signing key on disk, token pools minted in parallel, RSS.

The key is written once to a temporary directory so that a server process started by a benchmark
can publish the same JWKS that signed the client's tokens.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from tests.support.tokens import SigningKey, TokenFactory  # noqa: E402

KID = "bench-key-1"


def save_key(key: SigningKey, directory: Path) -> Path:
    """Write ``key`` as PEM (mode 0600) for a server process to load with :func:`load_key`."""
    path = directory / "signing-key.pem"
    pem = key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def load_key(path: Path, kid: str = KID) -> SigningKey:
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return SigningKey(kid=kid, private=private)  # type: ignore[arg-type]


def _mint_chunk(args: tuple[bytes, str, str, int]) -> list[str]:
    pem, kid, issuer, count = args
    private = serialization.load_pem_private_key(pem, password=None)
    factory = TokenFactory(issuer, key=SigningKey(kid=kid, private=private))  # type: ignore[arg-type]
    return [factory.mint() for _ in range(count)]


def mint_pool(factory: TokenFactory, count: int, workers: int | None = None) -> list[str]:
    """``count`` distinct valid tokens (new ``uti`` each), signed on every core."""
    workers = workers or os.cpu_count() or 1
    if count < 200 or workers == 1:
        return [factory.mint() for _ in range(count)]
    pem = factory.key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    chunks = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(
            _mint_chunk, [(pem, factory.key.kid, factory.issuer, n) for n in chunks if n]
        )
        return [token for part in parts for token in part]


def rss_bytes() -> int:
    """This process's resident set size, from /proc (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def print_table(title: str, rows: Sequence[tuple[str, str, str]]) -> None:
    """Three columns: what, measured value, ratio or verdict."""
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print(title)
    for row in rows:
        print(f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}")


class Deadline:
    """A wall-clock bound for a loop: ``while not deadline.passed: ...``."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.end
