"""Mutation testing of the security core: would the tests notice if a rule changed?

Each mutant changes one thing in one module of ``src/entra_ciam`` (the kinds an outside review
used, issue 16 point 8):

- a comparison flipped to its negation (``==``/``!=``, ``<``/``>=``, ``in``/``not in``,
  ``is``/``is not``) or moved across its boundary (``<``/``<=``, ``>``/``>=``);
- a condition negated (``if``, ``while``, ``x if c else y``, comprehension filters), ``and`` and
  ``or`` swapped, a ``not`` dropped;
- a ``raise`` replaced by ``pass``;
- an integer constant moved by one either way, ``True`` and ``False`` swapped.

A mutant is written into a private copy of the package and the tests that cover the module run
against it (``PYTHONPATH`` puts the copy first, for subprocesses too), stopping at the first
failure. A failure or a timeout kills the mutant; a mutant that passes every test survives.
Survivors judged equivalent (no test could tell them apart from the original) are listed with
the reason in ``tools/mutation-equivalents.txt`` and left out of the score.

Run ``make mutation`` (every module) or ``python tools/mutation.py validator.py jose.py``;
``--list`` prints the mutants without running anything. It is not part of ``make test``: a full
run takes tens of minutes on two cores.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "entra_ciam"
EQUIVALENTS = ROOT / "tools" / "mutation-equivalents.txt"
REPORTS = ROOT / "build" / "mutation"

# Module (under src/entra_ciam) -> the tests that cover it: only these run for its mutants.
MODULES: dict[str, tuple[str, ...]] = {
    "validator.py": (
        "tests/test_validator.py",
        "tests/test_validator_cache.py",
        "tests/test_validator_http.py",
        "tests/test_telemetry.py::test_validations_cache_hits_refreshes_and_spans",
    ),
    "jose.py": ("tests/test_jose.py", "tests/test_validator.py"),
    "claims.py": ("tests/test_claims.py", "tests/test_validator.py"),
    "authorization.py": ("tests/test_authorization.py",),
    "decorators.py": (
        "tests/test_decorators.py",
        "tests/test_authorization.py",
        "tests/test_frameworks.py",
        "tests/test_decorators_flask.py",
        "tests/test_decorators_starlette.py",
        "tests/test_decorators_fastapi.py",
        "tests/test_django.py",
        "tests/test_quart.py",
    ),
    "signin/returnpath.py": ("tests/test_signin_returnpath.py",),
    "signin/crosssite.py": ("tests/test_signin_crosssite.py",),
    "signin/idtoken.py": ("tests/test_signin_idtoken.py",),
}

_NEGATED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BOUNDARY: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
}
_SYMBOL = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change: the node at ``index`` (pre-order) of the module's tree, changed by ``kind``."""

    module: str
    index: int
    kind: str  # compare, boolop, condition, not, raise, constant
    arg: object  # what to put in (an operator class, a value) or which element (an index)
    line: int
    scope: str  # the enclosing function or class, dotted
    change: str  # "a -> b", readable
    statement: str  # the enclosing statement, first line

    @property
    def key(self) -> str:
        """Stable across edits elsewhere in the module (no line number): scope, change, code."""
        return f"{self.scope} | {self.change} | {self.statement}"


def _preorder(tree: ast.AST) -> list[ast.AST]:
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return out


def _first_line(node: ast.AST, limit: int = 110) -> str:
    text = ast.unparse(node).splitlines()[0] if ast.unparse(node) else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _skipped(node: ast.AST) -> bool:
    """Code whose mutants say nothing about the tests: typing-only imports, ``__all__``,
    annotations, docstrings, internal ``assert`` invariants."""
    if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",):
        return True
    if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
    ):
        return True
    return isinstance(node, ast.Assert)


def mutants_of(module: str) -> list[Mutant]:
    """Every mutant of ``module`` (a path under src/entra_ciam), in source order."""
    tree = ast.parse((PACKAGE / module).read_text())
    nodes = _preorder(tree)
    index_of = {id(n): i for i, n in enumerate(nodes)}
    out: list[Mutant] = []
    annotations: set[int] = set()
    for node in nodes:  # annotation subtrees are never mutated
        for ann in _annotation_roots(node):
            annotations.update(id(n) for n in ast.walk(ann))

    def walk(node: ast.AST, scope: list[str], statement: ast.AST | None) -> None:
        if _skipped(node) or id(node) in annotations:
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope = [*scope, node.name]
        if isinstance(node, ast.stmt):
            statement = node
        for kind, arg, change in _changes(node):
            out.append(
                Mutant(
                    module,
                    index_of[id(node)],
                    kind,
                    arg,
                    getattr(node, "lineno", getattr(statement, "lineno", 0)),
                    ".".join(scope) or "<module>",
                    change,
                    _first_line(statement) if statement is not None else "",
                )
            )
        for child in ast.iter_child_nodes(node):
            if _is_docstring(node, child):
                continue
            walk(child, scope, statement)

    walk(tree, [], None)
    out.sort(key=lambda m: (m.line, m.index, m.kind, str(m.arg)))
    # The same program twice counts once: "if not x" negated is "if x", as is dropping the not.
    unique: dict[str, Mutant] = {}
    for mutant in out:
        unique.setdefault(mutated_source(mutant), mutant)
    return list(unique.values())


