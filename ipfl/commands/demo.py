"""``ipfl demo``: iPFL versus plain local training on the bundled digits, with plots."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import click


@click.command("demo")
@click.option("--seed", type=int, default=0, show_default=True, help="Master seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a training key (see configs/demo.toml), e.g. --set rounds=5.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default runs/demo-<timestamp>).")
def command(seed: int, overrides: tuple[str, ...], run_dir: str | None) -> None:
    """Train iPFL and local models on digits; print a per-client table and write plots."""
    import numpy as np

    from ipfl.figures import plot_round_graph
    from training import load_config, train
    from training.plots import plot_curves
    from training.server import ProxCapWarning

    try:
        base = load_config(None, [f"seed={seed}", *overrides])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    out = Path(run_dir or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    runs = {}
    t0 = time.perf_counter()
    for algo in ("local", "ipfl"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProxCapWarning)  # the demo's default cap binds
            try:
                runs[algo] = train(base.replace(algorithm=algo), out / algo, progress=True)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
    T = base.rounds
    loc = {r["client"]: r for r in runs["local"] if r["round"] == T}
    ipf = {r["client"]: r for r in runs["ipfl"] if r["round"] == T}
    money = {}
    for r in runs["ipfl"]:
        pr = money.setdefault(r["client"], [0.0, 0.0])
        pr[0] += r["paid"]
        pr[1] += r["received"]
    click.echo(f"\n{base.clients} clients, digits, {base.partition} beta={base.beta}, "
               f"{T} rounds, seed {seed}\n")
    click.echo(f"{'client':>6} {'N_i':>5} {'acc local':>10} {'acc iPFL':>9} {'cum U':>8} "
               f"{'paid':>8} {'received':>9} {'in':>3}")
    first = json.loads((out / "ipfl" / "rounds" / "0001.json").read_text())  # everyone in
    reports_N = dict(zip(first["clients"], first["inputs"]["N"], strict=True))
    for i in sorted(ipf):
        click.echo(f"{i:>6} {reports_N[i]:>5.0f} {loc[i]['acc']:>10.3f} {ipf[i]['acc']:>9.3f} "
                   f"{ipf[i]['cum_U']:>8.2f} {money[i][0]:>8.2f} {money[i][1]:>9.2f} "
                   f"{'y' if ipf[i]['active'] else 'n':>3}")
    acc_l = np.mean([r["acc"] for r in loc.values()])
    acc_i = np.mean([r["acc"] for r in ipf.values()])
    click.echo(f"{'mean':>6} {'':>5} {acc_l:>10.3f} {acc_i:>9.3f} "
               f"{np.mean([r['cum_U'] for r in ipf.values()]):>8.2f}")
    ipfl_rows = [r for r in runs["ipfl"] if r["round"] > 0 and r["active"]]
    broken = [(r["round"], r["client"], r["U"]) for r in ipfl_rows if not r["ir"]]
    if broken:
        click.secho(f"\nINDIVIDUAL RATIONALITY VIOLATED in {len(broken)} of {len(ipfl_rows)} "
                    f"client-rounds (round, client, U): {broken}", fg="red", bold=True)
    else:
        click.echo(f"\nindividual rationality (U_i >= 0) held in all {len(ipfl_rows)} "
                   "recorded client-rounds")
    curves = plot_curves(runs, out / "curves.png")
    graph = plot_round_graph(out / "ipfl" / "rounds" / f"{T:04d}.json", out / "graph.png")
    click.echo(f"\nplots: {curves}, {graph}\nrun dirs: {out / 'local'}, {out / 'ipfl'} "
               f"({time.perf_counter() - t0:.0f} s)")
