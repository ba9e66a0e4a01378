"""``ipfl market``: the printed table agrees with the mechanism on the same seeded market."""

import numpy as np
from click.testing import CliRunner

from ipfl.cli import main
from mechanism import greedy_graph, random_market, social_welfare


def test_market_table_matches_the_mechanism():
    out = CliRunner().invoke(main, ["market", "-m", "6", "--seed", "3", "--lam", "0.2"])
    assert out.exit_code == 0, out.output
    mk = random_market(6, seed=3, lam=0.2, buyers=0.125, sellers=0.125)
    A = greedy_graph(mk)
    assert f"edges {int(A.sum())}," in out.output
    assert f"social welfare {social_welfare(mk, A):.4f}" in out.output
    assert len([ln for ln in out.output.splitlines() if ln[:3].strip().isdigit()]) == 6
    assert np.isfinite(social_welfare(mk, A))


def test_market_rejects_impossible_role_fractions():
    out = CliRunner().invoke(main, ["market", "--buyers", "0.7", "--sellers", "0.6"])
    assert out.exit_code != 0 and "buyers + sellers = 1.3" in out.output
