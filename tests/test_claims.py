"""The claims of a validated token (entra_ciam.claims): a read-only mapping with Entra's properties.

Who counts as an app (issue 16, point 2) is decided here; the validator refuses the malformed
claim types before a Claims is built (tests/test_validator.py).
"""

from __future__ import annotations

import datetime as dt
import json
from types import MappingProxyType
from typing import Any

import pytest

from entra_ciam.claims import Claims, freeze


def test_claims_mapping_behaviour() -> None:
    payload = {"scp": "a b", "roles": ["r"], "oid": "o", "nested": {"x": [1]}, "exp": 1700000000}
    claims = Claims(payload)
    assert claims == payload
    assert dict(claims)["nested"]["x"] == (1,)
    assert claims.to_dict() == payload
    assert json.loads(json.dumps(claims.to_dict())) == payload
    assert "scp" in claims
    assert len(claims) == 5
    assert claims.get("missing", 1) == 1
    assert claims.scopes == {"a", "b"}
    assert not claims.is_app_only  # scp present
    assert claims.expires_at is not None
    assert claims.expires_at.year == 2023
    payload["scp"] = "changed"
    assert claims["scp"] == "a b"  # a copy, not a view
    with pytest.raises(TypeError):
        hash(claims)
    assert "o" in repr(claims)


@pytest.mark.parametrize(
    ("payload", "app_only"),
    [
        # idtyp, when present, alone decides
        ({"idtyp": "app"}, True),
        ({"idtyp": "app", "roles": ["x"], "oid": "o", "sub": "s"}, True),
        ({"idtyp": "app", "scp": "a"}, True),
        ({"idtyp": "user", "roles": ["x"], "oid": "o", "sub": "o"}, False),
        ({"idtyp": "device", "roles": ["x"], "oid": "o", "sub": "o"}, False),
        ({"idtyp": None, "roles": ["x"], "oid": "o", "sub": "o"}, False),
        ({"idtyp": "APP", "roles": ["x"], "oid": "o", "sub": "o"}, False),
        # without idtyp: roles, no scp, and oid == sub
        ({"roles": ["x"], "oid": "o", "sub": "o"}, True),
        ({"roles": ["x"], "oid": "o", "sub": "pairwise"}, False),  # a user with app roles
        ({"roles": ["x"], "oid": "o"}, False),
        ({"roles": ["x"], "sub": "o"}, False),
        ({"roles": ["x"]}, False),
        ({"roles": ["x"], "oid": 1, "sub": 1}, False),
        ({"roles": [], "oid": "o", "sub": "o"}, False),
        ({"scp": "a", "roles": ["x"], "oid": "o", "sub": "o"}, False),
        ({"scp": None, "roles": ["x"], "oid": "o", "sub": "o"}, False),
        ({}, False),
    ],
)
def test_claims_is_app_only(payload: dict[str, Any], app_only: bool) -> None:
    """Issue 16, point 2: roles without scp no longer make an app; a user token with app roles
    (``idtyp: "user"``, or a pairwise ``sub`` unlike its ``oid``) stays a user token."""
    assert Claims(payload).is_app_only is app_only


def test_claims_tolerate_odd_types() -> None:
    claims = Claims({"scp": 5, "roles": "single", "oid": 7, "exp": "soon"})
    assert claims.scopes == frozenset()
    assert claims.roles == {"single"}
    assert claims.oid is None
    assert claims.expires_at is None
    assert Claims({"exp": 10**30}).expires_at is None


# -- nothing reachable through a Claims can be changed (issue 16, point 8) ------------------------


def decoded() -> dict[str, Any]:
    """A payload as the validator hands it over: fresh lists and dicts nobody else holds."""
    return json.loads(
        '{"oid": "o", "sub": "o", "roles": ["Todolist.Read.All"], "groups": ["g1", "g2"],'
        ' "ctx": {"list": [1, {"deep": [2]}]}, "exp": 1700000000, "iat": 1600000000.5}'
    )


