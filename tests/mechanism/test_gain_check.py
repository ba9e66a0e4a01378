"""Market refuses a custom gain that is not concave, increasing and 0 at 0 (gain.check_gain)."""

import numpy as np
import pytest

from mechanism import Gain, Market, greedy_graph


class Fn(Gain):
    def __init__(self, f):
        self.f = f

    def value(self, x, N, K):
        x, N, K = (np.asarray(a, float) for a in (x, N, K))
        return self.f(x, N, K)

    def __repr__(self):
        return "Fn()"


@pytest.mark.parametrize("f, match", [
    (lambda x, N, K: K * x**2, r"gain Fn\(\) is not concave for client 0"),
    (lambda x, N, K: 1.0 + K * np.log1p(x / N), r"has g\(0\) = 1 for client 0"),
    (lambda x, N, K: -K * x, r"decreases for client 0"),
    (lambda x, N, K: K * np.sqrt(x) / (x - 5.0), r"not finite|decreases|not concave"),
])
def test_bad_gains_are_refused(f, match):
    with pytest.raises(ValueError, match=match):
        Market(N=[10, 20], c=[0, 0], K=[1, 1], gain=Fn(f))


def test_a_good_custom_gain_is_accepted_and_used():
    mk = Market(N=[10, 20, 30], c=[0.1, 0.1, 0.1], K=[1, 1, 1],
                gain=Fn(lambda x, N, K: K * (1 - np.exp(-x / N))))
    assert greedy_graph(mk).shape == (3, 3)
