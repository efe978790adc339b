"""The emulator's state folder: signing keys, the local CA, signed-up users, the admin token.

Everything that must survive a restart lives here, written atomically and readable by its owner
only, because it holds private keys.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

__all__ = ["StateDir", "StateError", "default_state_dir"]

_ENV = "ENTRA_DEVIDP_STATE_DIR"


class StateError(RuntimeError):
    """A file in the state folder cannot be read or written; the message says which and how."""


def default_state_dir() -> Path:
    """``$ENTRA_DEVIDP_STATE_DIR``, else ``$XDG_STATE_HOME/entra-ciam/dev-idp`` (~/.local/state)."""
    explicit = os.environ.get(_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "entra-ciam" / "dev-idp"


class StateDir:
    """A folder created with mode 0700 whose files are replaced atomically with mode 0600."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().resolve()
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(
                f"cannot create the state folder {self.path}: {exc.strerror or exc}; "
                "pass --state-dir with a writable folder"
            ) from exc

    def file(self, name: str) -> Path:
        return self.path / name

    def read_bytes(self, name: str) -> bytes | None:
        try:
            return self.file(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self.file(name)}: {exc.strerror or exc}") from exc

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.file(name)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.path)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StateError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return target

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file(name).unlink()

    def admin_token(self) -> str:
        """The bearer token the admin routes require, created on first use."""
        existing = self.read_bytes("admin-token")
        if existing and existing.strip():
            return existing.decode("ascii", errors="replace").strip()
        token = secrets.token_urlsafe(32)
        self.write_bytes("admin-token", token.encode("ascii"))
        return token
