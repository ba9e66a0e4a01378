"""Pictures of markets (ipfl/figures.py): what is drawn follows the mechanism's numbers."""

import json

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch

from ipfl.figures import draw_market_graph, plot_market, plot_round_graph
from mechanism import greedy_graph, payments, random_market, utilities


def test_one_arrow_per_import_width_by_money_legend_by_role():
    mk = random_market(20, seed=0, lam=0.01, buyers=0.1, sellers=0.1)
    A = greedy_graph(mk)
    r = payments(mk, A).r
    fig, ax = plt.subplots()
    draw_market_graph(ax, mk.N, list(mk.roles), A, r, utilities(mk, A))
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == int(A.sum())
    edges = list(zip(*np.nonzero(A), strict=True))
    widths = np.array([a.get_linewidth() for a in arrows])
    money = np.array([r[i, j] for i, j in edges])
    # drawn thin to thick, each width an increasing function of the payment
    money = np.sort(money)
    np.testing.assert_allclose(widths, 0.25 + 3.5 * (money - money[0]) / (money[-1] - money[0]))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "arrow i -> j: i imports j's model" in labels
    assert ("pure buyer (c = inf)" in labels) == ("buyer" in mk.roles)
    plt.close(fig)


def test_png_files(tmp_path):
    mk = random_market(6, seed=2, lam=0.1, buyers=0.2, sellers=0.2)
    A = greedy_graph(mk)
    assert plot_market(mk, A, tmp_path / "m.png").stat().st_size > 10_000
    from mechanism import settle
    from training.records import Exchange

    ex = Exchange.market_round(round=3, clients=range(10, 16), roles=list(mk.roles), market=mk,
                               budget=np.full(6, np.inf), solver="paper", true=None,
                               settlement=settle(mk))
    (tmp_path / "0003.json").write_text(json.dumps(ex.to_json()))
    assert plot_round_graph(tmp_path / "0003.json", tmp_path / "g.png").stat().st_size > 10_000
