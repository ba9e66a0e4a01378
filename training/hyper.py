"""Declared hyper-parameters: one small spec type shared by every algorithm's config table.

An algorithm lists its hyper-parameters as ``hyper = {"mu": Param(0.01, lo=0)}``; the
config reads them from the algorithm's own TOML table (``[fedprox] mu = 0.01``) or
from ``--set fedprox.mu=0.1`` and validates each with :meth:`Param.check`, whose
messages name the table, the key and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Param"]


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: default, type, and the allowed range or choices.

    Attributes
    ----------
    default : float, int or str
        The value used when the config does not set it; its type is the parameter's type.
    lo, hi : float
        Closed bounds for numbers (``lo_open`` makes the lower bound strict).
    choices : tuple of str, optional
        The allowed strings.
    doc : str
        One line for the documentation.
    """

    default: float | int | str
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    choices: tuple[str, ...] = ()
    doc: str = ""

    def check(self, where: str, value: Any) -> float | int | str:
        """Return ``value`` coerced to the parameter's type, or raise naming ``where``.

        Examples
        --------
        >>> Param(0.01, lo=0).check("[fedprox] mu", 1)
        1.0
        >>> Param(0.01, lo=0).check("[fedprox] mu", -1)
        Traceback (most recent call last):
        ...
        ValueError: config: [fedprox] mu = -1.0 must be >= 0
        """
        kind = type(self.default)
        if kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise ValueError(f"config: {where} = {value!r} is not one of {list(self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"config: {where} = {value!r} must be a number")
        if kind is int:
            if not isinstance(value, int):
                raise ValueError(f"config: {where} = {value!r} must be an integer")
        else:
            value = float(value)
        if math.isnan(value) or value < self.lo or (self.lo_open and value <= self.lo):
            rel = ">" if self.lo_open else ">="
            raise ValueError(f"config: {where} = {value!r} must be {rel} {self.lo:g}")
        if value > self.hi:
            raise ValueError(f"config: {where} = {value!r} must be <= {self.hi:g}")
        return value
