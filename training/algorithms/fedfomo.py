r"""FedFomo (Zhang et al., ICLR 2021): first-order weights of other clients' models.

Round ``t`` (server step, then client step):

1. **Affinity update** (Algorithm 1, last line): the server adds each client's reported
   score row of the previous round to its row of the affinity matrix :math:`P`
   (``m x m``, the server state).
2. **Model download** (Sec. 3.3, "Model sharing"): client ``i`` receives ``M`` candidate
   models, :math:`M = \min(M, k - 1)`, chosen one at a time among the other clients
   still in: with probability :math:`\epsilon_t = \max(\epsilon - (t - 1)\,\delta, 0)` a
   uniformly random one not yet chosen, otherwise the one of highest affinity
   :math:`P_{i\cdot}` not yet chosen (ties broken at random); ``epsilon = 0.3``,
   ``epsilon_decay = 0.05``. The draw is seeded by ``inp.seed``.
3. **Weights** (eq. (5)): on its own *validation* split, client ``i`` computes for each
   candidate :math:`\theta_n`

   .. math:: w_n = \frac{L_i^{val}(\theta_i^{t-1}) - L_i^{val}(\theta_n)}
                        {\|\theta_n - \theta_i^{t-1}\|_1},

   keeps the positive ones, normalised to sum 1 (none positive: it keeps its model).
4. **Update** (eq. (6)): :math:`\theta_i \leftarrow \theta_i^{t-1} + \sum_n w_n(\theta_n -
   \theta_i^{t-1})`, then ``epochs`` of local SGD from there.
5. **Report**: two rows of length ``m`` in the client's info: ``fomo_w`` (the weights
   used, zero elsewhere) and ``fomo_score`` (every candidate's :math:`w_n` before the
   positive part, divided by :math:`|\sum_n w_n|`), added to :math:`P` at step 1 next round.

Readings of the public code (NVlabs/FedFomo, read at commit fe04f66)
--------------------------------------------------------------------
- ``federation.py::compute_fomo_weights``: loss delta of the baseline model minus the
  candidate's, divided by ``compute_parameter_difference(..., norm='l1')`` (the default
  ``--model_delta_norm l1``): the L1 norm, as here.
- ``federation.py::update_client_weights``: the affinity row gets every candidate's
  delta divided by ``|sum of deltas|`` (negative ones included, 1e-9 added to a tiny
  sum); the model update uses the positive deltas normalised to sum 1, and the client's
  own model when none is positive. Our ``fomo_score`` / ``fomo_w`` follow that.
- ``client.py::get_federating_clients`` (``e_greedy``): random tie-breaking of the top
  list, exploration when a uniform draw is below ``epsilon - epoch * epsilon_decay``;
  ``configs.py``: ``EPSILON = 0.3``, ``EPSILON_DECAY = 0.05``. We decay per round.
- Departures, documented: the public code also lists the client's own current model
  among the candidates and, by default (``BASELINE = 'first_model'``), compares against
  and updates from the model saved *before* the last local training. We follow the
  paper: the baseline and the update base are the client's own model after its last
  local training, :math:`\theta_i^{t-1}`, and the candidates are the others' uploads.
- Only the shared coordinates (config ``share``) are exchanged; a candidate is evaluated
  with the client's own non-shared parameters and buffers.

Sharing graph for the economic utility: :math:`A_{ij} = 1` where client ``i`` gave
``j``'s model a positive weight. The server step runs before the clients compute this
round's weights, so the graph it returns is the one the server knows: the weights the
clients reported in the previous round (empty in round 1).

What is evaluated (``evaluates = "aggregated"``)
------------------------------------------------
The model after the FedFomo update and before local training, as the authors' code
(NVlabs/FedFomo ``main.py``: ``initialize_clients`` federates, then ``local_eval``
scores, then ``local_train``). PFLlib's ``clientfomo.py`` scores the previous round's
trained model instead; pFedGraph's repository has no FedFomo.

References
----------
Zhang, Sapra, Fidler, Yeung, Alvarez, "Personalized Federated Learning with First Order
Model Optimization", ICLR 2021, Algorithm 1 and eqs. (5)-(6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import NDArray

from ..hyper import Param
from .base import Algorithm, ClientOutput, Message, ServerInput, ServerOutput, State, register

if TYPE_CHECKING:
    from mechanism import Settlement

    from ..client import ClientContext, LocalData

__all__ = ["FedFomo", "choose_candidates", "fomo_weights"]


def choose_candidates(P: NDArray[np.float64], clients: NDArray[np.intp], M: int, epsilon: float,
                      rng: np.random.Generator) -> NDArray[np.intp]:
    """Return the (k, M) global ids of each client's candidates, epsilon-greedy on ``P``.

    Row ``i`` lists ``M`` distinct clients other than ``clients[i]``, in the order drawn:
    each slot is a uniformly random remaining client with probability ``epsilon``,
    otherwise the remaining client with the highest affinity ``P[clients[i], j]``
    (ties broken at random). Requires ``M <= k - 1``.
    """
    k = len(clients)
    out = np.zeros((k, M), dtype=np.intp)
    for i, gi in enumerate(clients):
        others = np.delete(clients, i)
        order = rng.permutation(len(others))  # random tie-breaking, as the public code
        ranked = list(others[order][np.argsort(-P[gi, others[order]], kind="stable")])
        for s in range(M):
            if rng.random() < epsilon:
                pick = ranked.pop(int(rng.integers(len(ranked))))
            else:
                pick = ranked.pop(0)
            out[i, s] = pick
    return out


def fomo_weights(own_loss: float, cand_loss: torch.Tensor, dist: torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Return (used weights, scores) of eq. (5) for one client.

    ``scores`` :math:`s_n = (L(\text{own}) - L(\theta_n)) / \|\theta_n - \text{own}\|_1`
    (0 for a candidate identical to the own model or with a non-finite loss);
    ``used`` is :math:`\max(s, 0)` normalised to sum 1, all zeros when no score is positive.
    """
    s = (own_loss - cand_loss) / dist.clamp_min(1e-300)
    s = torch.where(torch.isfinite(s) & (dist > 0), s, torch.zeros_like(s))
    pos = s.clamp_min(0.0)
    used = pos / pos.sum() if float(pos.sum()) > 0 else torch.zeros_like(s)
    return used, s


