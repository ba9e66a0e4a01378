"""Benchmark: Algorithm 2 + payments, vectorised versus the scalar reference.

Run:  .venv/bin/python benchmarks/bench_mechanism.py  (or: make bench)

Each measurement runs in a fresh subprocess so that its peak resident memory
(ru_maxrss) belongs to that size alone. Times are wall-clock medians of
``--repeat`` runs (one run at m = 10000). The second table times the
implementation before the closed-form filter (``_greedy_graph_unfiltered``, same
payments) against today's in the same run. Wall-clock and CPU (process) time are both
reported: on a shared machine CPU time is the steadier measure. The reference is
mechanism/reference.py: one scipy brentq per client pair and Python loops, as the
paper prints it.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def one(m: int, variant: str, impl: str, repeat: int, seed: int) -> dict:
    from mechanism import greedy_graph, payments, random_market
    from mechanism.graph import _greedy_graph_unfiltered
    from mechanism.reference import reference_graph, reference_payments

    times, cpu, A = [], [], None
    for _ in range(repeat):
        fresh = random_market(m, seed=seed)  # no cached weights between repeats
        start, start_cpu = time.perf_counter(), time.process_time()
        if impl == "vectorised":
            A = greedy_graph(fresh, variant)
            payments(fresh, A)
        elif impl == "unfiltered":  # the implementation before the closed-form filter
            A = _greedy_graph_unfiltered(fresh, variant)
            payments(fresh, A)
        else:
            A = reference_graph(fresh, variant)
            reference_payments(fresh, A)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        del fresh
    return {
        "m": m, "variant": variant, "impl": impl, "median_s": statistics.median(times),
        "median_cpu_s": statistics.median(cpu),
        "runs": repeat, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "edges": int(np.asarray(A).sum()), "market_seed": seed,
    }


def run(m: int, variant: str, impl: str, repeat: int, seed: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(m), variant, impl, str(repeat), str(seed)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000, 10000])
    parser.add_argument("--ratio-sizes", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--unfiltered-sizes", type=int, nargs="+", default=[5000])
    args = parser.parse_args()
    if args.one:
        m, variant, impl, repeat, seed = args.one
        print(json.dumps(one(int(m), variant, impl, int(repeat), int(seed))))
        return

    print(f"# python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}, market seed {args.seed}")
    print("| m | variant | vectorised, wall (s) | CPU (s) | peak RSS (MiB) | edges |")
    print("|---|---|---|---|---|---|")
    for m in args.sizes:
        for variant in ("paper", "skip"):
            r = run(m, variant, "vectorised", 1 if m >= 10000 else args.repeat, args.seed)
            print(f"| {m} | {variant} | {r['median_s']:.3f} | {r['median_cpu_s']:.3f} |"
                  f" {r['peak_rss_mib']:.0f} |"
                  f" {r['edges']} |", flush=True)
    print()
    print("| m | variant | vectorised, wall / CPU (s) | unfiltered, wall / CPU (s) |"
          " peak RSS (MiB), vectorised / unfiltered | speed-up, wall / CPU |")
    print("|---|---|---|---|---|---|")
    for m in args.unfiltered_sizes:
        for variant in ("paper", "skip"):
            fast = run(m, variant, "vectorised", 1, args.seed)
            slow = run(m, variant, "unfiltered", 1, args.seed)
            assert fast["edges"] == slow["edges"], "implementations disagree"
            print(f"| {m} | {variant} | {fast['median_s']:.2f} / {fast['median_cpu_s']:.2f} |"
                  f" {slow['median_s']:.2f} / {slow['median_cpu_s']:.2f} |"
                  f" {fast['peak_rss_mib']:.0f} / {slow['peak_rss_mib']:.0f} |"
                  f" {slow['median_s'] / fast['median_s']:.1f}x /"
                  f" {slow['median_cpu_s'] / fast['median_cpu_s']:.1f}x |", flush=True)
    print()
    print("| m | variant | vectorised (s) | scalar reference (s) | speed-up |")
    print("|---|---|---|---|---|")
    for m in args.ratio_sizes:
        for variant in ("paper", "skip"):
            fast = run(m, variant, "vectorised", args.repeat, args.seed)
            slow = run(m, variant, "reference", 1, args.seed)
            assert fast["edges"] == slow["edges"], "implementations disagree"
            print(f"| {m} | {variant} | {fast['median_s']:.4f} | {slow['median_s']:.2f} |"
                  f" {slow['median_s'] / fast['median_s']:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
