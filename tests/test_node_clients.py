"""Microsoft's @azure/msal-node against the emulator and the todo API, over real HTTP (issue 12.7).

Starts the emulator and ``python -m examples.starlette_api``, then runs ``node --test`` on
tests/node/ (msal-node 7 and 2, from the lockfile) with the emulator's CA in
``NODE_EXTRA_CA_CERTS``. The tokens msal-node obtained come back in a file and must pass
``AccessTokenValidator``. Without node or the npm packages the test skips with how to get them
(``cd tests/node && npm ci``); with CI=true it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from entra_ciam import AccessTokenValidator
from entra_ciam.devidp import defaults
from entra_ciam.devidp.testing import running_devidp
from tests.support.external import missing
from tests.support.todo_api import ROOT, start_api_process, stop_process

NODE_DIR = ROOT / "tests" / "node"
NPM_HOW = "install them with: cd tests/node && npm ci (needs Node.js 20+ and the npm registry)"
# Microsoft's Node sample sends its POST_LOGOUT_REDIRECT_URI default, http://localhost:3000, with
# no path; the web app lists http://localhost:3000/. Entra takes them as one URI, answered at "/".
POST_LOGOUT = "http://localhost:3000"
POST_LOGOUT_LANDS_AT = "http://localhost:3000/"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        missing(f"no node on PATH; {NPM_HOW}")
    assert node is not None
    if not (NODE_DIR / "node_modules" / "@azure" / "msal-node").is_dir():
        missing(f"the npm packages of tests/node are not installed; {NPM_HOW}")
    return node


def test_msal_node_signs_in_calls_the_api_and_signs_out(tmp_path: Path) -> None:
    node = _node()
    with running_devidp() as idp:
        api_env = {
            "ENTRA_AUTHORITY": idp.authority,
            "ENTRA_API_CLIENT_ID": defaults.TODO_API_CLIENT_ID,
            "ENTRA_CA_BUNDLE": idp.ca_bundle,
        }
        proc, api_base = start_api_process(api_env, tmp_path / "todo.sqlite3")
        try:
            tokens_file = tmp_path / "tokens.json"
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": str(tmp_path),
                "NODE_EXTRA_CA_CERTS": idp.ca_bundle,
                "DEVIDP_HTTPS_BASE": idp.endpoints.https_base,
                "DEVIDP_TENANT_ID": defaults.TENANT_ID,
                "DEVIDP_TENANT_SUBDOMAIN": defaults.TENANT_SUBDOMAIN,
                "WEB_CLIENT_ID": defaults.WEB_APP_CLIENT_ID,
                "WEB_CLIENT_SECRET": defaults.WEB_APP_CLIENT_SECRET,
                "API_CLIENT_ID": defaults.TODO_API_CLIENT_ID,
                "API_CLIENT_SECRET": defaults.TODO_API_CLIENT_SECRET,
                "API_URI": defaults.TODO_API_IDENTIFIER_URI,
                "DAEMON_CLIENT_ID": defaults.DAEMON_CLIENT_ID,
                "DAEMON_CLIENT_SECRET": defaults.DAEMON_CLIENT_SECRET,
                "REDIRECT_URI": defaults.WEB_APP_REDIRECT_URIS[0],
                "POST_LOGOUT_REDIRECT_URI": POST_LOGOUT,
                "POST_LOGOUT_LANDS_AT": POST_LOGOUT_LANDS_AT,
                "USER_EMAIL": defaults.USERS[0][0],
                "USER_PASSWORD": defaults.USERS[0][1],
                "TODO_API_BASE_URL": api_base,
                "TOKENS_OUT": str(tokens_file),
            }
            run = subprocess.run(
                [node, "--test", "--test-reporter=spec", "msal_node.test.mjs"],
                cwd=NODE_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
            print(run.stdout)
            tokens = json.loads(tokens_file.read_text())
        finally:
            stop_process(proc)

        validator = AccessTokenValidator(
            authority=idp.authority, audience=defaults.TODO_API_CLIENT_ID, verify=idp.ca_bundle
        )
        assert set(tokens) == {"msal-node 7", "msal-node 7, domain authority", "msal-node 2"}
        for line, got in tokens.items():
            user = validator.validate(got["user"])
            assert user.scopes == {"Todolist.Read"} and not user.is_app_only, line
            assert validator.validate(got["refreshed"]).oid == user.oid
            daemon = validator.validate(got["daemon"])
            assert daemon.is_app_only and "Todolist.ReadWrite.All" in daemon.roles
            graph = AccessTokenValidator(
                authority=idp.authority, audience=defaults.GRAPH_CLIENT_ID, verify=idp.ca_bundle
            ).validate(got["obo"])
            assert graph.oid == user.oid and graph["azp"] == defaults.TODO_API_CLIENT_ID
