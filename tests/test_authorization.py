"""The sans-IO parts: name lists, the any-of rules, bearer header parsing, public paths, context."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entra_ciam import (
    InsufficientScopeError,
    MissingTokenError,
    current_claims,
    require_role,
    require_scope,
    require_scope_or_app_permission,
)
from entra_ciam.authorization import Requirement, normalize_names
from entra_ciam.bearer import BearerPolicy, error_response, extract_token
from entra_ciam.claims import Claims
from entra_ciam.context import claims_context, get_claims
from entra_ciam.errors import AuthError, InvalidRequestError, InvalidTokenError
from tests.support.rejections import challenge


def user(scp: str = "Todolist.Read", **extra: Any) -> Claims:
    return Claims({"oid": "user-1", "scp": scp, "ver": "2.0", **extra})


def app(*roles: str) -> Claims:
    return Claims({"oid": "app-1", "roles": list(roles), "idtyp": "app", "ver": "2.0"})


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_names", "expected"),
    [
        (("Todolist.Read",), ("Todolist.Read",)),
        (("Todolist.Read Todolist.ReadWrite",), ("Todolist.Read", "Todolist.ReadWrite")),
        (("Todolist.Read", "Todolist.ReadWrite"), ("Todolist.Read", "Todolist.ReadWrite")),
        ((["Todolist.Read", "Todolist.ReadWrite"],), ("Todolist.Read", "Todolist.ReadWrite")),
        (("a  b", ("c",), "a"), ("a", "b", "c")),
    ],
)
def test_names_accept_strings_lists_and_space_separated(
    given_names: tuple[Any, ...], expected: tuple[str, ...]
) -> None:
    assert normalize_names(given_names, what="scope") == expected


@pytest.mark.parametrize(
    "build",
    [
        lambda: require_scope(),
        lambda: require_scope([]),
        lambda: require_scope(""),
        lambda: require_scope("   "),
        lambda: require_scope([], ""),
        lambda: require_role(),
        lambda: require_role(()),
        lambda: require_scope_or_app_permission(),
        lambda: require_scope_or_app_permission(scopes=[]),
        lambda: require_scope_or_app_permission(scopes="Todolist.Read", app_permissions=[]),
        lambda: require_scope('Todo"list'),
        lambda: require_scope("Todolist\\Read"),
        lambda: Requirement(),
    ],
)
def test_an_empty_or_invalid_list_is_an_error_at_decoration_time(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        (b"Todolist.Read", "bytes"),
        (bytearray(b"x"), "bytearray"),
        (42, "int"),
        (None, "NoneType"),
        ([b"x"], "bytes"),
        ([1], "int"),
    ],
)
def test_names_must_be_strings(bad: Any, kind: str) -> None:
    with pytest.raises(TypeError, match=f"scope names must be strings, got {kind}$"):
        require_scope(bad)


def test_bare_decorator_without_parentheses_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="parentheses"):

        @require_scope  # type: ignore[arg-type]
        def view() -> str:
            return "never"


def test_guard_repr_names_its_values() -> None:
    assert repr(require_scope("a b")) == "require_scope('a b')"


# -- rules ----------------------------------------------------------------------------------------


def test_scope_any_of_passes_a_user_holding_one() -> None:
    rule = Requirement(scopes=("Todolist.Read", "Todolist.ReadWrite"))
    claims = user("openid Todolist.ReadWrite")
    assert rule.check(claims) is claims


def test_scope_refusal_is_403_naming_the_accepted_scopes() -> None:
    rule = Requirement(scopes=("Todolist.Read", "Todolist.ReadWrite"))
    with pytest.raises(InsufficientScopeError) as info:
        rule.check(user("User.Read"))
    err = info.value
    assert err.status_code == 403
    assert err.accepted == ("Todolist.Read", "Todolist.ReadWrite")
    params = challenge(err.www_authenticate)
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "Todolist.Read Todolist.ReadWrite"


def test_app_only_token_never_passes_a_scope_check() -> None:
    # Even when its roles carry the very name of the scope.
    rule = Requirement(scopes=("Todolist.Read",))
    with pytest.raises(InsufficientScopeError, match="app-only"):
        rule.check(app("Todolist.Read", "Todolist.Read.All"))


def test_user_token_never_passes_an_app_permission_check() -> None:
    rule = Requirement(app_permissions=("Todolist.Read.All",))
    with pytest.raises(InsufficientScopeError, match="user token"):
        rule.check(user("Todolist.Read", roles=["Todolist.Read.All"]))


@pytest.mark.parametrize(
    "payload",
    [
        {"idtyp": "user"},  # Entra's optional claim says so
        {"sub": "pairwise-sub"},  # no idtyp: a user's sub is pairwise, unlike its oid
        {"idtyp": "user", "sub": "user-1"},  # idtyp alone decides, even when oid == sub
        {"idtyp": "user", "scp": "Todolist.Read"},
    ],
)
def test_delegated_roles_never_satisfy_an_app_permission(payload: dict[str, Any]) -> None:
    """Issue 16, point 7: a user assigned the application permission as an app role gets it in
    ``roles``; Microsoft.Identity.Web would accept that token on the app side, we do not."""
    claims = Claims({"oid": "user-1", "roles": ["Todolist.ReadWrite.All"], **payload})
    assert not claims.is_app_only
    for guard in (
        require_scope_or_app_permission(app_permissions="Todolist.ReadWrite.All"),
        require_scope_or_app_permission(
            scopes="Todolist.ReadWrite", app_permissions="Todolist.ReadWrite.All"
        ),
    ):
        with pytest.raises(InsufficientScopeError) as info:
            guard.check(claims)
        assert info.value.status_code == 403
    # The same name through require_role is an app role, which users may hold: that passes.
    assert require_role("Todolist.ReadWrite.All").check(claims) is claims


def test_scope_or_app_permission_with_scopes_alone() -> None:
    """Issue 16, point 8: an endpoint for users only; an app-only token never passes it."""
    guard = require_scope_or_app_permission(scopes="Todolist.Read")
    assert guard.requirement == Requirement(scopes=("Todolist.Read",))
    assert guard.check(user("Todolist.Read")).oid == "user-1"
    with pytest.raises(InsufficientScopeError) as info:
        guard.check(app("Todolist.Read", "Todolist.Read.All"))
    assert info.value.accepted == ("Todolist.Read",)
    assert "An app-only token cannot satisfy a delegated scope" in info.value.description
    apps_only = require_scope_or_app_permission(app_permissions="Todolist.Read.All")
    assert apps_only.requirement == Requirement(app_permissions=("Todolist.Read.All",))
    with pytest.raises(ValueError, match="scopes=, app_permissions= or both"):
        require_scope_or_app_permission()


def test_refusals_name_what_kind_of_grant_was_missing() -> None:
    with pytest.raises(InsufficientScopeError) as role:
        require_role("Admin").check(user("x", roles=["Reader"]))
    assert (
        role.value.description == "The token grants none of the roles this endpoint accepts: Admin"
    )
    with pytest.raises(InsufficientScopeError) as scope:
        require_scope("Todolist.ReadWrite").check(user("Todolist.Read"))
    assert scope.value.description == (
        "The token grants none of the permissions this endpoint accepts: Todolist.ReadWrite"
    )
    with pytest.raises(InsufficientScopeError) as permission:
        Requirement(app_permissions=("A.All",), roles=("R",)).check(app("B.All"))
    assert permission.value.description.startswith("The token grants none of the permissions")


def test_a_requirement_cannot_be_changed_after_it_is_built() -> None:
    guard = require_scope("Todolist.Read")
    with pytest.raises(AttributeError):
        guard.requirement.scopes = ()  # type: ignore[misc]
    with pytest.raises(ValueError, match="at least one"):
        Requirement()


def test_scope_or_app_permission_picks_the_list_for_the_token_kind() -> None:
    guard = require_scope_or_app_permission(
        scopes="Todolist.Read Todolist.ReadWrite",
        app_permissions=["Todolist.Read.All", "Todolist.ReadWrite.All"],
    )
    assert guard.check(user("Todolist.Read")).oid == "user-1"
    assert guard.check(app("Todolist.ReadWrite.All")).oid == "app-1"
    with pytest.raises(InsufficientScopeError) as as_user:
        guard.check(user("Other", roles=["Todolist.Read.All"]))
    assert as_user.value.accepted == ("Todolist.Read", "Todolist.ReadWrite")
    with pytest.raises(InsufficientScopeError) as as_app:
        guard.check(app("Todolist.Read"))  # an app holding a delegated scope's name
    assert as_app.value.accepted == ("Todolist.Read.All", "Todolist.ReadWrite.All")


def test_role_accepts_users_and_apps_holding_it() -> None:
    guard = require_role("Admin", "Auditor")
    assert guard.check(user("x", roles=["Auditor"])).oid == "user-1"
    assert guard.check(app("Admin")).oid == "app-1"
    with pytest.raises(InsufficientScopeError) as info:
        guard.check(user("Admin"))  # a scope named like the role is not the role
    assert info.value.accepted == ("Admin", "Auditor")


def test_no_claims_is_401_without_error_code() -> None:
    with pytest.raises(MissingTokenError) as info:
        require_scope("Todolist.Read").check()
    err = info.value
    assert err.status_code == 401
    assert err.error is None
    assert challenge(err.www_authenticate) == {"realm": "entra-ciam"}


# -- context --------------------------------------------------------------------------------------


def test_current_claims_fails_closed_outside_a_request() -> None:
    with pytest.raises(MissingTokenError):
        current_claims()


def test_claims_context_sets_and_restores() -> None:
    outer, inner = user(), app("Admin")
    with claims_context(outer):
        assert current_claims() is outer
        with claims_context(inner):
            assert current_claims() is inner
            assert require_role("Admin").check() is inner
        assert current_claims() is outer
    assert get_claims() is None


async def test_claims_do_not_cross_between_concurrent_tasks() -> None:
    seen: dict[str, str | None] = {}

    async def request(name: str, claims: Claims) -> None:
        with claims_context(claims):
            await asyncio.sleep(0.01)
            seen[name] = current_claims().oid

    await asyncio.gather(request("a", user()), request("b", app("Admin")))
    assert seen == {"a": "user-1", "b": "app-1"}
    assert get_claims() is None


# -- bearer header --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER  abc.def.ghi "]
)
def test_bearer_scheme_is_case_insensitive(header: str) -> None:
    assert extract_token([header]) == "abc.def.ghi"


@pytest.mark.parametrize(
    ("headers", "query", "error_type", "code"),
    [
        ([], "", MissingTokenError, None),
        (["Basic YWRhOnNlY3JldA=="], "", MissingTokenError, None),
        (["Bearer"], "", InvalidRequestError, "invalid_request"),
        (["Bearer   "], "", InvalidRequestError, "invalid_request"),
        (["Bearer a.b.c d.e.f"], "", InvalidRequestError, "invalid_request"),
        (["Bearer a.b.c,Bearer d.e.f"], "", InvalidRequestError, "invalid_request"),
        (["Bearer a.b.c", "Bearer a.b.c"], "", InvalidRequestError, "invalid_request"),
        (["Bearer a.b.c"], "x=1&access_token=a.b.c", InvalidRequestError, "invalid_request"),
        ([], b"access_token=", InvalidRequestError, "invalid_request"),
        (['Bearer a.b"c'], "", InvalidTokenError, "invalid_token"),
        (["Bearer " + "a" * 70000], "", InvalidTokenError, "invalid_token"),
    ],
)
def test_bearer_header_refusals(
    headers: list[str], query: str | bytes, error_type: type[AuthError], code: str | None
) -> None:
    with pytest.raises(error_type) as info:
        extract_token(headers, query)
    assert info.value.status_code == 401
    assert info.value.error == code


def test_other_query_parameters_are_fine() -> None:
    assert extract_token(["Bearer a.b.c"], "access_token_hint=1&page=2") == "a.b.c"


@given(st.lists(st.text(max_size=60), max_size=3), st.text(max_size=60))
def test_header_parsing_raises_only_auth_errors(headers: list[str], query: str) -> None:
    try:
        token = extract_token(headers, query)
    except AuthError as err:
        assert err.status_code == 401
    else:
        assert token and " " not in token


def test_error_response_carries_length_and_challenge() -> None:
    status, headers, body = error_response(InvalidRequestError("no"))
    names = dict(headers)
    assert status == 401
    assert names["Content-Length"] == str(len(body))
    assert challenge(names["WWW-Authenticate"])["error"] == "invalid_request"


# -- public paths ---------------------------------------------------------------------------------


def test_public_paths_exact_and_whole_segment_prefixes() -> None:
    policy = BearerPolicy.build(["/health", "/"], ["/static/", "/docs"])
    assert policy.is_public("GET", "/health", False)
    assert policy.is_public("GET", "/", False)
    assert not policy.is_public("GET", "/health/", False)
    assert not policy.is_public("GET", "/healthz", False)
    assert policy.is_public("GET", "/static/app.js", False)
    assert policy.is_public("GET", "/docs", False)
    assert policy.is_public("GET", "/docs/a/b", False)
    assert not policy.is_public("GET", "/docsecret", False)
    assert not policy.is_public("GET", "/api/todos", False)


@pytest.mark.parametrize("path", ["/static/../api/todos", "/static/./x", "/static//x", "static/x"])
def test_dot_segments_never_match_a_public_prefix(path: str) -> None:
    assert not BearerPolicy.build(public_prefixes=["/static"]).is_public("GET", path, False)


def test_public_path_configuration_errors() -> None:
    with pytest.raises(ValueError, match="every path"):
        BearerPolicy.build(public_prefixes=["/"])
    with pytest.raises(ValueError, match="start with"):
        BearerPolicy.build(["health"])
    with pytest.raises(TypeError):
        BearerPolicy.build("/health")


def test_preflight_pass_through_is_configurable() -> None:
    assert BearerPolicy.build().is_public("OPTIONS", "/api", True)
    assert not BearerPolicy.build().is_public("OPTIONS", "/api", False)
    assert not BearerPolicy.build().is_public("GET", "/api", True)
    assert not BearerPolicy.build(allow_preflight=False).is_public("OPTIONS", "/api", True)


def test_token_for_skips_public_requests_only() -> None:
    policy = BearerPolicy.build(["/health"])
    common: dict[str, Any] = {"method": "GET", "query_string": "", "preflight": False}
    assert policy.token_for(path="/health", authorization=[], **common) is None
    assert policy.token_for(path="/api", authorization=["Bearer t"], **common) == "t"
    with pytest.raises(MissingTokenError):
        policy.token_for(path="/api", authorization=[], **common)
