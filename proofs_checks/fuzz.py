"""Long fuzz runs of the mechanism's numeric domain, in parallel and resumable (issue 12).

The test suite runs the domain properties with the ``ci`` profile (a few dozen
markets). This driver runs the same checks (:mod:`proofs_checks.domain`) on as
many markets as asked, drawn by the same Hypothesis strategies
(:func:`proofs_checks.strategies.domain_markets` and
:func:`~proofs_checks.strategies.outside_domain`), in chunks spread over worker
processes::

    python -m proofs_checks.fuzz --markets 1000000 --workers 2 --out fuzz-domain.json

Chunk ``k`` runs three Hypothesis tests seeded with ``seed * 1_000_003 + k``
(reproducible): ``chunk`` markets inside the domain (every guarantee, both greedy
variants, graphs equal to the unfiltered computation and the scalar reference),
``chunk // exact_every`` markets of at most 5 clients for the exact solver against
brute force, and ``chunk // outside_every`` markets with one entry just outside the
domain (a ``ValueError`` naming the field). A failure is shrunk by Hypothesis and
stored, with the market as an ``ipfl.market/1`` document (``ipfl market --file``
replays it); the chunk then goes on with its next test.

The JSON file is rewritten atomically after every chunk; run the same command
again to resume an interrupted run (chunks already in the file are skipped, the
settings must match). Counts are of markets checked: examples Hypothesis ran to
the end with every check passing, shrinking replays included.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings

from atomicio import atomic_write_text
from mechanism import Market
from mechanism.market_dict import market_to_dict

from .domain import check_exact, check_market
from .strategies import domain_markets, outside_domain

__all__ = ["FuzzSettings", "main", "render_markdown", "run_chunk", "run_fuzz", "summarise"]

SCHEMA = "ipfl.fuzz-domain/1"


class FuzzSettings(dict):
    """The settings a run's chunks depend on (stored in the JSON, checked on resume)."""

    def __init__(self, *, chunk: int, seed: int, exact_every: int, outside_every: int) -> None:
        for name, value, lo in (("chunk", chunk, 1), ("seed", seed, 0),
                                ("exact_every", exact_every, 1),
                                ("outside_every", outside_every, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"fuzz: {name} = {value!r} must be an integer >= {lo}")
        super().__init__(chunk=chunk, seed=seed, exact_every=exact_every,
                         outside_every=outside_every)


def _hyp_settings(n: int) -> settings:
    return settings(max_examples=n, derandomize=False, database=None, deadline=None,
                    print_blob=False, report_multiple_bugs=False,
                    phases=(Phase.generate, Phase.shrink),
                    suppress_health_check=list(HealthCheck))


def _failure(test: str, err: BaseException, market: object) -> dict:
    doc: dict = {"test": test, "error": f"{type(err).__name__}: {err}"[:4000]}
    if isinstance(market, Market):
        doc["market"] = market_to_dict(market)
    elif market is not None:
        doc["input"] = repr(market)[:4000]
    return doc


def run_chunk(index: int, cfg: dict) -> dict:
    """Run chunk ``index`` of a fuzz run with settings ``cfg`` and return its counts."""
    t0 = time.perf_counter()
    counts: Counter = Counter()
    last: dict = {}
    failures: list[dict] = []
    rng_seed = cfg["seed"] * 1_000_003 + index

    @_hyp_settings(cfg["chunk"])
    @seed(rng_seed)
    @given(domain_markets())
    def inside(mk: Market) -> None:
        last["x"] = mk
        check_market(mk)
        counts["inside"] += 1
        counts[f"m={mk.m}"] += 1
        counts[f"gain={mk.gain.name}"] += 1
        counts["with a pure buyer (c = inf)"] += bool(np.isinf(mk.c).any())
        counts["with a subnormal value"] += bool(any(
            ((v > 0) & (v < np.finfo(float).tiny)).any() for v in (mk.c, mk.K, mk.d))
            or 0 < mk.lam < np.finfo(float).tiny)
        counts["with N ratio >= 1e12"] += bool(mk.N.max() >= 1e12 * mk.N.min())

    @_hyp_settings(max(1, cfg["chunk"] // cfg["exact_every"]))
    @seed(rng_seed)
    @given(domain_markets(max_m=5))
    def exact(mk: Market) -> None:
        last["x"] = mk
        check_exact(mk)
        counts["exact"] += 1

    @_hyp_settings(max(1, cfg["chunk"] // cfg["outside_every"]))
    @seed(rng_seed)
    @given(outside_domain())
    def outside(case: tuple) -> None:
        kw, _field, where = case
        last["x"] = kw
        try:
            Market(**kw)
        except ValueError as err:
            assert re.match(rf"Market: {re.escape(where)} = ", str(err)), (where, str(err))
        else:
            raise AssertionError(f"no ValueError for {where}")
        counts["outside"] += 1

    for name, test in (("inside", inside), ("exact", exact), ("outside", outside)):
        last.clear()
        try:
            test()
        except Exception as err:  # a property failed: Hypothesis shrank it; keep it and go on
            failures.append(_failure(name, err, last.get("x")))
    return {"index": index, "seed": rng_seed, "counts": dict(counts), "failures": failures,
            "seconds": round(time.perf_counter() - t0, 3)}


def _load(out: Path, cfg: dict) -> dict:
    if not out.exists():
        return {"schema": SCHEMA, "settings": dict(cfg), "chunks": {}}
    try:
        doc = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"fuzz: {out} is not a fuzz run's file ({err}); "
                         "remove it or choose another --out") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"fuzz: {out} is not a fuzz run's file (schema "
                         f"{doc.get('schema') if isinstance(doc, dict) else None!r}); "
                         "remove it or choose another --out")
    if doc.get("settings") != dict(cfg):
        raise ValueError(f"fuzz: {out} was run with {doc.get('settings')}, not {dict(cfg)}; "
                         "resume with the same settings or choose another --out")
    return doc


def summarise(doc: dict) -> dict:
    """Return the totals of a fuzz run's file (counts, failures, chunks, CPU seconds)."""
    total: Counter = Counter()
    failures = []
    for chunk in doc["chunks"].values():
        total.update(chunk["counts"])
        failures.extend(chunk["failures"])
    return {"chunks": len(doc["chunks"]), "counts": dict(sorted(total.items())),
            "failures": len(failures),
            "cpu_seconds": round(sum(c["seconds"] for c in doc["chunks"].values()), 1)}


def render_markdown(doc: dict) -> str:
    """Return a fuzz run's counts as a Markdown table (``--report``)."""
    s = summarise(doc)
    c, cfg = s["counts"], doc["settings"]
    inside = c.get("inside", 0)

    def share(key: str) -> str:
        return f"{c.get(key, 0):,} ({100 * c.get(key, 0) / max(inside, 1):.0f} %)"

    rows = [
        ("markets inside the domain, every guarantee, both greedy variants", f"{inside:,}"),
        ("  of which m = 2 .. 8", ", ".join(f"{c.get(f'm={m}', 0):,}" for m in range(2, 9))),
        ("  square-root / log gain", f"{c.get('gain=sqrt', 0):,} / {c.get('gain=log', 0):,}"),
        ("  with a pure buyer (c = inf)", share("with a pure buyer (c = inf)")),
        ("  with a subnormal c, K, d or lambda", share("with a subnormal value")),
        ("  with an N ratio of at least 1e12", share("with N ratio >= 1e12")),
        ("markets of at most 5 clients, exact solver against brute force",
         f"{c.get('exact', 0):,}"),
        ("markets with one entry just outside the domain", f"{c.get('outside', 0):,}"),
        ("failures", f"{s['failures']}"),
        ("chunks of " + f"{cfg['chunk']:,}" + f", seed {cfg['seed']}", f"{s['chunks']}"),
        ("CPU time of the chunks", f"{s['cpu_seconds'] / 3600:.1f} h"),
    ]
    return "| | count |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def run_fuzz(markets: int, out: str | Path, *, workers: int = 1, chunk: int = 2000,
             seed: int = 0, exact_every: int = 200, outside_every: int = 10,
             progress: bool = True) -> dict:
    """Fuzz at least ``markets`` markets inside the domain; return the file's summary.

    ``markets`` is rounded up to whole chunks. ``workers = 1`` runs in this
    process; more use a process pool. The file ``out`` is rewritten atomically
    after every chunk and resumed from if it exists.
    """
    cfg = FuzzSettings(chunk=chunk, seed=seed, exact_every=exact_every,
                       outside_every=outside_every)
    for name, value in (("markets", markets), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"fuzz: {name} = {value!r} must be an integer >= 1")
    out = Path(out)
    doc = _load(out, cfg)
    todo = [k for k in range(-(-markets // chunk)) if str(k) not in doc["chunks"]]
    t0 = time.perf_counter()

    def record(res: dict) -> None:
        doc["chunks"][str(res["index"])] = res
        atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
        if progress:
            s = summarise(doc)
            print(f"chunk {res['index']}: {res['counts'].get('inside', 0)} inside, "
                  f"{len(res['failures'])} failures, {res['seconds']:.0f} s; total "
                  f"{s['counts'].get('inside', 0):,} inside, {s['failures']} failures, "
                  f"{time.perf_counter() - t0:.0f} s wall", flush=True)

    if workers == 1:
        for k in todo:
            record(run_chunk(k, dict(cfg)))
    else:
        try:
            with ProcessPoolExecutor(workers) as pool:
                for fut in as_completed([pool.submit(run_chunk, k, dict(cfg)) for k in todo]):
                    record(fut.result())
        except BrokenProcessPool as err:  # a worker was killed (e.g. out of memory)
            raise RuntimeError(f"fuzz: a worker process died ({err}); the chunks done so far "
                               f"are in {out}: run the same command to resume") from None
    return summarise(doc)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m proofs_checks.fuzz --markets N --out FILE``; exit 1 on a failure."""
    ap = argparse.ArgumentParser(prog="python -m proofs_checks.fuzz", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--markets", type=int, default=10_000,
                    help="markets inside the domain (rounded up to whole chunks)")
    ap.add_argument("--out", required=True, help="JSON file of counts (resumed if it exists)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exact-every", type=int, default=200,
                    help="one exact-solver market per this many inside markets")
    ap.add_argument("--outside-every", type=int, default=10,
                    help="one just-outside market per this many inside markets")
    ap.add_argument("--report", action="store_true",
                    help="print the counts of --out as a Markdown table; run nothing")
    args = ap.parse_args(argv)
    if args.report:
        try:
            doc = json.loads(Path(args.out).read_text(encoding="utf-8"))
            print(render_markdown(doc), end="")
        except (OSError, ValueError, KeyError, TypeError) as err:
            print(f"error: {args.out} is not a fuzz run's file ({err})", file=sys.stderr)
            return 2
        return 0
    try:
        s = run_fuzz(args.markets, args.out, workers=args.workers, chunk=args.chunk,
                     seed=args.seed, exact_every=args.exact_every,
                     outside_every=args.outside_every)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(s, indent=1))
    return 1 if s["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
