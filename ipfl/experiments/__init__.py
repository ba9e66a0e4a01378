"""The paper's experiments (Results 2.1-2.3), reproducible and resumable: ``ipfl experiment``.

Seven experiments, each a module with ``specs`` (the training runs) and ``analyse`` (CSVs,
figures, summary): :mod:`~ipfl.experiments.performance` (Fig. 2),
:mod:`~ipfl.experiments.utility` (Fig. 3), :mod:`~ipfl.experiments.robustness`
(Fig. 4), :mod:`~ipfl.experiments.truthfulness` (Table 2),
:mod:`~ipfl.experiments.market` (Fig. 5), :mod:`~ipfl.experiments.similarity`
(eq. (4)'s premise) and :mod:`~ipfl.experiments.regimes` (where in lam x c the
economic claims hold). Presets: ``quick``, ``repro``, ``paper`` (and ``tiny`` for CI),
see :data:`~ipfl.experiments.core.PRESETS`.

``--set KEY=VALUE`` (``overrides``) changes a training key in every run of the
experiment, after the preset and the experiment's own keys: ``c=0.5`` everywhere,
``ipfl.lam=0`` in the iPFL runs only. The keys an experiment sets run by run
(:func:`per_run_keys`: the method, the seed, the settings' partition keys and the
experiment's own, e.g. ``roles`` in ``robustness``) are refused. Changed overrides
change the runs' configs, hence their folders in the run store; an experiment folder
made with other overrides is refused.

Example
-------
>>> sorted(EXPERIMENTS)  # doctest: +NORMALIZE_WHITESPACE
['instruct', 'market', 'performance', 'regimes', 'robustness', 'similarity',
 'truthfulness', 'utility']
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from atomicio import atomic_write_text

from . import (
    instruct,
    market,
    performance,
    regimes,
    robustness,
    similarity,
    truthfulness,
    utility,
)
from .core import PER_RUN, PRESETS, SETTINGS, Spec, apply_overrides, methods, run_specs

__all__ = ["EXPERIMENTS", "PRESETS", "check_request", "per_run_keys", "run_experiment"]

#: experiment name -> module (``specs``, ``analyse``, ``TITLE``)
EXPERIMENTS: dict[str, ModuleType] = {m.NAME: m for m in (
    performance, utility, robustness, truthfulness, market, similarity, regimes, instruct)}

#: experiments that take ``--methods`` (and which: None = every registered method) /
#: ``--settings``
_METHODS = {"performance": None, "utility": None, "robustness": robustness.METHODS,
            "regimes": None, "instruct": instruct.METHODS}
_SETTINGS = {"performance": SETTINGS, "utility": SETTINGS,
             "instruct": tuple(instruct.SCENARIOS)}


def _registered(name: str) -> tuple[str, ...] | None:
    """Every registered method for an experiment that compares them all, else None."""
    return methods() if name in _METHODS and _METHODS[name] is None else None


def _names(kind: str, given: tuple[str, ...] | None, allowed: tuple[str, ...] | None,
           name: str) -> tuple[str, ...] | None:
    if given is None:
        return None
    if allowed is None:
        raise ValueError(f"experiment {name!r} takes no --{kind}")
    from ..vocabulary import did_you_mean

    lower = {a.lower(): a for a in allowed}  # names are matched case-insensitively
    bad = [g for g in given if g.lower() not in lower]
    if bad or not given:
        hint = did_you_mean(bad[0], allowed) if bad else ""
        raise ValueError(f"experiment {name!r}: unknown {kind[:-1]} {bad or given!r}; "
                         f"choose from {list(allowed)}{hint}")
    chosen = {lower[g.lower()] for g in given}
    return tuple(g for g in allowed if g in chosen)


def per_run_keys(name: str) -> tuple[str, ...]:
    """Return the training keys experiment ``name`` sets run by run (``--set`` refuses them).

    The common :data:`~ipfl.experiments.core.PER_RUN` plus the module's own ``PER_RUN``
    (a test checks that every key varying between an experiment's runs is listed).
    """
    return (*PER_RUN, *getattr(EXPERIMENTS[name], "PER_RUN", ()))


def _overrides(name: str, items: tuple[str, ...] | list[str],
               common: dict[str, Any]) -> dict[str, Any]:
    """Parse ``--set KEY=VALUE`` items as ``ipfl train --set`` does; refuse per-run keys.

    Each value is checked on the preset's config (an algorithm-table key on a config of
    that algorithm), so a wrong key or value fails here, naming it.
    """
    from training import ALGORITHMS, Config
    from training.config import parse_override

    refused = per_run_keys(name)
    out: dict[str, Any] = {}
    for item in items:
        key, value = parse_override(item)
        if key in refused:
            raise ValueError(f"experiment {name!r}: --set {item}: the experiment sets {key} "
                             f"run by run and cannot override it (its per-run keys: "
                             f"{', '.join(refused)})")
        table, dot, sub = key.partition(".")
        if dot and table not in ALGORITHMS:
            raise ValueError(f"experiment {name!r}: --set {item}: {table!r} is not an "
                             f"algorithm; tables are {sorted(ALGORITHMS)}")
        out[key] = value
        Config.from_dict({**common, "algorithm": table, table: {sub: value}} if dot
                         else {**common, key: value})
    return out


def _jsonable(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: "inf" if isinstance(v, float) and math.isinf(v) else v
            for k, v in overrides.items()}


def _with_overrides(name: str, specs: list[Spec], overrides: dict[str, Any]) -> list[Spec]:
    """Apply the overrides to every spec's config; a table key needs one of its runs."""
    run = sorted({s.cfg.algorithm for s in specs})
    for key in overrides:
        table, dot, _ = key.partition(".")
        if dot and table not in run:
            raise ValueError(f"experiment {name!r}: --set {key}: no run of this experiment "
                             f"uses {table!r} (its algorithms: {', '.join(run)})")
    out = []
    for s in specs:
        try:
            out.append(Spec(s.label, s.keys, apply_overrides(s.cfg, overrides)))
        except ValueError as exc:
            raise ValueError(f"experiment {name!r}: run {s.label} with --set "
                             f"{', '.join(overrides)}: {exc}") from None
    return out


