"""The nine algorithms on one setting, every seed reported (docs/algorithms.md's table).

iPFL is run twice: at its default ``lam = 1`` and at ``lam = 0`` (``ipfl(lam=0)``: the
market prices no distance), since its utility verdict turns on ``lam``.

    .venv/bin/python benchmarks/table_algorithms.py --seeds 0,1,2            # the demo setting
    .venv/bin/python benchmarks/table_algorithms.py --set partition=cluster  # another setting

For each algorithm and seed: mean last-round test accuracy, mean test accuracy at the
round of best validation accuracy, mean cumulative utility (eq. (1), iPFL with its
payments, baselines on their sharing graph without payments), the number of
client-rounds with negative utility and the run's social welfare as a share of the
eq. (3) optimum (:func:`ipfl.rescore.rescore_run`). Runs go into ``--out`` and are
reused when finished.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ipfl.rescore import rescore_run
from training import ALGORITHMS, Config, RunDir, load_config, train
from training.algorithms import methods

#: every registered algorithm in table order, and iPFL again at lam = 0
ORDER = (*methods(), "ipfl(lam=0)")


def variant(name: str) -> tuple[str, list[str]]:
    """Split ``"ipfl(lam=0)"`` into the algorithm and its table's settings (``ipfl.lam=0``)."""
    if "(" not in name:
        return name, []
    algo, inner = name[:-1].split("(", 1)
    return algo, [f"{algo}.{kv}" for kv in inner.split(";") if kv]


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
    ap.add_argument("--algorithms", default=",".join(a for a in ORDER
                                                     if variant(a)[0] in ALGORITHMS))
    ap.add_argument("--out", default="runs/table")
    args = ap.parse_args()
    out = Path(args.out)
    print("| algorithm | seed | acc (last) | acc (best val) | mean cum. U | client-rounds U < 0 "
          "| welfare / optimum | time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for algo in args.algorithms.split(","):
        accs, bests, utils, negs, shares = [], [], [], [], []
        name, table = variant(algo)
        for seed in [int(s) for s in args.seeds.split(",")]:
            cfg = load_config(None, [*args.set, f"seed={seed}", f"algorithm={name}", *table])
            tag = "-".join(s.replace("=", "") for s in args.set) or "demo"
            folder = out / f"{tag}-{algo.replace('(', '-').replace(')', '')}-{seed}"
            rows, secs = run(cfg, folder)
            shares.append(rescore_run(folder).welfare_share)
            last = [r for r in rows if r["round"] == cfg.rounds and r["role"] != "attacker"]
            neg = sum(1 for r in rows if r["round"] > 0 and r["active"] and not r["ir"])
            accs.append(np.mean([r["acc"] for r in last]))
            bests.append(np.mean([r["best_acc"] for r in last]))
            utils.append(np.mean([r["cum_U"] for r in last]))
            negs.append(neg)
            print(f"| {algo} | {seed} | {100 * accs[-1]:.1f} % | {100 * bests[-1]:.1f} % | "
                  f"{utils[-1]:.2f} | {neg} | {shares[-1]:.2f} | {secs:.0f} |", flush=True)
        print(f"| **{algo}** | mean | **{100 * np.mean(accs):.1f} %** | "
              f"**{100 * np.mean(bests):.1f} %** | **{np.mean(utils):.2f}** | "
              f"**{sum(negs)}** | **{np.mean(shares):.2f}** | |", flush=True)


if __name__ == "__main__":
    main()
