"""Deployed round vs simulated round at 10 clients (issue 23: at most 3x).

Usage: python benchmarks/bench_flower_deploy.py [OUT_DIR] [--insecure]

The setting, fixed before the runs: 10 clients, 5 market rounds, 1 epoch, hidden 16,
1000 digits, beta 0.5, seed 0 (``CFG`` below). Both runs go through the same
ServerApp; a round is timed by it from its server phase to its checkpoint (sending,
waiting for every reply, settling, committing). Round 0 is reported apart (it also
initialises every client's state); "per round" is the mean of rounds 1-5. The deployed
run is ``ipfl flower deploy-local``'s path: TLS and SuperNode authentication on
(``--insecure`` also runs the plain mode), one SuperNode and one long-lived executor
per client. The simulation is Flower's Ray simulation (``ipfl flower simulate``). The
two metrics files are compared byte for byte.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from training import Config

CFG = Config(clients=10, rounds=5, epochs=1, hidden=16, max_samples=1000, beta=0.5, seed=0)


def main() -> None:
    """Run the simulation, then the deployment(s); print one line each and the ratio."""
    from ipfl.flower_runs import deploy_local, simulate

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0] if args else tempfile.mkdtemp(prefix="ipfl-bench-deploy-"))
    out.mkdir(parents=True, exist_ok=True)
    runs = {"simulation": simulate(CFG, out / "sim")}
    runs["deploy (TLS + auth)"] = deploy_local(CFG, out / "deploy", round_timeout=120,
                                               node_timeout=300, echo=lambda *_: None)
    if "--insecure" in sys.argv:
        runs["deploy (--insecure)"] = deploy_local(CFG, out / "plain", round_timeout=120,
                                                   node_timeout=300, insecure=True,
                                                   echo=lambda *_: None)
    want = (out / "sim" / "metrics.jsonl").read_bytes()
    sim = float(np.mean(runs["simulation"]["seconds"][1:]))
    for (name, res), folder in zip(runs.items(), ["sim", "deploy", "plain"], strict=False):
        if res.get("error"):
            print(f"{name}: error: {res['error']}")
            continue
        secs = res["seconds"]
        same = (out / folder / "metrics.jsonl").read_bytes() == want
        print(f"{name:20s} round 0 {secs[0]:6.2f} s  rounds 1-5 {np.mean(secs[1:]):6.2f} s "
              f"per round (max {max(secs[1:]):5.2f})  ratio to simulation "
              f"{np.mean(secs[1:]) / sim:5.2f}  total {res['total']:6.1f} s  "
              f"metrics identical to simulation: {same}")
    print(f"output: {out}")


if __name__ == "__main__":
    main()
