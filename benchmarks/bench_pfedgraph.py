"""pFedGraph's graph step: the closed form (simplex projection) versus one generic QP per client.

Run:  python benchmarks/bench_pfedgraph.py [--m 100] [--repeats 200] [--generic-repeats 1]

One instance shaped like a real round: ``m`` model updates in 5 groups (a group's
centre plus noise, 2,000 parameters), :math:`d_{ij} = -\\cos` with the public code's
clipping, ``N`` drawn in [50, 500], ``alpha = 0.8``. The closed form solves all ``m``
rows at once (:func:`training.algorithms.pfedgraph.graph_weights`); the generic solve
is scipy's SLSQP on each row's QP (what the public code does with one cvxpy problem
per client). Prints the median wall time of the closed form over ``--repeats`` and of
the generic solves over ``--generic-repeats`` (about 0.3 s a row at m = 100, so one
pass by default), the speed-up and the largest difference between the two solutions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.optimize import minimize

from training.algorithms.pfedgraph import cosine_difference, graph_weights


def generic_qp_rows(d: np.ndarray, N: np.ndarray, alpha: float) -> np.ndarray:
    """Solve each row's QP min alpha||a - p||^2 + d_i.a over the simplex with SLSQP."""
    m = len(N)
    p = N / N.sum()
    out = np.empty((m, m))
    cons = [{"type": "eq", "fun": lambda a: a.sum() - 1.0, "jac": lambda a: np.ones_like(a)}]
    for i in range(m):
        di = d[i]
        res = minimize(lambda a, di=di: alpha * ((a - p) ** 2).sum() + di @ a, np.full(m, 1 / m),
                       jac=lambda a, di=di: 2 * alpha * (a - p) + di, method="SLSQP",
                       bounds=[(0.0, None)] * m, constraints=cons,
                       options={"ftol": 1e-12, "maxiter": 1000})
        out[i] = res.x
    return out


def instance(m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (d, N) of a clustered random round."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 2000))
    dW = centres[rng.integers(0, 5, m)] + 0.8 * rng.normal(size=(m, 2000))
    d = cosine_difference(torch.as_tensor(dW), torch.zeros(2000, dtype=torch.float64))
    return d, rng.uniform(50, 500, m)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--generic-repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alpha", type=float, default=0.8)
    args = ap.parse_args()
    d, N = instance(args.m, args.seed)
    closed, generic = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        a = graph_weights(d, N, args.alpha)
        closed.append(time.perf_counter() - t0)
    for _ in range(args.generic_repeats):
        t0 = time.perf_counter()
        ref = generic_qp_rows(d, N, args.alpha)
        generic.append(time.perf_counter() - t0)
    tc, tg = float(np.median(closed)), float(np.median(generic))
    print(f"m = {args.m}, alpha = {args.alpha}, repeats = {args.repeats} (closed form), "
          f"{args.generic_repeats} (SLSQP)")
    print(f"closed form (all rows):     {tc * 1e3:10.3f} ms")
    print(f"SLSQP, one QP per client:   {tg * 1e3:10.3f} ms")
    print(f"speed-up:                   {tg / tc:10.0f} x")
    print(f"max |a_closed - a_SLSQP|:   {np.abs(a - ref).max():10.2e}")
    edges = ((a > 1e-12).sum() - np.trace(a > 1e-12)) / args.m
    print(f"mean off-diagonal edges per client: {edges:.1f}")


if __name__ == "__main__":
    main()
