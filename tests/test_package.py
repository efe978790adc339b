"""What ``pip install entra-ciam`` gives a user, checked on the built package (issue 14).

The sdist is built from the clone and the wheel from the sdist (``python -m build``), so a file
the sdist forgets breaks the wheel here, not on a user's machine. Then: ``twine check``, the
wheel's file list and metadata, and two fresh virtual environments in a temporary folder, far
from the clone, with dependencies from the package registry:

- ``entra-ciam[starlette]``: the README's API example, saved as ``app.py`` and started with
  ``uvicorn app:app`` exactly as the README says, answers real tokens from the emulator; without
  the ``emulator`` extra, ``entra-ciam dev-idp`` says which extra to install.
- ``entra-ciam[emulator]``: ``entra-ciam demo`` runs the apps the wheel carries; a person signs
  in over HTTP and lists their todos.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.parser
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import entra_ciam
from entra_ciam.devidp import DevIdp, defaults
from entra_ciam.devidp.testing import running_devidp
from tests.support.demo_run import run_demo_and_use_it
from tests.support.docblocks import ROOT, read_blocks
from tests.support.idp_tokens import app_token, user_token
from tests.support.rejections import challenge
from tests.support.todo_api import free_port

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])
ADA = defaults.USERS[0]

package = pytest.mark.package


@dataclasses.dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: hatchling comes from the dev environment, so the build needs no network.
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    (sdist,) = out.glob("entra_ciam-*.tar.gz")
    (wheel,) = out.glob("entra_ciam-*.whl")
    return Built(sdist, wheel)


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@dataclasses.dataclass(frozen=True)
class Venv:
    """A fresh virtual environment in a temporary folder, with the wheel installed in it."""

    path: Path
    home: Path  # the working directory for its commands: empty, far from the clone

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)

    def env(self, **extra: str) -> dict[str, str]:
        """Our environment less anything that would make the clone or our venv visible."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
            and not k.startswith(("ENTRA_", "TODO_"))
        }
        env["PATH"] = f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``program`` of this environment, run in its empty home folder; not checked."""
        return subprocess.run(
            [self.bin(program), *args],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def python(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("python", "-c", code, *args)


def make_venv(where: Path, requirement: str) -> Venv:
    where.mkdir(parents=True)
    run([sys.executable, "-m", "venv", str(where / "venv")])
    venv = Venv(where / "venv", where)
    run(
        [venv.bin("python"), "-m", "pip", "install", "--quiet", requirement],
        cwd=where,
        env=venv.env(),
    )
    return venv


@pytest.fixture(scope="module")
def api_venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("api") / "user", f"{built.wheel}[starlette]")


@pytest.fixture(scope="module")
def emulator_venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("emulator") / "user", f"{built.wheel}[emulator]")


# -- the built files -------------------------------------------------------------------------


@package
def test_twine_accepts_both_files(built: Built) -> None:
    result = run(
        [sys.executable, "-m", "twine", "check", "--strict", str(built.sdist), str(built.wheel)]
    )
    assert result.stdout.count("PASSED") == 2, result.stdout


@package
def test_the_wheel_holds_the_library_and_the_demo_apps_and_nothing_else(built: Built) -> None:
    names = zipfile.ZipFile(built.wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    dist_info = f"entra_ciam-{entra_ciam.__version__}.dist-info"
    assert tops == {"entra_ciam", dist_info}, tops  # no tests/, bench/, examples/ at the top
    assert "entra_ciam/py.typed" in names
    assert f"{dist_info}/licenses/LICENSE" in names
    assert f"{dist_info}/entry_points.txt" in names
    assert not [n for n in names if re.search(r"(^|/)(tests|bench)/|__pycache__|\.pyc$", n)]
    apps = "entra_ciam/_examples/examples/"
    for needed in (
        "flask_todo/__main__.py",
        "flask_todo/templates/todos.html",
        "flask_todo/static/style.css",
        "starlette_api/__main__.py",
        "starlette_api/app.py",
    ):
        assert apps + needed in names, needed
    assert not [n for n in names if n.startswith(apps + "daemon/")]  # the demo does not run it


@package
def test_the_wheel_metadata(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        raw = wheel.read(f"entra_ciam-{entra_ciam.__version__}.dist-info/METADATA").decode()
    meta = email.parser.Parser().parsestr(raw)
    assert meta["Version"] == entra_ciam.__version__
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    urls = dict(value.split(", ", 1) for value in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    assert set(meta.get_all("Provides-Extra") or []) == EXTRAS
    requires = meta.get_all("Requires-Dist") or []
    core = sorted(
        re.split(r"[<>=!\[;\s]", r, maxsplit=1)[0].lower() for r in requires if ";" not in r
    )
    assert core == ["cachetools", "cryptography", "httpx", "msal"]  # PyJWT: the emulator's alone

    def in_extra(requirement: str, extra: str) -> bool:
        pattern = rf"^{requirement}\b.*;\s*extra == ['\"]{extra}['\"]"
        return any(re.match(pattern, r, re.IGNORECASE) for r in requires)

    assert in_extra("pyjwt", "emulator")
    for app in ("flask", "starlette", "uvicorn"):  # what `entra-ciam demo` runs
        assert in_extra(app, "emulator"), app
    assert in_extra("uvicorn", "starlette") and in_extra("uvicorn", "fastapi")


@package
def test_the_sdist_carries_what_the_wheel_is_built_from(built: Built) -> None:
    with tarfile.open(built.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for needed in (
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "pyproject.toml",
        "src/entra_ciam/py.typed",
    ):
        assert needed in names, needed
    assert "examples/flask_todo/templates/todos.html" in names
    assert not [n for n in names if n.startswith((".ci/", ".venv/", "tests/artifacts/"))]


# -- the README's API, from the wheel ------------------------------------------------------------


def readme_api_block() -> str:
    (block,) = [b for b in read_blocks(ROOT / "README.md") if b.options.get("check") == "asgi-api"]
    return block.code


def test_the_readme_installs_the_extra_its_api_example_runs_with() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'pip install "entra-ciam[starlette]"' in readme
    assert "from starlette" in readme_api_block() and "uvicorn app:app" in readme


def test_every_install_command_in_the_docs_names_real_extras() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    seen = 0
    for page in pages:
        for extras in re.findall(r"pip install [\"']?entra-ciam\[([\w,\s-]+)\]", page.read_text()):
            names = {name.strip() for name in extras.split(",")}
            assert names <= EXTRAS, f"{page.name}: no such extra {sorted(names - EXTRAS)}"
            seen += 1
    assert seen >= 4


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdp]:
    with running_devidp() as running:
        yield running


@contextlib.contextmanager
def uvicorn_app(venv: Venv, idp: DevIdp) -> Iterator[str]:
    """The README's API block saved as app.py, its placeholders filled in with the emulator's
    tenant, and started with ``uvicorn app:app`` in the fresh environment; yield its URL.

    The README's code does not pass ``verify``: the emulator's CA is trusted the way a user
    trusts a private CA for every Python HTTPS client, with ``SSL_CERT_FILE``.
    """
    code = readme_api_block()
    code = code.replace("https://contoso.ciamlogin.com/<tenant-id>", idp.authority)
    code = code.replace("<api-client-id>", defaults.TODO_API_CLIENT_ID)
    assert "<" not in code.replace("<=", ""), code  # every placeholder was filled in
    (venv.home / "app.py").write_text(code, encoding="utf-8")
    port = free_port()
    log = (venv.home / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [venv.bin("uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=venv.home,
        env=venv.env(SSL_CERT_FILE=idp.ca_bundle),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.TransportError:
                said = (venv.home / "uvicorn.log").read_text(errors="replace")
                assert proc.poll() is None, f"uvicorn app:app exited:\n{said}"
                assert time.monotonic() < deadline, f"uvicorn app:app did not start:\n{said}"
                time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@package
def test_the_readme_api_runs_from_the_wheel_with_real_tokens(api_venv: Venv, idp: DevIdp) -> None:
    ada = user_token(idp, ADA[0], ADA[1], scope="Todolist.Read")
    with uvicorn_app(api_venv, idp) as base, httpx.Client(base_url=base, timeout=20) as client:

        def call(token: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return client.get("/api/todolist", headers=headers)

        anonymous = call(None)
        assert anonymous.status_code == 401
        assert "error" not in challenge(anonymous.headers.get("www-authenticate"))

        allowed = call(ada)
        assert allowed.status_code == 200, allowed.text
        assert allowed.json() == {"owner": claims_of(ada)["oid"], "items": []}

        app_only = call(app_token(idp))  # roles, no scp: a scope is never an app permission
        assert app_only.status_code == 403
        refused = challenge(app_only.headers.get("www-authenticate"))
        assert refused["error"] == "insufficient_scope"
        assert refused["scope"] == "Todolist.Read Todolist.ReadWrite"

        head, payload, signature = ada.split(".")
        tampered = call(f"{head}.{payload}.{signature[:-4]}AAAA")
        assert tampered.status_code == 401
        assert challenge(tampered.headers.get("www-authenticate"))["error"] == "invalid_token"


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@package
def test_the_core_imports_no_web_app_side_and_the_emulator_names_its_extra(
    api_venv: Venv,
) -> None:
    cold = api_venv.python(
        "import sys\n"
        "from entra_ciam import AccessTokenValidator, require_scope\n"
        "from entra_ciam.asgi import BearerTokenMiddleware\n"
        "print(sorted(m for m in ('msal', 'httpx', 'sqlite3', 'jwt') if m in sys.modules))"
    )
    assert cold.returncode == 0 and cold.stdout.strip() == "[]", cold.stderr
    version = api_venv.run("entra-ciam", "--version")
    assert version.stdout.strip() == f"entra-ciam {entra_ciam.__version__}", version
    # The demo's web app needs Flask, which only the emulator extra brings.
    demo = api_venv.run("entra-ciam", "demo")
    assert demo.returncode == 1, (demo.stdout, demo.stderr)
    assert "needs flask, werkzeug, which entra-ciam installs with its" in demo.stderr
    assert 'pip install "entra-ciam[emulator]"' in demo.stderr and "Traceback" not in demo.stderr
    # MSAL happens to bring PyJWT; the emulator does not count on it. As if it were absent:
    without_pyjwt = (
        "import sys; sys.modules['jwt'] = None\n"  # `import jwt` now raises ImportError
        "from entra_ciam.cli import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    for command in (["dev-idp"], ["dev-idp", "--port", "0"], ["demo"], ["--help"]):
        result = api_venv.python(without_pyjwt, *command)
        if command == ["--help"]:
            assert result.returncode == 0
            assert (
                "dev-idp" in result.stdout
                and '(needs: pip install "entra-ciam[emulator]")' in result.stdout
            )
            continue
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "needs PyJWT" in result.stderr and "Traceback" not in result.stderr
        assert 'pip install "entra-ciam[emulator]"' in result.stderr, result.stderr


@package
@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("entra_ciam.flask", "flask"),
        ("entra_ciam.werkzeug", "flask"),
        ("entra_ciam.quart", "quart"),
        ("entra_ciam.fastapi", "fastapi"),
        ("entra_ciam.opentelemetry", "opentelemetry"),
    ],
)
def test_an_integration_without_its_extra_names_the_extra(
    api_venv: Venv, module: str, extra: str
) -> None:
    # The environment holds the core and the starlette extra: none of these frameworks.
    result = api_venv.python(
        f"from entra_ciam._extras import MissingExtraError\n"
        f"try:\n    import {module}\n"
        f"except MissingExtraError as exc:\n    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert f'pip install "entra-ciam[{extra}]"' in result.stdout, result.stdout
    assert result.stdout.startswith(module), result.stdout


# -- the demo, from the wheel -------------------------------------------------------------------


@package
def test_the_demo_runs_from_the_installed_wheel(emulator_venv: Venv) -> None:
    where = emulator_venv.python(
        "from entra_ciam.demo import examples_root; print(examples_root())"
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(emulator_venv.path)  # not the clone's
    run_demo_and_use_it([emulator_venv.bin("entra-ciam")], emulator_venv.home)
