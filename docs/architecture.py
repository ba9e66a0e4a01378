"""Draw docs/architecture.png: the layers (measured from the code) and a round's data flow.

Run from the repository root (matplotlib comes with the ``train`` extra)::

    .venv/bin/python docs/architecture.py          # writes docs/architecture.png

The left panel is measured afresh each time: every module of every project package is
parsed with :mod:`ast`, and an arrow from package A to package B counts the modules of A
that import something of B (at module level or inside a function). The layering test
(``tests/test_layering.py``) refuses any arrow that points upwards. The right panel is
drawn by hand from :mod:`training.session`; its names are the code's names.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: the layers, top to bottom; packages on one row may not import each other
LAYERS: list[tuple[tuple[str, ...], str]] = [
    (("ipfl",), "CLI, experiments, explorer, files"),
    (("training", "proofs_checks"), ""),
    (("mechanism", "atomicio"), ""),
]
ROLE = {
    "training": "PyTorch rounds: Session,\nalgorithms, Flower",
    "proofs_checks": "Hypothesis audits\nof the claims",
    "mechanism": "the pure mechanism:\nnumpy, networkx, PuLP",
    "atomicio": "atomic file writes",
}
PACKAGES = [p for row, _ in LAYERS for p in row]


def package_stats() -> tuple[dict[str, tuple[int, int]], dict[tuple[str, str], int]]:
    """Return ``{package: (modules, lines)}`` and ``{(importer, imported): modules}``."""
    stats: dict[str, tuple[int, int]] = {}
    edges: dict[tuple[str, str], int] = {}
    for pkg in PACKAGES:
        files = sorted((ROOT / pkg).rglob("*.py"))
        stats[pkg] = (len(files), sum(len(f.read_text().splitlines()) for f in files))
        for f in files:
            reached = set()
            for node in ast.walk(ast.parse(f.read_text(), filename=str(f))):
                if isinstance(node, ast.Import):
                    reached.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    reached.add(node.module.split(".")[0])
            for other in reached & set(PACKAGES) - {pkg}:
                edges[pkg, other] = edges.get((pkg, other), 0) + 1
    return stats, edges


def _box(ax, x: float, y: float, w: float, h: float, text: str, color: str,
         size: float = 9.0) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                fc=color, ec="0.25", lw=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _arrow(ax, a: tuple[float, float], b: tuple[float, float], label: str = "",
           color: str = "0.3", rad: float = 0.0, at: float = 0.5) -> None:
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color=color,
                                 lw=1.2, connectionstyle=f"arc3,rad={rad}"))
    if label:
        x, y = a[0] + at * (b[0] - a[0]), a[1] + at * (b[1] - a[1])
        ax.text(x, y, label, fontsize=8, color=color, ha="center", va="center",
                bbox={"fc": "white", "ec": "none", "pad": 0.5})


def draw_layers(ax) -> None:
    """Draw the packages as boxes on their layer, arrows = modules importing downwards."""
    stats, edges = package_stats()
    pos: dict[str, tuple[float, float]] = {}
    for r, (row, _) in enumerate(LAYERS):
        y = 0.82 - 0.33 * r
        for k, pkg in enumerate(row):
            pos[pkg] = (0.5 if len(row) == 1 else 0.22 + 0.56 * k, y)
    colors = {"ipfl": "#fde7c8", "training": "#d9e8fb", "proofs_checks": "#e3f1dc",
              "mechanism": "#eee", "atomicio": "#eee"}
    for pkg, (x, y) in pos.items():
        n, lines = stats[pkg]
        role = ROLE.get(pkg, LAYERS[0][1])
        unit = "module" if n == 1 else "modules"
        _box(ax, x, y, 0.36, 0.13, f"{pkg}/\n{role}\n{n} {unit}, {lines:,} lines",
             colors[pkg], size=8)
    for (a, b), count in sorted(edges.items()):
        (xa, ya), (xb, yb) = pos[a], pos[b]
        up = yb > ya
        far = abs(ya - yb) > 0.4  # ipfl to the bottom row: through the middle row's gap
        side = 1 if xb > xa else -1
        start = (xa + 0.03 * side * far, ya - 0.07 if not up else ya + 0.07)
        end = (0.5 + 0.12 * side if far else xb + 0.06 * side * (xa != xb),
               yb + 0.07 if not up else yb - 0.07)
        _arrow(ax, start, end, f"{count}", color="red" if up else "0.35",
               at=0.25 if far else 0.5)
    ax.text(0.5, 0.99, "Layers: each arrow imports only downwards\n(number = modules that "
            "import the package below)", ha="center", va="top", fontsize=9.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")


def draw_round(ax) -> None:
    """Draw one round: Session.plan (pure), client steps, absorb (pure), commit (I/O)."""
    blue, green, grey, gold = "#d9e8fb", "#e3f1dc", "#eee", "#fde7c8"
    steps = [
        (0.93, "Session.open(run_dir, cfg) + start(prepare(cfg))\nconfig, hash chain, every "
               "check; RunState (fresh or from checkpoint.pt)", gold),
        (0.77, "plan(t)  [pure]\nAlgorithm.market -> mechanism.settle (eq. 10, IR)\n"
               "-> Algorithm.server_step -> Plan: messages + Exchange", blue),
        (0.58, "client steps, wherever they run\nrun_client / batched (vmap) / Flower "
               "ClientApp\nAlgorithm.client_step, objective.py, evaluation", green),
        (0.40, "absorb(plan, results)  [pure]\n-> RoundRecord (Exchange + metric rows), "
               "new RunState\n(NaN or inf: NonFiniteRound, nothing written)", blue),
        (0.22, "commit(record, state)  [all I/O, in this order]\nrounds/NNNN.json -> "
               "ledger.sqlite -> metrics.jsonl\n-> checkpoint.pt + hash-chain entry "
               "(the commit point)", grey),
    ]
    for y, text, color in steps:
        _box(ax, 0.45, y, 0.82, 0.105, text, color, size=8)
    for (y1, _, _), (y2, _, _) in zip(steps, steps[1:], strict=False):
        _arrow(ax, (0.45, y1 - 0.075), (0.45, y2 + 0.075))
    _arrow(ax, (0.87, 0.22), (0.87, 0.77), "next round", rad=0.35)
    _box(ax, 0.45, 0.055, 0.82, 0.075, "readers: RunDir.read_records() / Exchange.from_json\n"
         "audit-run, rescore, experiments, figures, resume", "white", size=8)
    _arrow(ax, (0.45, 0.155), (0.45, 0.095))
    ax.text(0.5, 1.06, "A round (training/session.py), the same for every transport",
            ha="center", va="top", fontsize=9.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.07)
    ax.axis("off")


def main(out: Path = ROOT / "docs" / "architecture.png") -> Path:
    """Draw both panels into ``out`` (written to a temporary file, then renamed)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6.2),
                                      gridspec_kw={"width_ratios": [1, 1.15]})
    draw_layers(left)
    draw_round(right)
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(out)
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "architecture.png"))
