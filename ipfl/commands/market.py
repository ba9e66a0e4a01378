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
from ipfl.market_files import MAX_CLIENTS
from ipfl.options import SEED_MAX, Float, Int
from ipfl.vocabulary import NameChoice
from mechanism import VARIANTS, exact_graph, explain, greedy_graph, random_market
from mechanism.exact import BRUTEFORCE_MAX_M
from mechanism.report import market_details, market_table

_RANDOM_ONLY = ("clients", "seed", "lam", "buyers", "sellers")

#: the m x m tables (distances, prices, thresholds) are printed up to this many clients:
#: past it they are unreadable on a terminal and were 80 % of the time (m = 1,000: 15 of
#: 19 s); --save writes the market for a closer look
MATRIX_MAX = 40
#: ``--exact`` (the MILP of eq. (8), m^2 binaries) is refused past this many clients: on
#: random markets it took 12 s at m = 60 and 35 s at m = 120 (docs/reliability.md)
EXACT_MAX = 100


@click.command(name="market")
@click.option("--file", "path", type=click.Path(dir_okay=False), default=None,
              help="Market file (.json, schema ipfl.market/1, or .csv); see docs/teaching.md.")
@click.option("--clients", "-m", default=8, show_default=True, type=Int(2, MAX_CLIENTS),
              help="Number of clients (random market).")
@click.option("--seed", default=0, show_default=True, type=Int(0, SEED_MAX),
              help="Random seed.")
@click.option("--variant", default="paper", show_default=True, type=NameChoice(VARIANTS),
              help="Algorithm 2 as printed ('paper') or continuing past failures ('skip').")
@click.option("--lam", default=0.1, show_default=True, type=Float(0, 1e12),
              help="lambda, the weight of model distance (random market).")
@click.option("--buyers", default=0.125, show_default=True, type=Float(0, 1),
              help="Fraction of pure buyers (c = inf) (random market).")
@click.option("--sellers", default=0.125, show_default=True, type=Float(0, 1),
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
    if exact and market.m > EXACT_MAX:
        raise InputError(f"--exact: m = {market.m} clients, more than the limit of {EXACT_MAX} "
                         "for the exact optimum (a MILP of m^2 binaries); drop --exact")
    who = _clients_to_explain(explain_i, market.m)
    solver = "bruteforce" if market.m <= BRUTEFORCE_MAX_M else "milp"
    if save is not None:
        try:
            write_market(market, save)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    click.echo(f"{title}, Algorithm 2 variant '{variant}'\n")
    if market.m <= MATRIX_MAX:
        click.echo(market_details(market) + "\n")
    else:
        click.echo(f"(the m x m tables of distances, prices and thresholds are shown for m <= "
                   f"{MATRIX_MAX}; this market has m = {market.m})\n")
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
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise InputError(f"--explain: {value!r} is not a client index or 'all'")
    i = int(text)
    if not 0 <= i < m:
        raise InputError(f"--explain: client {i} is not in 0..{m - 1}")
    return [i]
