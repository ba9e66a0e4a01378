"""``ipfl compare``: Algorithm 2 against certified optimal graphs, measured."""

from __future__ import annotations

from pathlib import Path

import click

from ipfl.options import SEED_MAX, Float, Int

from ..vocabulary import NameChoice


def _pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not LOW,HIGH (two numbers)") from None
    return lo, hi


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers") from None


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers") from None


@click.command(name="compare")
@click.option("--sizes", default="4,6,8,12", show_default=True,
              help="Client counts m, comma-separated.")
@click.option("--markets", default=25, show_default=True, type=Int(1, 100_000),
              help="Markets per size.")
@click.option("--seed", default=0, show_default=True, type=Int(0, SEED_MAX))
@click.option("--c-range", default="0.01,1", show_default=True,
              help="Sharing costs LOW,HIGH (log-uniform).")
@click.option("--k-range", default="1e3,1e5", show_default=True,
              help="Eagerness K LOW,HIGH.")
@click.option("--n-range", default="50,5000", show_default=True,
              help="Data sizes LOW,HIGH.")
@click.option("--lam", default="0.1", show_default=True,
              help="lambda, or several comma-separated (cycled).")
@click.option("--spread", default=1.0, show_default=True, type=Float(0, 1e12),
              help="Spread of model points (distances).")
@click.option("--buyers", default=0.0, show_default=True, type=Float(0, 1),
              help="Fraction of pure buyers.")
@click.option("--sellers", default=0.0, show_default=True, type=Float(0, 1),
              help="Fraction of pure sellers.")
@click.option("--solver", default="milp", show_default=True,
              type=NameChoice(["milp", "highs", "bruteforce", "dp"]), help="Exact solver.")
@click.option("--time-limit", default=None, type=Float(0.001, 1e7),
              help="Seconds per row for the exact solver.")
@click.option("--out", "out", default="compare-out", show_default=True,
              type=click.Path(file_okay=False),
              help="Folder for markets.csv, rows.csv, compare.json and the figures.")
@click.option("--no-figures", is_flag=True, help="Skip the matplotlib figures.")
def command(sizes: str, markets: int, seed: int, c_range: str, k_range: str, n_range: str,
            lam: str, spread: float, buyers: float, sellers: float, solver: str,
            time_limit: float | None, out: str, no_figures: bool) -> None:
    """Compare Algorithm 2 ("paper", "skip") with the exact optimum of eq. (8)."""
    from mechanism.compare import compare

    from ..compare_files import write_outputs

    kwargs = {"sizes": _ints(sizes), "markets": markets, "seed": seed, "c_range": _pair(c_range),
              "K_range": _pair(k_range), "N_range": _pair(n_range), "lam": _floats(lam),
              "spread": spread, "buyers": buyers, "sellers": sellers, "solver": solver,
              "time_limit": time_limit}
    try:
        res = compare(**kwargs)
    except (ValueError, RuntimeError) as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(res.table())
    paths = write_outputs(res, out)
    if not no_figures:
        from ipfl.figures import plot_example, plot_gap_vs_m

        paths["gap_vs_m"] = plot_gap_vs_m(res.rows, Path(out) / "gap_vs_m.png")
        if res.example is not None:
            paths["example"] = plot_example(res.example, Path(out) / "example.png")
    for name, path in paths.items():
        click.echo(f"wrote {name}: {path}")
