"""The eight algorithms on one setting, every seed reported: the README's algorithm table.

    .venv/bin/python benchmarks/table_algorithms.py --seeds 0,1,2            # the demo setting
    .venv/bin/python benchmarks/table_algorithms.py --set partition=cluster  # another setting

For each algorithm and seed: mean last-round test accuracy, mean test accuracy at the
round of best validation accuracy, mean cumulative utility (eq. (1), iPFL with its
payments, baselines on their sharing graph without payments) and the number of
client-rounds with negative utility. Runs go into ``--out`` and are reused when finished.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from training import ALGORITHMS, Config, RunDir, load_config, train

ORDER = ("local", "fedavg", "fedprox", "ditto", "fedamp", "cfl", "fedfomo", "pfedgraph", "ipfl")


def run(cfg: Config, out: Path) -> tuple[list[dict], float]:
    rd = RunDir(out)
    if (out / "checkpoint.pt").exists() and rd.read_metrics()[-1]["round"] == cfg.rounds:
        return rd.read_metrics(), float("nan")
    t0 = time.perf_counter()
    rows = train(cfg, out, progress=False, resume=out.exists())
    return rows, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--set", action="append", default=[], help="common key=value")
    ap.add_argument("--algorithms", default=",".join(a for a in ORDER if a in ALGORITHMS))
    ap.add_argument("--out", default="runs/table")
    args = ap.parse_args()
    out = Path(args.out)
    print("| algorithm | seed | acc (last) | acc (best val) | mean cum. U | client-rounds U < 0 "
          "| time (s) |")
    print("|---|---|---|---|---|---|---|")
    for algo in args.algorithms.split(","):
        accs, bests, utils, negs = [], [], [], []
        for seed in [int(s) for s in args.seeds.split(",")]:
            cfg = load_config(None, [*args.set, f"seed={seed}", f"algorithm={algo}"])
            tag = "-".join(s.replace("=", "") for s in args.set) or "demo"
            rows, secs = run(cfg, out / f"{tag}-{algo}-{seed}")
            last = [r for r in rows if r["round"] == cfg.rounds and r["role"] != "attacker"]
            neg = sum(1 for r in rows if r["round"] > 0 and r["active"] and not r["ir"])
            accs.append(np.mean([r["acc"] for r in last]))
            bests.append(np.mean([r["best_acc"] for r in last]))
            utils.append(np.mean([r["cum_U"] for r in last]))
            negs.append(neg)
            print(f"| {algo} | {seed} | {100 * accs[-1]:.1f} % | {100 * bests[-1]:.1f} % | "
                  f"{utils[-1]:.2f} | {neg} | {secs:.0f} |", flush=True)
        print(f"| **{algo}** | mean | **{100 * np.mean(accs):.1f} %** | "
              f"**{100 * np.mean(bests):.1f} %** | **{np.mean(utils):.2f}** | "
              f"**{sum(negs)}** | |", flush=True)


if __name__ == "__main__":
    main()
