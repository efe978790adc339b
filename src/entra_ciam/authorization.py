"""What a token must grant to reach an endpoint (sans-IO: claims in, claims or an AuthError out).

Names are checked once, when the decorator is built, so a typo such as an empty list fails at
import time instead of silently allowing every token (the mistake the upstream sample makes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from entra_ciam.errors import InsufficientScopeError, MissingTokenError

if TYPE_CHECKING:
    from entra_ciam.claims import Claims

__all__ = ["Names", "Requirement", "normalize_names"]

# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_NAME = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

Names = str | Iterable[str]


def normalize_names(names: Iterable[Names], *, what: str) -> tuple[str, ...]:
    """Flatten ``("a b", ["c"])`` into ``("a", "b", "c")``; refuse an empty or invalid list."""
    out: dict[str, None] = {}
    for item in names:
        if isinstance(item, str):
            parts = item.split()
        elif callable(item):
            raise TypeError(
                f"a {what} decorator needs its names: write @require_{what}('Name'), "
                "with parentheses and at least one name"
            )
        elif isinstance(item, bytes | bytearray) or not isinstance(item, Iterable):
            raise TypeError(f"{what} names must be strings, got {type(item).__name__}")
        else:
            parts = []
            for sub in item:
                if not isinstance(sub, str):
                    raise TypeError(f"{what} names must be strings, got {type(sub).__name__}")
                parts.extend(sub.split())
        for part in parts:
            if not _NAME.fullmatch(part):
                raise ValueError(f"{what} name {part!r} contains characters a name cannot contain")
            out[part] = None
    if not out:
        raise ValueError(
            f"at least one {what} is required: an empty list would let every token through"
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Requirement:
    """Any-of rule over three kinds of grant.

    ``scopes`` are delegated permissions (``scp``) and only count for user tokens;
    ``app_permissions`` are application permissions (``roles``) and only count for app-only
    tokens; ``roles`` are app roles, which users and apps may both hold.
    """

    scopes: tuple[str, ...] = ()
    app_permissions: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.scopes or self.app_permissions or self.roles):
            raise ValueError("a requirement needs at least one scope, app permission or role")

    @property
    def accepted(self) -> tuple[str, ...]:
        return (*self.scopes, *self.app_permissions, *self.roles)

    def check(self, claims: Claims | None) -> Claims:
        """Return ``claims`` if they satisfy the rule; raise MissingTokenError or
        InsufficientScopeError (naming the values that would have been accepted) otherwise."""
        if claims is None:
            raise MissingTokenError()
        app_only = claims.is_app_only
        relevant: list[str] = []
        if self.roles:
            relevant.extend(self.roles)
            if claims.roles.intersection(self.roles):
                return claims
        if self.scopes and not app_only:
            relevant.extend(self.scopes)
            if claims.scopes.intersection(self.scopes):
                return claims
        if self.app_permissions and app_only:
            relevant.extend(self.app_permissions)
            if claims.roles.intersection(self.app_permissions):
                return claims
        raise InsufficientScopeError(
            self._reason(app_only, relevant), accepted=relevant or self.accepted
        )

    def _reason(self, app_only: bool, relevant: list[str]) -> str:
        if not relevant:
            if app_only:
                return "An app-only token cannot satisfy a delegated scope; accepted: " + " ".join(
                    self.scopes
                )
            return "A user token cannot satisfy an application permission; accepted: " + " ".join(
                self.app_permissions
            )
        kind = "roles" if not (self.scopes or self.app_permissions) else "permissions"
        return f"The token grants none of the {kind} this endpoint accepts: " + " ".join(relevant)
