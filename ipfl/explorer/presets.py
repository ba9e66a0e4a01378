r"""The explorer's presets: three small markets that each show one thing.

Each preset is a dict the page loads as it is: ``name``, ``title``, ``what`` (what to
look at and what to drag, shown on the page), ``market`` (an ``ipfl.market/1``
document; each client carries a ``name``, its role in the story), ``client`` (the
client the step-through and the misreport curve start on) and ``liar`` (``None``, or
``{"client": i, "N": factor}``: client ``i`` reports ``factor`` times its true ``N``,
as the training config's ``liar`` and ``liar_N`` do).

``roles``
    The paper's inclusive market (Results 2.3, Fig. 5; ``configs/market_roles.toml``),
    cut to the explorer's 8 clients with the package's own rule for ``m`` clients
    (:func:`ipfl.experiments.market.roles_for`: 3 traders, 2 pure buyers, 2 pure
    sellers, 1 attacker). Costs and eagerness follow :mod:`training.profiles` exactly,
    with the training defaults ``c = 0.2`` and ``K_per_sample = 100`` and a generator
    seeded with 0 (a trader's ``c`` and ``K/N`` are the defaults times ``U(0.5, 1.5)``
    draws; a buyer has ``c = inf``; a seller and the attacker ``c = 0``, ``K = 0``). The
    data sizes are fixed (``ROLES_N``); ``c`` is rounded to 4 decimals and ``K`` to
    integers for the page's fields. Positions: three groups (the config's
    ``groups = 3``) on a triangle, the attacker apart; distances are divided by their
    median and ``lam = 1``, as training prices distance (``d_scale = "median"``,
    ``lam = 1``: importing a model at the median distance costs 1).
``liar``
    The default market (``examples/market.json``) with client 0 reporting 10 times its
    true data size (the largest over-report of the ``truthfulness`` experiment,
    Table 2). The mechanism computes everything from the report; the page shows the
    liar's *true* utility lying and truthful (:func:`proofs_checks.liar_utility`).
``attacker``
    Four honest traders close together and one attacker far from them. An attacker has
    no market-only meaning: in training it uploads a poisoned model
    (:mod:`training.attacks`), and the market never sees models, only reports and
    model distances. What the mechanism sees is a pure seller (``c = 0``, ``K = 0``, as
    :mod:`training.profiles` assigns it) whose model is far from everyone's, so this
    preset is exactly that; dragging ``lam`` to 0 shows that without the distance
    price it is the cheapest seller in the market and everyone imports it first.

Nothing here is tuned to an outcome: the numbers above were fixed before looking at
the graphs they give, and the tests check the role rule against
:func:`training.profiles.build_profiles`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import pdist

__all__ = ["PRESETS", "ROLES", "ROLES_N", "ROLES_SEED", "presets", "roles_market"]

#: the presets' names, in the page's order
PRESETS = ("roles", "liar", "attacker")
#: the roles of the 8-client inclusive market, in ``parse_roles`` order
ROLES = ("trader", "trader", "trader", "buyer", "buyer", "seller", "seller", "attacker")
#: the data sizes of the 8 clients (fixed, illustrative: a digits client's training split)
ROLES_N = (120, 90, 150, 110, 80, 140, 100, 130)
#: the seed of the generator drawing the traders' and buyers' c and K (as the run seed does)
ROLES_SEED = 0
#: training's defaults (training/config.py)
C_DEFAULT, K_PER_SAMPLE = 0.2, 100.0


def _enc(x: float) -> float | str:
    return "inf" if math.isinf(x) else float(x)


def roles_market() -> dict:
    """Return the ``roles`` preset's market document (see the module docstring)."""
    m = len(ROLES)
    N = np.asarray(ROLES_N, dtype=float)
    rng = np.random.default_rng(ROLES_SEED)
    # training.profiles.build_profiles draws both vectors for every client, in this order
    draw_c, draw_K = rng.uniform(0.5, 1.5, size=m), rng.uniform(0.5, 1.5, size=m)
    c, Kps = np.full(m, C_DEFAULT), np.full(m, K_PER_SAMPLE)
    for i, role in enumerate(ROLES):
        if role == "trader":
            c[i], Kps[i] = c[i] * draw_c[i], Kps[i] * draw_K[i]
        elif role == "buyer":
            c[i], Kps[i] = math.inf, Kps[i] * draw_K[i]
        else:  # seller, attacker
            c[i], Kps[i] = 0.0, 0.0
    K = Kps * N
    # three groups on a triangle (client i in group i % 3), members 0.12 around the centre
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.87]])
    pts = np.zeros((m, 2))
    for i in range(m - 1):
        angle = 2 * np.pi * i / (m - 1)
        pts[i] = centres[i % 3] + 0.12 * np.array([np.cos(angle), np.sin(angle)])
    pts[m - 1] = [2.5, 2.0]  # the attacker: a random-init model is far from trained ones
    pts /= np.median(pdist(pts))
    return {"schema": "ipfl.market/1", "lam": 1.0, "gain": "sqrt",
            "clients": [{"name": role, "N": int(N[i]), "c": _enc(round(c[i], 4)),
                         "K": _enc(round(K[i]))} for i, role in enumerate(ROLES)],
            "points": np.round(pts, 3).tolist()}


def _default_market() -> dict:
    from .app import DEFAULT_MARKET

    names = ["liar", "near", "near", "large, far", "buyer"]
    doc = dict(DEFAULT_MARKET)
    doc["clients"] = [{"name": n, **cl} for n, cl in zip(names, DEFAULT_MARKET["clients"],
                                                          strict=True)]
    return doc


def _attacker_market() -> dict:
    honest = [{"name": f"trader {i}", "N": 100, "c": 0.2, "K": 10000} for i in range(4)]
    return {"schema": "ipfl.market/1", "lam": 1.0, "gain": "sqrt",
            "clients": honest + [{"name": "attacker", "N": 100, "c": 0, "K": 0}],
            "points": [[0, 0], [0.2, 0], [0, 0.2], [0.2, 0.2], [2.1, 2.1]]}


def presets() -> list[dict]:
    """Return the presets, in the order the page shows them (see the module docstring)."""
    return [
        {"name": "roles", "title": "roles market (Fig. 5)", "client": 0, "liar": None,
         "market": roles_market(),
         "what": "The paper's inclusive market cut to 8 clients: traders (blue) buy and "
                 "sell, pure buyers (green, c = inf) only buy, pure sellers (orange, K = 0) "
                 "only sell, and the attacker is, to the mechanism, a seller whose model is "
                 "far from everyone's. Drag lambda down to 0 and watch who starts importing "
                 "the attacker."},
        {"name": "liar", "title": "a liar (over-reports N)", "client": 0,
         "liar": {"client": 0, "N": 10.0}, "market": _default_market(),
         "what": "Client 0 reports 10 times its true data size. Graphs, prices and bills "
                 "are computed from the report (that is all the mechanism sees); the liar "
                 "box compares the liar's true utility lying and truthful. Drag the lie "
                 "factor, or set it to 1 to see the truthful market."},
        {"name": "attacker", "title": "an attacker", "client": 0, "liar": None,
         "market": _attacker_market(),
         "what": "The market never sees models, so an attacker is what its reports and "
                 "model distance say: a pure seller (c = 0, K = 0, as training gives it) "
                 "whose model is far from the traders'. At lambda = 1 nobody imports it; "
                 "drag lambda towards 0: once distance costs little it is the cheapest "
                 "seller and every trader imports it first."},
    ]
