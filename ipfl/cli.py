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
    "train": ("train", "Run iPFL (Algorithm 1) from a TOML config; resumable."),
    "audit-run": ("audit_run", "Verify a run's hash chain and recompute its rounds (exit 0/1/2)."),
    "key": ("key", "This machine's run-chain key: id, export FILE, import FILE."),
    "rescore": ("rescore", "A run's utilities and welfare (vs the optimum) under other c, K, lam."),
    "flower": ("flower", "Train on Flower: Ray simulation or SuperNodes on loopback."),
    "reproduce": ("reproduce", "Write REPRODUCTION.md from the experiments' CSVs."),
    "experiment": ("experiment", "The paper's experiments (Fig. 2-5, Table 2); resumable."),
}


class InputError(click.ClickException):
    """Bad input, refused before any work: one line ``Error: ...``, exit code 2."""

    exit_code = 2


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

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


@click.group(cls=LazyGroup)
@click.version_option(package_name="ipfl")
def main() -> None:
    """Analyse and run iPFL model-sharing markets (arXiv 2505.02462)."""


if __name__ == "__main__":  # pragma: no cover
    main()
