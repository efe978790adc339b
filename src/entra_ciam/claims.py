"""The claims of a validated access token, read-only so one instance can serve many requests."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["Claims", "freeze"]


def freeze(value: Any) -> Any:
    """A deep read-only copy of a JSON value: lists become tuples, objects MappingProxyTypes."""
    kind = type(value)
    if kind is list:
        return tuple([freeze(v) for v in value])
    if kind is dict:
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    return value


_CONTAINERS = (list, dict)


def _str_or_none(value: Any) -> str | None:
    return value if type(value) is str else None


class Claims(Mapping[str, Any]):
    """An immutable mapping over a token payload, with the Entra claims an API needs as properties.

    ``scopes`` comes from the space-separated ``scp`` (delegated tokens), ``roles`` from the
    ``roles`` list (app roles; app-only tokens). JSON arrays read back as tuples.
    """

    __slots__ = ("_data", "roles", "scopes")

    _data: dict[str, Any]
    scopes: frozenset[str]
    roles: frozenset[str]

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self._adopt({k: freeze(v) for k, v in payload.items()})

    @classmethod
    def _from_payload(cls, payload: dict[str, Any]) -> Claims:
        """Wrap a freshly decoded payload nobody else holds, without copying it.

        Nested lists and objects stay as decoded and are frozen when read (``__getitem__``), so
        validating a token does not pay for a deep copy.
        """
        claims: Claims = object.__new__(cls)
        claims._adopt(payload)
        return claims

    def _adopt(self, data: dict[str, Any]) -> None:
        scp = data.get("scp")
        scopes = frozenset(scp.split()) if type(scp) is str else frozenset()
        roles = data.get("roles")
        if type(roles) is tuple or type(roles) is list:
            roles = frozenset(r for r in roles if type(r) is str)
        elif type(roles) is str:  # some issuers send a single role as a string
            roles = frozenset(roles.split())
        else:
            roles = frozenset()
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "roles", roles)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Claims are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Claims are read-only")

    # -- Mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return value if type(value) not in _CONTAINERS else freeze(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key, default)
        return value if type(value) not in _CONTAINERS else freeze(value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.to_dict() == {k: _thaw(v) for k, v in other.items()}
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a mapping: equal to dicts, so not hashable

    def __repr__(self) -> str:
        who = self.oid or self.sub
        return f"Claims(oid={who!r}, scopes={sorted(self.scopes)}, roles={sorted(self.roles)})"

    # -- Entra claims ----------------------------------------------------------------------

    @property
    def oid(self) -> str | None:
        """The object id: the stable key of a user (or app) across applications."""
        return _str_or_none(self._data.get("oid"))

    @property
    def tid(self) -> str | None:
        return _str_or_none(self._data.get("tid"))

    @property
    def sub(self) -> str | None:
        """Pairwise subject: stable for one user and one application only."""
        return _str_or_none(self._data.get("sub"))

    @property
    def name(self) -> str | None:
        return _str_or_none(self._data.get("name"))

    @property
    def preferred_username(self) -> str | None:
        return _str_or_none(self._data.get("preferred_username"))

    @property
    def is_app_only(self) -> bool:
        """True for a client-credentials token (an app calling with its own identity).

        ``idtyp`` (an optional claim) alone decides when present: ``"app"`` or not. Without it,
        an app-only token has ``roles``, no ``scp``, and ``oid == sub`` (both name the calling
        app's service principal; in a user token ``sub`` is pairwise and differs from ``oid``).
        Roles alone are not enough: a user assigned app roles gets a token with ``roles`` and
        possibly no ``scp``, and must not be taken for an app that may act on every user's data.
        """
        data = self._data
        if "idtyp" in data:
            return bool(data["idtyp"] == "app")
        if "scp" in data or not self.roles:
            return False
        oid = self.oid
        return oid is not None and oid == self.sub

    @property
    def expires_at(self) -> _dt.datetime | None:
        """``exp`` as an aware UTC datetime, or None if absent."""
        return _timestamp(self._data.get("exp"))

    @property
    def issued_at(self) -> _dt.datetime | None:
        return _timestamp(self._data.get("iat"))

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable JSON-ready copy (tuples back to lists)."""
        return {k: _thaw(v) for k, v in self._data.items()}


def _timestamp(value: Any) -> _dt.datetime | None:
    if type(value) not in (int, float):
        return None
    try:
        return _dt.datetime.fromtimestamp(value, _dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _thaw(value: Any) -> Any:
    if type(value) is tuple or type(value) is list:
        return [_thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    return value
