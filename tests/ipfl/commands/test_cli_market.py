"""``ipfl market``: the printed table agrees with the mechanism on the same seeded market."""

from pathlib import Path

import numpy as np
import pytest
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


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "market.json"


def test_market_from_file_explained_with_exact():
    """--file --explain --exact prints prices, thresholds, both graphs and the trace."""
    from ipfl.market_files import read_market
    from mechanism import exact_graph, explain

    out = CliRunner().invoke(main, ["market", "--file", str(EXAMPLE), "--explain", "1",
                                    "--exact", "--variant", "skip"])
    assert out.exit_code == 0, out.output
    mk = read_market(EXAMPLE)
    A = greedy_graph(mk, "skip")
    for title in ("model distances d_ij", "prices w_ij", "thresholds N^Th_ij",
                  "Exact optimum of eq. (8)", "individual rationality"):
        assert title in out.output
    assert f"social welfare {social_welfare(mk, A):.4f}" in out.output
    opt = exact_graph(mk, solver="bruteforce").A
    assert f"social welfare {social_welfare(mk, opt):.4f}" in out.output
    assert explain(mk, 1, variant="skip", exact=True).text() in out.output
    assert f"{mk.weights[0, 1]:.4g}" in out.output


@pytest.mark.parametrize("args, needle", [
    (["--file", "nope.json"], "nope.json: cannot read"),
    (["--file", str(EXAMPLE), "--explain", "9"], "--explain: client 9 is not in 0..4"),
    (["--file", str(EXAMPLE), "--seed", "3"], "--seed describes a random market"),
    (["--buyers", "0.7", "--sellers", "0.6"], "buyers + sellers = 1.3"),
])
def test_market_errors_are_one_line_exit_2(args, needle):
    out = CliRunner().invoke(main, ["market", *args])
    assert out.exit_code == 2, out.output
    assert out.output.strip().splitlines() == [f"Error: {out.output.strip()[7:]}"]
    assert needle in out.output and "Traceback" not in out.output


def test_market_bad_field_in_file(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('{"clients": [{"N": 1, "c": 0, "K": 1}, {"N": -3, "c": 0, "K": 1}]}')
    out = CliRunner().invoke(main, ["market", "--file", str(p)])
    assert out.exit_code == 2 and "clients[1].N = -3.0 must be finite and > 0" in out.output


def test_large_market_omits_the_m_by_m_tables_and_matches_the_mechanism():
    """Past MATRIX_MAX clients the three m x m tables are replaced by one line; the
    graph's summary still agrees with the mechanism (the table has one line per client)."""
    from ipfl.commands.market import MATRIX_MAX

    m = MATRIX_MAX + 1
    out = CliRunner().invoke(main, ["market", "-m", str(m), "--seed", "1"])
    assert out.exit_code == 0, out.output
    mk = random_market(m, seed=1, lam=0.1, buyers=0.125, sellers=0.125)
    assert f"shown for m <= {MATRIX_MAX}; this market has m = {m}" in out.output
    assert "prices w_ij" not in out.output
    assert f"social welfare {social_welfare(mk, greedy_graph(mk)):.4f}" in out.output
