r"""Model-poisoning attacks: what an attacker uploads instead of its honest model.

The paper (Results 2.2, Fig. 4) names four attacks on model *updates*; the public code
of pFedGraph (the authors' group) mostly transforms the *weights*. Both readings are
here, as ``<kind>_update`` and ``<kind>_weights``, plus ``random_init`` for the
inclusive market's attacker, which "sells a randomly parameterised model" (Results 2.3).

With :math:`w` the honest upload after local training, :math:`w_0` the round's start
point (the message's start) and :math:`\Delta = w - w_0`:

=============  ==========================================  =========================================
kind           ``_update`` (paper's wording)               ``_weights`` (public code)
=============  ==========================================  =========================================
``shuffle``    :math:`w_0 + \pi(\Delta)`, one permutation    :math:`\pi(w)`
``sign_flip``  :math:`w_0 - \Delta`                        :math:`-w`
``same_value`` :math:`w_0 + \bar{|\Delta|}\mathbf 1`         :math:`\mathbf 1` (every element 1.0)
``gauss``      :math:`w_0 + \mathcal N(0, \sigma_\Delta^2)`  :math:`\mathcal N(0, 1)` draws
=============  ==========================================  =========================================

:math:`\bar{|\Delta|}` is the mean absolute update and :math:`\sigma_\Delta` its
standard deviation, so the update attacks keep the honest update's scale. Every random
draw comes from the generator the caller seeds per (run seed, round, client).

What the attacker keeps: its honest model (:func:`training.client.attacker_message`).
It trains from the message its honest upload would have got and poisons the update
from that start, so the poison does not compound round over round. One side effect: a
server that measures the update against the start *it* sent (CFL) sees, for a sign
flip, :math:`M_{ii}(u^{t-1} - \tilde u^{t-1}) - \Delta^t` rather than
:math:`-\Delta^t` (:math:`M_{ii}` the weight of the attacker's own upload in its start,
:math:`u` honest, :math:`\tilde u` sent): the attacker's start differs from the one the
server believes it sent.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["ATTACKS", "apply_attack"]

Attack = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def _shuffle_update(w: torch.Tensor, w0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Shuffle the update's elements with one random permutation."""
    return w0 + (w - w0)[torch.randperm(w.numel(), generator=g)]


def _shuffle_weights(w: torch.Tensor, w0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Shuffle the weights' elements with one random permutation."""
    return w[torch.randperm(w.numel(), generator=g)]


def _sign_flip_update(w: torch.Tensor, w0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    r"""Upload :math:`w_0 - \Delta` (pFedGraph's ``inv_grad``)."""
    return w0 - (w - w0)


def _sign_flip_weights(w: torch.Tensor, w0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Upload :math:`-w`."""
    return -w


def _same_value_update(w: torch.Tensor, w0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Every element of the update set to the mean absolute update."""
    return w0 + (w - w0).abs().mean()


def _same_value_weights(w: torch.Tensor, w0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Every weight set to 1.0."""
    return torch.ones_like(w)


def _gauss_update(w: torch.Tensor, w0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Replace the update by Gaussian noise of the update's standard deviation."""
    noise = torch.randn(w.shape, generator=g, dtype=w.dtype)
    return w0 + noise * (w - w0).std()


def _gauss_weights(w: torch.Tensor, w0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Replace the weights by N(0, 1) draws."""
    return torch.randn(w.shape, generator=g, dtype=w.dtype)


#: attack name -> transform ``(honest upload, round start, generator) -> poisoned upload``;
#: ``random_init`` is handled by the client runtime (it needs the model's initialiser)
ATTACKS: dict[str, Attack | None] = {
    "shuffle_update": _shuffle_update,
    "shuffle_weights": _shuffle_weights,
    "sign_flip_update": _sign_flip_update,
    "sign_flip_weights": _sign_flip_weights,
    "same_value_update": _same_value_update,
    "same_value_weights": _same_value_weights,
    "gauss_update": _gauss_update,
    "gauss_weights": _gauss_weights,
    "random_init": None,
}


def apply_attack(name: str, upload: torch.Tensor, start: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
    """Return the poisoned upload of attack ``name`` (not ``random_init``).

    Examples
    --------
    >>> w0, w = torch.zeros(3), torch.tensor([1.0, 2.0, 3.0])
    >>> apply_attack("sign_flip_update", w, w0, torch.Generator()).tolist()
    [-1.0, -2.0, -3.0]
    """
    fn = ATTACKS.get(name)
    if fn is None:
        raise ValueError(f"attack = {name!r} is not a transform; one of "
                         f"{sorted(k for k, v in ATTACKS.items() if v is not None)}")
    return fn(upload, start, generator)