def _annotation_roots(node: ast.AST) -> Iterator[ast.AST]:
    if isinstance(node, ast.arg) and node.annotation is not None:
        yield node.annotation
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
        yield node.returns
    if isinstance(node, ast.AnnAssign):
        yield node.annotation


def _is_docstring(parent: ast.AST, child: ast.AST) -> bool:
    body = getattr(parent, "body", None)
    return (
        isinstance(body, list)
        and bool(body)
        and body[0] is child
        and isinstance(child, ast.Expr)
        and isinstance(child.value, ast.Constant)
        and isinstance(child.value.value, str)
    )


def _changes(node: ast.AST) -> Iterator[tuple[str, object, str]]:
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for table in (_NEGATED, _BOUNDARY):
                new = table.get(type(op))
                if new is not None:
                    yield "compare", (i, new), f"{_SYMBOL[type(op)]} -> {_SYMBOL[new]}"
    elif isinstance(node, ast.BoolOp):
        new_name = "or" if isinstance(node.op, ast.And) else "and"
        old_name = "and" if new_name == "or" else "or"
        yield "boolop", None, f"{old_name} -> {new_name}"
    elif isinstance(node, ast.If | ast.While | ast.IfExp):
        yield "condition", None, f"{_first_line(node.test, 60)} -> not (...)"
    elif isinstance(node, ast.comprehension):
        for i, cond in enumerate(node.ifs):
            yield "condition", i, f"{_first_line(cond, 60)} -> not (...)"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "not", None, f"{_first_line(node, 60)} -> {_first_line(node.operand, 60)}"
    elif isinstance(node, ast.Raise):
        yield "raise", None, "raise -> pass"
    elif isinstance(node, ast.Constant):
        value = node.value
        if type(value) is bool:
            yield "constant", not value, f"{value} -> {not value}"
        elif type(value) is int:
            yield "constant", value + 1, f"{value} -> {value + 1}"
            yield "constant", value - 1, f"{value} -> {value - 1}"


def mutated_source(mutant: Mutant) -> str:
    tree = ast.parse((PACKAGE / mutant.module).read_text())
    nodes = _preorder(tree)
    node = nodes[mutant.index]
    if mutant.kind == "compare":
        assert isinstance(node, ast.Compare)
        i, new = cast("tuple[int, type[ast.cmpop]]", mutant.arg)
        node.ops[i] = new()
    elif mutant.kind == "boolop":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif mutant.kind == "condition":
        if isinstance(node, ast.comprehension):
            which = cast("int", mutant.arg)
            node.ifs[which] = ast.UnaryOp(ast.Not(), node.ifs[which])
        else:
            assert isinstance(node, ast.If | ast.While | ast.IfExp)
            node.test = ast.UnaryOp(ast.Not(), node.test)
    elif mutant.kind == "not":
        assert isinstance(node, ast.UnaryOp)
        node.operand = ast.UnaryOp(ast.Not(), node.operand)  # not not x: x, as a bool
    elif mutant.kind == "raise":
        _replace_statement(tree, node, ast.Pass())
    elif mutant.kind == "constant":
        assert isinstance(node, ast.Constant)
        node.value = cast("Any", mutant.arg)
    else:  # pragma: no cover - a kind _changes never yields
        raise ValueError(mutant.kind)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _replace_statement(tree: ast.AST, old: ast.AST, new: ast.stmt) -> None:
    for parent in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(parent, field, None)
            if isinstance(block, list):
                for i, stmt in enumerate(block):
                    if stmt is old:
                        block[i] = new
                        return
    raise LookupError("statement not found")


# -- running ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed, timeout, survived
    seconds: float
    failed_test: str = ""


