"""The code in README.md and docs/*.md is extracted and checked, so the docs cannot silently rot.

A marker is an HTML comment on the line just before a fenced block (invisible on GitHub and on
the site):

- ``python`` blocks are compiled and their imports executed, so every name they import exists.
  ``<!-- docs-test: compile -->`` says so explicitly; ``<!-- docs-test: skip -->`` marks pseudo-code.
- ``<!-- docs-test: run -->``: a ``python`` block is executed, a ``pycon`` block runs as a doctest.
  The page's earlier runnable blocks run first (a page reads top to bottom), the placeholders of
  the docs are replaced by a loopback OpenID Connect stub (``stub_placeholders``) and ``token``
  holds a valid user token for the API.
- ``<!-- docs-test: run check=NAME -->``: executed on its own, then ``CHECKS[NAME]`` exercises what
  it built over real HTTP (serves the API and calls it; signs in to the web app on the emulator).
- ``<!-- docs-test: signature module=MOD -->``: the classes and functions shown must match the real
  ones in MOD: parameter names, kinds and literal defaults, ``async``, properties, attributes.
- ``<!-- docs-test: output of=NAME -->``: a ``console`` transcript must match what the command
  really prints (``OUTPUTS[NAME]`` runs it), ``...`` standing for any text; ports, folders and
  times the page shows stand for the ones of the run. A transcript without a ``$`` line is an
  excerpt of the output.

Also checked: every ``entra-ciam`` command in a ``bash`` block parses, every ``ENTRA_*`` variable
named exists in the code, every public name is in the API reference's table, and README's
relative links resolve.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import dataclasses
import doctest
import importlib
import inspect
import io
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from entra_ciam.cli import build_parser
from entra_ciam.devidp import defaults
from entra_ciam.devidp.testing import running_devidp
from tests.support.demo_run import free_ports, output_until
from tests.support.docblocks import ROOT, Block, read_blocks
from tests.support.idp_tokens import app_token
from tests.support.oidc_stub import OIDCStub, running_stub
from tests.support.rejections import challenge
from tests.support.todo_api import serving
from tests.support.tokens import API_CLIENT_ID, TENANT_ID, USER_OID, TokenFactory
from tests.support.webapps import ADA, Stack, signin_stack

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

BLOCKS = [block for page in PAGES for block in read_blocks(page)]
PYTHON = [b for b in BLOCKS if b.lang == "python" and b.mode in ("compile", "skip")]
RUNNABLE = [b for b in BLOCKS if b.lang in ("python", "pycon") and b.mode == "run"]
SIGNATURES = [b for b in BLOCKS if b.mode == "signature"]
SHELL = [b for b in BLOCKS if b.lang in ("bash", "sh", "console")]
TRANSCRIPTS = [b for b in BLOCKS if b.mode == "output"]


def _ids(blocks: list[Block]) -> list[str]:
    return [b.id for b in blocks]


# -- the loopback tenant the runnable blocks talk to -------------------------------------------


@dataclasses.dataclass
class StubTenant:
    factory: TokenFactory
    stub: OIDCStub

    def placeholders(self) -> dict[str, str]:
        """The docs' placeholders and what stands for them here (longest first)."""
        return {
            "https://contoso.ciamlogin.com/<tenant-id>": self.stub.authority,
            "<api-client-id>": API_CLIENT_ID,
            "<tenant-id>": TENANT_ID,
        }


