"""One vocabulary for every ``ipfl`` command: run directory, resume, seed, output, names.

=====================  ==============================================================
spelling               meaning, in every command that has it
=====================  ==============================================================
``--run-dir DIR``      the one run directory a new training run writes
``--resume RUN_DIR``   continue the run in ``RUN_DIR`` from its last committed round
``--seed S``           the master seed; the same as ``--set seed=S`` where both exist
``--out DIR``          always a folder of outputs (created if needed)
``--file FILE``        the one named file a command reads or writes
=====================  ==============================================================

Old spellings keep working as deprecated aliases that print a one-line ``note:`` on
stderr (:func:`deprecated`); names of algorithms, datasets, attacks, experiments,
methods and solvers are matched case-insensitively, and a near miss gets a
"did you mean" (:func:`match_name`). docs/cli.md has the table of old and new spellings.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

import click

__all__ = ["NameChoice", "deprecated", "did_you_mean", "match_name", "resume_target",
           "seed_overrides"]


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``options``, or ``""``.

    Closeness is :func:`difflib.get_close_matches` on lower-cased spellings (cutoff 0.6).

    Examples
    --------
    >>> did_you_mean("trian", ["train", "demo"])
    " (did you mean 'train'?)"
    >>> did_you_mean("zzz", ["train"])
    ''
    """
    opts = list(options)
    lower = {o.lower(): o for o in opts}
    best = difflib.get_close_matches(str(word).lower(), list(lower), n=1, cutoff=0.6)
    return f" (did you mean {lower[best[0]]!r}?)" if best else ""


def match_name(kind: str, value: str, options: Iterable[str]) -> str:
    """Return the registered spelling of ``value`` among ``options``, ignoring case.

    Raises
    ------
    ValueError
        ``"<kind> 'x' is not one of [...] (did you mean 'y'?)"`` when no option matches.

    Examples
    --------
    >>> match_name("algorithm", "FedAvg", ["fedavg", "ipfl"])
    'fedavg'
    """
    opts = list(options)
    for o in opts:
        if o.lower() == str(value).lower():
            return o
    raise ValueError(f"{kind} {value!r} is not one of {sorted(opts)}{did_you_mean(value, opts)}")


class NameChoice(click.Choice):
    """A :class:`click.Choice` matched case-insensitively, with "did you mean" on a miss."""

    def __init__(self, choices: Iterable[str]) -> None:
        super().__init__(list(choices), case_sensitive=False)

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> object:
        """Return the registered spelling of ``value``; fail naming the closest choice."""
        try:
            return match_name("", str(value), [str(c) for c in self.choices])
        except ValueError:
            self.fail(f"{value!r} is not one of {', '.join(map(repr, self.choices))}"
                      f"{did_you_mean(str(value), map(str, self.choices))}", param, ctx)


def deprecated(old: str, new: str) -> None:
    """Print the one-line notice for a deprecated spelling on stderr (the command goes on)."""
    click.echo(f"note: {old} is deprecated; use {new}", err=True)


def resume_target(resume: str | None, run_dir: str | None, *,
                  config: str | None = None) -> str | None:
    """Return the run directory to resume, or None for a new run.

    ``--resume RUN_DIR`` is the spelling everywhere. The old ``--resume --run-dir DIR``
    (``--resume`` given without a value: ``resume == ""``) still works, with a notice.

    Raises
    ------
    click.UsageError
        (as :class:`ipfl.cli.InputError`, exit 2) for ``--resume`` without any
        directory, or with ``--config``/``--run-dir`` besides ``RUN_DIR``.
    """
    from .cli import InputError

    if resume is None:
        return None
    if resume == "":
        if not run_dir:
            raise InputError("--resume: give the run directory, --resume RUN_DIR")
        deprecated("--resume --run-dir DIR", "--resume DIR")
        resume, run_dir = run_dir, None
    if config or run_dir:
        raise InputError("--resume takes its config from RUN_DIR; drop --config/--run-dir "
                         "(use --set for a non-structural change)")
    return resume


def seed_overrides(seed: int | None, overrides: Iterable[str], *,
                   resume: bool = False) -> list[str]:
    """Merge ``--seed S`` into the ``--set`` list as ``seed=S``; both spellings are one key.

    Raises
    ------
    click.UsageError
        (as :class:`ipfl.cli.InputError`) when ``--seed`` and ``--set seed=`` disagree, or
        ``--seed`` is given on resume (the seed fixes the data split and the model).
    """
    from training.config import parse_override

    from .cli import InputError

    sets = list(overrides)
    if seed is None:
        return sets
    if resume:
        raise InputError(f"--seed {seed}: cannot change on resume (the seed fixes the data "
                         "split and the model); start a new run for another seed")
    for item in sets:
        try:
            key, value = parse_override(item)
        except ValueError:
            continue  # the config reports it, naming it
        if key == "seed" and value != seed:
            raise InputError(f"--seed {seed} and --set {item} disagree; give one of them")
    return [f"seed={seed}", *sets]


def run_dir_default(algorithm: str, stamp: str) -> Path:
    """Return the default run directory ``runs/<algorithm>-<timestamp>``."""
    return Path("runs") / f"{algorithm}-{stamp}"
