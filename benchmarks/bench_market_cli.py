"""Wall time and peak memory of ``ipfl market --file`` on large markets (issue 21).

Usage: python benchmarks/bench_market_cli.py [SIZES...] [--timeout S]

Writes one CSV per size (seed 0: N in [50, 5000], c in [0.01, 1], K in [1e3, 1e5], points
in the unit square) to a temporary folder, runs ``ipfl market --file`` on each in a fresh
process and prints the exit code, the seconds and the peak resident memory (the child's
``ru_maxrss``). Defaults: 2,000, 5,000 and 20,000 clients, 300 s each. Figures in
docs/reliability.md.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_csv(path: Path, m: int, seed: int = 0) -> None:
    """Write a random market of ``m`` clients with 2-D points to ``path``."""
    rng = np.random.default_rng(seed)
    N = rng.integers(50, 5001, size=m)
    c = rng.uniform(0.01, 1.0, size=m)
    K = rng.integers(1000, 100_001, size=m)
    xy = rng.random((m, 2))
    rows = "".join(f"{n},{ci:.4f},{k},{x:.4f},{y:.4f}\n"
                   for n, ci, k, (x, y) in zip(N, c, K, xy, strict=True))
    path.write_text("# lam = 0.1\nN,c,K,x,y\n" + rows)


def run(path: Path, timeout: float) -> tuple[int | str, float, float]:
    """Return (exit code or 'timeout', seconds, peak MB) of ``ipfl market --file path``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    try:
        code: int | str = subprocess.run(
            [sys.executable, "-m", "ipfl.cli", "market", "--file", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
            env={**os.environ}).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return code, seconds, max(peak, before) / 1024


def main(argv: list[str]) -> None:
    """Time every size given (default 2,000, 5,000, 20,000)."""
    timeout = 300.0
    if "--timeout" in argv:
        k = argv.index("--timeout")
        timeout = float(argv[k + 1])
        argv = argv[:k] + argv[k + 2:]
    sizes = [int(a) for a in argv] or [2000, 5000, 20_000]
    with tempfile.TemporaryDirectory() as tmp:
        print("| clients | exit code | seconds | peak MB (max so far) |")
        print("|---:|---:|---:|---:|")
        for m in sizes:
            path = Path(tmp) / f"m{m}.csv"
            write_csv(path, m)
            code, seconds, peak = run(path, timeout)
            print(f"| {m:,} | {code} | {seconds:.1f} | {peak:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