@pytest.mark.parametrize("build", [Claims, Claims._from_payload], ids=["copied", "adopted"])
def test_get_and_getitem_never_hand_out_a_mutable_original(build: Any) -> None:
    claims = build(decoded())
    for read in (claims.get, claims.__getitem__):
        groups = read("groups")
        assert groups == ("g1", "g2") and type(groups) is tuple
        ctx = read("ctx")
        assert isinstance(ctx, MappingProxyType)
        with pytest.raises(TypeError):
            ctx["list"] = []  # type: ignore[index]
        assert ctx["list"] == (1, MappingProxyType({"deep": (2,)}))
        assert type(ctx["list"][1]["deep"]) is tuple
    assert claims.get("missing") is None
    assert claims.get("missing", ["default"]) == ("default",)  # a default is frozen too
    assert claims.get("oid") == "o"
    assert dict(claims)["roles"] == ("Todolist.Read.All",)
    plain = claims.to_dict()
    plain["groups"].append("g3")  # to_dict is the caller's own copy
    assert claims["groups"] == ("g1", "g2")
    assert plain["ctx"] == {"list": [1, {"deep": [2]}]}


def test_attributes_cannot_be_set_or_deleted() -> None:
    claims = Claims({"scp": "a"})
    with pytest.raises(AttributeError, match="read-only"):
        claims.scopes = frozenset({"admin"})  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del claims.scopes
    assert claims.scopes == {"a"}


def test_roles_and_scopes_from_every_shape() -> None:
    assert Claims({"roles": ("a", "b")}).roles == {"a", "b"}
    assert Claims({"roles": ["a", 1, None, "b"]}).roles == {"a", "b"}
    assert Claims({"roles": "a b"}).roles == {"a", "b"}
    assert Claims({"roles": {"a": 1}}).roles == frozenset()
    assert Claims({"roles": None}).roles == frozenset()
    assert Claims({"scp": "  a   b "}).scopes == {"a", "b"}
    assert Claims({"scp": ["a"]}).scopes == frozenset()
    assert Claims._from_payload({"roles": ["x"], "scp": "y"}).roles == {"x"}


def test_identity_properties_are_strings_or_none() -> None:
    claims = Claims({"oid": "o", "tid": "t", "sub": "s", "name": "N", "preferred_username": "u"})
    assert (claims.oid, claims.tid, claims.sub) == ("o", "t", "s")
    assert (claims.name, claims.preferred_username) == ("N", "u")
    odd = Claims({"oid": 1, "tid": ["t"], "sub": None, "name": {}, "preferred_username": 2.0})
    assert (odd.oid, odd.tid, odd.sub, odd.name, odd.preferred_username) == (None,) * 5


def test_times() -> None:
    claims = Claims(decoded())
    assert claims.expires_at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert claims.issued_at == dt.datetime(2020, 9, 13, 12, 26, 40, 500000, tzinfo=dt.UTC)
    assert Claims({}).expires_at is None and Claims({}).issued_at is None
    assert Claims({"exp": True}).expires_at is None  # a bool is not a time
    assert Claims({"exp": 10**30}).expires_at is None
    assert Claims({"exp": -(10**30)}).expires_at is None
    assert Claims({"exp": 0}).expires_at == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def test_equality_and_repr() -> None:
    claims = Claims(decoded())
    assert claims == decoded()
    assert claims == Claims._from_payload(decoded())
    assert claims != {**decoded(), "oid": "other"}
    assert claims != 42 and claims != "o"
    assert (claims == 42) is False
    assert Claims.__eq__(claims, 42) is NotImplemented
    assert repr(claims) == "Claims(oid='o', scopes=[], roles=['Todolist.Read.All'])"
    assert (
        repr(Claims({"sub": "s", "scp": "b a"})) == "Claims(oid='s', scopes=['a', 'b'], roles=[])"
    )
    assert len(claims) == 7 and next(iter(claims)) == "oid" and "ctx" in claims
    assert "missing" not in claims


def test_freeze() -> None:
    frozen = freeze({"a": [1, {"b": [2]}], "c": "s"})
    assert frozen == MappingProxyType({"a": (1, MappingProxyType({"b": (2,)})), "c": "s"})
    assert freeze(5) == 5 and freeze("x") == "x" and freeze(None) is None
