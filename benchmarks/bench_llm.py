"""Benchmark: SmolLM2-135M + LoRA on the CPU: load, a training step, greedy generation.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/bench_llm.py [--reps 2]

Needs the ``[llm]`` extra. Times (wall clock, median over ``--reps``) the first load of
the GGUF (dequantised to float32), a second model sharing that base, one SGD step on
the adapters for batch x tokens in ``(4, 48)``, ``(4, 96)``, ``(2, 192)`` with 1 and 2
torch threads, and a greedy completion of 48 tokens; then the process's peak resident
memory. docs/llm.md quotes its output; on a shared machine the times are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import torch


def main() -> None:
    """Print the timings."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    from training.llm import build_llm

    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    t = time.perf_counter()
    model = build_llm("smollm2", seed=0)
    print(f"first load (import + GGUF + LoRA): {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    build_llm("smollm2", seed=1)
    print(f"second model, shared base: {time.perf_counter() - t:.2f} s")
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=0.01)
    gen = torch.Generator().manual_seed(0)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch, length in ((4, 48), (4, 96), (2, 192)):
            X = torch.randint(0, 10_000, (batch, length), generator=gen)
            times = []
            for _ in range(args.reps):
                t = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(X), X).backward()
                opt.step()
                times.append(time.perf_counter() - t)
            print(f"threads {threads}: step {batch} x {length} tokens: "
                  f"{statistics.median(times):.2f} s")
    torch.set_num_threads(1)
    prompt = torch.tensor(model.tokenizer.encode('def add(a, b):\n    """Return a + b."""\n'))
    t = time.perf_counter()
    model.complete(prompt, max_new_tokens=48)
    print(f"greedy completion, up to 48 tokens, 1 thread: {time.perf_counter() - t:.2f} s")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory: {rss:.2f} GiB")


if __name__ == "__main__":
    main()
