"""Johnson-Lindenstrauss distances at m = 50: distance error and graph changes.

Run:  .venv/bin/python benchmarks/jl_distances.py   (about a minute on 2 cores)

Settings (fixed before the runs, docs/scale.md): ``training.train`` on the bundled digits
with ``Config(clients=50, rounds=R, seed=0)`` (every other key its default: the MLP,
P = 4,810 shared parameters, iPFL with lam = 1, distance sqeuclidean_mean, d_scale median),
for R in 1, 5 and 15; the uploads the market of round R + 1 would see are read from
``checkpoint.pt``, the reported N, c, K from ``rounds/R.json``. For each k in 8, 16, 32,
64, 128, 256 and projection seeds 0..49: the exact market (``market_distances`` of the
exact distances) against the projected one (``market_points`` of ``project_uploads``),
both with the recorded profiles and lam. Reported: the relative error
``|d~_ij / d_ij - 1|`` of the market's distances over all pairs and seeds (median, 95th
percentile, max), the share of seeds whose Algorithm 2 graph (the session's solver,
"paper") differs from the exact one, and the mean share of edges that differ.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch


def uploads_after(rounds: int, clients: int, seed: int, work: Path) -> tuple[torch.Tensor, dict]:
    from training import Config, train

    run = work / f"run-{rounds}"
    train(Config(clients=clients, rounds=rounds, seed=seed), run, progress=False)
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    doc = json.loads((run / "rounds" / f"{rounds:04d}.json").read_text())
    return state["uploads"], doc["inputs"]


def main() -> None:
    from mechanism import Market, greedy_graph
    from training.distance import get_distance
    from training.server import market_distances, market_points, project_uploads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 5, 15])
    parser.add_argument("--dims", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jl-"))
    print(f"# m = {args.clients}, projection seeds 0..{args.seeds - 1}")
    print("| rounds trained | k | rel. error median | 95th pct | max | graphs changed | "
          "edges changed | edges (exact) |\n|---|---|---|---|---|---|---|---|")
    for R in args.rounds:
        theta, ins = uploads_after(R, args.clients, 0, work)
        th = theta.to(torch.float64)
        N, K, lam = np.array(ins["N"]), np.array(ins["K"]), float(ins["lam"])
        c = np.array([float(x) for x in ins["c"]])
        d = market_distances(get_distance("sqeuclidean_mean").pairwise(th).numpy(), "median")
        exact = greedy_graph(Market(N=N, c=c, K=K, d=d, lam=lam))
        off = ~np.eye(d.shape[0], dtype=bool)
        for k in args.dims:
            errs, changed, edge_diff = [], 0, []
            for s in range(args.seeds):
                Y = market_points(project_uploads(th, k, s), "median")
                mk = Market(N=N, c=c, K=K, points=Y, lam=lam).dense()
                errs.append(np.abs(mk.d[off] / d[off] - 1.0))
                A = greedy_graph(mk)
                diff = int((A != exact).sum())
                changed += diff > 0
                edge_diff.append(diff / max(1, int(exact.sum())))
            e = np.concatenate(errs)
            print(f"| {R} | {k} | {np.median(e):.3f} | {np.quantile(e, 0.95):.3f} | "
                  f"{e.max():.3f} | {changed}/{args.seeds} | {np.mean(edge_diff):.3f} | "
                  f"{int(exact.sum())} |", flush=True)


if __name__ == "__main__":
    main()
