"""How iPFL's eta, lam, lam_prox and distance were chosen: a sweep on digits, printed as a table.

For each setting: mean last-round and best-validation test accuracy, local training's
for comparison, the graph density, the share of imports that stay within a client's
true group (Cluster partition) against the share expected by chance, and the number
of client-rounds with negative utility.

    .venv/bin/python benchmarks/study_ipfl.py --partition cluster --seeds 0 \
        --grid "lam=0,0.2,1" --grid "eta=0.5"

Every run goes into ``--out`` (default runs/study); a finished run is reused.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from training import Config, RunDir, train


def within_share(run: Path, rows: list[dict]) -> tuple[float, float, float]:
    """Return (within-group share of imports, chance share, mean density) over all rounds."""
    groups = {r["client"]: r["group"] for r in rows if r["round"] == 0}
    if None in groups.values():  # NIID / IID: no true groups
        return float("nan"), float("nan"), float("nan")
    same = tot = 0
    dens = []
    for rec in RunDir(run).read_records().values():
        if rec.exchange is None:
            continue
        cl = rec.exchange.clients
        A = rec.exchange.A
        g = np.array([groups[c] for c in cl])
        same += int((A * (g[:, None] == g[None, :])).sum())
        tot += int(A.sum())
        k = len(cl)
        dens.append(A.sum() / max(1, k * (k - 1)))
    g = np.array(list(groups.values()))
    m = len(g)
    chance = float(np.mean([(np.sum(g == gi) - 1) / (m - 1) for gi in g]))
    return (same / tot if tot else float("nan")), chance, float(np.mean(dens))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partition", default="cluster")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--grid", action="append", default=[],
                    help="ipfl key=v1,v2,... (repeatable); the cross product is run")
    ap.add_argument("--set", action="append", default=[], help="common key=value")
    ap.add_argument("--out", default="runs/study")
    args = ap.parse_args()
    common = {}
    for item in args.set:
        k, v = item.split("=", 1)
        common[k] = json.loads(v) if v[:1].isdigit() or v[:1] in "-[" else v
    keys, values = [], []
    for g in args.grid:
        k, v = g.split("=", 1)
        keys.append(k)
        values.append([x if k == "distance" or k == "d_scale" else float(x)
                       for x in v.split(",")])
    out = Path(args.out)
    print(f"{'setting':<48} {'seed':>4} {'local':>6} {'acc':>6} {'best':>6} {'dens':>5} "
          f"{'within':>6} {'chance':>6} {'IR<0':>5}")
    for seed in [int(s) for s in args.seeds.split(",")]:
        base = Config(partition=args.partition, seed=seed, **common)
        lrun = out / f"local-{args.partition}-{seed}"
        lrows = (RunDir(lrun).read_metrics() if (lrun / "checkpoint.pt").exists()
                 else train(base.replace(algorithm="local"), lrun, progress=False))
        T = base.rounds
        lacc = np.mean([r["acc"] for r in lrows if r["round"] == T])
        for combo in itertools.product(*values):
            hyper = dict(zip(keys, combo, strict=True))
            name = ",".join(f"{k}={v}" for k, v in hyper.items())
            run = out / f"ipfl-{args.partition}-{seed}-{name}"
            cfg = base.replace(algorithm="ipfl", hyper=hyper)
            rows = (RunDir(run).read_metrics() if (run / "checkpoint.pt").exists()
                    and RunDir(run).read_metrics()[-1]["round"] == T
                    else train(cfg, run, progress=False, resume=run.exists()))
            last = [r for r in rows if r["round"] == T]
            within, chance, dens = within_share(run, rows)
            neg = sum(1 for r in rows if r["round"] > 0 and r["active"] and not r["ir"])
            print(f"{name:<48} {seed:>4} {lacc:>6.3f} {np.mean([r['acc'] for r in last]):>6.3f} "
                  f"{np.mean([r['best_acc'] for r in last]):>6.3f} {dens:>5.2f} "
                  f"{within:>6.2f} {chance:>6.2f} {neg:>5}", flush=True)


if __name__ == "__main__":
    main()
