"""CFL: splits keyed by global client id, the split test, cluster-wise mean updates."""

import numpy as np
import pytest
import torch

from training import Config, train
from training.algorithms import ServerInput, get_algorithm
from training.algorithms.cfl import bipartition
from training.profiles import Reports

CFG = Config(algorithm="cfl", clients=4, rounds=2, epochs=1, hidden=16, max_samples=400)


def _input(t: int, clients, m: int, uploads: torch.Tensor, N=None) -> ServerInput:
    k = len(clients)
    N = np.ones(k) if N is None else np.asarray(N, dtype=float)
    rep = Reports.make(N=N, c=np.full(k, 0.2), K=100 * N)
    return ServerInput(round=t, clients=np.asarray(clients), m=m, reports=rep, true=rep,
                       uploads=uploads, infos={}, theta0=torch.zeros(uploads.shape[1]), seed=0)


def _opposed(t: int = 5):
    """Clients 1, 4, 6 and 3, 5, 7 (of m = 8; 0 and 2 quit) move in opposite directions."""
    algo = get_algorithm(CFG.replace(hyper={"eps1": 0.5, "eps2": 1.0, "warmup": 2}))
    state = algo.init_server_state(8, torch.zeros(3))
    clients = [1, 3, 4, 5, 6, 7]
    up = torch.tensor([[2.0, 0.1, 0.0], [-2.0, 0.0, 0.1], [2.0, -0.1, 0.0],
                       [-2.0, 0.2, 0.0], [2.0, 0.0, 0.2], [-2.1, 0.0, 0.0]])
    return algo, state, _input(t, clients, 8, up)


def test_split_assigns_global_client_ids():
    """Opposite updates split the cluster; ids are stored at the clients' global ids.

    felisat issue #2: storing the positions within the split cluster (0..5) would put
    clients 0 and 2, who quit, into the new cluster and leave 6 and 7 out.
    """
    # Prepare
    algo, state, inp = _opposed()
    # Execute
    out, new = algo.server_step(inp, state)
    # Assert
    cl = new["cluster"].tolist()
    assert cl[1] == cl[4] == cl[6]
    assert cl[3] == cl[5] == cl[7]
    assert cl[1] != cl[3]
    assert cl[0] == cl[2] == 0  # the clients not passed in keep their cluster
    assert sorted({cl[1], cl[3]}) == [0, 1]
    assert out.columns["cluster"].tolist() == [float(cl[i]) for i in inp.clients]
    A = out.A
    same = [[cl[i] == cl[j] and i != j for j in inp.clients] for i in inp.clients]
    assert (A == np.array(same, dtype=np.int8)).all()


def test_cluster_wise_mean_update():
    """Each member's next start is its start plus its cluster's N-weighted mean update."""
    algo, state, inp = _opposed()
    out, new = algo.server_step(inp, state)
    up = inp.uploads
    pos, neg = [0, 2, 4], [1, 3, 5]  # positions among the clients passed in
    assert torch.allclose(out.starts[pos], up[pos].mean(dim=0).expand(3, -1))
    assert torch.allclose(out.starts[neg], up[neg].mean(dim=0).expand(3, -1))
    assert torch.equal(new["start"][torch.as_tensor(inp.clients)], out.starts)
    assert torch.equal(new["start"][0], torch.zeros(3))
    # next round: updates are taken from these starts, weighted by N
    up2 = out.starts + torch.tensor([[1.0, 0, 0], [0, 1.0, 0]] * 3)
    N = [1, 3, 1, 3, 2, 3]
    out2, _ = algo.server_step(_input(6, inp.clients, 8, up2, N), new)
    step_pos = (1 * torch.tensor([1.0, 0, 0]) + 1 * torch.tensor([1.0, 0, 0])
                + 2 * torch.tensor([1.0, 0, 0])) / 4
    assert torch.allclose(out2.starts[0], out.starts[0] + step_pos)
    assert torch.allclose(out2.starts[1], out.starts[1] + torch.tensor([0, 1.0, 0]))


def test_split_test_thresholds_and_warmup():
    """No split before warmup, with a large mean update, small updates, or <= 2 members."""
    algo, state, inp = _opposed(t=1)  # before warmup = 2
    assert algo.server_step(inp, state)[1]["cluster"].max() == 0
    algo, state, inp = _opposed()
    same = inp.uploads.abs()  # all alike: the mean update is large
    assert algo.server_step(_input(5, inp.clients, 8, same), state)[1]["cluster"].max() == 0
    small = inp.uploads / 10  # all updates below eps2
    assert algo.server_step(_input(5, inp.clients, 8, small), state)[1]["cluster"].max() == 0
    two = _input(5, [3, 4], 8, inp.uploads[1:3])
    assert algo.server_step(two, state)[1]["cluster"].max() == 0


def test_second_split_uses_a_new_id():
    """A split of cluster 1 gives the next unused id to one half, keeps 1 for the other."""
    algo, state, inp = _opposed()
    _, new = algo.server_step(inp, state)
    neg = [i for i in inp.clients if new["cluster"][i] == new["cluster"][3]]
    m_up = torch.tensor([[0.0, 3.0, 0.0], [0.0, -3.0, 0.0], [0.0, 3.1, 0.0]])
    start = new["start"][torch.as_tensor(neg)]
    _, newer = algo.server_step(_input(6, neg, 8, start + m_up, N=[1, 2, 1]), new)
    ids = newer["cluster"][torch.as_tensor(neg)].tolist()
    assert ids[0] == ids[2] != ids[1]
    assert sorted(set(ids)) == sorted({int(new["cluster"][3]), 2})


def test_bipartition_uses_precomputed_metric():
    """scikit-learn's removed ``affinity=`` must not come back (a TypeError on >= 1.4)."""
    U = torch.tensor([[1.0, 0.1], [1.0, -0.1], [-1.0, 0.0], [-1.0, 0.2], [0.9, 0.0]])
    labels = bipartition(U)
    assert labels[0] == labels[1] == labels[4] != labels[2] == labels[3]
    from sklearn.cluster import AgglomerativeClustering

    with pytest.raises(TypeError):
        AgglomerativeClustering(affinity="precomputed", linkage="complete")


def test_end_to_end(tmp_path):
    """Two rounds run end to end and record the cluster id."""
    rows = train(CFG, tmp_path / "run", progress=False)
    assert {r["round"] for r in rows} == {0, 1, 2}
    assert all(r["cluster"] == 0.0 for r in rows if r["round"] > 0)
