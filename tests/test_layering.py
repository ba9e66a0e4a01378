"""The user's layering: mechanism/ and proofs_checks/ never import torch."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["mechanism", "proofs_checks", "ipfl.commands.compare",
                                     "ipfl.commands.audit", "ipfl.commands.market",
                                     "ipfl.commands.explore", "ipfl.commands.rescore",
                                     "ipfl.explorer.app",
                                     "ipfl.market_files"])
def test_package_imports_without_torch(package):
    code = (f"import sys, importlib; importlib.import_module({package!r}); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, f"{package} pulled in torch\n{done.stderr}"


def test_mechanism_writes_no_files():
    """mechanism/ is pure: file writers live in ipfl/ (ipfl.atomic, ipfl.compare_files)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "mechanism"
    writes = re.compile(r"write_text|write_bytes|mkstemp|atomic_write|os\.replace|\"w\"\)")
    devnull = 'open(os.devnull, "w")'  # the exact solver silences its backend
    offenders = [p.name for p in root.glob("*.py")
                 if writes.search(p.read_text(encoding="utf-8").replace(devnull, ""))]
    assert offenders == []
