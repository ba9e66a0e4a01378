"""Train iPFL on the bundled digits from Python, then audit the run.

Run:  .venv/bin/python examples/train_digits.py
"""

import tempfile
from pathlib import Path

import numpy as np

from training import Config, audit_run, train

# 1. A configuration: every key is validated; unknown keys are errors.
cfg = Config(clients=10, rounds=5, epochs=3)

# 2. Train. The run directory gets config.json, metrics.jsonl, ledger.sqlite,
#    rounds/NNNN.json (market inputs and outputs) and checkpoint.pt.
run = Path(tempfile.mkdtemp()) / "run"
rows = train(cfg, run)

# 3. Mean personalised accuracy and utility per round.
for t in range(cfg.rounds + 1):
    r = [x for x in rows if x["round"] == t]
    print(f"round {t}: accuracy {np.mean([x['acc'] for x in r]):.3f}, "
          f"mean U {np.mean([x['U'] for x in r]):.3f}")

# 4. Anyone can recompute every round's market from the records.
report = audit_run(run)
print(f"audit: {len(report.rounds)} rounds, {len(report.problems)} mismatches")
