r"""Run configuration: one flat, validated record read from TOML plus ``--set`` overrides.

Every key has a default; an unknown key, a wrong type or an out-of-range value raises
:class:`ValueError` naming the field and the value, before any data is read or any
model is trained.

How the defaults were chosen
----------------------------
The defaults are the demo setting (digits, 20 clients, Dirichlet ``beta = 0.5``, MLP,
70/30 split per client), where a probe measured local training at about 85 % and
FedAvg at about 93 % mean personalised accuracy, so collaboration matters.

* ``K_per_sample = 100``: each client reports :math:`K_i = 100 N_i`, which makes the
  gain of eq. (2) scale-free, :math:`g_i(x) = 10\,(1 - \sqrt{N_i/(N_i + x)})`: the
  first equal-sized peer is worth about 2.9, the fifth about 0.4, the nineteenth
  about 0.06. Eagerness proportional to data keeps small and large clients alike.
* ``c = 0.2`` for everybody: with the gain above a client stops importing equal-sized,
  zero-distance peers after roughly eight of them, so the graph cannot be complete
  even when the models agree.
* ``distance = "sqeuclidean_mean"`` (squared L2 divided by the parameter count ``P``)
  keeps :math:`d_{ij}` independent of the model size. On the demo, after local
  training, :math:`d_{ij} \approx 5\cdot10^{-5} .. 1.2\cdot10^{-4}`.
* ``lam = 100``: measured on the demo (seed 0, 15 rounds, mean final accuracy,
  local 87.5 %): lam = 20 -> 93.7 %, 100 -> 93.2 %, 200 -> 90.8 %, 500 -> 79.5 %,
  2000 -> 61.1 %. Large ``lam`` makes the distance decide the graph (density 0.18 at
  2000) but also makes eq. (7)'s proximal weight :math:`\lambda s_i/\eta_i` so strong
  that clients cannot fit their own data. At 100, :math:`\lambda d_{ij}` is 3-6 % of
  ``c``: it breaks ties between peers but ``c`` and the gain set the degree.
* ``lr = 0.1``, ``epochs = 5``, ``batch_size = 16``: plain local training reaches
  about 87 % on the demo, i.e. converged local models.
* ``eta`` and ``max_mix``: see :mod:`training.server` (eq. (6) and its cap).

These numbers were picked once on the demo setting with seed 0 and then checked on
seeds 0, 1, 2 (all reported); no seed was selected.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["Config", "load_config", "parse_override"]

DATASETS = ("digits", "cifar10", "fashion_mnist", "synthetic")
PARTITIONS = ("niid", "cluster", "skew", "iid")
MODELS = ("auto", "mlp", "cnn")
DISTANCES = ("sqeuclidean_mean", "sqeuclidean", "cosine")
SOLVERS = ("paper", "skip", "exact")


@dataclass(frozen=True)
class Config:
    """A complete, validated run configuration (all keys flat).

    Attributes
    ----------
    algorithm : str
        Registered algorithm name (``"ipfl"``, ``"local"``, ``"fedavg"``).
    dataset, data_dir : str
        ``"digits"`` (bundled with scikit-learn, offline), ``"cifar10"`` or
        ``"fashion_mnist"`` (read from ``data_dir``), ``"synthetic"`` (random, tests).
    partition : str
        ``"niid"`` (Dirichlet ``beta``), ``"cluster"`` (``groups`` groups,
        ``beta_between`` / ``beta_within``), ``"skew"`` (``classes_per_client``), ``"iid"``.
    clients, test_frac, max_samples : int, float, int
        Number of clients ``m``; per-client test fraction; cap on the pool size (0 = all).
    model, hidden : str, int
        ``"mlp"``, ``"cnn"`` or ``"auto"`` (MLP for flat data, CNN for images).
    rounds, epochs, batch_size, lr : int, int, int, float
        Market rounds ``T`` after round 0; local epochs ``E`` per round; SGD settings.
    lam, eta, max_mix, distance, solver : float, float, float, str, str
        Market weight of distance (eq. (4)); prox-centre step (eq. (6)); cap on the
        total weight moved to imported models; distance; graph solver.
    K_per_sample, c, budget : float, float, float
        Reported :math:`K_i = ` ``K_per_sample`` :math:`N_i`; sharing cost :math:`c_i`;
        per-round willingness to pay (``inf`` = unlimited).
    seed, threads : int
        Master seed; torch intra-op threads (fixed for determinism).
    """

    algorithm: str = "ipfl"
    dataset: str = "digits"
    data_dir: str = ""
    partition: str = "niid"
    beta: float = 0.5
    groups: int = 4
    beta_between: float = 0.1
    beta_within: float = 10.0
    classes_per_client: int = 5
    clients: int = 20
    test_frac: float = 0.3
    max_samples: int = 0
    model: str = "auto"
    hidden: int = 64
    rounds: int = 15
    epochs: int = 5
    batch_size: int = 16
    lr: float = 0.1
    lam: float = 100.0
    eta: float = 0.25
    max_mix: float = 0.8
    distance: str = "sqeuclidean_mean"
    solver: str = "paper"
    K_per_sample: float = 100.0
    c: float = 0.2
    budget: float = math.inf
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> Config:
        """Return a validated copy with some keys changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-ready dict (``inf`` as the string ``"inf"``)."""
        out = dataclasses.asdict(self)
        return {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Build a config from a mapping, rejecting unknown keys and coercing types."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(
                    f"config: unknown key {key!r} (value {value!r}); known keys: {sorted(known)}"
                )
            kwargs[key] = _coerce(key, known[key].type, value)
        return cls(**kwargs)

    def dumps(self) -> str:
        """Return the configuration as pretty JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _coerce(key: str, typ: Any, value: Any) -> Any:
    typ = {"str": str, "int": int, "float": float}.get(typ, typ)
    if typ is float:
        if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", "infinity"):
            return math.inf
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"config: {key} = {value!r} must be a number")
        return float(value)
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config: {key} = {value!r} must be an integer")
        return value
    if not isinstance(value, str):
        raise ValueError(f"config: {key} = {value!r} must be a string")
    return value


