"""Wall time of one round: every algorithm's server step against local training.

Uses the SmallCNN on *synthetic* 32x32 RGB tensors (random images, 10 classes), so no
dataset is needed. The uploads are the common initial model perturbed per client. Each
algorithm's :meth:`~training.algorithms.Algorithm.server_step` is timed as called by
the transport (median of ``--reps`` calls); local training is one client's
``--epochs`` epoch(s) of SGD on ``--samples`` images, timed on 3 clients and
multiplied by ``m`` (clients train one after another in process).

    .venv/bin/python benchmarks/bench_round.py [--clients 10 100] [--samples 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from training import ALGORITHMS, Config
from training.algorithms import ServerInput, get_algorithm
from training.algorithms.base import Algorithm
from training.client import ClientContext, LocalData, local_sgd
from training.models import SmallCNN, get_flat
from training.profiles import Reports


def server_input(m: int, theta: torch.Tensor, theta0: torch.Tensor, N: np.ndarray) -> ServerInput:
    rep = Reports.make(N=N, c=np.full(m, 0.2), K=100 * N)
    return ServerInput(round=1, clients=np.arange(m), m=m, reports=rep, true=rep, uploads=theta,
                       infos={}, theta0=theta0, seed=0)


def bench(m: int, samples: int, epochs: int, reps: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = SmallCNN(3, 10, 32)
    theta0, buf = get_flat(model)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(samples, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (samples,), generator=g)
    theta = theta0 + 0.01 * torch.randn(m, theta0.numel(), generator=g)
    N = np.full(m, float(samples)) + np.arange(m)
    out = {"m": m, "P": theta0.numel()}
    for name in ALGORITHMS:
        algo = get_algorithm(Config(algorithm=name, clients=m))
        state = algo.init_server_state(m, theta0)
        inp = server_input(m, theta, theta0, N)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            algo.server_step(inp, state)
            times.append(time.perf_counter() - t0)
        out[name] = float(np.median(times))
    shared = torch.ones(theta0.numel(), dtype=torch.bool)
    data = LocalData(X, y, X[:0], y[:0], X[:0], y[:0])
    objective = Algorithm.local_objective.__get__(object())
    n_timed = min(m, 3)
    warm = ClientContext(model=model, shared=shared, client=0, round=0, seed=0, epochs=1,
                         batch_size=16, lr=0.05)
    local_sgd(warm, data, {"params": theta0.clone(), "buffers": buf}, theta0, theta0, 0.0,
              objective)  # warm-up: the first call pays one-time allocation costs
    t0 = time.perf_counter()
    for i in range(n_timed):
        ctx = ClientContext(model=model, shared=shared, client=i, round=1, seed=0,
                            epochs=epochs, batch_size=16, lr=0.05)
        local_sgd(ctx, data, {"params": theta[i].clone(), "buffers": buf}, theta[i], theta[i],
                  0.01, objective)
    out["train"] = (time.perf_counter() - t0) / n_timed * m
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--samples", type=int, default=64, help="training samples per client")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"SmallCNN on synthetic 32x32x3 tensors, {args.samples} samples/client, "
          f"{args.epochs} epoch(s), batch 16, {args.threads} torch thread(s)")
    names = list(ALGORITHMS)
    print("| m | P | local training (s) | " + " | ".join(f"{n} server (s)" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for m in args.clients:
        r = bench(m, args.samples, args.epochs, args.reps)
        print(f"| {r['m']} | {r['P']} | {r['train']:.2f} | "
              + " | ".join(f"{r[n]:.4f} ({100 * r[n] / (r[n] + r['train']):.1f} %)"
                           for n in names) + " |", flush=True)


if __name__ == "__main__":
    main()
