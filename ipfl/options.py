"""Command-line number types: ASCII only, bounded, refused in one line naming the option.

:mod:`click`'s ``int`` and ``float`` accept what Python's ``int()`` and ``float()``
accept: ``"1_000"``, Arabic-Indic digits ``"١٢"``, ``"nan"``, ``"inf"``, numbers of any
size. An option that reaches numpy or a loop then fails late (``OverflowError``,
``MemoryError``) instead of naming itself. :class:`Int` and :class:`Float` accept only a
plain ASCII number within their bounds; click's message names the option::

    Error: Invalid value for '--seed': -1 is not in [0, 9223372036854775807].
"""

from __future__ import annotations

import math
import re
from typing import Any

import click

__all__ = ["SEED_MAX", "Float", "Int"]

#: the largest seed an option accepts (numpy and torch take any 63-bit non-negative integer)
SEED_MAX = 2**63 - 1

_INT = re.compile(r"[+-]?[0-9]{1,30}")
_FLOAT = re.compile(r"[+-]?([0-9]{1,30}(\.[0-9]{0,30})?|\.[0-9]{1,30})([eE][+-]?[0-9]{1,3})?")


class Int(click.ParamType):
    """An integer in ``[lo, hi]`` written in ASCII digits (an optional sign; no ``_``)."""

    name = "integer"

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        """Return ``value`` as an int, or fail naming the option, the value and the range."""
        if isinstance(value, bool):
            self.fail(f"{value!r} is not an integer", param, ctx)
        if isinstance(value, int):
            n = value
        elif isinstance(value, str) and _INT.fullmatch(value.strip()):
            n = int(value.strip())
        else:
            self.fail(f"{str(value)[:40]!r} is not an integer (ASCII digits, e.g. 12)",
                      param, ctx)
        if not self.lo <= n <= self.hi:
            self.fail(f"{n} is not in [{self.lo}, {self.hi}]", param, ctx)
        return n


class Float(click.ParamType):
    """A finite number in ``[lo, hi]`` written in ASCII (``0.5``, ``1e-3``; no ``nan``)."""

    name = "number"

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        """Return ``value`` as a float, or fail naming the option, the value and the range."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            x = float(value)
        elif isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            x = float(value.strip())
        else:
            self.fail(f"{str(value)[:40]!r} is not a finite number (ASCII, e.g. 0.5 or 1e-3)",
                      param, ctx)
        if not (math.isfinite(x) and self.lo <= x <= self.hi):
            self.fail(f"{x!r} is not in [{self.lo:g}, {self.hi:g}]", param, ctx)
        return x
