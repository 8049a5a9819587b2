"""The hash of the package code a rule's script runs (its ``code`` param).

Snakemake re-runs a job when its script changes, but not when a module the
script imports does. Each rule therefore passes the hash of every package
file its script can reach through imports (at any depth, lazy imports
included), so editing one module re-runs exactly the rules that use it, and
nobody keeps a list of modules by hand. What is hashed is the parsed code
without its docstrings: an edit of a comment, a docstring or the layout
re-runs nothing. Read with :mod:`ast` only: cheap enough for every parse of
the workflow.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Sequence

PACKAGE = "afterkernel"
# Read when the workflow is parsed: what they decide reaches the jobs as
# params and paths, which Snakemake checks itself.
PARSE_TIME = frozenset({PACKAGE, f"{PACKAGE}.plan", f"{PACKAGE}.config"})


def _module_file(package_dir: Path, module: str) -> Path | None:
    """The file of ``afterkernel.a.b`` (``a/b.py`` or ``a/b/__init__.py``)."""
    parts = module.split(".")[1:]
    base = package_dir.joinpath(*parts) if parts else package_dir
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if parts and path.is_file():
            return path
    return None


def _imports(path: Path, module: str, is_package: bool) -> set[str]:
    """Every ``afterkernel`` module named by an import in ``path``."""
    found: set[str] = set()
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            found.add(base)
            # `from afterkernel import io` names the module afterkernel.io
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts) + 1)]


def reached_files(script: Path, package_dir: Path) -> list[Path]:
    """The package files ``script`` reaches through imports, sorted."""
    files: dict[str, Path] = {}
    todo = sorted(_imports(script, "__main__", False))
    while todo:
        for module in _with_parents(todo.pop()):
            path = _module_file(package_dir, module)
            if module in files or module in PARSE_TIME or path is None:
                continue
            files[module] = path
            todo += sorted(_imports(path, module, path.name == "__init__.py"))
    return sorted(files.values())


def code_of(path: Path) -> str:
    """What a file's code does: its syntax tree without docstrings, comments,
    line numbers or layout."""
    tree = ast.parse(path.read_bytes(), str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def script_code_hash(script: str | Path, package_dir: str | Path,
                     extra_files: Sequence[str | Path] = ()) -> str:
    """16 hex digits of the SHA-256 of the code (:func:`code_of`) of the
    files :func:`reached_files` lists, then of ``extra_files`` (a user's
    modules registering networks, hashed by their code and file name: moving
    one re-runs nothing, editing its code re-runs its jobs)."""
    h = hashlib.sha256()
    package_dir = Path(package_dir)
    for path in reached_files(Path(script), package_dir):
        h.update(path.relative_to(package_dir).as_posix().encode())
        h.update(code_of(path).encode())
    for path in map(Path, extra_files):
        h.update(path.name.encode())
        h.update(code_of(path).encode())
    return h.hexdigest()[:16]
