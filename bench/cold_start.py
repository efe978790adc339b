"""Cold start, side by side in one run: what a fresh process pays before it validates a token.

A serverless API (Azure Functions) pays this on every cold start. Two measures, each taken in a
fresh interpreter per sample, the contenders interleaved round by round, medians reported:

1. **Import**: ``from entra_ciam import AccessTokenValidator``, the decorators and both bearer
   middlewares, against PyJWT's ``import jwt`` and fastapi-azure-auth's import. Also shown:
   importing our web-app side too, what every API paid before the exports were lazy.
2. **First validated request**: import, build the validator, then validate one real user token
   of the local emulator, which means fetching its discovery document and keys over HTTPS;
   against fastapi-azure-auth doing the same (its scheme called on a request, as FastAPI would).
   Both trust the emulator's CA through ``SSL_CERT_FILE`` and run on asyncio.

Every contender runs as installed from a wheel, with its bytecode compiled: a discarded first
round writes ours (``PYTHONDONTWRITEBYTECODE`` is dropped for these processes), as pip's install
step does for every wheel.

Usage: ``python bench/cold_start.py [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.idp_tokens import user_token  # noqa: E402

from entra_ciam.devidp import defaults  # noqa: E402
from entra_ciam.devidp.testing import running_devidp  # noqa: E402

VALIDATOR_SIDE = (
    "from entra_ciam import AccessTokenValidator, current_claims, require_role, require_scope, "
    "require_scope_or_app_permission\n"
    "from entra_ciam.asgi import BearerTokenMiddleware\n"
    "from entra_ciam.wsgi import BearerTokenMiddleware as WSGIBearerTokenMiddleware\n"
)
IMPORTS = {
    "entra-ciam (validator, decorators, middlewares)": VALIDATOR_SIDE,
    "PyJWT (import jwt)": "import jwt\n",
    "fastapi-azure-auth": "from fastapi_azure_auth import B2CMultiTenantAuthorizationCodeBearer\n",
    "entra-ciam, web-app side too (sign-in, MSAL)": VALIDATOR_SIDE
    + "from entra_ciam import TokenAcquirer, login_required\n"
    + "from entra_ciam.asgi import SignInMiddleware\n",
}

_TIMED_IMPORT = """
import sys, time
started = time.perf_counter()
{code}
elapsed = time.perf_counter() - started
print(elapsed, len(sys.modules))
"""

# Each prints: import seconds, construction seconds, first validation seconds.
_FIRST_REQUEST = {
    "entra-ciam": """
import time
t0 = time.perf_counter()
import asyncio, os
from entra_ciam import AccessTokenValidator
t1 = time.perf_counter()
validator = AccessTokenValidator(os.environ["B_AUTHORITY"], os.environ["B_AUDIENCE"])
t2 = time.perf_counter()
claims = asyncio.run(validator.validate_async(os.environ["B_TOKEN"]))
t3 = time.perf_counter()
assert claims.oid
print(t1 - t0, t2 - t1, t3 - t2)
""",
    "fastapi-azure-auth": """
import time
t0 = time.perf_counter()
import asyncio, os
from fastapi.security import SecurityScopes
from fastapi_azure_auth import B2CMultiTenantAuthorizationCodeBearer
from starlette.requests import Request
t1 = time.perf_counter()
authority = os.environ["B_AUTHORITY"]

async def issuer_of(tid):
    return os.environ["B_ISSUER"]

scheme = B2CMultiTenantAuthorizationCodeBearer(
    app_client_id=os.environ["B_AUDIENCE"],
    openid_config_url=f"{authority}/v2.0/.well-known/openid-configuration",
    openapi_authorization_url=f"{authority}/oauth2/v2.0/authorize",
    openapi_token_url=f"{authority}/oauth2/v2.0/token",
    iss_callable=issuer_of,
    leeway=60,
)
t2 = time.perf_counter()
request = Request({
    "type": "http", "method": "GET", "path": "/api/todolist", "query_string": b"",
    "headers": [(b"authorization", b"Bearer " + os.environ["B_TOKEN"].encode())],
})
user = asyncio.run(scheme(request, SecurityScopes(scopes=[])))
t3 = time.perf_counter()
assert user.claims["oid"]
print(t1 - t0, t2 - t1, t3 - t2)
""",
}


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def _python(code: str, env: dict[str, str] | None = None) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env=env or _environment(),
    )
    if done.returncode != 0:
        raise SystemExit(f"a cold-start sample failed:\n{done.stderr}")
    return [float(x) for x in done.stdout.split()]


def measure_imports(rounds: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[list[float]]] = {name: [] for name in IMPORTS}
    for round_ in range(rounds + 1):
        for name, code in IMPORTS.items():
            sample = _python(_TIMED_IMPORT.format(code=code))
            if round_:  # the first round compiles bytecode and warms the file cache
                samples[name].append(sample)
    return {
        name: {
            "ms": statistics.median(s[0] for s in values) * 1000,
            "modules": statistics.median(s[1] for s in values),
        }
        for name, values in samples.items()
    }


def measure_first_request(rounds: int) -> dict[str, dict[str, float]]:
    with running_devidp() as idp:
        token = user_token(idp, *defaults.USERS[0][:2])
        env = _environment(
            SSL_CERT_FILE=idp.ca_bundle,
            B_AUTHORITY=idp.authority,
            B_AUDIENCE=defaults.TODO_API_CLIENT_ID,
            B_ISSUER=idp.issuer,
            B_TOKEN=token,
        )
        samples: dict[str, list[list[float]]] = {name: [] for name in _FIRST_REQUEST}
        for round_ in range(rounds + 1):
            for name, code in _FIRST_REQUEST.items():
                sample = _python(code, env)
                if round_:
                    samples[name].append(sample)
    return {
        name: {
            "import_ms": statistics.median(s[0] for s in values) * 1000,
            "construct_ms": statistics.median(s[1] for s in values) * 1000,
            "first_validation_ms": statistics.median(s[2] for s in values) * 1000,
            "total_ms": statistics.median(sum(s) for s in values) * 1000,
        }
        for name, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="samples of each (default 15)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    imports = measure_imports(args.rounds)
    first = measure_first_request(args.rounds)
    ours_import = imports["entra-ciam (validator, decorators, middlewares)"]["ms"]
    ratios = {
        "import vs PyJWT": imports["PyJWT (import jwt)"]["ms"] / ours_import,
        "import vs fastapi-azure-auth": imports["fastapi-azure-auth"]["ms"] / ours_import,
        "first request vs fastapi-azure-auth": first["fastapi-azure-auth"]["total_ms"]
        / first["entra-ciam"]["total_ms"],
    }
    result: dict[str, Any] = {
        "rounds": args.rounds,
        "imports": imports,
        "first_request": first,
        "ratios": ratios,  # theirs / ours: above 1 means we are faster
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"Cold start, median of {args.rounds} fresh processes each\n")
    print(f"{'import':<50} {'ms':>8} {'modules':>8}")
    for name, figures in imports.items():
        print(f"{name:<50} {figures['ms']:>8.1f} {figures['modules']:>8.0f}")
    print(
        f"\n{'first validated request':<22} {'import':>8} {'build':>8} {'validate':>9} {'total':>8}"
    )
    for name, figures in first.items():
        print(
            f"{name:<22} {figures['import_ms']:>8.1f} {figures['construct_ms']:>8.1f} "
            f"{figures['first_validation_ms']:>9.1f} {figures['total_ms']:>8.1f}"
        )
    print()
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x (theirs / ours)")


if __name__ == "__main__":
    main()
