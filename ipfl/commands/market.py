"""``ipfl market``: a market from a file (or seeded at random), explained.

Prints the distances, prices ``w_ij`` and thresholds, the graph with payments,
utilities and individual rationality, and optionally Algorithm 2's trace for
one client (``--explain I``) or every client (``--explain`` alone), and the exact
optimum of eq. (8) (``--exact``).
"""

from __future__ import annotations

import click
from click.core import ParameterSource

from ipfl.cli import InputError
from ipfl.vocabulary import NameChoice
from mechanism import VARIANTS, exact_graph, explain, greedy_graph, random_market
from mechanism.exact import BRUTEFORCE_MAX_M
from mechanism.report import market_details, market_table

_RANDOM_ONLY = ("clients", "seed", "lam", "buyers", "sellers")


@click.command(name="market")
@click.option("--file", "path", type=click.Path(dir_okay=False), default=None,
              help="Market file (.json, schema ipfl.market/1, or .csv); see the README.")
@click.option("--clients", "-m", default=8, show_default=True, type=click.IntRange(min=2),
              help="Number of clients (random market).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--variant", default="paper", show_default=True, type=NameChoice(VARIANTS),
              help="Algorithm 2 as printed ('paper') or continuing past failures ('skip').")
@click.option("--lam", default=0.1, show_default=True, type=click.FloatRange(min=0),
              help="lambda, the weight of model distance (random market).")
@click.option("--buyers", default=0.125, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of pure buyers (c = inf) (random market).")
@click.option("--sellers", default=0.125, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of pure sellers (K = 0) (random market).")
@click.option("--explain", "explain_i", is_flag=False, flag_value="all", default=None,
              metavar="[I]", help="Print Algorithm 2's trace for client I; --explain alone "
                                  "(or --explain all): for every client.")
@click.option("--exact", is_flag=True,
              help="Also solve eq. (8) exactly and print that graph and its payments.")
@click.option("--save", type=click.Path(dir_okay=False), default=None,
              help="Write the market to this .json or .csv file.")
@click.pass_context
def command(ctx: click.Context, path: str | None, clients: int, seed: int, variant: str,
            lam: float, buyers: float, sellers: float, explain_i: str | None, exact: bool,
            save: str | None) -> None:
    """Explain a market: distances, prices w_ij, thresholds, graph, payments, utilities, IR."""
    from ipfl.market_files import read_market, write_market

    if path is not None:
        given = [f"--{n}" for n in _RANDOM_ONLY
                 if ctx.get_parameter_source(n) is not ParameterSource.DEFAULT]
        if given:
            raise InputError(f"{given[0]} describes a random market; drop it when using --file")
        try:
            market = read_market(path)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        title = f"Market from {path}: m = {market.m}, lambda = {market.lam:g}"
    else:
        if buyers + sellers > 1:
            raise InputError(f"--buyers/--sellers: buyers + sellers = {buyers + sellers:g} "
                             "must be <= 1")
        market = random_market(clients, seed=seed, lam=lam, buyers=buyers, sellers=sellers)
        title = f"Random market: m = {clients}, seed = {seed}, lambda = {lam}"
    who = _clients_to_explain(explain_i, market.m)
    solver = "bruteforce" if market.m <= BRUTEFORCE_MAX_M else "milp"
    if save is not None:
        try:
            write_market(market, save)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    click.echo(f"{title}, Algorithm 2 variant '{variant}'\n")
    click.echo(market_details(market) + "\n")
    click.echo(f"Algorithm 2 ('{variant}'): graph, payments (eq. 10), utilities (eq. 1)")
    click.echo(market_table(market, greedy_graph(market, variant)))
    if exact:
        res = exact_graph(market, solver=solver)
        click.echo(f"\nExact optimum of eq. (8) ({solver}; {res.message})")
        click.echo(market_table(market, res.A))
    for i in who:
        click.echo("")
        click.echo(explain(market, i, variant=variant, exact=exact, exact_solver=solver).text())
    if save is not None:
        click.echo(f"\nwrote {save}")


def _clients_to_explain(value: str | None, m: int) -> list[int]:
    """Return the clients ``--explain`` names: none, one ``I`` in ``0..m-1``, or ``all``."""
    if value is None:
        return []
    if value.strip().lower() == "all":
        return list(range(m))
    try:
        i = int(value)
    except ValueError:
        raise InputError(f"--explain: {value!r} is not a client index or 'all'") from None
    if not 0 <= i < m:
        raise InputError(f"--explain: client {i} is not in 0..{m - 1}")
    return [i]
