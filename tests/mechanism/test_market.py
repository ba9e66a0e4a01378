"""Tests for mechanism/market.py: validation, immutability, weights, roles."""

import math

import numpy as np
import pytest

from mechanism import LogGain, Market


def good(**over):
    kw = dict(N=[100.0, 200.0, 300.0], c=[0.1, 0.2, 0.3], K=[400.0, 0.0, 900.0],
              d=[[0, 1, 2], [1, 0, 3], [2, 3, 0]], lam=0.5)
    kw.update(over)
    return kw


@pytest.mark.parametrize(
    ("over", "match"),
    [
        (dict(N=[100.0, 0.0, 300.0]), r"N\[1\] = 0.0 must be finite and > 0"),
        (dict(N=[100.0, -5.0, 300.0]), r"N\[1\] = -5.0"),
        (dict(N=[100.0, 200.0, math.inf]), r"N\[2\] = inf"),
        (dict(N=[math.nan, 200.0, 300.0]), r"N\[0\] = nan is NaN"),
        (dict(c=[0.1, -0.2, 0.3]), r"c\[1\] = -0.2 must be >= 0"),
        (dict(c=[0.1, 0.2, math.nan]), r"c\[2\] = nan is NaN"),
        (dict(K=[-1.0, 0.0, 900.0]), r"K\[0\] = -1.0 must be finite and >= 0"),
        (dict(K=[1.0, math.inf, 900.0]), r"K\[1\] = inf"),
        (dict(d=[[0, 1, 2], [1, 0, -3], [2, 3, 0]]), r"d\[1, 2\] = -3.0 must be finite and >= 0"),
        (dict(d=[[0, 1, 2], [1, 0, 3], [math.nan, 3, 0]]), r"d\[2, 0\] = nan is NaN"),
        (dict(d=[[0, 1, 2], [1, 0, math.inf], [2, 3, 0]]), r"d\[1, 2\] = inf"),
        (dict(d=[[0, 1], [1, 0]]), r"d has shape \(2, 2\), expected \(3, 3\)"),
        (dict(c=[0.1, 0.2]), r"c has length 2, expected m = 3"),
        (dict(K=[[1.0, 2.0, 3.0]]), r"K must be 1-dimensional"),
        (dict(N=[100.0], c=[0.1], K=[1.0], d=None), r"at least 2 clients, got N of length 1"),
        (dict(lam=-0.1), r"lam = -0.1 must be finite and >= 0"),
        (dict(lam=math.nan), r"lam = nan"),
        (dict(lam="big"), r"lam = 'big' must be a number"),
        (dict(gain="cubic"), r"gain = 'cubic' is not a Gain instance"),
        (dict(N=["a", 1, 2]), r"N must be an array of numbers"),
        # the numeric domain (Market's DOMAIN)
        (dict(N=[100.0, 1e-320, 300.0]), r"N\[1\] = 1e-320 is outside the numeric domain"),
        (dict(N=[100.0, 200.0, 1e16]), r"N\[2\] = 1e\+16 is outside the numeric domain"),
        (dict(N=[9.99e-4, 200.0, 300.0]), r"N\[0\] = 0.000999 is outside"),
        (dict(c=[0.1, 2e9, 0.3]), r"c\[1\] = 2000000000.0 is outside the numeric domain"),
        (dict(K=[1.0, 1e300, 900.0]), r"K\[1\] = 1e\+300 is outside the numeric domain"),
        (dict(d=[[0, 1, 2], [1, 0, 3], [2, 1.5e6, 0]]), r"d\[2, 1\] = 1500000.0 is outside"),
        (dict(lam=1e7), r"lam = 10000000.0 is outside the numeric domain"),
        (dict(N=[100, 10**400, 300]), r"N\[1\] = ~1e\+400 is too large for a float"),
        (dict(K=[1, 0, -(10**309)]), r"K\[2\] = ~-1e\+309 is too large for a float"),
        (dict(c=[0.1, 10**400, 0.3]), r"c\[1\] = ~1e\+400 is too large"),
        (dict(d=[[0, 1, 2], [1, 0, 10**999], [2, 3, 0]]), r"d\[1, 2\] = ~1e\+999 is too large"),
        (dict(lam=10**400), r"lam = ~1e\+400 is too large for a float"),
    ],
)
def test_bad_input_names_field_index_and_value(over, match):
    with pytest.raises(ValueError, match=match):
        Market(**good(**over))


