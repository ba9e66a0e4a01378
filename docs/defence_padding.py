"""How far a liar can pad its displacement estimate (docs/defence.md, threat model).

For seeds 0-2 of the truthfulness experiment's quick-preset configs (all honest), trains
round 0, then re-runs client 0's round-0 training with ``epochs`` multiplied by 2, 5 and
10 (the same data: what a liar who over-reports N can do to look bigger) and prints the
liar's displacement estimate against its true size in each case. Run from the
repository root: ``PYTHONPATH=$PWD .venv/bin/python docs/defence_padding.py``.
"""

from __future__ import annotations

import dataclasses
import tempfile

from ipfl.experiments import check_request, truthfulness
from ipfl.experiments.core import PRESETS
from mechanism import size_from_displacement
from training.client import run_client
from training.federation import prepare
from training.loop import client_results
from training.server import displacements
from training.session import Session

PADS = (1, 2, 5, 10)


def main() -> None:
    """Print one row per seed: the liar's N and its estimate at each padding."""
    preset = PRESETS["quick"]
    common = check_request("truthfulness", "quick")["common"]
    print("| seed | liar's N | " + " | ".join(f"N̂, epochs x{p}" for p in PADS) + " |")
    print("|---|---|" + "---|" * len(PADS))
    for seed in range(3):
        cfg = next(s.cfg for s in truthfulness.specs(preset, [seed], common)
                   if s.keys["defence"] == "none" and s.keys["lie"] == "honest")
        with tempfile.TemporaryDirectory() as tmp:
            session = Session.open(tmp, cfg.replace(rounds=1))
            session.start(prepare(session.cfg))
            fed = session.fed
            plan = session.plan(0)
            _, state = session.absorb(plan, dict(client_results(session, plan)))
            N = fed.profiles.true.N
            theta0 = fed.theta0[fed.shared]
            delta = displacements(state.uploads, theta0)
            est = []
            for pad in PADS:
                ctx = dataclasses.replace(fed.context(0, 0), epochs=cfg.epochs * pad)
                out, _ = run_client(session.algo, plan.message(0),
                                    session.state.clients[0], fed.data[0], ctx)
                d = delta.copy()
                d[0] = displacements(out.upload[None], theta0)[0]
                est.append(size_from_displacement(d, N)[0])
        print(f"| {seed} | {N[0]:g} | " + " | ".join(f"{e:.0f}" for e in est) + " |")


if __name__ == "__main__":
    main()
