"""``ipfl market``: a seeded random market, its graph, payments, utilities and welfare."""

from __future__ import annotations

import click

from mechanism import VARIANTS, greedy_graph, random_market
from mechanism.report import market_table


@click.command(name="market")
@click.option("--clients", "-m", default=8, show_default=True, type=click.IntRange(min=2),
              help="Number of clients.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--variant", default="paper", show_default=True, type=click.Choice(VARIANTS),
              help="Algorithm 2 as printed ('paper') or continuing past failures ('skip').")
@click.option("--lam", default=0.1, show_default=True, type=click.FloatRange(min=0),
              help="lambda, the weight of model distance.")
@click.option("--buyers", default=0.125, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of pure buyers (c = inf).")
@click.option("--sellers", default=0.125, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of pure sellers (K = 0).")
def command(clients: int, seed: int, variant: str, lam: float, buyers: float,
            sellers: float) -> None:
    """Print a seeded random market: graph (Algorithm 2), payments (eq. 10), utilities (eq. 1)."""
    if buyers + sellers > 1:
        raise click.BadParameter(f"buyers + sellers = {buyers + sellers:g} must be <= 1",
                                 param_hint="--buyers/--sellers")
    market = random_market(clients, seed=seed, lam=lam, buyers=buyers, sellers=sellers)
    click.echo(f"Random market: m = {clients}, seed = {seed}, lambda = {lam}, "
               f"Algorithm 2 variant '{variant}'\n")
    click.echo(market_table(market, greedy_graph(market, variant)))