def check_request(name: str, preset: str = "quick", seeds: int = 3, dataset: str | None = None,
                  data_dir: str | None = None, device: str = "cpu",
                  methods: tuple[str, ...] | None = None,
                  settings: tuple[str, ...] | None = None,
                  overrides: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """Validate a request before any run; return the resolved request (raises ValueError).

    ``overrides`` are ``KEY=VALUE`` strings (``--set``); the resolved request holds them
    parsed (``"overrides"``) and the preset's config with them applied (``"config"``).
    """
    from training import Config, load_dataset

    from ..vocabulary import did_you_mean

    name = {n.lower(): n for n in EXPERIMENTS}.get(name.lower(), name)
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment {name!r} is unknown; choose from {sorted(EXPERIMENTS)}"
                         f"{did_you_mean(name, EXPERIMENTS)}")
    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r} is unknown; choose from {sorted(PRESETS)}")
    hook = getattr(EXPERIMENTS[name], "check", None)
    if hook is not None:  # an experiment's own presets and extras (instruct: [llm])
        hook(preset)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds <= 0:
        raise ValueError(f"--seeds = {seeds!r} must be a positive integer (the number of seeds)")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device = {device!r} must be 'cpu' or 'cuda'")
    p = PRESETS[preset]
    common = dict(p.base)
    if device == "cuda":
        common["device"] = "cuda"  # the config refuses it where torch sees no GPU
    if dataset is not None:
        common["dataset"] = dataset
    if data_dir is not None:
        common["data_dir"] = data_dir
    base = Config.from_dict(common)  # validates dataset name and every key
    methods = _names("methods", methods, _METHODS.get(name, ()) or _registered(name), name)
    check = getattr(EXPERIMENTS[name], "check_methods", None)
    if methods is not None and check is not None:
        check(methods)
    settings = _names("settings", settings, _SETTINGS.get(name), name)
    sets = _overrides(name, overrides, common)
    base = apply_overrides(base, sets)
    try:
        load_dataset(base.dataset, base.data_dir)  # a missing dataset fails here, first
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    return {"experiment": name, "preset": preset, "seeds": list(range(seeds)),
            "common": common, "config": base.to_dict(), "methods": methods,
            "settings": settings, "overrides": sets}


