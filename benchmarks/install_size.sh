#!/usr/bin/env bash
# Size of a fresh virtual environment for the lean install and for `make venv`
# (docs/install.md). Run from the repository root: bash benchmarks/install_size.sh [DIR]
# It builds two venvs under DIR (default: a new temporary folder) and prints du -sm of each.
set -euo pipefail
root=$(pwd)
work=${1:-$(mktemp -d)}
py=$(command -v python3.11 || command -v python3)
for kind in lean full; do
    "$py" -m venv "$work/venv-$kind"
    "$work/venv-$kind/bin/python" -m pip install -q --upgrade pip
    "$work/venv-$kind/bin/python" -m pip install -q "torch==2.13.0"   # the CPU build, as the Makefile
    echo "torch only ($kind): $(du -sm "$work/venv-$kind" | cut -f1) MB"
done
"$work/venv-lean/bin/python" -m pip install -q "$root"
echo "lean, pip install ipfl (base only): $(du -sm "$work/venv-lean" | cut -f1) MB"
"$work/venv-full/bin/python" -m pip install -q "$root[explore,dev,flower,docs]"
echo "make venv (base + explore, dev, flower, docs): $(du -sm "$work/venv-full" | cut -f1) MB"
