"""The end-of-run table and its legend (ipfl/run_report.py): every column explained."""

import re

from ipfl.run_report import LEGEND, client_table, table_legend


def _rows(roles, acc=(0.5,), best=(0.4,)):
    return [{"round": 1, "client": i, "role": role, "N": 10.0 * (i + 1), "acc": acc[i % len(acc)],
             "best_acc": best[i % len(best)], "U": 1.0, "cum_U": 2.0, "paid": 0.5,
             "received": 0.25, "active": i != 0, "ir": True} for i, role in enumerate(roles)]


def test_the_legend_explains_each_column_the_table_has():
    rows = _rows(["trader", "seller", "attacker"])
    table = client_table(rows, local=_rows(["trader", "seller", "attacker"]))
    legend = table_legend(rows, local=True)
    header = table.splitlines()[0].split()
    flat = " ".join(legend.split())
    for column in ("local", "last", "best", "in"):
        assert column in header and f"{column} = " in flat
    assert "cum U = the client's utility of eq. (1)" in flat
    assert "paid, received = money of eq. (10)" in flat
    assert "so best can be below last" in flat and "U= is this round's mean U" in flat
    assert "attacker* rows are left out of the mean" in flat
    assert all(len(line) <= 96 for line in legend.splitlines())


def test_the_legend_leaves_out_what_the_table_does_not_show():
    legend = " ".join(table_legend(_rows(["trader", "trader"])).split())
    assert "local =" not in legend and "attacker*" not in legend
    assert legend.count(";") == len(LEGEND) - 3  # five entries


def test_in_column_says_who_left_and_mean_excludes_attackers():
    rows = _rows(["trader", "trader", "attacker"], acc=(0.2, 0.4, 0.9))
    lines = client_table(rows).splitlines()
    assert [ln.split()[-1] for ln in lines[1:4]] == ["n", "y", "y"]
    mean = next(ln for ln in lines if ln.strip().startswith("mean"))
    assert re.search(r"\b0\.300\b", mean)  # (0.2 + 0.4) / 2: the attacker's 0.9 left out
