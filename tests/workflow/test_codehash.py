"""The rules' code hashes follow the scripts' imports (afterkernel.codehash)."""

from __future__ import annotations

from pathlib import Path

from afterkernel.codehash import reached_files, script_code_hash

ROOT = Path(__file__).resolve().parents[2]


def fake_tree(tmp_path: Path) -> tuple[Path, Path]:
    pkg = tmp_path / "afterkernel"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "__version__ = '0'\n",
        "plan.py": "",
        "io.py": "import os\n",
        "lazy.py": "X = 1\n",
        "unused.py": "from afterkernel import io\n",
        "sub/__init__.py": "from .engine import run\n",
        "sub/engine.py": "from ..io import os\n\ndef run():\n    from afterkernel import lazy\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    script = tmp_path / "script.py"
    script.write_text("import sys\nfrom afterkernel.sub import run\nfrom afterkernel import plan\n")
    return script, pkg


def test_follows_relative_lazy_and_parent_imports(tmp_path):
    script, pkg = fake_tree(tmp_path)
    got = [p.relative_to(pkg).as_posix() for p in reached_files(script, pkg)]
    # plan is read at parse time (its decisions reach the jobs as params) and the
    # package root holds only the version: neither is hashed
    assert got == ["io.py", "lazy.py", "sub/__init__.py", "sub/engine.py"]


def test_hash_changes_with_reached_files_only(tmp_path):
    script, pkg = fake_tree(tmp_path)
    before = script_code_hash(script, pkg)
    (pkg / "unused.py").write_text("# edited\n")
    (pkg / "plan.py").write_text("# edited\n")
    assert script_code_hash(script, pkg) == before
    (pkg / "lazy.py").write_text('"""A docstring."""\n\n# a comment\nX  =  1  # same code\n')
    assert script_code_hash(script, pkg) == before
    (pkg / "lazy.py").write_text("X = 2\n")
    assert script_code_hash(script, pkg) != before


def test_docstrings_and_comments_are_not_code(tmp_path):
    from afterkernel.codehash import code_of

    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text("def f(x):\n    return x + 1\n")
    b.write_text('"""Module."""\n\n\ndef f(x):  # why\n    """Add one."""\n    return (x + 1)\n')
    c.write_text("def f(x):\n    return x + 2\n")
    assert code_of(a) == code_of(b) != code_of(c)
    # a function that is only a docstring stays a function
    b.write_text('def f(x):\n    """Nothing."""\n')
    assert "Pass" in code_of(b)


def test_real_scripts_reach_their_stages():
    pkg = ROOT / "afterkernel"

    def reached(script):
        return {p.relative_to(pkg).parts[0].removesuffix(".py") for p in reached_files(ROOT / "scripts" / script, pkg)}

    svm = reached("svm.py")
    assert "maxmargin" in svm and not svm & {"kernels", "figures", "training", "aggregate"}
    assert {"kernels", "training", "data", "models"} <= reached("kernel.py")
    assert "maxmargin" not in reached("kernel.py") and "aggregate" not in reached("train.py")
    assert {"aggregate", "claims"} <= reached("claims.py")