class Workspace:
    """A private copy of the package in which one module at a time is replaced by a mutant."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="entra-ciam-mutation-"))
        shutil.copytree(
            PACKAGE, self.root / "entra_ciam", ignore=shutil.ignore_patterns("__pycache__")
        )

    def write(self, module: str, source: str) -> None:
        target = self.root / "entra_ciam" / module
        target.write_text(source)
        cache = target.parent / "__pycache__"  # a stale .pyc of the same size and second
        for stale in cache.glob(f"{target.stem}.*.pyc") if cache.exists() else ():
            stale.unlink()

    def restore(self, module: str) -> None:
        self.write(module, (PACKAGE / module).read_text())

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.root), *filter(None, [env.get("PYTHONPATH")])]
        )
        return env

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# Imported once by the runner, before any mutant: every test run is a fork of a process that
# already holds pytest and the heavy third-party libraries, so a run costs the tests, not the
# imports. None of them imports entra_ciam, which each child imports fresh from the copy.
PRELOAD = (
    "pytest",
    "_pytest.python",
    "pytest_asyncio",
    "pytest_timeout",
    "hypothesis",
    "hypothesis.strategies",
    "respx",
    "httpx",
    "anyio",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.x509",
    "cachetools",
    "msal",
    "starlette.applications",
    "starlette.testclient",
    "fastapi",
    "flask",
    "werkzeug.serving",
    "uvicorn",
    "jwt",
)


def preload() -> None:
    import contextlib
    import importlib

    for name in PRELOAD:
        # an optional extra not installed: the tests that need it import it themselves
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    leaked = [m for m in sys.modules if m == "entra_ciam" or m.startswith("entra_ciam.")]
    if leaked:
        raise SystemExit(f"preloading imported {leaked[:3]}: the mutants would not be used")


def run_tests(
    workspace: Workspace, tests: tuple[str, ...], timeout: float
) -> tuple[str, float, str]:
    """``(status, seconds, first failed test)`` of one run of ``tests`` against the copy, in a
    forked child that puts the copy first on ``sys.path`` (and ``PYTHONPATH``, for the servers
    some tests start as subprocesses)."""
    args = ["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=--strict-markers", *tests]
    with tempfile.TemporaryFile() as output:
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 70
            try:
                os.dup2(output.fileno(), 1)
                os.dup2(output.fileno(), 2)
                os.environ.update(workspace.env())
                sys.path.insert(0, str(workspace.root))
                os.chdir(ROOT)
                import pytest

                code = int(pytest.main(args))
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        status = None
        while status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
            elif time.monotonic() - start > timeout:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return "timeout", time.monotonic() - start, ""
            else:
                time.sleep(0.02)
        seconds = time.monotonic() - start
        if status == 0:
            return "survived", seconds, ""
        output.seek(0)
        lines = output.read().decode(errors="replace").splitlines()
    failed = next(
        (
            line.split(" ", 1)[1].split(" - ")[0]
            for line in lines
            if line.startswith(("FAILED ", "ERROR "))
        ),
        f"exit status {status}",
    )
    return "killed", seconds, failed


def check_workspace(workspace: Workspace) -> None:
    """The copy, not the checkout, must be what the tests import."""
    probe = subprocess.run(
        [sys.executable, "-c", "import entra_ciam; print(entra_ciam.__file__)"],
        cwd=ROOT,
        env=workspace.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    imported = Path(probe.stdout.strip()).resolve()
    if not imported.is_relative_to(workspace.root.resolve()):
        raise SystemExit(f"the tests would import {imported}, not the mutated copy")


def load_equivalents() -> dict[tuple[str, str], str]:
    """``(module, mutant key) -> reason`` from tools/mutation-equivalents.txt."""
    out: dict[tuple[str, str], str] = {}
    if not EQUIVALENTS.exists():
        return out
    for number, raw in enumerate(EQUIVALENTS.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" :: ")]
        if len(parts) != 3 or not all(parts):
            raise SystemExit(f"{EQUIVALENTS.name}:{number}: want 'module :: key :: reason'")
        out[(parts[0], parts[1])] = parts[2]
    return out


def keyed(mutants: list[Mutant]) -> list[tuple[str, Mutant]]:
    """Each mutant with its key, made unique by an occurrence suffix when code repeats."""
    seen: Counter[str] = Counter()
    out = []
    for mutant in mutants:
        seen[mutant.key] += 1
        suffix = f" #{seen[mutant.key]}" if seen[mutant.key] > 1 else ""
        out.append((mutant.key + suffix, mutant))
    return out


def run_module(
    module: str, equivalents: dict[tuple[str, str], str], say: Callable[[str], None]
) -> dict[str, object]:
    tests = MODULES[module]
    mutants = keyed(mutants_of(module))
    workspace = Workspace()
    try:
        check_workspace(workspace)
        status, baseline, failed = run_tests(workspace, tests, timeout=1800)
        if status != "survived":
            raise SystemExit(f"{module}: the tests fail without any mutant ({failed})")
        timeout = 3 * baseline + 15
        say(f"{module}: {len(mutants)} mutants; tests {' '.join(tests)} take {baseline:.1f} s")
        outcomes: list[tuple[str, Outcome]] = []
        for n, (key, mutant) in enumerate(mutants, 1):
            workspace.write(module, mutated_source(mutant))
            status, seconds, failed = run_tests(workspace, tests, timeout)
            outcomes.append((key, Outcome(mutant, status, seconds, failed)))
            mark = {"killed": ".", "timeout": "T", "survived": "S"}[status]
            if (module, key) in equivalents and status == "survived":
                mark = "E"
            say(f"  [{n}/{len(mutants)}] {mark} L{mutant.line} {mutant.change}  ({key})")
        workspace.restore(module)
    finally:
        workspace.close()
    return summarize(module, outcomes, equivalents)


def summarize(
    module: str, outcomes: list[tuple[str, Outcome]], equivalents: dict[tuple[str, str], str]
) -> dict[str, object]:
    killed = [k for k, o in outcomes if o.status in ("killed", "timeout")]
    survived = [(k, o) for k, o in outcomes if o.status == "survived"]
    equivalent = [
        (k, o, equivalents[(module, k)]) for k, o in survived if (module, k) in equivalents
    ]
    real = [(k, o) for k, o in survived if (module, k) not in equivalents]
    counted = len(outcomes) - len(equivalent)
    score = 100.0 * len(killed) / counted if counted else 100.0
    stale = sorted(k for (m, k) in equivalents if m == module and k not in dict(outcomes))
    return {
        "module": module,
        "mutants": len(outcomes),
        "killed": len(killed),
        "timeouts": sum(1 for _, o in outcomes if o.status == "timeout"),
        "equivalent": len(equivalent),
        "survived": len(real),
        "score": round(score, 1),
        "survivors": [{"key": k, "line": o.mutant.line} for k, o in real],
        "equivalents": [{"key": k, "line": o.mutant.line, "reason": r} for k, o, r in equivalent],
        "killed_equivalents": [  # listed as equivalent, yet a test killed them: drop the entry
            k for k, o in outcomes if (module, k) in equivalents and o.status != "survived"
        ],
        "stale_equivalents": stale,
        "seconds": round(sum(o.seconds for _, o in outcomes), 1),
    }


def markdown_report(modules: list[str]) -> str:
    """The scores of the last run of ``modules``, for docs/mutation.md."""
    lines = [
        "| Module | Mutants | Killed | Equivalent | Survived | Score |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for module in modules:
        path = REPORTS / (module.replace("/", "-") + ".json")
        if not path.exists():
            lines.append(f"| `{module}` | not run | | | | |")
            continue
        r = json.loads(path.read_text())
        lines.append(
            f"| `{module}` | {r['mutants']} | {r['killed']} | {r['equivalent']} | "
            f"{r['survived']} | {r['score']}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument(
        "--report",
        action="store_true",
        help="print the last run's scores (build/mutation/*.json) as a Markdown table and stop",
    )
    args = parser.parse_args(argv)
    modules = args.modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {list(MODULES)}")
    if args.report:
        print(markdown_report(modules))
        return 0
    if args.list:
        for module in modules:
            for key, mutant in keyed(mutants_of(module)):
                print(f"{module} L{mutant.line}: {key}")
        return 0
    equivalents = load_equivalents()
    REPORTS.mkdir(parents=True, exist_ok=True)
    preload()
    results = []
    for module in modules:
        result = run_module(module, equivalents, lambda line: print(line, flush=True))
        (REPORTS / (module.replace("/", "-") + ".json")).write_text(json.dumps(result, indent=2))
        results.append(result)
    print("\nmodule                 mutants killed equivalent survived score")
    for r in results:
        print(
            f"{r['module']:<22} {r['mutants']:>7} {r['killed']:>6} {r['equivalent']:>10} "
            f"{r['survived']:>8} {r['score']:>5}%"
        )
        for survivor in r["survivors"]:  # type: ignore[attr-defined]
            print(f"  survived: {r['module']} :: {survivor['key']}")
        for key in r["killed_equivalents"]:  # type: ignore[attr-defined]
            print(f"  listed as equivalent but killed: {r['module']} :: {key}")
        for key in r["stale_equivalents"]:  # type: ignore[attr-defined]
            print(f"  listed as equivalent but no longer a mutant: {r['module']} :: {key}")
    return 0 if all(float(r["score"]) >= 95.0 for r in results) else 1  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
