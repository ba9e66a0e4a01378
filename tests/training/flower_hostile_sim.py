"""Run ``ipfl flower simulate``'s path (Ray) with client 1 uploading NaN in round 1.

Usage: ``python flower_hostile_sim.py RUN_DIR``; prints the outcome's error and the
drops as JSON. The hostile ClientApp is defined here, in ``__main__``, so Ray ships it
to its workers by value; it answers as the real one, then spoils client 1's upload.
"""

import json
import sys
from pathlib import Path

import numpy as np
from flwr.clientapp import ClientApp

import training.flower as real
from ipfl.flower_runs import simulate
from training import Config

hostile = ClientApp()


@hostile.query("profile")
def _profile(msg, context):
    return real._query_profile(msg, context)


@hostile.train()
def _train(msg, context):
    rep = real._train(msg, context)
    if context.node_config["partition-id"] == 1 and msg.metadata.group_id == "1":
        up = real.unpack(rep.content["reply"]["upload"])["upload"]
        rep.content["reply"]["upload"] = real.pack({"upload": np.full_like(up, np.nan)})
    return rep


@hostile.evaluate()
def _evaluate(msg, context):
    return real._evaluate(msg, context)


if __name__ == "__main__":
    real.client_app = hostile  # simulate() imports client_app from training.flower
    cfg = Config(clients=3, rounds=2, epochs=1, hidden=8, max_samples=300,
                 client_batching="off")
    out = simulate(cfg, Path(sys.argv[1]), cpus=2, round_timeout=300)
    print(json.dumps({"error": out["error"]}))
