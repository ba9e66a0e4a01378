"""``import ipfl``: the main API in one place, loaded lazily (ipfl/__init__.py)."""

from __future__ import annotations

import doctest
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ipfl

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("name", ipfl.__all__)
def test_every_public_name_is_the_defining_layer_s_object(name):
    """``ipfl.X`` is the very object of the module that defines it (no copies, no wrappers)."""
    # Prepare
    module = importlib.import_module(ipfl._EXPORTS[name])
    # Execute
    value = getattr(ipfl, name)
    # Assert
    assert value is getattr(module, name)
    assert name in dir(ipfl)


def test_the_main_api_is_there():
    """The names a newcomer reaches for first, one per layer."""
    main = {"Market", "greedy_graph", "exact_graph", "payments", "utilities",
            "social_welfare", "explain", "Config", "train", "Session", "RunDir",
            "audit_run", "run_audit", "read_market", "plot_market", "rescore_run"}
    assert main <= set(ipfl.__all__)
    assert ipfl.__all__ == sorted(ipfl._EXPORTS)


def test_no_public_name_shadows_a_submodule():
    """A name equal to a submodule (``ipfl.figures``) would make ``import ipfl.X`` ambiguous."""
    submodules = {p.stem for p in (ROOT / "ipfl").iterdir()
                  if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert not submodules & set(ipfl.__all__)


def test_import_ipfl_imports_no_layer_and_mechanism_names_need_no_torch():
    """``import ipfl`` stays as cheap as the CLI's start; a mechanism name loads no torch."""
    out = _run("import sys, ipfl; a = {'mechanism', 'training', 'torch'} & set(sys.modules); "
               "ipfl.Market, ipfl.greedy_graph, ipfl.explain; "
               "b = {'torch', 'training'} & set(sys.modules); "
               "ipfl.Config; c = 'torch' in sys.modules; print(sorted(a), sorted(b), c)")
    assert out == "[] [] True"


def test_an_unknown_name_is_an_attribute_error_with_a_suggestion():
    """A typo says what was meant; ``hasattr`` stays False (so submodule imports still work)."""
    with pytest.raises(AttributeError, match="no attribute 'Markt'; did you mean Market"):
        ipfl.Markt  # noqa: B018
    assert not hasattr(ipfl, "no_such_name")
    from ipfl import figures  # a submodule, imported by the normal machinery
    assert figures.__name__ == "ipfl.figures"


def test_the_package_docstring_example_runs():
    """The example in ``help(ipfl)`` is run (make test's doctests do not collect ipfl/)."""
    result = doctest.testmod(ipfl, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


def test_the_cli_starts_in_an_interpreter_that_has_not_loaded_importlib_util():
    """``pip install ipfl`` then ``ipfl --help`` (found by measuring the lean install).

    The development venv's editable-install hooks load ``importlib.util`` at start-up and
    hid an ``import importlib`` that used ``importlib.util``; a plain install crashed.
    """
    out = _run("import importlib, sys; sys.modules.pop('importlib.util', None); "
               "delattr(importlib, 'util') if hasattr(importlib, 'util') else None; "
               "from ipfl.cli import main; "
               "main(['market', '--help'], standalone_mode=False)")
    assert "--file" in out


def test_explore_without_its_extra_says_which_extra_in_one_line(monkeypatch):
    """The lean install has no uvicorn/starlette: ``ipfl explore`` names the extra."""
    from click.testing import CliRunner

    from ipfl.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    result = CliRunner().invoke(main, ["explore", "--no-browser"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: ipfl explore needs the explore extra (uvicorn is missing): "
        "pip install 'ipfl[explore]'"]
