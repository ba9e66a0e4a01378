"""Pictures of markets (ipfl/figures.py): what is drawn follows the mechanism's numbers."""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.patches import FancyArrowPatch

from ipfl.figures import ROLE_COLOURS, draw_market_graph, plot_market, plot_round_graph
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


# ----- issue 22: figures that explain themselves ---------------------------------------------
def _round_file(tmp_path, exchange):
    path = tmp_path / f"{exchange.round:04d}.json"
    path.write_text(json.dumps(exchange.to_json()))
    return path


@pytest.fixture
def keep_figures(monkeypatch):
    """Collect the figures the plot functions save (they close them after saving)."""
    import ipfl.figures as figures

    kept = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: kept.append(fig) or Path(path))
    return kept


def test_a_20_client_round_draws_one_arrow_per_positive_payment(tmp_path, keep_figures):
    """Zero-payment imports are not drawn; the legend counts them; roles coloured; a title."""
    from mechanism import settle
    from training.records import Exchange

    mk = random_market(20, seed=1, lam=0.01, buyers=0.1, sellers=0.1)
    s = settle(mk)
    ex = Exchange.market_round(round=4, clients=range(20), roles=list(mk.roles), market=mk,
                               budget=np.full(20, np.inf), solver="paper", true=None,
                               settlement=s)
    doc = ex.to_json()
    r = np.array(doc["outputs"]["r"], float)
    edges = list(zip(*np.nonzero(np.array(doc["outputs"]["A"])), strict=True))
    assert len(edges) >= 4
    for i, j in edges[::3]:  # a third of the imports pay nothing
        r[i, j] = 0.0
    doc["outputs"]["r"] = r.tolist()
    (tmp_path / "0004.json").write_text(json.dumps(doc))
    plot_round_graph(tmp_path / "0004.json", tmp_path / "g.png")
    ax = keep_figures[0].axes[0]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    positive = sum(r[i, j] > 0 for i, j in edges)
    assert len(arrows) == positive < len(edges)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"{len(edges) - positive} imports paying r_ij = 0 not drawn" in labels
    assert ax.get_title().startswith("Who imports whose model in round 4")
    nodes = ax.collections[0]
    colours = [to_hex(c) for c in nodes.get_facecolors()]
    assert colours == [ROLE_COLOURS[x] for x in mk.roles]
    assert nodes.get_sizes().max() <= (120 + 900) * 10 / 20  # shrunk to stay apart at 20


@pytest.mark.parametrize("dense", [True, False])
def test_a_baseline_round_without_payments(tmp_path, keep_figures, dense):
    """A dense sharing graph (FedAvg: everyone) is not drawn as a hairball; a sparse one is."""
    from training.records import Exchange

    m = 20
    A = np.ones((m, m), int) - np.eye(m, dtype=int) if dense else np.eye(m, k=1, dtype=int)
    ex = Exchange.sharing(round=2, clients=range(m), roles=["trader"] * m, N=np.full(m, 50.0),
                          c=np.full(m, 0.1), K=np.full(m, 1e3), A=A, U=np.zeros(m))
    plot_round_graph(_round_file(tmp_path, ex), tmp_path / "g.png")
    ax = keep_figures[0].axes[0]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "no payments" in ax.get_title()
    if dense:
        assert arrows == []
        assert f"no payments; {int(A.sum())} imports (density 1.00 > 0.5) not drawn" in labels
    else:
        assert len(arrows) == int(A.sum())
        assert "no payments: every import drawn alike" in labels


def _rows(roles, rounds=3, seed=0):
    """Metric rows of a made-up run: round, client, role, acc, U, cum_U."""
    rng = np.random.default_rng(seed)
    rows, cum = [], np.zeros(len(roles))
    for t in range(rounds + 1):
        U = rng.uniform(-1, 3, len(roles))
        cum += U
        for i, role in enumerate(roles):
            rows.append({"round": t, "client": i, "role": role, "N": 50.0 + i,
                         "acc": float(rng.uniform()), "best_acc": float(rng.uniform()),
                         "U": float(U[i]), "cum_U": float(cum[i]), "paid": 0.5,
                         "received": 0.25, "active": True, "ir": True})
    return rows


def test_curves_have_titles_and_mark_attackers_as_the_table_does(tmp_path, keep_figures):
    """Solid = the table's mean row (attackers excluded); dashed = the attackers' row."""
    from ipfl.figures import CURVES, plot_curves
    from ipfl.run_report import client_table

    rows = _rows(["trader", "attacker", "trader", "seller", "attacker"])
    plot_curves({"ipfl": rows, "local": _rows(["trader"] * 5, seed=1)}, tmp_path / "c.png")
    fig = keep_figures[0]
    assert [ax.get_title() for ax in fig.axes] == [c[2] for c in CURVES]
    assert "attackers (*) dashed" in fig._suptitle.get_text()
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert set(lines) == {"ipfl (attackers excluded)", "ipfl: attackers*", "local"}
    assert lines["ipfl: attackers*"].get_linestyle() == "--"
    assert lines["ipfl (attackers excluded)"].get_linestyle() == "-"
    table = client_table(rows).splitlines()
    mean = next(ln for ln in table if ln.strip().startswith("mean"))
    bad = next(ln for ln in table if ln.startswith("attackers"))
    assert float(mean.split()[1]) == round(lines["ipfl (attackers excluded)"].get_ydata()[-1], 3)
    assert float(bad.split()[1]) == round(lines["ipfl: attackers*"].get_ydata()[-1], 3)
    marked = [ln.split()[1] for ln in table[1:] if ln.split()[0].isdigit()]
    assert marked == ["trader", "attacker*", "trader", "seller", "attacker*"]
    assert "(attackers * excluded)" in mean
