"""Any torch.nn.Module can be trained by the iPFL loop, and a misfit one is refused early."""

import pytest
import torch
from torch import nn

from training import train
from training.models import n_params


def two_layer(n_out: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.Tanh(), nn.Linear(12, n_out))


def test_a_users_module_trains_under_ipfl(tiny, tmp_path):
    model = two_layer()
    before = [p.detach().clone() for p in model.parameters()]
    rows = train(tiny.replace(rounds=1), tmp_path / "run", progress=False, model=model)
    last = [r for r in rows if r["round"] == 1]
    assert len(last) == tiny.clients and all(0.0 <= r["acc"] <= 1.0 for r in last)
    assert sum(r["imports"] for r in last) > 0  # the market ran on this module's distances
    # the caller's module is deep-copied, never trained in place
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["uploads"].shape[1] == n_params(model)


def test_resume_requires_the_same_architecture(tiny, tmp_path):
    train(tiny.replace(rounds=1), tmp_path / "run", progress=False, model=two_layer())
    with pytest.raises(ValueError, match="checkpoint holds .* shared parameters per client"):
        train(None, tmp_path / "run", resume=True, progress=False)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (two_layer(n_out=3), r"to \(2, 3\), expected \(2, 10\) logits"),
        (nn.Sequential(nn.Linear(5, 10)), r"fails on a batch of shape \(2, 64\)"),
        ("mlp", "is not a torch.nn.Module"),
    ],
)
def test_a_misfit_module_is_refused_before_training(tiny, tmp_path, model, match):
    with pytest.raises(ValueError, match=match):
        train(tiny, tmp_path / "run", progress=False, model=model)
    assert not (tmp_path / "run").exists()
