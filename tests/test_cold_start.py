"""What importing the library loads: an API that only validates tokens pays for the validator only.

A serverless API pays its imports on every cold start, so ``from entra_ciam import
AccessTokenValidator``, the bearer middlewares and the decorators must load neither MSAL,
requests, httpx, SQLite, the session stores, the sign-in package, the emulator nor any web
framework. Each import runs in a fresh interpreter: this one has loaded everything already.
(How long the import takes is measured against PyJWT by ``bench/cold_start.py``, not asserted.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import entra_ciam
import entra_ciam.asgi
import entra_ciam.wsgi
from tests.support.oidc_stub import OIDCStub
from tests.support.tokens import API_CLIENT_ID, TokenFactory

ROOT = Path(__file__).resolve().parents[1]

VALIDATOR_SIDE = """
from entra_ciam import (
    AccessTokenValidator, AuthError, Claims, ConfigError, EntraConfig, InsufficientScopeError,
    InvalidRequestError, InvalidTokenError, MetadataUnavailableError, MissingTokenError,
    current_claims, require_role, require_scope, require_scope_or_app_permission,
)
from entra_ciam.asgi import BearerTokenMiddleware
from entra_ciam.wsgi import BearerTokenMiddleware as WSGIBearerTokenMiddleware
"""

# Modules only the web-app side, the emulator or one integration may load: never an API that
# only validates. asyncio, too, loads with the event loop that needs it, not with the import.
NOT_ON_THE_VALIDATOR_SIDE = (
    "msal",
    "requests",
    "urllib3",
    "httpx",
    "sqlite3",
    "asyncio",
    "jwt",
    "redis",
    "flask",
    "werkzeug",
    "starlette",
    "fastapi",
    "django",
    "quart",
    "opentelemetry",
    "entra_ciam.signin",
    "entra_ciam.sessions",
    "entra_ciam.acquirer",
    "entra_ciam.devidp",
    "entra_ciam.demo",
)


def loaded_by(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def offenders(modules: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        if any(name == bad or name.startswith(bad + ".") for bad in NOT_ON_THE_VALIDATOR_SIDE)
    )


def test_the_validator_side_loads_none_of_the_web_app_side() -> None:
    modules = loaded_by(VALIDATOR_SIDE)
    assert "entra_ciam.validator" in modules and "entra_ciam.decorators" in modules
    assert offenders(modules) == []


def test_validating_a_token_loads_httpx_but_still_not_the_web_app_side(
    served: tuple[TokenFactory, OIDCStub],
) -> None:
    factory, stub = served
    code = VALIDATOR_SIDE + (
        "import os\n"
        "validator = AccessTokenValidator(os.environ['T_AUTHORITY'], os.environ['T_AUDIENCE'])\n"
        "claims = validator.validate(os.environ['T_TOKEN'])\n"
        "assert claims.oid, claims\n"
    )
    env = {"T_AUTHORITY": stub.authority, "T_AUDIENCE": API_CLIENT_ID, "T_TOKEN": factory.mint()}
    modules = loaded_by(code, env)
    assert "httpx" in modules  # discovery and keys were fetched: httpx loads on first use
    still_absent = [m for m in offenders(modules) if m.split(".")[0] not in {"httpx", "asyncio"}]
    assert still_absent == []


def test_importing_the_package_alone_loads_only_the_package() -> None:
    ours = {m for m in loaded_by("import entra_ciam") if m.startswith("entra_ciam")}
    assert ours == {"entra_ciam", "entra_ciam._lazy"}


def test_the_web_app_side_is_there_when_asked_for() -> None:
    modules = loaded_by("from entra_ciam import TokenAcquirer, current_user, login_required")
    assert {"msal", "entra_ciam.signin", "entra_ciam.acquirer"} <= modules


@pytest.mark.parametrize("package", [entra_ciam, entra_ciam.asgi, entra_ciam.wsgi])
def test_every_public_name_is_a_lazy_export_and_resolves(package: object) -> None:
    public = set(package.__all__)  # type: ignore[attr-defined]
    assert set(package._EXPORTS) == public  # type: ignore[attr-defined]
    for name in sorted(public):
        value = getattr(package, name)
        assert getattr(value, "__name__", name) == name
    assert public <= set(dir(package))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'AccessTokenValidatr'"):
        entra_ciam.AccessTokenValidatr  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError):
        from entra_ciam import AccessTokenValidatr  # type: ignore[attr-defined]  # noqa: F401


def test_the_version_has_one_source() -> None:
    """pyproject.toml reads the version from entra_ciam.__version__ (hatch's version source)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/entra_ciam/__init__.py"
    from importlib.metadata import version

    assert version("entra-ciam") == entra_ciam.__version__
