"""The public names and the one exception root, pinned: changing either is a decision.

Like httpx's pinned ``__all__``: a name that appears or disappears here is visible to every user.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import entra_ciam
from entra_ciam import EntraCiamError
from tests.support.django_inprocess import configure_django

PUBLIC = [
    "AccessTokenValidator",
    "AuthError",
    "Claims",
    "ConfigError",
    "EntraCiamError",
    "EntraConfig",
    "InsufficientScopeError",
    "InteractionRequiredError",
    "InvalidRequestError",
    "InvalidTokenError",
    "MetadataUnavailableError",
    "MissingTokenError",
    "TokenAcquirer",
    "TokenAcquisitionError",
    "current_claims",
    "current_user",
    "is_loopback_url",
    "login_required",
    "require_role",
    "require_scope",
    "require_scope_or_app_permission",
    "require_secure_url",
]

# Modules that need an optional framework; imported here too (the dev extra has them all).
SKIP = ("entra_ciam.devidp", "entra_ciam.__main__")


def test_all_is_pinned() -> None:
    assert entra_ciam.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(entra_ciam, name) is not None


def _library_modules() -> list[str]:
    configure_django()
    names = []
    for info in pkgutil.walk_packages(entra_ciam.__path__, "entra_ciam."):
        if not info.name.startswith(SKIP):
            names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", _library_modules())
def test_every_exception_derives_from_the_root(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name, value in vars(module).items():
        if (
            inspect.isclass(value)
            and issubclass(value, BaseException)
            and value.__module__ == module_name
            and not name.startswith("_")
        ):
            assert issubclass(value, EntraCiamError), f"{module_name}.{name}"


def test_the_hierarchy_drawn_in_the_docstring_is_the_real_one() -> None:
    doc = inspect.getdoc(EntraCiamError) or ""
    drawn = {line.split("── ")[1].split()[0] for line in doc.splitlines() if "── " in line}
    found: dict[str, type] = {}
    for module_name in _library_modules():
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, EntraCiamError):
                found.setdefault(name, value)
    framework_answers = {
        name for name, cls in found.items() if cls.__module__.startswith(_INTEGRATIONS)
    }
    assert drawn == set(found) - framework_answers - {"EntraCiamError"}
    for name in drawn:
        assert issubclass(found[name], EntraCiamError)
    assert issubclass(found["MissingTokenError"], found["AuthError"])
    assert issubclass(found["ConfigError"], ValueError)


_INTEGRATIONS = (
    "entra_ciam.werkzeug",
    "entra_ciam.starlette",
    "entra_ciam.django",
    "entra_ciam.flask",
    "entra_ciam.quart",
)
