"""Users' own data (train(..., data=...)) and the ``share`` regular expression."""

import numpy as np
import pytest
import torch

from training import Config, RunDir, train
from training.data import load_digits
from training.models import MLP, shared_mask

TINY = dict(clients=3, rounds=2, epochs=1, hidden=8)


def _pairs(k=3, n=60, seed=0):
    ds = load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(ds))[: k * n].reshape(k, n)
    return [(ds.X[i], ds.y[i]) for i in idx]


def test_per_client_arrays_train_with_the_same_splits_and_records(tmp_path):
    rows = train(Config(**TINY), tmp_path / "run", progress=False, data=_pairs())
    first = [r for r in rows if r["round"] == 0]
    assert [r["N"] for r in first] == [33.0, 33.0, 33.0]  # 60 - 18 test - 9 validation
    assert sorted(RunDir(tmp_path / "run").read_rounds()) == [1, 2]


def test_torch_datasets_per_client_give_the_same_run_as_arrays(tmp_path):
    pairs = _pairs()
    sets = [torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
            for X, y in pairs]
    a = train(Config(**TINY), tmp_path / "a", progress=False, data=pairs)
    b = train(Config(**TINY), tmp_path / "b", progress=False, data=sets)
    assert a == b


@pytest.mark.parametrize(("data", "match"), [
    ("digits", "expected a Dataset or one"),
    ([(np.zeros((5, 64)), np.zeros(5, dtype=int))] * 2, "data has 2 client datasets"),
    ([(np.zeros((5, 64)), np.zeros(4, dtype=int))] * 3, r"data\[0\]: X of shape"),
    ([(np.zeros((5, 64)), np.full(5, -1))] * 3, r"data\[0\]: labels must be non-negative"),
    ([(np.full((5, 64), np.nan), np.zeros(5, dtype=int))] * 3, "non-finite"),
    ([42, 42, 42], r"data\[0\] = int: expected an \(X, y\) pair"),
])
def test_bad_user_data_is_refused_naming_the_client(tmp_path, data, match):
    with pytest.raises(ValueError, match=match):
        train(Config(**TINY), tmp_path / "run", progress=False, data=data)
    assert not (tmp_path / "run").exists()


def test_share_selects_what_is_uploaded_and_keeps_the_rest_private(tmp_path):
    """Only the head (net.3) is shared: uploads hold its 8 * 10 + 10 entries and nothing
    else, and under FedAvg the unshared first layer stays each client's own."""
    cfg = Config(**TINY, max_samples=300, share=r"net\.3\.")
    train(cfg, tmp_path / "ipfl", progress=False)
    ck = torch.load(tmp_path / "ipfl" / "checkpoint.pt", weights_only=True)
    assert ck["uploads"].shape == (3, 8 * 10 + 10)
    mask = shared_mask(MLP(64, 10, 8), r"net\.3\.")
    params = torch.stack([c["params"] for c in ck["clients"]])
    assert torch.equal(ck["uploads"], params[:, mask])
    train(cfg.replace(algorithm="fedavg", share=r"net\.3\."), tmp_path / "avg", progress=False)
    avg = torch.load(tmp_path / "avg" / "checkpoint.pt", weights_only=True)
    # FedAvg on the head only: every client's private first layer differs from the others'
    private = torch.stack([c["params"][~mask] for c in avg["clients"]])
    assert not torch.allclose(private[0], private[1])


def test_share_that_matches_nothing_is_refused():
    with pytest.raises(ValueError, match=r"share = 'nothing' matches no parameter"):
        shared_mask(MLP(64, 10, 8), "nothing")
    with pytest.raises(ValueError, match="is not a regular expression"):
        shared_mask(MLP(64, 10, 8), "(")
