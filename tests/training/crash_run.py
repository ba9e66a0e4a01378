"""Run ``ipfl train`` with a SIGKILL injected from outside the commit path (crash tests only).

Usage: ``python crash_run.py WRITER:ROUND ARGS...`` where WRITER is ``record``
(:meth:`RunDir.write_round`), ``ledger`` (:meth:`Ledger.book`), ``metrics``
(:meth:`RunDir.write_metrics`) or ``checkpoint`` (:meth:`RunDir.save_checkpoint`): the
process kills itself with SIGKILL right after that writer finished for that round.
"""

import os
import signal
import sys

from ipfl.cli import main
from training.ledger import Ledger
from training.rundir import RunDir


def _kill_after(cls, name, point, round_of):
    original = getattr(cls, name)

    def wrapped(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if round_of(self, args) == point:
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    setattr(cls, name, wrapped)


if __name__ == "__main__":
    writer, _, t = sys.argv[1].partition(":")
    t = int(t)
    targets = {
        "record": (RunDir, "write_round", lambda self, a: a[0]),
        "ledger": (Ledger, "book", lambda self, a: a[0]),
        "metrics": (RunDir, "write_metrics", lambda self, a: max(r["round"] for r in a[0])),
        "checkpoint": (RunDir, "save_checkpoint", lambda self, a: a[0]["round"]),
    }
    cls, name, round_of = targets[writer]
    _kill_after(cls, name, t, round_of)
    sys.argv = ["ipfl", *sys.argv[2:]]
    main()
