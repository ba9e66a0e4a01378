"""The CUDA path against the CPU: the same tiny runs on both devices, compared.

    python benchmarks/gpu_check.py            # needs a CUDA GPU; prints one table

For each algorithm, one run on the CPU and one with ``device = "cuda"`` (the batched
client step trains on the GPU; algorithms with their own client step use the
per-client loop on the CPU, as docs/performance.md says), on the bundled digits: 6 clients,
4 rounds. Printed per algorithm: which path trained, the largest difference of a
client's accuracy and of its cumulative utility between the two devices, and the wall
time of each. Equal up to floating-point rounding is expected, not bit-identity
(the GPU sums in another order). Exit code 1 if any accuracy differs by more than
one test sample in 20 (0.05) or a utility by more than 1e-6 relative.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings

import numpy as np
import torch

from training import Config, train
from training.batched import check_batching


def main() -> int:
    """Run the comparison; return the exit code."""
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to check")
        return 2
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    warnings.filterwarnings("ignore")
    bad = 0
    print("| algorithm | batched on cuda | max |Δ acc| | max |Δ cum U| (rel.) | cpu s | cuda s |")
    print("|---|---|---|---|---|---|")
    for algo in ("fedavg", "fedprox", "ipfl", "fedamp", "pfedgraph", "cfl", "ditto", "local"):
        rows, secs = {}, {}
        for device in ("cpu", "cuda"):
            cfg = Config(algorithm=algo, clients=6, rounds=4, epochs=1, hidden=32,
                         beta=0.5, device=device)
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                rows[device] = train(cfg, f"{tmp}/run", progress=False)
                secs[device] = time.perf_counter() - t0
        a = np.array([r["acc"] for r in rows["cpu"]])
        b = np.array([r["acc"] for r in rows["cuda"]])
        u = np.array([r["cum_U"] for r in rows["cpu"]])
        v = np.array([r["cum_U"] for r in rows["cuda"]])
        d_acc = float(np.abs(a - b).max())
        d_u = float((np.abs(u - v) / np.maximum(np.abs(u), 1.0)).max())
        from training import get_algorithm

        batched = check_batching("auto", get_algorithm(cfg), None, "cuda")
        ok = d_acc <= 0.05 and d_u <= 1e-6
        bad += not ok
        print(f"| {algo} | {batched} | {d_acc:.4f} | {d_u:.2e} | {secs['cpu']:.1f} | "
              f"{secs['cuda']:.1f} |{'' if ok else ' DIFFERS'}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