def test_the_domain_is_closed_and_inf_cost_stays_a_pure_buyer():
    """The endpoints of every field are inside the domain; c = inf is allowed."""
    mk = Market(N=[1e-3, 1e12, 1.0], c=[0.0, 1e9, math.inf], K=[0.0, 1e12, 1.0],
                d=[[0, 1e6, 0], [0, 0, 1e6], [1e6, 0, 0]], lam=1e6)
    assert mk.roles == ("seller", "trader", "buyer")
    assert Market(N=[1, 2], c=[0, 0], K=[1, 1], lam=10**6).lam == 1e6  # an int is fine


def test_diagonal_of_d_is_ignored_even_if_negative_or_inf():
    mk = Market(**good(d=[[-7, 1, 2], [1, math.inf, 3], [2, 3, 5]]))
    assert np.all(np.diagonal(mk.d) == 0)


def test_immutable_fields_and_arrays():
    mk = Market(**good())
    with pytest.raises(AttributeError):
        mk.lam = 2.0
    with pytest.raises(ValueError):
        mk.N[0] = 1.0
    with pytest.raises(ValueError):
        mk.weights[0, 1] = 1.0


def test_input_arrays_are_copied():
    N = np.array([100.0, 200.0, 300.0])
    mk = Market(**good(N=N))
    N[0] = 1.0
    assert mk.N[0] == 100.0


def test_weights_use_Nj_over_Ni_not_the_printed_Ni_over_Ni():
    """Alg. 2 prints lambda N_i/N_i d; the reading is w_ij = c_j + lambda N_j/N_i d_ij."""
    mk = Market(**good())
    w = mk.weights
    # w_01 = c_1 + 0.5 * 200/100 * 1 = 0.2 + 1.0
    assert w[0, 1] == pytest.approx(1.2)
    # w_21 = c_1 + 0.5 * 200/300 * 3 = 0.2 + 1.0
    assert w[2, 1] == pytest.approx(1.2)
    # w_12 = c_2 + 0.5 * 300/200 * 3 = 0.3 + 2.25
    assert w[1, 2] == pytest.approx(2.55)
    assert np.all(np.isinf(np.diagonal(w)))


def test_pure_buyer_weight_is_infinite_and_roles():
    mk = Market(**good(c=[0.1, math.inf, 0.3]))
    assert np.isinf(mk.weights[0, 1]) and np.isinf(mk.weights[2, 1])
    assert mk.roles == ("trader", "buyer", "trader")
    assert Market(**good()).roles == ("trader", "seller", "trader")


def test_with_report_changes_one_entry_and_revalidates():
    mk = Market(**good())
    lie = mk.with_report(2, c=5.0, N=30.0)
    assert lie.c.tolist() == [0.1, 0.2, 5.0] and lie.N.tolist() == [100.0, 200.0, 30.0]
    assert mk.c[2] == 0.3  # the original is untouched
    with pytest.raises(ValueError, match=r"N\[2\] = -1.0"):
        mk.with_report(2, N=-1.0)
    with pytest.raises(ValueError, match="field 'd'"):
        mk.with_report(0, d=1.0)
    for bad in (3, -1, 1.0):
        with pytest.raises(ValueError, match=rf"i = {bad!r} is not a client index"):
            mk.with_report(bad, c=1.0)


def test_defaults_and_gain_names():
    mk = Market(N=[1, 2], c=[0, 0], K=[1, 1])
    assert mk.lam == 1.0 and np.all(mk.d == 0) and mk.gain.name == "sqrt"
    assert isinstance(Market(N=[1, 2], c=[0, 0], K=[1, 1], gain="log").gain, LogGain)
    assert "m=2" in repr(mk)
