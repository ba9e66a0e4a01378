"""Collection rules for the doctest run over the packages (``--doctest-modules training``).

``training/flower.py`` imports Flower at import time (one-line :class:`ImportError`
naming the extra when it is absent), so it is collected only where flwr is installed.
"""

from importlib.util import find_spec

collect_ignore = [] if find_spec("flwr") is not None else ["training/flower.py"]
