"""Benchmark: local training of one round, clients one by one versus trained together.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/bench_clients.py [--reps 3] [--rounds 5]

Two settings of issue 10: the digits MLP with m = 20 clients (the demo: 5 epochs,
batch 16) and the SmallCNN on Fashion-MNIST with m = 10 clients (a per-client
subsample: ``--fashion-samples`` images split over the clients; Debian's
``dataset-fashion-mnist`` folder); and the ``--repro`` experiments' setting (the MLP
on 10,000 Fashion-MNIST images, 10 clients, 2 epochs). For each, the client steps
of one round (iPFL's: plain SGD on the proximal objective, every client a different
start, centre and weight) are timed in the loop and batched with both kernels (``vmap``, and
``stacked`` where the model is a chain of linear layers) in the same process,
interleaved, ``--reps`` times
(medians of wall-clock and CPU time, one torch thread), and the outputs compared.
Then a bound: m training steps of one batch each against one step on all m
batches with one shared set of weights (no batching of per-client weights can do
better). Then whole runs of ``--rounds`` rounds in both modes for seeds 0, 1, 2 give
the mean final accuracy of each mode.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import numpy as np
import torch

from training import Config, prepare, train
from training.algorithms import get_algorithm
from training.algorithms.base import Message
from training.batched import train_batched
from training.stacked import stacked_chain

SETTINGS = {
    "digits MLP, m = 20": {"dataset": "digits", "clients": 20, "model": "mlp"},
    "Fashion-MNIST CNN, m = 10": {"dataset": "fashion_mnist", "clients": 10, "model": "cnn"},
    # the --repro experiments' model and data (ipfl/experiments/core.py), 2 epochs
    "Fashion-MNIST MLP, m = 10 (--repro)": {"dataset": "fashion_mnist", "clients": 10,
                                            "model": "mlp", "epochs": 2,
                                            "max_samples": 10000},
}


def one_round(cfg: Config, reps: int) -> dict[str, float]:
    """Time one round's client steps, loop versus batched, interleaved; compare outputs."""
    fed = prepare(cfg)
    algo = get_algorithm(cfg)
    gen = torch.Generator().manual_seed(0)
    P = int(fed.shared.sum())
    msgs = [Message(start=fed.theta0[fed.shared] + 0.01 * torch.randn(P, generator=gen),
                    center=fed.theta0[fed.shared], prox=0.05 * (i % 4)) for i in range(fed.m)]
    states = [algo.init_client_state(i, fed.theta0, fed.buffers0) for i in range(fed.m)]
    ctxs = [fed.context(i, 1) for i in range(fed.m)]
    modes = ["loop", "vmap"] + (["stacked"] if stacked_chain(fed.model) else [])
    times: dict[str, list[float]] = {k: [] for m in modes for k in (m, m + "_cpu")}
    outs = {}
    for _ in range(reps):
        for mode in modes:
            t0, c0 = time.perf_counter(), time.process_time()
            if mode == "loop":
                outs[mode] = [algo.client_step(msgs[i], states[i], fed.data[i], ctxs[i])
                              for i in range(fed.m)]
            else:
                outs[mode] = train_batched(algo, msgs, states, fed.data, ctxs, kernel=mode)
            times[mode].append(time.perf_counter() - t0)
            times[mode + "_cpu"].append(time.process_time() - c0)
    res = {k: statistics.median(v) for k, v in times.items()}
    res["batched"], res["batched_cpu"] = res[modes[-1]], res[modes[-1] + "_cpu"]
    res["kernel"] = modes[-1]
    diff = max(float((a.evaluated - b.evaluated).abs().max())
               for a, b in zip(outs["loop"], outs[modes[-1]], strict=True))
    n = [d.n_train for d in fed.data]
    return {**res, "max_param_diff": diff, "n_min": min(n), "n_max": max(n),
            "P": fed.theta0.numel()}


