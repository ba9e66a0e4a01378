r"""Markets from and to files: JSON (schema ``ipfl.market/1``) and CSV.

The pure parser is :func:`mechanism.market_dict.market_from_dict`; this module
only reads and writes files (atomically, through :mod:`atomicio`).

JSON: see :mod:`mechanism.market_dict` for the schema.

CSV: one row per client, with a header. Columns ``N, c, K`` are required;
then either point coordinates ``x`` (and ``y``, ``z``, ...: any columns whose
name starts with ``x``, ``y`` or ``z``), whose Euclidean distances become
``d``, or the rows of the distance matrix, ``d0, d1, ..., d{m-1}``. ``lam``
and ``gain`` go in comment lines before the header::

    # lam = 0.1
    # gain = sqrt
    N,c,K,x,y
    100,0.1,400,0,0
    250,inf,900,1,0.5

Limits (checked before anything is parsed or allocated; the error names the file and
the limit): a market file is a regular file of at most :data:`MAX_BYTES` bytes, UTF-8,
with at most :data:`MAX_CLIENTS` clients (rows, or entries of ``clients``); JSON nests
at most :data:`MAX_DEPTH` levels. ``ipfl market`` on :data:`MAX_CLIENTS` clients answers
in about 25 s (2 cores; ``docs/reliability.md``), and its time grows as :math:`m^2`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from pathlib import Path

import numpy as np

from atomicio import atomic_write_text
from mechanism import Market
from mechanism.market_dict import market_from_dict, market_to_dict

__all__ = ["MAX_BYTES", "MAX_CLIENTS", "MAX_DEPTH", "check_clients", "json_depth", "load_document",
           "loads_limited", "read_market", "write_market"]

#: the most clients a market file (or ``ipfl market --clients``) may have: Algorithm 2's
#: report on 2,000 clients takes about 25 s and 0.5 GB, and grows as m^2
MAX_CLIENTS = 2_000
#: the most bytes a market file may hold (a 2,000-client distance matrix is about 40 MB)
MAX_BYTES = 64 * 2**20
#: the deepest JSON nesting a market document may have (the schema needs 3)
MAX_DEPTH = 16

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """Return the deepest nesting of ``[``/``{`` in JSON ``text`` (strings skipped), vectorised.

    Examples
    --------
    >>> json_depth('{"a": [[1, 2], "[[[["]}')
    3
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub('""', text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    step = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(step).max())


def loads_limited(text: str, max_depth: int = MAX_DEPTH) -> object:
    """Parse JSON ``text`` after checking its nesting depth (a deep one exhausts the stack).

    Raises
    ------
    ValueError
        ``"nests N levels deep, more than the limit of max_depth"`` or ``"not valid JSON"``.
    """
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"JSON nests {depth} levels deep, more than the limit of {max_depth}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None


def check_clients(count: int, where: str = "clients") -> None:
    """Refuse a market of more than :data:`MAX_CLIENTS` clients, naming the limit."""
    if count > MAX_CLIENTS:
        raise ValueError(f"{where}: {count:,} clients, more than the limit of {MAX_CLIENTS:,} "
                         "(ipfl.market_files.MAX_CLIENTS)")


def _read_text(path: Path) -> str:
    """Read a market file: a regular file of at most MAX_BYTES bytes, UTF-8."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("is not a regular file")
    if info.st_size > MAX_BYTES:
        raise ValueError(f"{info.st_size:,} bytes, more than the limit of {MAX_BYTES:,} "
                         "(ipfl.market_files.MAX_BYTES)")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_BYTES:
        raise ValueError(f"more than the limit of {MAX_BYTES:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})") \
            from None

_COMMENT = re.compile(r"^#\s*(\w+)\s*[=:]\s*(.*?)\s*$")


def _csv_document(text: str) -> dict:
    lines = text.splitlines()
    doc: dict = {}
    body = []
    for k, line in enumerate(lines, start=1):
        if line.lstrip().startswith("#"):
            hit = _COMMENT.match(line.strip())
            if hit and hit.group(1) in ("lam", "gain"):
                doc[hit.group(1)] = hit.group(2)
            elif hit:
                raise ValueError(f"line {k}: unknown setting {hit.group(1)!r} "
                                 "(allowed: lam, gain)")
            continue
        if line.strip():
            body.append(line)
    check_clients(len(body) - 1, "rows")
    rows = list(csv.reader(io.StringIO("\n".join(body))))
    if not rows:
        raise ValueError("no header row (expected columns N, c, K, ...)")
    header = [h.strip() for h in rows[0]]
    for need in ("N", "c", "K"):
        if need not in header:
            raise ValueError(f"header has no column {need!r} (got {header})")
    m = len(rows) - 1
    pts = [h for h in header if h[:1] in ("x", "y", "z")]
    dcols = [h for h in header if re.fullmatch(r"d\d+", h)]
    other = set(header) - {"N", "c", "K", "name"} - set(pts) - set(dcols)
    if other:
        raise ValueError(f"unknown column {sorted(other)[0]!r} "
                         "(allowed: N, c, K, name, x/y/z..., d0..d{m-1})")
    if pts and dcols:
        raise ValueError("give either point columns (x, y, ...) or d0..d{m-1}, not both")
    if dcols and dcols != [f"d{j}" for j in range(m)]:
        raise ValueError(f"distance columns must be d0..d{m - 1} in order, got {dcols}")
    clients, points, d = [], [], []
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ValueError(f"row {r} (client {r}) has {len(row)} fields, "
                             f"expected {len(header)}")
        cell = dict(zip(header, (v.strip() for v in row), strict=True))
        clients.append({k: cell[k] for k in ("N", "c", "K")})
        if pts:
            points.append([cell[h] for h in pts])
        if dcols:
            d.append([cell[h] for h in dcols])
    doc["clients"] = clients
    if pts:
        doc["points"] = points
    if dcols:
        doc["d"] = d
    return doc


def load_document(path: str | os.PathLike) -> dict:
    """Read a ``.json`` or ``.csv`` market file into an ``ipfl.market/1`` document.

    Raises
    ------
    ValueError
        Naming the file and the problem (unreadable, not a regular file, over a limit,
        not UTF-8, not JSON, bad CSV layout).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise ValueError(f"{path}: market files end in .json or .csv, got {suffix or 'none'!r}")
    try:
        text = _read_text(path)
        if suffix == ".json":
            doc = loads_limited(text)
            if isinstance(doc, dict) and isinstance(doc.get("clients"), list):
                check_clients(len(doc["clients"]))
            return doc
        return _csv_document(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def read_market(path: str | os.PathLike) -> Market:
    r"""Read and validate a market file; errors name the file, field, index and value.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.csv"
    >>> _ = p.write_text("# lam = 0.5\nN,c,K,x\n100,0.1,400,0\n300,inf,0,2\n")
    >>> mk = read_market(p)
    >>> mk.roles, float(mk.d[0, 1]), mk.lam
    (('trader', 'buyer'), 2.0, 0.5)
    """
    doc = load_document(path)
    try:
        return market_from_dict(doc)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def write_market(market: Market, path: str | os.PathLike, points: object = None) -> Path:
    """Write ``market`` to ``path`` (``.json`` or ``.csv``) atomically; return the path."""
    path = Path(path)
    doc = market_to_dict(market, points)
    if path.suffix.lower() == ".json":
        text = json.dumps(doc, indent=1) + "\n"
    elif path.suffix.lower() == ".csv":
        buf = io.StringIO()
        buf.write(f"# lam = {doc['lam']!r}\n# gain = {doc['gain']}\n")
        coords = doc.get("points")
        extra = ([f"x{k}" for k in range(len(coords[0]))] if coords is not None
                 else [f"d{j}" for j in range(market.m)])
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["N", "c", "K", *extra])
        for i, cl in enumerate(doc["clients"]):
            tail = coords[i] if coords is not None else doc["d"][i]
            w.writerow([repr(v) if isinstance(v, float) else v
                        for v in (cl["N"], cl["c"], cl["K"], *tail)])
        text = buf.getvalue()
    else:
        raise ValueError(f"{path}: market files end in .json or .csv")
    atomic_write_text(path, text)
    return path