@pytest.fixture(scope="module")
def tenant() -> Iterator[StubTenant]:
    factory = TokenFactory()
    with running_stub(factory) as stub:
        yield StubTenant(factory, stub)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks that read ENTRA_* variables see only what a test sets."""
    import os

    for name in list(os.environ):
        if name.startswith(("ENTRA_", "TODO_")):
            monkeypatch.delenv(name)


def substitute(code: str, placeholders: dict[str, str]) -> str:
    for placeholder, value in placeholders.items():
        code = code.replace(placeholder, value)
    return code


def execute(code: str, namespace: dict[str, Any], where: str) -> None:
    """Run a python block; top-level ``await`` is allowed, as the docs show it in async code."""
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if compiled.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(compiled, namespace))  # noqa: S307 - our own documentation
    else:
        exec(compiled, namespace)  # noqa: S102 - our own documentation


def run_doctest(block: Block, source: str, namespace: dict[str, Any]) -> tuple[int, str]:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(source, namespace, block.where, str(block.page), block.line)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    report = io.StringIO()
    runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)  # DocTest works on a copy; later blocks build on this one
    return runner.failures, report.getvalue()


def run_block(block: Block, namespace: dict[str, Any], placeholders: dict[str, str]) -> None:
    source = substitute(block.code, placeholders)
    if block.lang == "pycon":
        failures, report = run_doctest(block, source, namespace)
        assert failures == 0, f"{block.where}: the example's output changed:\n{report}"
    else:
        execute(source, namespace, block.where)


# -- python blocks: compile, imports resolve ---------------------------------------------------


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_block_compiles_and_imports(block: Block) -> None:
    if block.mode == "skip":
        pytest.skip(f"{block.where} is marked as pseudo-code")
    tree = compile(
        block.code, block.where, "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(imports, []), block.where, "exec"), namespace)  # noqa: S102
    compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


# -- runnable blocks: executed against loopback pieces -----------------------------------------


def _preceding(block: Block) -> list[Block]:
    return [
        b
        for b in RUNNABLE
        if b.page == block.page and b.line < block.line and "check" not in b.options
    ]


@pytest.mark.parametrize("block", RUNNABLE, ids=_ids(RUNNABLE))
def test_runnable_block(
    block: Block,
    tenant: StubTenant,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    check = block.options.get("check")
    if check is not None:
        assert check in CHECKS, f"{block.where}: no check named {check!r}"
        CHECKS[check](block, tenant, monkeypatch, tmp_path)
        return
    monkeypatch.setenv("ENTRA_AUTHORITY", tenant.stub.authority)
    monkeypatch.setenv("ENTRA_API_CLIENT_ID", API_CLIENT_ID)
    placeholders = tenant.placeholders()
    namespace: dict[str, Any] = {"__name__": "docs_example", "token": tenant.factory.mint()}
    for earlier in _preceding(block):
        source = substitute(earlier.code, placeholders)
        if earlier.lang == "pycon":
            run_doctest(earlier, source, namespace)  # its own test reports its failures
        else:
            execute(source, namespace, earlier.where)
    run_block(block, namespace, placeholders)
    capsys.readouterr()


def check_asgi_api(
    block: Block, tenant: StubTenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The API in the docs, served by uvicorn, answers like the page says."""
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    execute(substitute(block.code, tenant.placeholders()), namespace, block.where)
    factory = tenant.factory
    with serving(namespace["app"]) as base, httpx.Client(base_url=base, timeout=10) as client:
        anonymous = client.get("/api/todolist")
        assert anonymous.status_code == 401
        assert "error" not in challenge(anonymous.headers.get("www-authenticate"))

        def call(token: str) -> httpx.Response:
            return client.get("/api/todolist", headers={"Authorization": f"Bearer {token}"})

        allowed = call(factory.mint(scp="Todolist.ReadWrite"))
        assert allowed.status_code == 200, allowed.text
        assert allowed.json() == {"owner": USER_OID, "items": []}

        other_scope = call(factory.mint(scp="Profile.Read"))
        assert other_scope.status_code == 403
        refused = challenge(other_scope.headers.get("www-authenticate"))
        assert refused["error"] == "insufficient_scope"
        assert refused["scope"] == "Todolist.Read Todolist.ReadWrite"

        app_only = call(factory.mint(factory.app_claims(["Todolist.Read"])))
        assert app_only.status_code == 403  # a delegated scope is never an app permission

        now = int(time.time())
        expired = call(factory.mint(iat=now - 7200, nbf=now - 7200, exp=now - 3600))
        assert expired.status_code == 401
        assert challenge(expired.headers.get("www-authenticate"))["error"] == "invalid_token"


