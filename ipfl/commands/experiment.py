"""``ipfl experiment NAME``: run one of the paper's experiments with a preset; resumable."""

from __future__ import annotations

import click

from ..cli import InputError
from ..options import Int


@click.command("experiment")
@click.argument("name")
@click.option("--quick", "preset", flag_value="quick", default=True,
              help="Minutes on 2 cores: digits, 10 clients, 8 rounds (the default).")
@click.option("--repro", "preset", flag_value="repro",
              help="REPRODUCTION.md's preset: Fashion-MNIST, 10 clients, 10,000 images, MLP.")
@click.option("--paper", "preset", flag_value="paper",
              help="The paper's setting: all of Fashion-MNIST, the CNN, 50 rounds (hours).")
@click.option("--tiny", "preset", flag_value="tiny", hidden=True)
@click.option("--seeds", type=Int(1, 1000), default=3, show_default=True,
              help="Number of seeds (0..n-1).")
@click.option("--dataset", default=None, help="Override the preset's dataset.")
@click.option("--data-dir", default=None, help="Folder of the dataset's files.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--methods", default=None, help="Comma-separated subset of the methods.")
@click.option("--settings", default=None,
              help="Comma-separated subset of NIID,Cluster,Skew (instruct: finance,mixed).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Experiment folder (default experiments-out/<preset>/<NAME>).")
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Folder of the run directories (default <out>/../run-store).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a training key in every run, e.g. --set c=0.5 or --set "
                   "ipfl.lam=0 (iPFL's runs only); repeatable. Keys the experiment sets run "
                   "by run (algorithm, seed, the settings' partition keys, ...) are refused.")
@click.option("--jobs", type=Int(1, 256), default=1, show_default=True,
              help="Runs trained in parallel (one process each); with --ray, the most runs "
                   "in flight (default: one per free CPU of the cluster).")
@click.option("--ray", "ray", default=None, metavar="ADDRESS",
              help="Run each run as a Ray task: 'local' starts Ray on this machine (and stops "
                   "it), HOST:PORT joins a running cluster's head (`ray start --head`). Needs "
                   "pip install 'ipfl[flower-sim]'. Same CSVs as --jobs 1; resumable.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def command(ctx: click.Context, name: str, preset: str, seeds: int, dataset: str | None,
            data_dir: str | None, device: str, methods: str | None, settings: str | None,
            out: str | None, store: str | None, overrides: tuple[str, ...], jobs: int,
            ray: str | None, quiet: bool) -> None:
    """Run one of the paper's experiments; an interrupted one resumes where it stopped.

    NAME is performance, utility, robustness, truthfulness, market, similarity,
    regimes or instruct (Table 1 on a small LLM: the [llm] extra, docs/llm.md).

    Writes the resolved config, one run directory per method x setting x seed, CSVs,
    PNG figures and summary.md into the experiment folder.
    """
    import shlex
    import sys

    from ..cli import INTERRUPTED
    from ..experiments import run_experiment

    if ray is not None and ctx.get_parameter_source("jobs") is not \
            click.core.ParameterSource.COMMANDLINE:
        jobs = None  # Ray schedules one run per free CPU
    where = (f"{jobs} at a time" if ray is None else
             f"as Ray tasks on {'this machine' if ray == 'local' else ray}"
             f"{f', {jobs} at a time' if jobs else ''}")

    def start(runs: int, out: object, store: object) -> None:
        click.echo(f"experiment {name} ({preset}): {runs} runs on {device}, {where}; "
                   f"results in {out}, run directories in {store} (Ctrl-C stops it; the same "
                   "command resumes it)", err=True)

    def split(s: str | None) -> tuple[str, ...] | None:
        return (tuple(x.strip() for x in s.split(",") if x.strip())
                 if s is not None else None)
    try:
        res = run_experiment(name, preset, seeds=seeds, dataset=dataset, data_dir=data_dir,
                             device=device, out=out, store=store, jobs=jobs, ray=ray,
                             methods=split(methods), settings=split(settings),
                             overrides=overrides, progress=not quiet, on_start=start)
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(str(exc)) from None
    except KeyboardInterrupt:
        again = shlex.join(["ipfl", *sys.argv[1:]]) if sys.argv[1:2] == ["experiment"] else \
            "the same ipfl experiment command"
        click.echo(f"\nstopped; finished runs are kept; resume with: {again}", err=True)
        raise click.exceptions.Exit(INTERRUPTED) from None
    click.echo(f"\n{name} ({preset}): {res['seconds']:.0f} s; results in {res['out']}")
    click.echo((res["out"] / "summary.md").read_text())
