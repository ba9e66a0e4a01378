"""Exact row solve (outer approximation + CBC) versus Algorithm 2, by market size.

Run:  python benchmarks/bench_exact.py [--sizes 50,200] [--markets 3] [--rows 5] [--hard]

For each m, ``--markets`` seeded random markets (``random_market(m, seed=k)``)
and the first ``--rows`` rows of each: time each certified exact row solve;
greedy's time is for the whole graph of the same market (all m rows).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mechanism import greedy_graph, objective, random_market
from mechanism.exact import exact_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50,200")
    ap.add_argument("--markets", type=int, default=3)
    ap.add_argument("--rows", type=int, default=5)
    ap.add_argument("--hard", action="store_true",
                    help="cheap models, eager clients (c in [0.001, 0.05], K in [1e5, 1e6], "
                         "lam = 0.01): many candidates survive pruning")
    args = ap.parse_args()
    print(f"{'m':>5} {'rows':>5} {'median row s':>13} {'max row s':>10} {'certified':>10} "
          f"{'mean iters':>11} {'greedy graph s':>15} {'greedy rows opt':>16}")
    for m in (int(s) for s in args.sizes.split(",")):
        times, ok, iters, gtimes, gopt = [], [], [], [], []
        for k in range(args.markets):
            mk = (random_market(m, seed=k, c_range=(0.001, 0.05), K_range=(1e5, 1e6), lam=0.01)
                  if args.hard else random_market(m, seed=k))
            t0 = time.perf_counter()
            A = greedy_graph(mk, "paper")
            gtimes.append(time.perf_counter() - t0)
            skip = greedy_graph(mk, "skip")
            phi_g = objective(mk, A)
            for i in range(min(args.rows, m)):
                r = exact_row(mk, i, initial=skip[i])
                times.append(r.time)
                ok.append(r.status == "optimal")
                iters.append(r.iterations)
                gopt.append(phi_g[i] <= r.objective + 1e-9 * abs(r.objective))
        print(f"{m:>5} {len(times):>5} {np.median(times):>13.3f} {np.max(times):>10.3f} "
              f"{np.mean(ok):>10.2f} {np.mean(iters):>11.2f} {np.median(gtimes):>15.5f} "
              f"{np.mean(gopt):>16.2f}")


if __name__ == "__main__":
    main()
