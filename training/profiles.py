r"""Clients' economic profiles: true values, roles, and what liars report.

Every client has a true profile :math:`(N_i, c_i, K_i)` and a per-round budget; the
market (Algorithm 1's round-0 report) sees the *reported* profile, which differs from
the true one only for liars.

Roles (Results 2.3, Fig. 5 of the paper; its supplement's exact ranges are not in the
text we have, so ours are stated here and fixed):

* ``trader``: buys and sells; :math:`c_i \sim U(0.5, 1.5)\,c` and
  :math:`K_i \sim U(0.5, 1.5)\,K_{\text{per sample}} N_i`, drawn from a generator
  seeded by the run seed (so "random positive" values, as the paper words it);
* ``buyer``: :math:`c_i = \infty` (never sells), :math:`K_i` drawn as a trader's;
* ``seller``: :math:`K_i = 0` (never buys), :math:`c_i = 0`;
* ``attacker``: :math:`K_i = 0`, :math:`c_i = 0`, and uploads a poisoned model every
  round (:mod:`training.attacks`).

Without ``roles`` every client is a trader with exactly the configured ``c`` and
``K_per_sample`` (each a scalar or a per-client list): no random draw.

A liar reports ``liar_N`` times its true data size, ``liar_c`` times its true cost,
``liar_K`` times its true eagerness; its training uses its true data, and its
recorded utility is measured with its true profile (:func:`mechanism.settle`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mechanism import Market

__all__ = ["ROLES", "Profiles", "Reports", "parse_roles"]

ROLES = ("trader", "buyer", "seller", "attacker")


@dataclass(frozen=True)
class Reports:
    """Profiles of a set of clients: data size, cost, eagerness, per-round budget.

    Attributes
    ----------
    N, c, K : ndarray, shape (m,)
        Data size, sharing cost (``inf`` = pure buyer), data eagerness.
    budget : ndarray, shape (m,)
        Largest net payment :math:`p_i` a client accepts in one round (``inf`` = unlimited).
    """

    N: NDArray[np.float64]
    c: NDArray[np.float64]
    K: NDArray[np.float64]
    budget: NDArray[np.float64]

    @classmethod
    def make(cls, N: ArrayLike, c: ArrayLike, K: ArrayLike,
             budget: ArrayLike | None = None) -> Reports:
        """Build from array-likes; ``budget`` defaults to unlimited."""
        N = np.asarray(N, dtype=float)
        b = np.full(N.shape, math.inf) if budget is None else np.asarray(budget, dtype=float)
        return cls(N=N, c=np.asarray(c, dtype=float), K=np.asarray(K, dtype=float), budget=b)

    def take(self, idx: NDArray[np.intp]) -> Reports:
        """Return the profiles of the clients ``idx`` only."""
        return Reports(N=self.N[idx], c=self.c[idx], K=self.K[idx], budget=self.budget[idx])

    def market(self, d: ArrayLike | None = None, lam: float = 0.0) -> Market:
        """Return the :class:`mechanism.Market` of these profiles with distances ``d``."""
        return Market(N=self.N, c=self.c, K=self.K, d=d, lam=lam)


@dataclass(frozen=True)
class Profiles:
    """Every client's role, true profile and reported profile for a run."""

    roles: tuple[str, ...]
    true: Reports
    reported: Reports

    @property
    def attackers(self) -> NDArray[np.bool_]:
        """Mask of the attackers."""
        return np.array([r == "attacker" for r in self.roles])

    @property
    def liars(self) -> NDArray[np.bool_]:
        """Mask of the clients whose report differs from their truth."""
        t, r = self.true, self.reported
        return (t.N != r.N) | (t.c != r.c) | (t.K != r.K)


def parse_roles(text: str, m: int) -> tuple[str, ...]:
    """Read ``"trader:6,buyer:2,seller:2,attacker:2"`` into one role per client, in that order.

    Raises
    ------
    ValueError
        On an unknown role, a malformed or negative count, or counts not summing to ``m``.

    Examples
    --------
    >>> parse_roles("trader:2,seller:1", 3)
    ('trader', 'trader', 'seller')
    """
    if not text:
        return ("trader",) * m
    out: list[str] = []
    for part in text.split(","):
        name, _, count = part.strip().partition(":")
        if name not in ROLES:
            raise ValueError(f"config: roles = {text!r}: unknown role {name!r}; "
                             f"roles are {list(ROLES)}")
        if not re.fullmatch(r"[0-9]+", count.strip()):
            raise ValueError(f"config: roles = {text!r}: count {count!r} of {name!r} "
                             "must be a non-negative integer (ASCII digits)")
        if len(count.strip()) > 9 or len(out) + int(count) > m:
            raise ValueError(f"config: roles = {text!r}: count {count.strip()} of {name!r} "
                             f"takes more than the clients = {m}")
        out += [name] * int(count)
    if len(out) != m:
        raise ValueError(f"config: roles = {text!r} counts {len(out)} clients, "
                         f"but clients = {m}")
    return tuple(out)


def build_profiles(N: NDArray[np.float64], *, c: ArrayLike, K_per_sample: ArrayLike,
                   budget: ArrayLike, roles: tuple[str, ...], liars: ArrayLike,
                   liar_N: float, liar_c: float, liar_K: float,
                   rng: np.random.Generator) -> Profiles:
    """Return the true and reported profiles for true data sizes ``N`` (see module docstring)."""
    m = len(N)
    c = np.broadcast_to(np.asarray(c, dtype=float), (m,)).copy()
    Kps = np.broadcast_to(np.asarray(K_per_sample, dtype=float), (m,)).copy()
    budget = np.broadcast_to(np.asarray(budget, dtype=float), (m,)).copy()
    if any(r != "trader" for r in roles):
        draw_c, draw_K = rng.uniform(0.5, 1.5, size=m), rng.uniform(0.5, 1.5, size=m)
        for i, role in enumerate(roles):
            if role == "trader":
                c[i], Kps[i] = c[i] * draw_c[i], Kps[i] * draw_K[i]
            elif role == "buyer":
                c[i], Kps[i] = math.inf, Kps[i] * draw_K[i]
            else:  # seller, attacker
                c[i], Kps[i] = 0.0, 0.0
    true = Reports(N=N.astype(float), c=c, K=Kps * N, budget=budget)
    lie = np.zeros(m, dtype=bool)
    lie[np.asarray(liars, dtype=np.intp)] = True
    rep = Reports(N=np.where(lie, liar_N * true.N, true.N),
                  c=np.where(lie, liar_c * true.c, true.c),
                  K=np.where(lie, liar_K * true.K, true.K), budget=budget)
    return Profiles(roles=roles, true=true, reported=rep)
