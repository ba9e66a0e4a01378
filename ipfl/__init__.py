"""ipfl: model-sharing markets, the iPFL mechanism, its training layer and its audit.

``import ipfl`` gives the main API in one place. Every name is loaded on first use
(PEP 562), so ``import ipfl`` costs what ``import mechanism`` costs only when a
mechanism name is used, and torch (about 1.2 s and 240 MB more) is imported only when a
training name is (``docs/install.md`` has the measurements). The names are the same
objects as in the layer that defines them: ``ipfl.Market is mechanism.Market``.

The mechanism (:mod:`mechanism`; numpy, scipy, networkx, PuLP; no torch):
``Market``, ``greedy_graph``, ``exact_graph``, ``solve_graph``, ``payments``,
``utilities``, ``social_welfare``, ``optimal_social_welfare``, ``explain``, ``settle``,
``random_market``, ``Payments``, ``Explanation``, ``ExactResult``, ``Settlement``,
``SqrtGain``, ``LogGain``.

Training (:mod:`training`; PyTorch): ``Config``, ``load_config``, ``train``,
``Session``, ``RunDir``, ``RunState``, ``RoundRecord``, ``Exchange``, ``prepare``,
``audit_run``, ``ALGORITHMS``, ``Algorithm``, ``get_algorithm``, ``register``,
``load_dataset``, ``build_model``.

The claims (:mod:`proofs_checks`): ``CLAIMS``, ``run_claim``, ``run_audit``.

Files and figures (this package): ``read_market``, ``write_market``, ``plot_market``,
``rescore_run``.

>>> import ipfl
>>> mk = ipfl.Market(N=[100, 300, 100], c=[1.0, 0.25, float("inf")], K=[400, 0, 400],
...                  d=[[0, .05, 0], [.05, 0, .1], [0, .1, 0]], lam=1.0)
>>> ipfl.greedy_graph(mk).tolist()
[[0, 1, 0], [0, 0, 0], [0, 1, 0]]
>>> ipfl.Market is __import__("mechanism").Market
True
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> the module that defines it (imported on first use).
_EXPORTS: dict[str, str] = {
    # mechanism
    "ExactResult": "mechanism",
    "Explanation": "mechanism",
    "LogGain": "mechanism",
    "Market": "mechanism",
    "Payments": "mechanism",
    "Settlement": "mechanism",
    "SqrtGain": "mechanism",
    "exact_graph": "mechanism",
    "explain": "mechanism",
    "greedy_graph": "mechanism",
    "optimal_social_welfare": "mechanism",
    "payments": "mechanism",
    "random_market": "mechanism",
    "settle": "mechanism",
    "social_welfare": "mechanism",
    "solve_graph": "mechanism",
    "utilities": "mechanism",
    # training
    "ALGORITHMS": "training",
    "Algorithm": "training",
    "Config": "training",
    "Exchange": "training",
    "RoundRecord": "training",
    "RunDir": "training",
    "RunState": "training",
    "Session": "training",
    "audit_run": "training",
    "build_model": "training",
    "get_algorithm": "training",
    "load_config": "training",
    "load_dataset": "training",
    "prepare": "training",
    "register": "training",
    "train": "training",
    # proofs_checks
    "CLAIMS": "proofs_checks",
    "run_audit": "proofs_checks.audit",
    "run_claim": "proofs_checks",
    # ipfl's own modules
    "plot_market": "ipfl.figures",
    "read_market": "ipfl.market_files",
    "rescore_run": "ipfl.rescore",
    "write_market": "ipfl.market_files",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from mechanism import (  # noqa: F401
        ExactResult,
        Explanation,
        LogGain,
        Market,
        Payments,
        Settlement,
        SqrtGain,
        exact_graph,
        explain,
        greedy_graph,
        optimal_social_welfare,
        payments,
        random_market,
        settle,
        social_welfare,
        solve_graph,
        utilities,
    )
    from proofs_checks import CLAIMS, run_claim  # noqa: F401
    from proofs_checks.audit import run_audit  # noqa: F401
    from training import (  # noqa: F401
        ALGORITHMS,
        Algorithm,
        Config,
        Exchange,
        RoundRecord,
        RunDir,
        RunState,
        Session,
        audit_run,
        build_model,
        get_algorithm,
        load_config,
        load_dataset,
        prepare,
        register,
        train,
    )

    from .figures import plot_market  # noqa: F401
    from .market_files import read_market, write_market  # noqa: F401
    from .rescore import rescore_run  # noqa: F401


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use and cache the object.

    Raises
    ------
    AttributeError
        For a name that is not part of the API, with the closest public names.
    """
    module = _EXPORTS.get(name)
    if module is None:
        close = difflib.get_close_matches(name, __all__, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttributeError(f"module 'ipfl' has no attribute {name!r}{hint}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
