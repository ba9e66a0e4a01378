"""Is the validation gain on the importers' data an estimator of N? (docs/defence.md).

For seeds 0-5 of the truthfulness experiment's quick-preset configs (all honest), trains
round 0 only and evaluates each client's round-0 model on every *other* client's
validation split (what importers could measure). Prints, per seed, the correlation
with ln N of: ln(displacement) (the chosen observable) and ln of the mean validation
error over the importers (what pay on delivery would measure). Run from the repository
root: ``PYTHONPATH=$PWD .venv/bin/python docs/defence_crossval.py``.
"""

from __future__ import annotations

import tempfile

import numpy as np
import torch

from ipfl.experiments import check_request, truthfulness
from ipfl.experiments.core import PRESETS
from training.client import evaluate
from training.federation import prepare
from training.loop import client_results
from training.server import displacements
from training.session import Session


def main() -> None:
    """Print one row per seed."""
    preset = PRESETS["quick"]
    common = check_request("truthfulness", "quick")["common"]
    print("| seed | corr(ln N, ln δ) | corr(ln N, ln mean importer error) | "
          "corr(ln N, mean importer loss) |")
    print("|---|---|---|---|")
    for seed in range(6):
        cfg = next(s.cfg for s in truthfulness.specs(preset, [seed], common)
                   if s.keys["defence"] == "none" and s.keys["lie"] == "honest")
        with tempfile.TemporaryDirectory() as tmp:
            session = Session.open(tmp, cfg.replace(rounds=1))
            session.start(prepare(session.cfg))
            fed = session.fed
            plan = session.plan(0)
            _, state = session.absorb(plan, dict(client_results(session, plan)))
        N = fed.profiles.true.N
        delta = displacements(state.uploads, fed.theta0[fed.shared])
        err, loss = np.zeros(fed.m), np.zeros(fed.m)
        with torch.no_grad():
            for j in range(fed.m):
                p, b = state.clients[j]["params"], state.clients[j]["buffers"]
                ev = [evaluate(fed.model, p, b, fed.data[i].X_val, fed.data[i].y_val)
                      for i in range(fed.m) if i != j]
                err[j] = np.mean([1 - a for a, _ in ev])
                loss[j] = np.mean([x for _, x in ev])
        x = np.log(N)
        print(f"| {seed} | {np.corrcoef(x, np.log(delta))[0, 1]:.2f} | "
              f"{np.corrcoef(x, np.log(err))[0, 1]:.2f} | {np.corrcoef(x, loss)[0, 1]:.2f} |")


if __name__ == "__main__":
    main()
