"""The experiment runner: presets, settings, run specs, a shared resumable run store.

An experiment is a list of :class:`Spec` (one training run each: method x setting x
seed x variant) plus an ``analyse`` function turning the finished runs' metric rows
into CSVs, PNG figures and a Markdown summary. This module runs the specs:

* every run lives in a *store* folder named by the hash of its resolved config
  (``<store>/<hash>``), and the experiment folder links it as ``runs/<label>``; two
  experiments needing the same run (``performance`` and ``utility`` share every run)
  train it once;
* a run is finished when ``done.json`` is in its folder; a finished run is never
  redone, an unfinished one resumes from its last checkpoint
  (:func:`training.train` with ``resume=True``), so an interrupted experiment
  continues where it stopped;
* the dataset is read once per process and passed to every run.

Layout of an experiment folder::

    OUT/experiment.json     the experiment, preset, seeds and the resolved base config
    OUT/runs/<label>        one link per method x setting x seed (x variant)
    OUT/<name>.csv ...      the numbers (see each experiment)
    OUT/*.png               figures
    OUT/summary.md          mean and spread over seeds
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atomicio import atomic_write_text

__all__ = ["PER_RUN", "PRESETS", "SETTINGS", "Preset", "Spec", "apply_overrides", "mean_sd",
           "methods", "run_specs", "setting_keys", "write_csv"]


def methods() -> tuple[str, ...]:
    """Return the methods compared: every registered algorithm, in table order.

    The paper's eight (iPFL and seven baselines) plus local training, and any algorithm
    added to :mod:`training.algorithms` (:func:`training.algorithms.methods`).
    """
    from training.algorithms import methods as registered

    return registered()

#: the paper's three partitions of Results 2.1 (Fig. 2's caption)
SETTINGS = ("NIID", "Cluster", "Skew")


@dataclass(frozen=True)
class Preset:
    """Common training keys of one preset, and how many rounds the market experiment runs.

    ``base`` holds :class:`training.Config` keys; ``groups`` is the Cluster partition's
    number of groups (it needs at least that many clients).
    """

    name: str
    base: dict[str, Any]
    market_rounds: int
    market_clients: int = 12
    why: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


#: The presets. ``repro`` was fixed (and committed, docs/experiments-repro-preset.md)
#: before any of its runs was made; see docs/experiments.md.
PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        "tiny", {"dataset": "synthetic", "clients": 4, "rounds": 2, "epochs": 1, "hidden": 16,
                     "model": "mlp", "groups": 2, "classes_per_client": 5},
        market_rounds=2, market_clients=6,
        extra={"truthfulness": {"lr": 0.05}, "regimes": {"lr": 0.05}},
        why="CI only: 4 clients on 600 synthetic samples, 2 rounds, 1 epoch."),
    "quick": Preset(
        "quick", {"dataset": "digits", "clients": 10, "rounds": 8, "epochs": 5, "model": "mlp",
                      "hidden": 64, "groups": 4},
        market_rounds=8, extra={"truthfulness": {"lr": 0.05}, "regimes": {"lr": 0.05}},
        why="Minutes on 2 cores: scikit-learn's bundled digits (1,797 images, 8x8), "
            "10 clients, 8 rounds, the MLP."),
    "repro": Preset(
        "repro", {"dataset": "fashion_mnist", "clients": 10, "max_samples": 10000, "rounds": 15,
                      "epochs": 2, "model": "mlp", "hidden": 64, "groups": 4},
        market_rounds=20,
        why="Real Fashion-MNIST, 10 clients sharing a seeded random subsample of 10,000 "
            "of the 70,000 images (about 1,000 per client, 55 % train / 15 % validation / "
            "30 % test), the MLP (784-64-10), 15 rounds of 2 local epochs; the market "
            "experiment runs the paper's 20 rounds."),
    "paper": Preset(
        "paper", {"dataset": "fashion_mnist", "clients": 10, "max_samples": 0, "rounds": 50,
                      "epochs": 5, "model": "cnn", "hidden": 64, "groups": 4},
        market_rounds=20,
        why="The paper's setting as far as it is known: all 70,000 Fashion-MNIST images, "
            "10 clients, the CNN, 50 rounds. Unknown (our choice): local epochs (5), "
            "batch size (16), learning rate (0.1), the CNN's exact layers, K and c "
            "(K = 100 N, c = 0.2), the split (55/15/30)."),
}


def setting_keys(setting: str, preset: Preset) -> dict[str, Any]:
    """Return the partition keys of a setting: NIID beta = 0.1, Cluster, Skew with 5 classes."""
    if setting == "NIID":
        return {"partition": "niid", "beta": 0.1}
    if setting == "Cluster":
        return {"partition": "cluster", "beta_between": 0.1, "beta_within": 10.0}
    if setting == "Skew":
        return {"partition": "skew", "classes_per_client": 5}
    raise ValueError(f"experiment: setting {setting!r} is not one of {list(SETTINGS)}")


#: keys every experiment sets run by run (the method, the seed, each setting's partition);
#: ``--set`` refuses them, and each experiment module adds its own ``PER_RUN``
PER_RUN: tuple[str, ...] = ("algorithm", "seed", *dict.fromkeys(
    k for s in SETTINGS for k in setting_keys(s, None)))


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """Return ``cfg`` (a :class:`training.Config`) with ``--set`` overrides applied.

    ``overrides`` maps common keys (``"c"``) and algorithm-table keys (``"ipfl.lam"``) to
    values; a table key applies only to a config of that algorithm. The result is
    validated again (:class:`ValueError` naming the key and value).
    """
    from training import Config

    if not overrides:
        return cfg
    doc = cfg.to_dict()
    for key, value in overrides.items():
        table, dot, sub = key.partition(".")
        if not dot:
            doc[key] = value
        elif table == cfg.algorithm:
            doc[table][sub] = value
    return Config.from_dict(doc)


@dataclass(frozen=True)
class Spec:
    """One training run of an experiment: its label, its keys (for the CSVs) and config."""

    label: str
    keys: dict[str, Any]
    cfg: Any  # training.Config


#: what a run measures, beyond its config: bumped when the training code changes the
#: numbers a finished run holds, so a store never serves a run made by older code
#: (2: baselines scored as their references score them, attacks poison the upload only,
#: every round record keeps the distances; issue 18)
STORE_VERSION = 2


def config_hash(cfg: Any) -> str:
    """Return a short stable hash of a resolved config and :data:`STORE_VERSION`.

    It names the run's store folder.
    """
    text = f"store-version {STORE_VERSION}\n{cfg.dumps()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finished(path: Path) -> bool:
    """Say whether a run completed (``done.json``) or stopped on an error (``failed.json``)."""
    return (path / "done.json").is_file() or (path / "failed.json").is_file()


def failure(path: str | Path) -> str:
    """Return the error a run stopped on ("" if it did not fail)."""
    f = Path(path) / "failed.json"
    return json.loads(f.read_text())["error"] if f.is_file() else ""


_DATA: dict[tuple[str, str], Any] = {}


def _data(cfg: Any) -> Any:
    from training import load_dataset

    key = (cfg.dataset, cfg.data_dir)
    if key not in _DATA:
        _DATA[key] = load_dataset(cfg.dataset, cfg.data_dir)
    return _DATA[key]


def run_one(cfg: Any, path: str | Path, progress: bool = False) -> float:
    """Run (or resume, or skip when finished) one training run in ``path``; return seconds."""
    import fcntl

    path = Path(path)
    if _finished(path):
        return 0.0
    # two experiments sharing a run (two commands at once) must not train it together:
    # the second waits for the first, then finds it finished
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _finished(path):
            return 0.0
        from training.rundir import RunDirError

        try:
            return _run_locked(cfg, path, progress)
        except RunDirError:
            raise  # a locked or damaged run folder: the user must act, never "failed"
        except (ValueError, RuntimeError) as exc:
            # a run the mechanism refuses mid-way (e.g. a distance outside its numeric
            # domain) is an outcome to report, not a reason to stop the experiment
            path.mkdir(parents=True, exist_ok=True)  # train removes a new run that failed
            atomic_write_text(path / "failed.json", json.dumps({"error": str(exc)}) + "\n")
            return 0.0


def _run_locked(cfg: Any, path: Path, progress: bool) -> float:
    from training import RunDir, train

    t0 = time.perf_counter()
    rd = RunDir(path)
    if rd.config.is_file():
        if not rd.checkpoint.is_file():  # killed before round 0 ended: start again
            shutil.rmtree(path)
            train(cfg, path, progress=progress, data=_data(cfg))
        else:
            train(cfg, path, resume=True, progress=progress, data=_data(cfg))
    else:
        if path.exists():
            shutil.rmtree(path)
        train(cfg, path, progress=progress, data=_data(cfg))
    secs = time.perf_counter() - t0
    rd.drop_checkpoint()  # model states are not kept once a run is done (chain.json is)
    atomic_write_text(path / "done.json", json.dumps({"seconds": secs}) + "\n")
    return secs


def preflight(cfgs: list[Any]) -> None:
    """Refuse, before any run starts, a config whose proximal step is unstable."""
    from training import get_algorithm, prepare
    from training.session import preflight as check_run

    for cfg in cfgs:
        check_run(cfg, get_algorithm(cfg), prepare(cfg, data=_data(cfg)))


def _run_one_star(args: tuple[Any, str]) -> float:
    return run_one(args[0], args[1], progress=False)


def run_specs(specs: list[Spec], out: Path, store: Path, *, jobs: int | None = 1,
              progress: bool = True, ray: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run every spec (resumable), link it as ``out/runs/<label>``; return rows per label.

    ``jobs`` runs train at once, in processes of this machine; with ``ray`` (``"local"`` or
    a cluster's ``HOST:PORT``) each run is a Ray task instead
    (:func:`~ipfl.experiments.ray_sweep.run_on_ray`; ``jobs`` then caps the runs in flight,
    ``None``: the cluster's free CPUs). Either way the finished runs are skipped.
    """
    from training import RunDir

    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    store.mkdir(parents=True, exist_ok=True)
    todo: list[tuple[Any, str]] = []
    for s in specs:
        target = store / config_hash(s.cfg)
        link = runs / s.label
        if link.exists() and not link.is_symlink():
            raise ValueError(f"{str(link)!r} is not a link into the run store; remove it")
        if link.is_symlink() and link.resolve() != target.resolve():
            link.unlink()
        if not link.exists() and not link.is_symlink():
            os.symlink(os.path.relpath(target, runs), link)
        if not _finished(target):
            todo.append((s.cfg, str(target)))
    preflight([cfg for cfg, _ in todo])  # config errors still stop everything, up front
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=out.name,
                   unit="run", position=0)
    if ray is not None:
        if todo:
            from .ray_sweep import run_on_ray

            run_on_ray(todo, store, ray, jobs=jobs,
                       on_done=None if bar is None else lambda: bar.update(1))
    elif jobs is None or jobs <= 1 or len(todo) <= 1:
        for cfg, path in todo:
            run_one(cfg, path, progress=progress)
            if bar is not None:
                bar.update(1)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_run_one_star, t) for t in todo]
            for f in as_completed(futures):
                f.result()
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return {s.label: RunDir(runs / s.label).read_metrics() for s in specs}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write dict rows as CSV (columns in first-seen order; floats with 6 significant digits)."""
    import csv

    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buf.getvalue())
    return path


def write_summary(out: Path, lines: list[str]) -> None:
    """Write an experiment's ``summary.md`` (atomically, like every output)."""
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_csv`, numbers back as floats."""
    import csv

    def conv(v: str) -> Any:
        try:
            return float(v)
        except ValueError:
            return v

    with Path(path).open(newline="") as fh:
        return [{k: conv(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Return the mean and sample standard deviation (0 for one value, nan for none)."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt(values: Iterable[float], scale: float = 1.0, digits: int = 1) -> str:
    """Format ``mean ± sd`` of ``values`` times ``scale``."""
    m, s = mean_sd(values)
    if math.isnan(m):
        return "n/a"
    return f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"


def last_round(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the metric rows of the last recorded round."""
    t = max(r["round"] for r in rows)
    return [r for r in rows if r["round"] == t]


def group_by(rows: list[dict[str, Any]], *keys: str) -> dict[tuple, list[dict[str, Any]]]:
    """Group dict rows by the values of ``keys``, in first-seen order."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


Analyse = Callable[..., dict[str, Any]]
