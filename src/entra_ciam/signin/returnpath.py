"""Where a user may be sent back after sign-in or sign-out: same-origin relative paths only.

Browsers are lenient: they strip tabs and newlines, read ``\\`` as ``/`` and treat ``//host`` as
another origin, and a value may be percent-decoded again by some layer we do not control. So a
value is checked as received and after every round of percent-decoding, and anything that could be
read as an absolute or scheme-relative URL in any of those forms is refused.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

from entra_ciam.errors import EntraCiamError

__all__ = ["UnsafeReturnPathError", "check_return_path", "is_safe_return_path"]

MAX_LENGTH = 2048
_MAX_DECODE_ROUNDS = 4
# Control characters (browsers strip tabs and newlines, so ``/\t/x`` becomes ``//x``), and the
# invisible Unicode separators and direction marks that make a path read differently than it is.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\ufeff]")
# Kept as is when re-encoding: the reserved set of RFC 3986 and existing escapes.
_SAFE_CHARS = "/?&=%:@!$'()*+,;~-._"


class UnsafeReturnPathError(EntraCiamError, ValueError):
    """The return path is not a same-origin relative path; the message says why."""


def _layers(value: str) -> list[str]:
    layers = [value]
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(layers[-1])
        if decoded == layers[-1]:
            return layers
        layers.append(decoded)
    raise UnsafeReturnPathError("the return path is encoded too many times")


def _check_layer(layer: str) -> None:
    if _FORBIDDEN.search(layer):
        raise UnsafeReturnPathError("the return path holds control characters")
    if "\\" in layer:
        raise UnsafeReturnPathError("the return path holds a backslash")
    if not layer.startswith("/"):
        raise UnsafeReturnPathError("the return path must start with '/'")
    if layer.startswith("//"):
        raise UnsafeReturnPathError("the return path names another host ('//')")
    parts = urlsplit(layer)
    if parts.scheme or parts.netloc:
        raise UnsafeReturnPathError("the return path must not name a scheme or host")


def check_return_path(value: str) -> str:
    """Return ``value`` ready for a ``Location`` header, or raise UnsafeReturnPathError.

    The fragment is dropped (browsers never send it) and non-ASCII characters are
    percent-encoded; everything else is kept as given. The length bound holds for the result
    too (an ``é`` is six characters encoded): the sign-in keeps the result in a cookie and checks
    it again when the user comes back, so a path accepted at the start must pass then, and a
    longer one would only make that cookie larger.
    """
    if not isinstance(value, str) or not value:
        raise UnsafeReturnPathError("the return path is empty")
    if len(value) > MAX_LENGTH:
        raise UnsafeReturnPathError(f"the return path is longer than {MAX_LENGTH} characters")
    for layer in _layers(value):
        _check_layer(layer)
    path = quote(value.split("#", 1)[0], safe=_SAFE_CHARS)
    if len(path) > MAX_LENGTH:
        raise UnsafeReturnPathError(
            f"the return path is longer than {MAX_LENGTH} characters once percent-encoded"
        )
    return path


def is_safe_return_path(value: str) -> bool:
    try:
        check_return_path(value)
    except UnsafeReturnPathError:
        return False
    return True
