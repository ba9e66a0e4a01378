"""The defences of mechanism/defence.py and their place in settle (issue 24)."""

import numpy as np
import pytest

from mechanism import DEFENCES, Market, defended_payments, greedy_graph, payments, settle
from mechanism.defence import check_estimate

MK = Market(N=[100, 200, 300, 50], c=[0.1, 0.2, 0.1, 0.3], K=[4e4, 2e4, 3e4, 5e3],
            d=[[0, .1, .2, .3], [.1, 0, .1, .2], [.2, .1, 0, .1], [.3, .2, .1, 0]])


def test_registry_names_the_paper_and_the_estimate():
    """One registry: the paper's mechanism under its own name and the defence."""
    assert sorted(DEFENCES) == ["checked", "estimate", "none"]


def test_estimate_equal_to_the_reports_is_the_paper():
    """With the estimate equal to the reports the defended settlement is eq. (10)'s, bit for bit."""
    # Execute
    paper = settle(MK, solver="paper")
    defended = settle(MK, solver="paper", defence="estimate", estimate=MK.N)
    # Assert
    for name in ("stays", "A", "r", "p", "U"):
        np.testing.assert_array_equal(getattr(paper, name), getattr(defended, name))


def test_estimate_runs_graph_and_bills_on_the_estimate():
    """Graph and bills are the paper's on the estimated sizes; the report is not used."""
    # Prepare: client 1 reports ten times its 20 points
    est = np.array([100.0, 20.0, 300.0, 50.0])
    # Execute
    s = settle(MK, defence="estimate", estimate=est)
    # Assert
    A = greedy_graph(MK.replace(N=est))
    np.testing.assert_array_equal(s.A, A)
    np.testing.assert_array_equal(s.r, payments(MK.replace(N=est), A).r)
    np.testing.assert_array_equal(s.N, est)
    assert abs(s.p.sum()) < 1e-12


def test_a_report_of_N_changes_nothing_under_the_estimate():
    """Any report of N_1 gives the same defended settlement (the report is not priced)."""
    est = np.array([100.0, 20.0, 300.0, 50.0])
    true = MK.replace(N=est)
    base = settle(MK, true=true, defence="estimate", estimate=est)
    for report in (2.0, 200.0, 2e4):
        s = settle(MK.with_report(1, N=report), true=true, defence="estimate", estimate=est)
        for name in ("stays", "A", "r", "p", "U"):
            np.testing.assert_array_equal(getattr(s, name), getattr(base, name))


def test_the_paper_settlement_records_no_sizes():
    assert settle(MK).N is None


def test_defence_changes_only_money_not_true_utility_of_graph():
    """U = true gain - true cost - defended bill (true profiles as for the paper)."""
    true = MK.replace(N=[100.0, 20.0, 300.0, 50.0])
    s = settle(MK, true=true, defence="estimate", estimate=true.N)
    gains = true.gain.value(s.A @ true.N, true.N, true.K)
    cost = s.A.sum(axis=0) * true.c
    np.testing.assert_allclose(s.U, gains - cost - s.p)


def test_quit_loop_runs_on_defended_bills():
    """A client whose defended bill exceeds its budget quits (the paper's rule, new bills)."""
    est = np.array([100.0, 20.0, 300.0, 50.0])
    bills = settle(MK, defence="estimate", estimate=est).p
    payer = int(np.argmax(bills))
    budget = np.full(4, np.inf)
    budget[payer] = bills[payer] / 2
    s = settle(MK, budget, defence="estimate", estimate=est)
    assert not s.stays[payer]
    assert abs(s.p.sum()) < 1e-12


@pytest.mark.parametrize(("defence", "estimate", "match"), [
    ("nope", None, r"^settle: defence = 'nope' is not one of \['checked', 'estimate', 'none'\]$"),
    ("none", [1, 2, 3, 4], r"^settle: defence = 'none' takes no estimate$"),
    ("estimate", None, r"^settle: defence = 'estimate' needs an estimate of the 4 clients"),
    ("estimate", [1, 2, 3], r"^settle: estimate has shape \(3,\), expected \(4,\)$"),
    ("estimate", [1, 2, float("nan"), 4], r"^settle: estimate\[2\] = nan is outside N's domain"),
    ("estimate", [1, 0, 3, 4], r"^settle: estimate\[1\] = 0\.0 is outside N's domain"),
])
def test_bad_defence_input_is_one_line_naming_it(defence, estimate, match):
    """Bad input is refused naming the field, the index and the value."""
    with pytest.raises(ValueError, match=match):
        settle(MK, defence=defence, estimate=estimate)


def test_check_estimate_returns_floats():
    assert check_estimate("x", "estimate", [1, 2], 2).dtype == np.float64
    assert check_estimate("x", "none", None, 2) is None


def test_defended_payments_default_is_eq10():
    A = greedy_graph(MK)
    np.testing.assert_array_equal(defended_payments(MK, A).r, payments(MK, A).r)


def test_checked_prices_agreeing_reports_and_the_estimate_elsewhere():
    """'checked': a report within exp(band) of its estimate is priced, a farther one lower."""
    # Prepare: client 1 reports 200 but has 20 (a factor 10, ln 10 = 2.3 > 0.5)
    est = np.array([110.0, 20.0, 290.0, 50.0])
    # Execute
    s = settle(MK, defence="checked", estimate=est, band=0.5)
    # Assert: 1 is priced at the smallest size the estimate allows, 20 exp(-0.5)
    np.testing.assert_array_equal(s.N, [100.0, 20.0 * np.exp(-0.5), 300.0, 50.0])
    np.testing.assert_array_equal(s.A, greedy_graph(MK.replace(N=s.N)))


def test_checked_with_a_wide_band_is_the_paper():
    est = np.array([110.0, 20.0, 290.0, 50.0])
    s, paper = settle(MK, defence="checked", estimate=est, band=10.0), settle(MK)
    np.testing.assert_array_equal(s.r, paper.r)


@pytest.mark.parametrize("band", [-0.1, float("nan"), float("inf"), True])
def test_bad_band_is_refused_naming_it(band):
    with pytest.raises(ValueError, match=r"^settle: band = .* must be a finite number >= 0$"):
        settle(MK, defence="checked", estimate=MK.N, band=band)


def test_explain_shows_the_defence_and_traces_the_priced_market():
    """explain() under a defence: the trace is Algorithm 2's on the priced sizes."""
    from mechanism import explain, priced_market

    est = np.array([110.0, 20.0, 290.0, 50.0])
    ex = explain(MK, 0, defence="checked", estimate=est, band=0.5)
    priced = priced_market(MK, "checked", est, 0.5)
    assert ex.imports == explain(priced, 0).imports
    assert ex.reported == tuple(MK.N.tolist())
    assert ex.to_dict()["priced"] == priced.N.tolist()
    assert ex.text().startswith("defence 'checked' (issue 24): the round runs on the priced")
    assert explain(MK, 0).defence == "none" and "defence" not in explain(MK, 0).text()
