"""The displacement estimator's realised error on the quick preset (docs/defence.md).

For the given seeds (default 0, 1, 2) of the truthfulness experiment's quick-preset configs under
``checked-displacement``, all honest and with client 0 reporting ten times its data size,
runs round 0 and round 1 only (``rounds = 1``: the estimate is fixed from round 0's
uploads, so round 1's is every round's while nobody quits) and reads round 1's file:
the estimate ``inputs.estimate`` against the true sizes. Prints a markdown table:
per seed, the mean and sd over the ten clients of ln(N̂/N) in the honest run, the
liar's estimate in the honest run and under its lie, and the largest change of any
estimate between the two runs. Run from the repository root:
``PYTHONPATH=$PWD .venv/bin/python docs/defence_estimator.py [--repro] [SEED ...]`` (two
short runs per seed; ``--repro``: the repro preset's configs instead of the quick one's).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from ipfl.experiments import check_request, truthfulness
from ipfl.experiments.core import PRESETS
from training import train


def round1(cfg: object, where: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (true N, reported N, estimate) of round 1 of ``cfg`` cut to one round."""
    train(cfg.replace(rounds=1), where, progress=False)
    ins = json.loads((where / "rounds" / "0001.json").read_text())["inputs"]
    true = ins.get("true", ins)
    return np.array(true["N"]), np.array(ins["N"]), np.array(ins["estimate"])


def main(seeds: list[int], name: str = "quick") -> None:
    """Run two short runs per seed of preset ``name`` and print the table."""
    preset = PRESETS[name]
    common = check_request("truthfulness", name)["common"]
    specs = {(s.keys["lie"], s.keys["factor"], s.keys["seed"]): s.cfg
             for s in truthfulness.specs(preset, seeds, common)
             if s.keys["defence"] == "checked-displacement"}
    print("| seed | ln(N̂/N) mean | ln(N̂/N) sd | max abs ln(N̂/N) | liar: N | N̂ honest | "
          "N̂ under N x10 | largest change of any N̂ |")
    print("|---|---|---|---|---|---|---|---|")
    allerr = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            N, _, est = round1(specs[("honest", 1.0, seed)], Path(tmp) / f"h{seed}")
            _, rep, est_lie = round1(specs[("N", 10.0, seed)], Path(tmp) / f"l{seed}")
            err = np.log(est / N)
            allerr.append(err)
            print(f"| {seed} | {err.mean():+.3f} | {err.std():.3f} | {np.abs(err).max():.3f} | "
                  f"{N[0]:g} (reports {rep[0]:g}) | {est[0]:.2f} | {est_lie[0]:.2f} | "
                  f"{np.max(np.abs(np.log(est_lie / est))):.3f} (ln) |")
    err = np.concatenate(allerr)
    print(f"| all | {err.mean():+.3f} | {err.std():.3f} | {np.abs(err).max():.3f} | | | | |")


if __name__ == "__main__":
    args = sys.argv[1:]
    name = "repro" if "--repro" in args else "quick"
    main([int(a) for a in args if a != "--repro"] or [0, 1, 2], name)