def _check_out(out: Path, req: dict[str, Any]) -> None:
    marker = out / "experiment.json"
    if marker.is_file():
        old = json.loads(marker.read_text())
        now = {k: req[k] for k in ("experiment", "preset", "config")}
        now["overrides"] = _jsonable(req["overrides"])
        old.setdefault("overrides", {})  # written before --set existed: none
        for key in now:
            if old.get(key) != now[key]:
                raise ValueError(
                    f"--out {str(out)!r} holds a different experiment ({key} = "
                    f"{old.get(key) if key != 'config' else 'another config'!r}); "
                    "choose another folder")
    elif out.is_dir() and any(out.iterdir()):
        raise ValueError(f"--out {str(out)!r} is not empty and holds no experiment.json; "
                         "choose another folder")


def run_experiment(name: str, preset: str = "quick", *, seeds: int = 3,
                   dataset: str | None = None, data_dir: str | None = None,
                   device: str = "cpu", out: str | Path | None = None,
                   store: str | Path | None = None, jobs: int | None = None,
                   ray: str | None = None,
                   methods: tuple[str, ...] | None = None,
                   settings: tuple[str, ...] | None = None,
                   overrides: tuple[str, ...] | list[str] = (),
                   progress: bool = True, on_start: Any = None) -> dict[str, Any]:
    """Run (or resume) experiment ``name`` with a preset; write its CSVs, figures, summary.

    ``on_start(runs, out, store)``, if given, is called once every check has passed,
    before the first run (``ipfl experiment`` prints what will run, and where).

    ``out`` defaults to ``experiments-out/<preset>/<name>``; ``store`` (where the run
    folders live, shared by experiments) to ``<out>/../run-store``. ``overrides`` are
    ``KEY=VALUE`` training keys applied to every run (see the module docstring). ``jobs``
    runs train at once (default 1). ``ray`` (``"local"`` or ``HOST:PORT``) runs each run
    as a Ray task (:mod:`~ipfl.experiments.ray_sweep`; ``jobs`` then caps the runs in
    flight, default: the cluster's free CPUs); the CSVs are those of ``jobs=1``. Every
    input is checked before the first run. Returns the analysis (``rows``) and ``seconds``.
    """
    req = check_request(name, preset, seeds, dataset, data_dir, device, methods, settings,
                        overrides)
    name = req["experiment"]  # the registered spelling (names are case-insensitive)
    out = Path(out) if out is not None else Path("experiments-out") / preset / name
    _check_out(out, req)
    store = Path(store) if store is not None else out.parent / "run-store"
    if jobs is not None and jobs <= 0:
        raise ValueError(f"--jobs = {jobs!r} must be >= 1")
    if ray is not None:  # checked before anything is written: value, Ray installed, reachable
        from .ray_sweep import check_address, reachable, require_ray

        check_address(ray)
        require_ray()
        reachable(ray)
    elif jobs is None:
        jobs = 1
    mod = EXPERIMENTS[name]
    p = PRESETS[preset]
    kwargs = {}
    if req["methods"] is not None:
        kwargs["methods"] = req["methods"]
    if req["settings"] is not None:
        kwargs["settings"] = req["settings"]
    specs = _with_overrides(name, mod.specs(p, req["seeds"], req["common"], **kwargs),
                            req["overrides"])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "experiment.json", json.dumps(
        {k: req[k] for k in ("experiment", "preset", "seeds", "config", "methods", "settings")}
        | {"overrides": _jsonable(req["overrides"]), "preset_why": p.why, "runs": len(specs)},
        indent=2) + "\n")
    if on_start is not None:
        on_start(len(specs), out, store)
    t0 = time.perf_counter()
    rows = run_specs(specs, out, store, jobs=jobs, progress=progress, ray=ray)
    result = mod.analyse(out, specs, rows, p)
    result["seconds"] = time.perf_counter() - t0
    result["out"] = out
    return result