def shared_weight_bound(cfg: Config, reps: int) -> dict[str, float]:
    """Time m forward/backward steps of one batch each against one step on all m batches.

    One model, the same weights for every batch: the big step is what any batching of
    the clients could at best achieve (per-client weights only add work), so
    ``small / big`` estimates the most batching can give on this machine (an estimate:
    the loop's per-step bookkeeping, which batching also shares out, is left out).
    """
    fed = prepare(cfg)
    net, m, B = fed.model, fed.m, cfg.batch_size
    X = torch.cat([d.X_train for d in fed.data])[: m * B]
    y = torch.cat([d.y_train for d in fed.data])[: m * B]

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        net.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(xb), yb).backward()

    t = {"small": [], "big": []}
    for _ in range(reps):
        t0 = time.perf_counter()
        for i in range(m):
            step(X[i * B:(i + 1) * B], y[i * B:(i + 1) * B])
        t["small"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        step(X, y)
        t["big"].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in t.items()} | {"m": m, "B": B}


def final_accuracy(cfg: Config, rounds: int) -> dict[str, list[float]]:
    """Mean final-round test accuracy of both modes for seeds 0, 1, 2 (and run times)."""
    out: dict[str, list[float]] = {"off": [], "on": [], "off_s": [], "on_s": []}
    for seed in (0, 1, 2):
        for mode in ("off", "on"):
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                rows = train(cfg.replace(seed=seed, rounds=rounds, client_batching=mode), d,
                             progress=False)
                out[mode + "_s"].append(time.perf_counter() - t0)
            out[mode].append(float(np.mean([r["acc"] for r in rows if r["round"] == rounds])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the accuracy runs")
    parser.add_argument("--fashion-samples", type=int, default=4000)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# python {platform.python_version()}, torch {torch.__version__}, "
          f"{platform.machine()}, 1 torch thread, iPFL client step, device cpu")
    cfgs = {}
    for name, kw in SETTINGS.items():
        extra = ({"max_samples": args.fashion_samples}
                 if kw["dataset"] == "fashion_mnist" and "max_samples" not in kw else {})
        cfgs[name] = Config(algorithm="ipfl", **kw, **extra)
    print("| setting | P | train samples per client | loop, wall / CPU (s) |"
          " batched, vmap kernel, wall / CPU (s) | batched, stacked kernel, wall / CPU (s) |"
          " speed-up of the default kernel, wall / CPU | max abs parameter difference |")
    print("|---|---|---|---|---|---|---|---|")
    for name, cfg in cfgs.items():
        r = one_round(cfg, args.reps)
        stacked = (f"{r['stacked']:.3f} / {r['stacked_cpu']:.3f}" if "stacked" in r
                   else "n/a (not a chain of linear layers)")
        print(f"| {name} | {r['P']:,} | {r['n_min']}-{r['n_max']} |"
              f" {r['loop']:.3f} / {r['loop_cpu']:.3f} | {r['vmap']:.3f} /"
              f" {r['vmap_cpu']:.3f} | {stacked} | {r['loop'] / r['batched']:.1f}x /"
              f" {r['loop_cpu'] / r['batched_cpu']:.1f}x ({r['kernel']}) |"
              f" {r['max_param_diff']:.1e} |", flush=True)
    print()
    print("| setting | m steps of one batch (s) | one step on all m batches, shared weights (s) |"
          " estimated bound on any batching's speed-up |")
    print("|---|---|---|---|")
    for name, cfg in cfgs.items():
        b = shared_weight_bound(cfg, max(args.reps, 5))
        print(f"| {name}, batch {b['B']} | {b['small']:.4f} | {b['big']:.4f} |"
              f" {b['small'] / b['big']:.1f}x |", flush=True)
    if args.skip_accuracy:
        return
    print()
    print(f"| setting | mean final accuracy, loop (seeds 0, 1, 2) | batched | difference"
          f" (points) | whole run of {args.rounds} rounds, loop / batched (s) |")
    print("|---|---|---|---|---|")
    for name, cfg in cfgs.items():
        a = final_accuracy(cfg, args.rounds)
        lo, on = np.mean(a["off"]), np.mean(a["on"])
        print(f"| {name} | {lo:.4f} ({', '.join(f'{x:.4f}' for x in a['off'])}) |"
              f" {on:.4f} ({', '.join(f'{x:.4f}' for x in a['on'])}) |"
              f" {100 * (on - lo):+.2f} | {np.median(a['off_s']):.1f} /"
              f" {np.median(a['on_s']):.1f} |", flush=True)


if __name__ == "__main__":
    main()
