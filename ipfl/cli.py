"""The ``ipfl`` command line: one lazily loaded sub-command per module.

Each sub-command lives in ``ipfl/commands/<module>.py`` as a :mod:`click` command
named ``command``. Commands load only when invoked, so ``ipfl compare`` never
imports torch and ``ipfl --help`` stays fast.
"""

from __future__ import annotations

import importlib.util  # not just importlib: .util is not loaded at start-up without site hooks
import os

import click

#: sub-command name -> (module under ``ipfl.commands``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "The main job: a short iPFL training run on the bundled digits."),
    "market": ("market", "A market from a file or seeded at random: prices, thresholds, trace."),
    "explore": ("explore", "Serve the market explorer page on 127.0.0.1 (for teaching)."),
    "compare": ("compare", "Greedy (Algorithm 2) versus exact optimal graphs, measured."),
    "audit": ("audit", "Property-based audit of the paper's incentive claims -> CLAIMS.md."),
    "train": ("train", "Train iPFL (Algorithm 1) or a baseline from a TOML config; resumable."),
    "audit-run": ("audit_run", "Verify a run's hash chain and recompute its rounds (exit 0/1/2)."),
    "key": ("key", "This machine's run-chain key: id, export FILE, import FILE."),
    "rescore": ("rescore", "A run's utilities and welfare (vs the optimum) under other c, K, lam."),
    "flower": ("flower", "Train on Flower: Ray simulation or SuperNodes on loopback."),
    "reproduce": ("reproduce", "Write REPRODUCTION.md from the experiments' CSVs."),
    "experiment": ("experiment", "The paper's experiments (Fig. 2-5, Table 2); resumable."),
}


#: exit code of a run stopped by Ctrl-C (SIGINT), as shells report it: 128 + 2
INTERRUPTED = 130


class InputError(click.ClickException):
    """Bad input, refused before any work: one line ``Error: ...``, exit code 2."""

    exit_code = 2


#: wide terminals get wide help; narrower ones wrap it (click never cuts a line)
CONTEXT = {"max_content_width": 120, "help_option_names": ["-h", "--help"]}


class FullHelpGroup(click.Group):
    """A click group whose command list shows each command's whole summary, wrapped.

    click cuts a summary to the terminal's width with ``...``; this one wraps it.
    """

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the sub-commands with their summaries in full."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, self.summary(name, cmd)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def summary(self, name: str, cmd: click.Command) -> str:
        """One command's summary: its first sentence, never cut."""
        return cmd.get_short_help_str(limit=10_000)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """Find the sub-command; an unknown name is a usage error with "did you mean"."""
        name = click.utils.make_str(args[0])
        if self.get_command(ctx, name) is None and not name.startswith("-"):
            from .vocabulary import did_you_mean

            hint = did_you_mean(name, self.list_commands(ctx))
            ctx.fail(f"No such command {name!r}{hint}; `{ctx.command_path} --help` lists them.")
        return super().resolve_command(ctx, args)


class LazyGroup(FullHelpGroup):
    """A click group whose sub-commands are imported on first use."""

    def summary(self, name: str, cmd: click.Command) -> str:
        """Return the summary of :data:`COMMANDS`, written for this list."""
        return COMMANDS[name][1] if name in COMMANDS else super().summary(name, cmd)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Names of the sub-commands whose module is installed."""
        return sorted(name for name, (mod, _) in COMMANDS.items() if _available(mod))

    def invoke(self, ctx: click.Context) -> object:
        """Run the sub-command; an unexpected exception becomes one line and exit code 2.

        Set ``IPFL_TRACEBACK=1`` to see the traceback instead.
        """
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:  # Ctrl-C outside a run (a run says how to resume itself)
            click.echo("stopped (Ctrl-C)", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None
        except Exception as exc:  # noqa: BLE001 (no traceback for users: one line, exit 2)
            if os.environ.get("IPFL_TRACEBACK"):
                raise
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            raise InputError(f"{type(exc).__name__}{where}: {exc} (set IPFL_TRACEBACK=1 "
                             "for the traceback and report it if the input was valid)") from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return the sub-command ``cmd_name`` (``None`` if unknown)."""
        if cmd_name not in COMMANDS or not _available(COMMANDS[cmd_name][0]):
            return None
        module = importlib.import_module(f"ipfl.commands.{COMMANDS[cmd_name][0]}")
        return module.command


def _available(module: str) -> bool:
    return importlib.util.find_spec(f"ipfl.commands.{module}") is not None


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(package_name="ipfl")
def main() -> None:
    """Analyse and run iPFL model-sharing markets (arXiv 2505.02462)."""


if __name__ == "__main__":  # pragma: no cover
    main()