def _choice(cfg: Config, key: str, options: tuple[str, ...]) -> None:
    value = getattr(cfg, key)
    if value not in options:
        raise ValueError(f"config: {key} = {value!r} is not one of {list(options)}")


def _validate(cfg: Config) -> None:
    from .algorithms import ALGORITHMS  # late import: the registry imports this module

    _choice(cfg, "dataset", DATASETS)
    _choice(cfg, "partition", PARTITIONS)
    _choice(cfg, "model", MODELS)
    _choice(cfg, "distance", DISTANCES)
    _choice(cfg, "solver", SOLVERS)
    if cfg.algorithm not in ALGORITHMS:
        raise ValueError(
            f"config: algorithm = {cfg.algorithm!r} is not one of {sorted(ALGORITHMS)}")
    positive_int = ("clients", "rounds", "epochs", "batch_size", "hidden", "groups")
    for key in positive_int:
        if getattr(cfg, key) <= 0:
            raise ValueError(f"config: {key} = {getattr(cfg, key)!r} must be > 0")
    if cfg.clients < 2:
        raise ValueError(f"config: clients = {cfg.clients!r} must be >= 2 (a market needs two)")
    for key in ("beta", "beta_between", "beta_within", "lr", "eta"):
        v = getattr(cfg, key)
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"config: {key} = {v!r} must be finite and > 0")
    for key in ("lam", "K_per_sample", "max_samples", "threads"):
        v = getattr(cfg, key)
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"config: {key} = {v!r} must be finite and >= 0")
    if not cfg.c >= 0:
        raise ValueError(f"config: c = {cfg.c!r} must be >= 0 (inf: everybody a pure buyer)")
    if cfg.threads < 1:
        raise ValueError(f"config: threads = {cfg.threads!r} must be >= 1")
    if not 0 < cfg.test_frac < 1:
        raise ValueError(f"config: test_frac = {cfg.test_frac!r} must lie in (0, 1)")
    if not 0 < cfg.max_mix <= 1:
        raise ValueError(f"config: max_mix = {cfg.max_mix!r} must lie in (0, 1]")
    if not cfg.budget >= 0:
        raise ValueError(f"config: budget = {cfg.budget!r} must be >= 0 (inf = unlimited)")
    if cfg.classes_per_client < 1:
        raise ValueError(f"config: classes_per_client = {cfg.classes_per_client!r} must be >= 1")
    if cfg.dataset in ("cifar10", "fashion_mnist") and not cfg.data_dir:
        raise ValueError(f"config: dataset = {cfg.dataset!r} needs data_dir (a local folder)")


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``--set key=value`` override; the value is read as TOML, else as a string.

    Examples
    --------
    >>> parse_override("rounds=5")
    ('rounds', 5)
    >>> parse_override("dataset=digits")
    ('dataset', 'digits')
    """
    if "=" not in text:
        raise ValueError(f"--set {text!r}: expected key=value")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a TOML file (flat keys, or one ``[train]`` table) and apply ``key=value`` overrides.

    Raises
    ------
    ValueError
        On a missing file, a TOML syntax error, an unknown key or an invalid value.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"config: file {str(p)!r} does not exist")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config: {str(p)!r} is not valid TOML ({exc})") from None
        if set(data) == {"train"} and isinstance(data["train"], dict):
            data = data["train"]
    for item in overrides or []:
        key, value = parse_override(item)
        data[key] = value
    return Config.from_dict(data)
