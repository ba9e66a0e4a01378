"""The layering: every package imports only the packages below it.

::

    ipfl                      the application: CLI, experiments, explorer, files
      |-> training            PyTorch rounds (Algorithm 1)    -> mechanism, atomicio
      |-> proofs_checks       Hypothesis audits of the claims -> mechanism, atomicio
      |-> mechanism           the pure mechanism              -> nothing of the project
      '-> atomicio            atomic file writes              -> nothing of the project

Checked statically for every package pair: each module of each package is parsed with
:mod:`ast`, and every import in it (module level or inside a function, absolute or
relative, ``from . import x``, and ``importlib.import_module("...")`` with a literal name)
is resolved to the project package it reaches. A second, dynamic test checks that the
torch-free layers stay torch-free when imported (a transitive check the static one cannot
make about third-party code).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: each project package and the project packages its modules may import (itself aside)
ALLOWED: dict[str, frozenset[str]] = {
    "atomicio": frozenset(),
    "mechanism": frozenset(),
    "training": frozenset({"mechanism", "atomicio"}),
    "proofs_checks": frozenset({"mechanism", "atomicio"}),
    "ipfl": frozenset({"training", "proofs_checks", "mechanism", "atomicio"}),
}
#: third-party packages a layer must never import, even inside a function
FORBIDDEN_THIRD_PARTY: dict[str, frozenset[str]] = {
    "atomicio": frozenset({"torch"}),
    "mechanism": frozenset({"torch"}),
    "proofs_checks": frozenset({"torch"}),
}
PACKAGES = tuple(ALLOWED)


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    """Return the dotted module name of ``path`` under ``root`` and whether it is a package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _literal_prefix(node: ast.expr) -> str | None:
    """Return the literal text of a str constant, or of an f-string's leading constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if (isinstance(node, ast.JoinedStr) and node.values
            and isinstance(node.values[0], ast.Constant)):
        return str(node.values[0].value)
    return None


def imports_of(path: Path, root: Path) -> list[tuple[int, str, str]]:
    """Every import in the module at ``path``: ``(line, its source line, absolute module)``.

    Relative imports are resolved against the module's own package, so ``from . import x``
    in ``pkg/sub/__init__.py`` gives ``pkg.sub.x``; one that climbs above the top-level
    package resolves to ``"<outside the package>"``.
    """
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    name, is_package = _module_name(path, root)
    package = name.split(".") if is_package else name.split(".")[:-1]
    found = []
    lines = source.splitlines()

    def text(node: ast.AST) -> str:  # the statement's first line is enough to find it
        return lines[node.lineno - 1].strip()

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, text(node), alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            elif node.level - 1 >= len(package):
                found.append((node.lineno, text(node), "<outside the package>"))
                continue
            else:
                base = ".".join(package[:len(package) - (node.level - 1)]
                                + ([node.module] if node.module else []))
            if node.module is None:  # from . import a, b: each name may be a module
                found += [(node.lineno, text(node), f"{base}.{alias.name}")
                          for alias in node.names]
            else:
                found.append((node.lineno, text(node), base))
        elif (isinstance(node, ast.Call) and node.args
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in {"import_module", "__import__"})):
            literal = _literal_prefix(node.args[0])
            if literal:
                found.append((node.lineno, text(node), literal))
    return sorted(found)


def layering_violations(package: str, root: Path = ROOT) -> list[str]:
    """One line per import of ``package`` that the layering forbids: file, line, import."""
    allowed = ALLOWED[package] | {package}
    forbidden = FORBIDDEN_THIRD_PARTY.get(package, frozenset())
    out = []
    for path in sorted((root / package).rglob("*.py")):
        for line, stmt, module in imports_of(path, root):
            top = module.split(".")[0]
            if module == "<outside the package>":
                why = "a relative import that leaves the package"
            elif top in ALLOWED and top not in allowed:
                why = f"{package} -> {top}"
            elif top in forbidden:
                why = f"{package} -> {top} (third party, never here)"
            else:
                continue
            out.append(f"{path.relative_to(root).as_posix()}:{line}: {stmt}  [{why}]")
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_the_layers_below_it(package):
    """Every import of every module of ``package`` stays inside the allowed graph."""
    # Execute
    violations = layering_violations(package)
    # Assert
    allowed = ", ".join(sorted(ALLOWED[package])) or "nothing of the project"
    assert violations == [], (f"{package} may import only {allowed}; found:\n"
                              + "\n".join(violations))


def test_the_graph_covers_every_project_package():
    """A new top-level package must be placed in the graph (and packaged) to be checked."""
    # Prepare
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    include = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packaged = {pattern.rstrip("*")
                for pattern in include["tool"]["setuptools"]["packages"]["find"]["include"]}
    # Assert
    assert on_disk == set(PACKAGES) == packaged


def test_the_graph_points_only_downward():
    """The allowed graph itself is acyclic: no package may reach one that reaches it."""
    for package, below in ALLOWED.items():
        for other in below:
            assert package not in ALLOWED[other], f"{package} <-> {other}"


def test_the_checker_resolves_every_kind_of_import(tmp_path):
    """Function-level, relative and ``from . import`` imports are all seen and named."""
    # Prepare: a tiny tree with one forbidden import of each kind
    (tmp_path / "mechanism" / "sub").mkdir(parents=True)
    (tmp_path / "mechanism" / "__init__.py").write_text("from . import sub\n")
    (tmp_path / "mechanism" / "sub" / "__init__.py").write_text(
        "import numpy\nfrom .. import sub\n")
    (tmp_path / "mechanism" / "sub" / "deep.py").write_text(
        "def f():\n    from training.loop import train\n    import torch\n"
        "    return importlib.import_module(f'ipfl.commands.{x}')\n"
        "from ... import outside\n")
    (tmp_path / "mechanism" / "ok.py").write_text("from .sub import deep\nimport mechanism\n")
    # Execute
    violations = layering_violations("mechanism", tmp_path)
    # Assert
    assert violations == [
        "mechanism/sub/deep.py:2: from training.loop import train  [mechanism -> training]",
        "mechanism/sub/deep.py:3: import torch  [mechanism -> torch (third party, never here)]",
        "mechanism/sub/deep.py:4: return importlib.import_module(f'ipfl.commands.{x}')"
        "  [mechanism -> ipfl]",
        "mechanism/sub/deep.py:5: from ... import outside"
        "  [a relative import that leaves the package]",
    ]
    assert imports_of(tmp_path / "mechanism" / "__init__.py", tmp_path) == [
        (1, "from . import sub", "mechanism.sub")]


@pytest.mark.parametrize("package", ["atomicio", "mechanism", "proofs_checks",
                                     "ipfl.commands.compare", "ipfl.commands.audit",
                                     "ipfl.commands.market", "ipfl.commands.explore",
                                     "ipfl.commands.rescore", "ipfl.explorer.app",
                                     "ipfl.market_files"])
def test_package_imports_without_torch(package):
    """Importing a torch-free layer (or a CLI command that needs none) never loads torch."""
    code = (f"import sys, importlib; importlib.import_module({package!r}); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, f"{package} pulled in torch\n{done.stderr}"


def test_mechanism_writes_no_files():
    """mechanism/ is pure: file writers live in atomicio/ and ipfl/ (ipfl.compare_files)."""
    writes = re.compile(r"write_text|write_bytes|mkstemp|atomic_write|os\.replace|\"w\"\)")
    devnull = 'open(os.devnull, "w")'  # the exact solver silences its backend
    offenders = [p.name for p in (ROOT / "mechanism").glob("*.py")
                 if writes.search(p.read_text(encoding="utf-8").replace(devnull, ""))]
    assert offenders == []
