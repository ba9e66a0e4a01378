"""Benchmark: markets given by points (mechanism.points.solve_points) up to m = 100,000.

Run:
  .venv/bin/python benchmarks/bench_points.py                      # sizes, exponents
  .venv/bin/python benchmarks/bench_points.py --libs --extra-path DIR   # NN libraries

Settings (fixed before the runs, docs/scale.md): the market is
``mechanism.points.random_point_market(m, seed=1, dim=2, lam=1.0)`` (``--lam`` and
``--dim`` change lambda and the dimension): random_market's
profiles, points uniform in a square of area 1.4 m (the number of clients near a client
does not grow with m). Each size runs in a fresh subprocess, so its peak resident memory
(``ru_maxrss``, the whole process: interpreter, numpy, scipy included) belongs to that
size alone; time is wall clock and process CPU of ``solve_points`` (graph, payments,
certificate), one run per size, after a warm-up on 50 clients (the index library's
import). The exponent of time and memory in m is a least-squares fit of log(value) on
log(m) over the sizes given.

``--libs`` times the nearest-neighbour libraries on the same points and per-importer
radii sqrt(R_i) (``price_bound``) in one process, so the ratios compare like with like
(CPU time, the steadier measure on a shared machine): the scikit-learn BallTree ball
query (solve_points' default), scipy cKDTree (index="kdtree": the count within the
radius, then the k nearest; the k nearest doubled from 16; its ball query), the
scikit-learn KDTree ball query, faiss-cpu's exact IndexFlatL2 (k nearest,
k doubled) and hnswlib's approximate HNSW (k nearest; its recall against the exact lists
is reported: an approximate index cannot certify). ``--extra-path`` appends a folder
where faiss-cpu and hnswlib were installed (``pip install --target``), so the project's
venv is left alone; a library that does not import is reported as missing.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import numpy as np


def one(m: int, seed: int, dim: int, variant: str, check: int, lam: float,
        dense: bool, index: str) -> dict:
    from mechanism.points import check_certificate, random_point_market, solve_points

    solve_points(random_point_market(50, seed, dim=dim, lam=lam), variant, index=index)  # imports
    mk = random_point_market(m, seed, dim=dim, lam=lam)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, start_cpu = time.perf_counter(), time.process_time()
    out = solve_points(mk, variant, index=index)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cert = out.certificate
    res = {"m": m, "dim": dim, "lam": lam, "index": index, "variant": variant, "seed": seed,
           "wall_s": wall,
           "cpu_s": cpu, "peak_rss_mib": peak, "rss_before_mib": base, "edges": int(out.i.size),
           "candidates_per_client": float(cert.indices.size / m),
           "max_k_searched": int(cert.searched.max()),
           "budget_balance": float(abs(out.pay.p.sum()))}
    if dense:  # the dense path on the same market, after the points path (own peak RSS)
        from mechanism import greedy_graph, payments
        from mechanism.payments import graph_edges
        t = time.perf_counter()
        dm = mk.dense()
        res["dense_d_s"] = time.perf_counter() - t
        t = time.perf_counter()
        A = greedy_graph(dm, variant)
        pay = payments(dm, A)
        res["dense_s"] = time.perf_counter() - t
        res["dense_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        i, j = graph_edges(A)
        res["dense_equal"] = bool(np.array_equal(i, out.i) and np.array_equal(j, out.j)
                                  and np.allclose(pay.p, out.pay.p, rtol=1e-9, atol=1e-12))
    if check:  # the independent brute-force check on `check` importers (O(m) each)
        rows = np.random.default_rng(seed).choice(m, size=min(check, m), replace=False)
        t = time.perf_counter()
        check_certificate(mk, cert, rows)
        res["checked_rows"], res["check_s"] = int(rows.size), time.perf_counter() - t
    return res


def libs(m: int, seed: int, dim: int, extra: list[str], lam: float, skip: list[str]) -> None:
    sys.path.extend(extra)
    import sklearn.neighbors  # noqa: F401 (imported before any timing: its import is ~0.5 s)
    from scipy.spatial import cKDTree

    from mechanism.points import price_bound, random_point_market

    mk = random_point_market(m, seed, dim=dim, lam=lam)
    X = np.ascontiguousarray(mk.points)
    R = price_bound(mk)
    live = np.flatnonzero(R >= 0)
    r = np.sqrt(R[live])
    print(f"# m = {m}, dim = {dim}, lam = {lam:g}, importers with a bound >= 0: {live.size}, "
          f"radius sqrt(R_i) from {r.min():.3g} to {r.max():.3g}")

    def doubling(query, k0: int = 16) -> int:
        """k nearest, doubled for the rows whose k-th is within the radius; total listed."""
        todo, k, listed = live, k0, 0
        while todo.size:
            dist = query(X[todo], k)
            ok = (dist[:, -1] > np.sqrt(R[todo])) | (k >= m)
            listed += int((dist[ok] <= np.sqrt(R[todo][ok])[:, None]).sum())
            todo, k = todo[~ok], min(2 * k, m)
        return listed

    rows = []

    def timed(name: str, fn) -> None:  # noqa: ANN001
        if any(word in name for word in skip):
            return
        t, c = time.perf_counter(), time.process_time()
        try:
            listed = fn()
        except ImportError as exc:
            rows.append((name, None, None, f"missing ({exc.name})"))
            return
        rows.append((name, time.perf_counter() - t, time.process_time() - c, listed))

    def ckd_knn() -> int:
        tree = cKDTree(X)
        return doubling(lambda q, k: tree.query(q, k, workers=-1)[0])

    def ckd_sized() -> int:
        from mechanism.points import _k_sizes
        tree = cKDTree(X)
        counts = np.asarray(tree.query_ball_point(X[live], r, workers=-1, return_length=True))
        k = _k_sizes(counts, m)
        listed = 0
        for kk in np.unique(k):
            rows = live[k == kk]
            dist = tree.query(X[rows], int(kk), workers=-1)[0].reshape(rows.size, -1)
            listed += int((dist <= np.sqrt(R[rows])[:, None]).sum())
        return listed

    def ckd_ball() -> int:
        tree = cKDTree(X)
        res = tree.query_ball_point(X[live], r, workers=-1, return_sorted=False)
        return int(sum(map(len, res)))

    def sk(kind: str):  # noqa: ANN202
        def run() -> int:
            from sklearn import neighbors
            tree = getattr(neighbors, kind)(X)
            return int(sum(a.size for a in tree.query_radius(X[live], r)))
        return run

    def faiss_flat() -> int:
        import faiss
        faiss.omp_set_num_threads(2)
        index = faiss.IndexFlatL2(dim)
        index.add(X.astype(np.float32))
        return doubling(lambda q, k: np.sqrt(np.maximum(index.search(q.astype(np.float32),
                                                                     k)[0], 0)))

    exact_k = 32

    def hnsw() -> str:
        import hnswlib
        index = hnswlib.Index(space="l2", dim=dim)
        index.init_index(max_elements=m, ef_construction=100, M=16, random_seed=seed)
        index.set_num_threads(2)
        index.add_items(X.astype(np.float32))
        index.set_ef(64)
        got, _ = index.knn_query(X[live].astype(np.float32), k=exact_k)
        want = cKDTree(X).query(X[live], exact_k, workers=-1)[1]
        recall = np.mean([np.intersect1d(a, b).size / exact_k for a, b in zip(got, want,
                                                                              strict=True)])
        return f"k = {exact_k} nearest only; recall {recall:.4f} (approximate: no certificate)"

    timed("scikit-learn BallTree, ball query (solve_points' default)", sk("BallTree"))
    timed("scipy cKDTree, count then k nearest (index='kdtree')", ckd_sized)
    timed("scipy cKDTree, k nearest doubled from 16", ckd_knn)
    timed("scipy cKDTree, ball query", ckd_ball)
    timed("scikit-learn KDTree, ball query", sk("KDTree"))
    timed("faiss-cpu IndexFlatL2 (exact), k nearest doubled", faiss_flat)
    timed("hnswlib HNSW (approximate), k nearest", hnsw)
    base = rows[0][2]
    print("| library, query | wall s | CPU s | CPU vs default | points listed |\n"
          "|---|---|---|---|---|")
    for name, wall, cpu, listed in rows:
        if wall is None:
            print(f"| {name} | - | - | - | {listed} |")
        else:
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / base:.1f}x | {listed} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=8, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[1000, 3000, 10000, 30000, 100000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--variant", default="paper")
    parser.add_argument("--index", default="balltree", help="solve_points' index")
    parser.add_argument("--lam", type=float, nargs="+", default=[1.0],
                        help="lambdas (one row per size and lambda)")
    parser.add_argument("--check", type=int, default=200,
                        help="importers whose certificate is checked by brute force")
    parser.add_argument("--dense-sizes", type=int, nargs="*", default=[],
                        help="sizes at which the dense path also runs on the same market")
    parser.add_argument("--libs", action="store_true")
    parser.add_argument("--libs-m", type=int, default=100000)
    parser.add_argument("--extra-path", nargs="*", default=[])
    parser.add_argument("--skip", nargs="*", default=[],
                        help="--libs: leave out the libraries whose row names these words")
    args = parser.parse_args()
    if args.one:
        m, seed, dim, variant, check, lam, dense, index = args.one
        print(json.dumps(one(int(m), int(seed), int(dim), variant, int(check), float(lam),
                             dense == "1", index)))
        return
    if args.libs:
        libs(args.libs_m, args.seed, args.dim, args.extra_path, args.lam[0], args.skip)
        return
    print(f"# python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}, seed {args.seed}, dim {args.dim}, variant {args.variant}, "
          f"index {args.index}")
    print("| m | lam | wall s | CPU s | peak RSS MiB | edges | candidates / client | max k | "
          "certificate check |\n|---|---|---|---|---|---|---|---|---|")
    res, dense_rows = [], []
    for m, lam in ((m, lam) for lam in args.lam for m in args.sizes):
        out = subprocess.run([sys.executable, __file__, "--one", str(m), str(args.seed),
                              str(args.dim), args.variant, str(args.check), str(lam),
                              "1" if m in args.dense_sizes else "0", args.index],
                             check=True, capture_output=True, text=True)
        r = json.loads(out.stdout)
        res.append(r)
        chk = f"{r['checked_rows']} rows ok, {r['check_s']:.1f} s" if "checked_rows" in r else "-"
        print(f"| {m} | {lam:g} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_rss_mib']:.0f} | "
              f"{r['edges']} | {r['candidates_per_client']:.1f} | {r['max_k_searched']} | "
              f"{chk} |", flush=True)
        if "dense_s" in r:
            dense_rows.append(f"| {m} | {lam:g} | {r['dense_d_s']:.2f} | {r['dense_s']:.2f} | "
                              f"{r['dense_peak_rss_mib']:.0f} | {r['dense_s'] / r['wall_s']:.0f}x"
                              f" | {r['dense_equal']} |")
    if dense_rows:
        print("\nThe dense path on the same markets (greedy_graph + payments on market.dense()):"
              "\n\n| m | lam | build d s | graph + payments s | peak RSS MiB | vs points |"
              " same result |\n|---|---|---|---|---|---|---|")
        print("\n".join(dense_rows))
    if len(res) >= 2 and len(args.lam) == 1:
        lm = np.log([r["m"] for r in res])
        for key in ("wall_s", "cpu_s", "peak_rss_mib"):
            slope = np.polyfit(lm, np.log([r[key] for r in res]), 1)[0]
            print(f"# {key} grows as m^{slope:.2f} over m = {res[0]['m']}..{res[-1]['m']}")
        extra = [r["peak_rss_mib"] - r["rss_before_mib"] for r in res]
        if min(extra) > 0:
            slope = np.polyfit(lm, np.log(extra), 1)[0]
            print(f"# peak RSS above the market's own (solve_points' allocations) grows as "
                  f"m^{slope:.2f}")


if __name__ == "__main__":
    main()
