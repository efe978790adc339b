"""URL rules shared by configuration, discovery and the sign-in flow."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback_host", "is_loopback_url", "require_secure_url"]


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``: the only hosts where plain http is allowed."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    try:
        return is_loopback_host(urlsplit(url).hostname)
    except ValueError:
        return False


def require_secure_url(url: str, what: str) -> str:
    """Return ``url`` if it is https (or http on a loopback host); raise ValueError otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise ValueError(f"{what} is not a valid URL: {url!r}") from exc
    if not host:
        raise ValueError(f"{what} has no host: {url!r}")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host)):
        return url
    raise ValueError(
        f"{what} must use https (plain http is accepted only on loopback hosts): {url!r}"
    )