@register
class FedFomo(Algorithm):
    """Clients weight downloaded models by their validation-loss gain per L1 distance."""

    name = "fedfomo"
    rank = 60
    evaluates = "aggregated"
    summary = "Zhang et al. 2021: first-order model weights on the client's validation split"
    hyper = {
        "M": Param(4, lo=1, doc="candidate models per client and round (min(M, k - 1) used)"),
        "epsilon": Param(0.3, lo=0.0, hi=1.0, doc="initial exploration probability"),
        "epsilon_decay": Param(0.05, lo=0.0, doc="exploration decrease per round"),
    }

    def init_server_state(self, m: int, theta0: torch.Tensor) -> State:
        """Return the zero affinity matrix ``P`` (m x m)."""
        return {"P": torch.zeros((m, m), dtype=torch.float64)}

    def server_step(self, inp: ServerInput, state: State,
                    settlement: Settlement | None = None) -> tuple[ServerOutput, State]:
        """Add last round's scores to ``P``, draw each client's candidates, send their models."""
        ix = torch.as_tensor(inp.clients, dtype=torch.long)
        P = state["P"].clone()
        if "fomo_score" in inp.infos:
            P[ix] += inp.infos["fomo_score"].to(P.dtype)
        A = np.zeros((inp.k, inp.k), dtype=np.int8)
        if "fomo_w" in inp.infos:
            A = (inp.infos["fomo_w"][:, ix] > 0).numpy().astype(np.int8)
            np.fill_diagonal(A, 0)
        M = min(int(self.hp["M"]), inp.k - 1)
        eps = max(float(self.hp["epsilon"]) - (inp.round - 1) * float(self.hp["epsilon_decay"]),
                  0.0)
        ids = choose_candidates(P.numpy(), inp.clients, M, eps,
                                np.random.default_rng(inp.seed))
        pos = np.searchsorted(inp.clients, ids)  # global id -> row of uploads
        out = ServerOutput.plain(inp.uploads.clone(), A, own=1.0)  # the client's own upload
        out.extras["fomo_models"] = inp.uploads[torch.as_tensor(pos, dtype=torch.long)]
        out.extras["fomo_ids"] = torch.as_tensor(ids, dtype=torch.long)
        return out, {"P": P}

    def client_step(self, msg: Message, state: State, data: LocalData,
                    ctx: ClientContext) -> ClientOutput:
        """Weight the candidates on the validation split, move the model, train locally."""
        from ..client import evaluate, local_sgd

        m = self.cfg.clients
        w_row = torch.zeros(m, dtype=torch.float64)
        s_row = torch.zeros(m, dtype=torch.float64)
        own_full = state["params"]
        own = own_full[ctx.shared]
        start = own.clone()
        models = msg.extras.get("fomo_models")
        if models is not None and models.shape[0] > 0:
            ids = msg.extras["fomo_ids"]
            _, own_loss = evaluate(ctx.model, own_full, state["buffers"], data.X_val, data.y_val)
            losses = []
            for theta in models:
                full = own_full.clone()
                full[ctx.shared] = theta.to(full.dtype)
                losses.append(evaluate(ctx.model, full, state["buffers"], data.X_val,
                                       data.y_val)[1])
            diff = models.to(torch.float64) - own.to(torch.float64)[None]
            used, score = fomo_weights(own_loss, torch.tensor(losses, dtype=torch.float64),
                                       diff.abs().sum(dim=1))
            start = (own.to(torch.float64) + used @ diff).to(own.dtype)
            w_row[ids] = used
            s_row[ids] = score / max(float(score.sum().abs()), 1e-9)
        params, buffers = local_sgd(ctx, data, state, start, start, 0.0, self.local_objective)
        return ClientOutput(upload=params[ctx.shared], evaluated=params, buffers=buffers,
                            state={**state, "params": params, "buffers": buffers},
                            info={"fomo_w": w_row, "fomo_score": s_row}, start=start)