def check_webapp(
    block: Block, tenant: StubTenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The Flask web app in the docs signs Ada in on the emulator and calls the todo API."""

    def build(stack: Stack) -> Any:
        config = stack.config(session_store="memory://")
        settings = {
            "ENTRA_AUTHORITY": config.authority,
            "ENTRA_CLIENT_ID": config.client_id,
            "ENTRA_CLIENT_SECRET": config.client_secret,
            "ENTRA_REDIRECT_URI": config.redirect_uri,
            "ENTRA_POST_LOGOUT_REDIRECT_URI": config.post_logout_redirect_uri,
            "ENTRA_SESSION_SECRET": config.session_secret,
            "ENTRA_SESSION_STORE": config.session_store,
            "ENTRA_CA_BUNDLE": config.ca_bundle,
        }
        for name, value in settings.items():
            assert value is not None, name
            monkeypatch.setenv(name, value)
        placeholders = {
            "<api-client-id>": defaults.TODO_API_CLIENT_ID,
            "http://127.0.0.1:5000": stack.api.removesuffix("/api/todolist"),
        }
        namespace: dict[str, Any] = {"__name__": "docs_example"}
        execute(substitute(block.code, placeholders), namespace, block.where)
        return namespace["app"]

    with signin_stack("wsgi", tmp_path, build) as stack, stack.browser() as browser:
        first = browser.get("/")
        assert first.status_code == 302
        assert first.headers["location"] == "/auth/signin?next=%2F"
        page = browser.follow(first, user=ADA)
        assert page.status_code == 200, page.text
        assert page.text == f"Hello {ADA[2]}, you have 0 things to do"


def assert_the_table(base: str, factory: TokenFactory) -> None:
    """The answers every framework page promises for ``GET /api/todolist``."""
    with httpx.Client(base_url=base, timeout=20) as client:

        def call(token: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return client.get("/api/todolist", headers=headers)

        anonymous = call(None)
        assert anonymous.status_code == 401, anonymous.text
        assert "error" not in challenge(anonymous.headers.get("www-authenticate"))
        other_scope = call(factory.mint(scp="Profile.Read"))
        assert other_scope.status_code == 403, other_scope.text
        assert (
            challenge(other_scope.headers.get("www-authenticate"))["error"] == "insufficient_scope"
        )
        user = call(factory.mint(scp="Todolist.Read"))
        assert user.status_code == 200, user.text
        assert user.json() == {"owner": USER_OID, "app": False}
        app = call(factory.mint(factory.app_claims(["Todolist.Read.All"])))
        assert app.status_code == 200, app.text
        assert app.json()["app"] is True


def check_api_table(
    block: Block, tenant: StubTenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A framework page's API, served by a real server (werkzeug or uvicorn), answers the table."""
    from tests.support.webapps import serving_wsgi

    monkeypatch.setenv("ENTRA_AUTHORITY", tenant.stub.authority)
    monkeypatch.setenv("ENTRA_API_CLIENT_ID", API_CLIENT_ID)
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    execute(substitute(block.code, tenant.placeholders()), namespace, block.where)
    serve = serving_wsgi if block.options.get("server") == "wsgi" else serving
    with serve(namespace["app"]) as base:
        assert_the_table(base, tenant.factory)


def check_django_api(
    block: Block, tenant: StubTenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The page's ``file=`` blocks become the project ``mysite``, served by runserver (WSGI)
    and uvicorn (ASGI) in their own processes."""
    from tests.support.servers import running

    site = tmp_path / "mysite"
    site.mkdir()
    (site / "__init__.py").write_text("")
    for part in read_blocks(block.page):
        if "file" in part.options:
            code = substitute(part.code, tenant.placeholders())
            (site / part.options["file"]).write_text(code)
    (site / "asgi.py").write_text(
        "from django.core.asgi import get_asgi_application\napplication = get_asgi_application()\n"
    )
    env = {
        "ENTRA_AUTHORITY": tenant.stub.authority,
        "ENTRA_API_CLIENT_ID": API_CLIENT_ID,
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "PYTHONPATH": str(tmp_path),
    }
    for server, target in (
        ("runserver", "mysite.settings"),
        ("uvicorn", "mysite.asgi:application"),
    ):
        log = tmp_path / f"{server}.log"
        with running(server=server, target=target, env=env, log=log) as base:
            assert_the_table(base, tenant.factory)


CHECKS: dict[str, Callable[[Block, StubTenant, pytest.MonkeyPatch, Path], None]] = {
    "asgi-api": check_asgi_api,
    "webapp": check_webapp,
    "api-table": check_api_table,
    "django-api": check_django_api,
}


def test_every_check_is_used() -> None:
    used = {b.options.get("check") for b in RUNNABLE}
    assert set(CHECKS) <= used, f"checks no block uses: {sorted(set(CHECKS) - used)}"


def test_the_readme_shows_a_runnable_api_and_web_app() -> None:
    readme = {b.options.get("check") for b in RUNNABLE if b.page.name == "README.md"}
    assert {"asgi-api", "webapp"} <= readme


# -- signatures --------------------------------------------------------------------------------


def _doc_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, str, Any]]:
    """(name, kind, default) with default ``inspect.Parameter.empty``, a value, or ``...`` when
    the docs show an expression that is not a literal."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[Any] = [inspect.Parameter.empty] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    out: list[tuple[str, str, Any]] = []
    for index, arg in enumerate(positional):
        kind = "POSITIONAL_ONLY" if index < len(args.posonlyargs) else "POSITIONAL_OR_KEYWORD"
        out.append((arg.arg, kind, defaults[index]))
    if args.vararg:
        out.append((args.vararg.arg, "VAR_POSITIONAL", inspect.Parameter.empty))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out.append(
            (arg.arg, "KEYWORD_ONLY", inspect.Parameter.empty if default is None else default)
        )
    if args.kwarg:
        out.append((args.kwarg.arg, "VAR_KEYWORD", inspect.Parameter.empty))
    return [(name, kind, _literal(default)) for name, kind, default in out]


def _literal(node: Any) -> Any:
    if node is inspect.Parameter.empty:
        return node
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ...


def compare_function(
    real: Callable[..., Any], node: ast.FunctionDef | ast.AsyncFunctionDef
) -> None:
    where = f"{getattr(real, '__qualname__', real)}"
    is_async = isinstance(node, ast.AsyncFunctionDef)
    assert inspect.iscoroutinefunction(real) == is_async, f"{where}: async in the docs is wrong"
    actual = [(p.name, p.kind.name, p.default) for p in inspect.signature(real).parameters.values()]
    documented = _doc_parameters(node)
    shown = [(name, kind) for name, kind, _ in documented]
    assert shown == [(name, kind) for name, kind, _ in actual], f"{where}: parameters differ"
    for (name, _, doc_default), (_, _, real_default) in zip(documented, actual, strict=True):
        empty = inspect.Parameter.empty
        assert (doc_default is empty) == (real_default is empty), f"{where}({name}): default"
        if doc_default is not empty and doc_default is not ...:
            assert doc_default == real_default, f"{where}({name}): default {real_default!r}"


def compare_member(cls: type, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    raw = inspect.getattr_static(cls, node.name)
    decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
    where = f"{cls.__name__}.{node.name}"
    if "property" in decorators:
        assert isinstance(raw, property), f"{where} is not a property"
    elif "classmethod" in decorators:
        assert isinstance(raw, classmethod), f"{where} is not a classmethod"
        compare_function(raw.__func__, node)
    elif "staticmethod" in decorators:
        assert isinstance(raw, staticmethod), f"{where} is not a staticmethod"
        compare_function(raw.__func__, node)
    else:
        assert inspect.isfunction(raw), f"{where} is not a method"
        compare_function(raw, node)


def compare_attribute(cls: type, node: ast.AnnAssign) -> None:
    assert isinstance(node.target, ast.Name)
    name = node.target.id
    if dataclasses.is_dataclass(cls):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert name in fields, f"{cls.__name__}.{name} is not a field"
        if node.value is not None:
            assert _literal(node.value) == fields[name].default, f"{cls.__name__}.{name} default"
        return
    annotated = any(name in vars(k).get("__annotations__", {}) for k in cls.__mro__)
    assert annotated or hasattr(cls, name), f"{cls.__name__}.{name} does not exist"


@pytest.mark.parametrize("block", SIGNATURES, ids=_ids(SIGNATURES))
def test_signature_block_matches_the_code(block: Block) -> None:
    module = importlib.import_module(block.options["module"])
    for node in ast.parse(block.code).body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(module, node.name, None)
            assert inspect.isclass(cls), f"{block.where}: {module.__name__}.{node.name} missing"
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    compare_member(cls, item)
                elif isinstance(item, ast.AnnAssign):
                    compare_attribute(cls, item)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            func = getattr(module, node.name, None)
            assert callable(func), f"{block.where}: {module.__name__}.{node.name} missing"
            compare_function(func, node)
        else:
            raise AssertionError(f"{block.where}: only classes and functions belong here")


# -- console transcripts: what the commands really print ----------------------------------------


def _command_and_output(block: Block) -> tuple[str | None, str]:
    lines = block.code.splitlines()
    if lines and lines[0].startswith("$ "):
        return lines[0][2:], "\n".join(lines[1:]) + "\n"
    return None, "..." + block.code + "..."  # an excerpt


def _entra_ciam_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "TODO_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **settings}


def output_of_token_validate(command: str, tmp_path: Path) -> str:
    """The documented command line itself, run by bash with the quickstart's variables set from
    a running emulator and a daemon token (stderr after stdout, as a terminal shows them)."""
    with running_devidp() as idp:
        env = _entra_ciam_env(
            TOKEN=app_token(idp),
            ENTRA_AUTHORITY=idp.authority,
            ENTRA_CA_BUNDLE=idp.ca_bundle,
            ENTRA_API_CLIENT_ID=defaults.TODO_API_CLIENT_ID,
        )
        result = subprocess.run(
            ["bash", "-c", command + " 2>&1"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    return result.stdout


def output_of_dev_idp(command: str, tmp_path: Path) -> str:
    """``entra-ciam dev-idp`` on free ports with its own state folder; the page's ports (8443,
    8080) and folder stand for these."""
    state = tmp_path / "dev-idp"
    argv = ["entra-ciam", "dev-idp", "--port", "0", "--pages-port", "0", "--state-dir", str(state)]
    output = output_until(argv, "Press Ctrl-C to stop.", cwd=tmp_path, env=_entra_ciam_env())
    ports = re.search(r"Authority\s+https://127\.0\.0\.1:(\d+)/", output)
    pages = re.search(r"Sign-in pages\s+http://127\.0\.0\.1:(\d+)/", output)
    assert ports and pages, output
    output = output.replace(f"127.0.0.1:{ports[1]}", "127.0.0.1:8443")
    output = output.replace(f"127.0.0.1:{pages[1]}", "127.0.0.1:8080")
    return output.replace(str(state.resolve()), "/home/you/.local/state/entra-ciam/dev-idp")


def output_of_demo(command: str, tmp_path: Path) -> str:
    """``entra-ciam demo`` (what ``make demo`` runs) on free ports, started in a folder standing
    for the clone; the page's ports and folder stand for these."""
    ports = free_ports()
    argv = ["entra-ciam", "demo", "--port", str(ports.web), "--api-port", str(ports.api)]
    argv += ["--idp-port", str(ports.idp), "--idp-pages-port", str(ports.idp_pages)]
    output = output_until(argv, "Press Ctrl-C to stop.", cwd=tmp_path, env=_entra_ciam_env())
    output = output[output.index("entra-ciam demo is running") :]
    for actual, shown in ((ports.web, 3000), (ports.api, 5000), (ports.idp, 8443)):
        output = output.replace(f"127.0.0.1:{actual}/", f"127.0.0.1:{shown}/")
    output = output.replace(f"127.0.0.1:{ports.idp_pages}/", "127.0.0.1:8080/")
    state = str((tmp_path / ".entra-ciam").resolve())
    return output.replace(state, "/path/to/entra-ciam/.entra-ciam")


OUTPUTS: dict[str, Callable[[str, Path], str]] = {
    "token-validate": output_of_token_validate,
    "dev-idp": output_of_dev_idp,
    "demo": output_of_demo,
}


@pytest.mark.parametrize("block", TRANSCRIPTS, ids=_ids(TRANSCRIPTS))
def test_console_transcript_matches_what_the_command_prints(block: Block, tmp_path: Path) -> None:
    name = block.options.get("of", "")
    assert name in OUTPUTS, f"{block.where}: no command output named {name!r}"
    command, documented = _command_and_output(block)
    actual = OUTPUTS[name](command or "", tmp_path)
    checker = doctest.OutputChecker()
    if not checker.check_output(documented, actual, doctest.ELLIPSIS):
        example = doctest.Example(command or "", documented)
        raise AssertionError(
            f"{block.where}: the page shows another output than the command prints:\n"
            + checker.output_difference(example, actual, doctest.ELLIPSIS)
        )


def test_every_command_output_is_used() -> None:
    used = {b.options.get("of") for b in TRANSCRIPTS}
    assert set(OUTPUTS) <= used, f"outputs no transcript uses: {sorted(set(OUTPUTS) - used)}"


# -- shell blocks, settings, names, links ------------------------------------------------------


def entra_ciam_commands(script: str, *, console: bool = False) -> Iterator[list[str]]:
    """The argument lists given to ``entra-ciam`` in a shell snippet; in a console transcript
    only the lines after a ``$`` prompt are commands."""
    joined = script.replace("\\\n", " ")
    for line in joined.splitlines():
        if console:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        line = re.sub(r"(^|\s)#.*$", "", line)
        for part in re.split(r"&&|\|\||;|\|", line):
            try:
                words = shlex.split(part)
            except ValueError:
                continue
            for index, word in enumerate(words):
                if index and words[index - 1] == "install":
                    continue  # `pip install entra-ciam`: the package, not the command
                if word.rsplit("/", 1)[-1] == "entra-ciam":
                    yield words[index + 1 :]
                    break


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_shell_commands_exist(block: Block) -> None:
    for args in entra_ciam_commands(block.code, console=block.lang == "console"):
        parser = build_parser()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                parser.parse_args(args)
            except SystemExit as exc:
                assert exc.code == 0, f"{block.where}: `entra-ciam {' '.join(args)}` is refused"
            except argparse.ArgumentError as exc:  # pragma: no cover - exit_on_error=False
                raise AssertionError(f"{block.where}: {exc}") from exc


def test_every_entra_variable_named_exists() -> None:
    pattern = re.compile(r"\bENTRA_[A-Z][A-Z_]*[A-Z]\b")
    # The library's settings, and the test suite's own knobs that docs/reliability.md names.
    known = {
        name
        for folder in (ROOT / "src" / "entra_ciam", ROOT / "tests")
        for path in folder.rglob("*.py")
        if path.name != "test_docs_examples.py"
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    }
    for page in PAGES:
        unknown = set(pattern.findall(page.read_text(encoding="utf-8"))) - known
        assert not unknown, f"{page.name} names settings the code never reads: {sorted(unknown)}"


def test_the_api_reference_lists_every_public_name() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    table = {
        row[0]: set(re.findall(r"`(\w+)`", row[1]))
        for row in re.findall(r"^\| `(entra_ciam[\w.]*)` \| (.*) \|$", text, re.MULTILINE)
    }
    for module_name in ("entra_ciam", "entra_ciam.asgi", "entra_ciam.wsgi"):
        module = importlib.import_module(module_name)
        missing = set(module.__all__) - table[module_name]
        assert not missing, f"api.md's table leaves out {module_name}: {sorted(missing)}"
    for module_name, names in table.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert name in getattr(module, "__all__", ()), f"{module_name}.{name} is not public"
            described = re.search(rf"\b{name}\b", text.split("\n## ", 1)[1])
            assert described, f"{name} is in the table but described nowhere"


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((?!https?:|#)([^)#\s]+)", readme)
    assert targets, "the README links into docs/"
    for target in targets:
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_readme_keeps_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Two commands" in readme
    assert re.search(r"^make demo\b", readme, re.MULTILINE)
    assert re.search(r"^make test\b", readme, re.MULTILINE)
