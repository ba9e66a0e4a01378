"""Wall time of one iPFL round: local training versus the server step.

Uses the SmallCNN on *synthetic* 32x32 RGB tensors (random images, 10 classes), so no
dataset is needed. The server step is :func:`training.server.ipfl_server_step`:
distances (one batched Gram-matrix op), graph (Algorithm 2), payments, utilities and
prox-centres (one batched matrix product) for all clients at once.

    .venv/bin/python benchmarks/bench_round.py [--clients 10 100] [--samples 64]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch

from training.algorithms.base import Algorithm
from training.client import train_client
from training.models import SmallCNN, get_flat
from training.server import Reports, ipfl_server_step


def bench(m: int, samples: int, epochs: int, reps: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = SmallCNN(3, 10, 32)
    theta0, buf = get_flat(model)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(samples, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (samples,), generator=g)
    # models that differ: perturb the common init per client
    theta = theta0 + 0.01 * torch.randn(m, theta0.numel(), generator=g)
    N = np.full(m, float(samples)) + np.arange(m)
    rep = Reports.make(N=N, c=np.full(m, 0.2), K=100 * N, budget=np.full(m, math.inf))
    t_server = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(reps):
            t0 = time.perf_counter()
            res = ipfl_server_step(rep, theta, lam=100.0, eta=0.25)
            t_server.append(time.perf_counter() - t0)
    # local training of one client, timed, times m (clients train one after another here)
    objective = Algorithm.local_objective.__get__(object())  # the base eq. (7) objective
    train_client(model, X, y, theta0, buf, theta0, 0.0, epochs=1, batch_size=16, lr=0.05,
                 generator=torch.Generator().manual_seed(0), objective=objective)  # warm-up
    t0 = time.perf_counter()
    n_timed = min(m, 3)
    for i in range(n_timed):
        train_client(model, X, y, res.centers[i].float(), buf, res.centers[i].float(),
                     float(res.prox[i]), epochs=epochs, batch_size=16, lr=0.05,
                     generator=torch.Generator().manual_seed(i), objective=objective)
    t_local = (time.perf_counter() - t0) / n_timed * m
    server = float(np.median(t_server))
    return {"m": m, "P": theta0.numel(), "local_s": t_local, "server_s": server,
            "server_share": server / (server + t_local), "edges": int(res.A.sum())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--samples", type=int, default=64, help="training samples per client")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"SmallCNN on synthetic 32x32x3 tensors, {args.samples} samples/client, "
          f"{args.epochs} epoch(s), batch 16, {args.threads} torch thread(s)")
    print(f"{'m':>4} {'P':>7} {'local (s)':>10} {'server (s)':>11} {'server %':>9} {'edges':>6}")
    for m in args.clients:
        r = bench(m, args.samples, args.epochs, args.reps)
        print(f"{r['m']:>4} {r['P']:>7} {r['local_s']:>10.3f} {r['server_s']:>11.4f} "
              f"{100 * r['server_share']:>8.2f}% {r['edges']:>6}")


if __name__ == "__main__":
    main()
