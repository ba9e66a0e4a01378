"""training.replies: each check names the field and the value, and passes a valid reply."""

from __future__ import annotations

import numpy as np
import pytest

from training.replies import Expect, check_evaluation, check_profile, check_train_reply

PROFILE = {"partition": 0, "n_train": 100, "n_val": 20, "n_test": 40, "input_shape": [64],
           "n_classes": 10, "group": -1, "theta0_digest": "abc"}
EXPECT = Expect(n_train=100, upload_shape=(5,), upload_dtype=np.dtype("float32"),
                state={"params": ((7,), np.dtype("float32"))}, infos={},
                state_limit=30, info_limit=10)


def _reply(**kw):
    rep = {"n_train": 100, "upload": np.zeros(5, np.float32),
           "state": {"params": np.zeros(7, np.float32)}, "info": {},
           "metrics": {"acc": 0.5, "val_acc": 0.4, "loss": 1.0, "val_loss": 1.2}}
    rep.update(kw)
    return rep


def test_valid_profile_and_reply_pass():
    assert check_profile(PROFILE, pool=1797, groups=4) is None
    assert check_train_reply(_reply(), EXPECT) is None
    assert check_evaluation({"acc": 1.0, "loss": 0.0}) is None


@pytest.mark.parametrize(("change", "message"), [
    ({"n_train": True}, "n_train = True is not an integer in [1, 1797]"),
    ({"n_train": 100.0}, "n_train = 100.0 is not an integer"),
    ({"n_val": -1}, "n_val = -1 is not an integer in [0, 1797]"),
    ({"n_train": 1700, "n_test": 200}, "n_train + n_val + n_test = 1920 exceeds the 1797"),
    ({"input_shape": [0]}, "input_shape = [0] is not 1 to 4 positive integers"),
    ({"input_shape": [1] * 5}, "input_shape = [1, 1, 1, 1, 1] is not 1 to 4"),
    ({"n_classes": 1}, "n_classes = 1 is not in [2, 1000]"),
    ({"group": 4}, "group = 4 is not -1 or a group in [0, 3]"),
    ({"theta0_digest": 5}, "theta0_digest = 5 is not a string"),
])
def test_bad_profile_names_the_field(change, message):
    assert check_profile({**PROFILE, **change}, pool=1797, groups=4).startswith(
        f"profile: {message}")


@pytest.mark.parametrize(("change", "message"), [
    ({"n_train": 99}, "n_train = 99 differs from the registered N = 100"),
    ({"upload": [0.0] * 5}, "upload is a list, not an array"),
    ({"upload": np.zeros(5, np.float16)}, "upload has dtype float16, expected float32"),
    ({"upload": np.zeros((5, 1), np.float32)}, "upload has shape (5, 1), expected (5,)"),
    ({"state": {"params": np.zeros(6, np.float32)}},
     "state['params'] has shape (6,) and dtype float32, expected (7,) and float32"),
    ({"state": {"params": np.zeros(7, np.float64)}}, "state['params'] has shape (7,) and "
     "dtype float64"),
    ({"state": {"params": np.zeros(7, np.float32), "extra": np.zeros(40, np.float32)}},
     "state holds more than 30 numbers"),
    ({"state": {"params": np.array(["x"] * 7)}}, "state['params'] has dtype <U1"),
    ({"info": {"w": np.array([np.inf])}}, "info['w'][0] = inf is not finite"),
    ({"info": {"w": np.zeros(11)}}, "info holds more than 10 numbers"),
    ({"metrics": {"acc": 0.5, "val_acc": 0.4, "loss": 1.0}},
     "metrics are ['acc', 'loss', 'val_acc'], expected"),
    ({"metrics": {"acc": 0.5, "val_acc": 0.4, "loss": -1.0, "val_loss": 1.0}},
     "metric loss = -1.0 is not in >= 0 and finite"),
    ({"metrics": {"acc": True, "val_acc": 0.4, "loss": 1.0, "val_loss": 1.0}},
     "metric acc = True is not in [0, 1]"),
])
def test_bad_train_reply_names_the_field(change, message):
    assert check_train_reply(_reply(**change), EXPECT).startswith(message)


def test_reply_lacking_fields_is_named():
    rep = _reply()
    del rep["upload"], rep["metrics"]
    assert check_train_reply(rep, EXPECT) == "reply lacks ['upload', 'metrics']"
