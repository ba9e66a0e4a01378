"""Per-round time of one setting three ways: ipfl train, Flower's Ray simulation, loopback.

Usage: python benchmarks/bench_flower.py [OUT_DIR] [--no-loopback]

The setting is the equivalence test's (4 clients, 3 market rounds, 1 epoch, 400 digits);
the loopback run is `deploy-local`'s default (TLS and SuperNode authentication on).
A round is timed from its server phase to its checkpoint, the same span in all three
(for Flower the span includes sending the messages and waiting for every reply). The
three metrics files are compared byte for byte.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from training import Config, Session, prepare
from training.loop import run_round

CFG = Config(clients=4, rounds=3, epochs=1, hidden=16, max_samples=400, beta=0.5)


def train_rounds(run_dir: Path) -> tuple[list[float], float]:
    """Return per-round seconds and the total of an in-process run (train's loop, timed)."""
    t0 = time.perf_counter()
    session = Session.open(run_dir, CFG)
    session.start(prepare(CFG))
    secs = []
    for t in session.rounds():
        s = time.perf_counter()
        run_round(session, t)  # plan, client steps, absorb, commit (metrics, checkpoint)
        secs.append(time.perf_counter() - s)
    return secs, time.perf_counter() - t0


def main() -> None:
    """Run the three and print one line each."""
    from ipfl.flower_runs import deploy_local, simulate

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0] if args else tempfile.mkdtemp(prefix="ipfl-bench-flower-"))
    out.mkdir(parents=True, exist_ok=True)
    res = {"train": train_rounds(out / "train")}
    sim = simulate(CFG, out / "sim")
    res["simulation"] = (sim["seconds"], sim["total"])
    if "--no-loopback" not in sys.argv:
        dep = deploy_local(CFG, out / "loop", round_timeout=120, node_timeout=60,
                           echo=lambda *_: None)
        res["loopback"] = (dep["seconds"], dep["total"])
    want = (out / "train" / "metrics.jsonl").read_bytes()
    for name, (secs, total) in res.items():
        same = (out / {"train": "train", "simulation": "sim", "loopback": "loop"}[name]
                / "metrics.jsonl").read_bytes() == want
        print(f"{name:10s}  round 0 {secs[0]:7.2f} s  rounds 1-3 {np.mean(secs[1:]):7.2f} s "
              f"per round  total {total:6.1f} s  metrics identical to train: {same}")


if __name__ == "__main__":
    main()
