"""The code examples of README.md and docs/*.md run as written.

Every fenced ``python`` block of a page runs, in page order, in one fresh Python process
per page (so a page's blocks share names, as a reader's session would, and a page that
registers a claim or an algorithm cannot leak it into other tests), in a temporary
working folder (``runs/...`` paths land there). A block made of ``>>>`` lines is a
doctest: its printed results are compared. A block that is deliberately not runnable
(a plugin excerpt, an install-only command) is preceded by the line
``<!-- docs-test: skip REASON -->``; such skips are counted and kept few.

Run one page by hand: ``python tests/test_docs_examples.py docs/mechanism.md``.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\b\s*(?P<reason>.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")
#: At most this many python blocks across all pages may be skipped.
MAX_SKIPS = 4


@dataclass(frozen=True)
class Block:
    """One fenced python block: where it is, its code, and its skip reason if any."""

    page: str
    line: int
    code: str
    skip: str | None


def pages() -> list[Path]:
    """README.md and every Markdown page of docs/, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(text: str, page: str) -> list[Block]:
    """Return the fenced ``python`` blocks of a Markdown text, with their skip markers.

    >>> md = "x\\n<!-- docs-test: skip a plugin excerpt -->\\n```python\\n1/0\\n```\\n"
    >>> [(b.line, b.code, b.skip) for b in blocks(md, "m.md")]
    [(3, '1/0\\n', 'a plugin excerpt')]
    """
    out: list[Block] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m["lang"]:
            i += 1
            continue
        indent, start = len(m["indent"]), i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if m["lang"] == "python":
            code = "\n".join(line[indent:] for line in lines[start + 1:j]) + "\n"
            prev = lines[start - 1] if start else ""
            s = SKIP.search(prev)
            out.append(Block(page, start + 1, code, (s["reason"] or "") if s else None))
        i = j + 1
    return out


def run_page(path: Path) -> None:
    """Run a page's python blocks in one namespace; raise on the first failure."""
    page = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    namespace: dict = {"__name__": "__docs__"}
    for b in blocks(path.read_text(encoding="utf-8"), page):
        if b.skip is not None:
            continue
        where = f"{page}:{b.line}"
        if b.code.lstrip().startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(b.code, namespace, where, page, b.line)
            runner = doctest.DocTestRunner(
                optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, clear_globs=False)
            namespace.update(test.globs)  # DocTest ran on a copy; later blocks see its names
            if runner.failures:
                raise AssertionError(f"{where}: {runner.failures} doctest example(s) failed")
        else:
            exec(compile(b.code, where, "exec"), namespace)


ALL = [(p, blocks(p.read_text(encoding="utf-8"), p.relative_to(ROOT).as_posix()))
       for p in pages()]
RUNNABLE = [p for p, bs in ALL if any(b.skip is None for b in bs)]


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_page_s_python_examples_run(page, tmp_path):
    """Each page's examples run, in a fresh process and an empty working folder."""
    # Prepare
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "MPLBACKEND": "Agg"}
    # Execute
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(page)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    # Assert
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_the_examples_are_found_and_skips_are_few_and_explained():
    """The extractor sees the pages' examples; every skip says why; skips stay few."""
    every = [b for _, bs in ALL for b in bs]
    skipped = [b for b in every if b.skip is not None]
    assert len(every) >= 10, f"only {len(every)} python blocks found: is the fence regex broken?"
    assert all(b.skip for b in skipped), [f"{b.page}:{b.line}" for b in skipped if not b.skip]
    assert len(skipped) <= MAX_SKIPS, [f"{b.page}:{b.line} ({b.skip})" for b in skipped]
    assert ROOT / "README.md" in RUNNABLE


def test_a_failing_example_fails_the_page(tmp_path):
    """The runner is not vacuous: a wrong doctest result and an exception both fail."""
    for body in ("```python\n>>> 1 + 1\n3\n```\n", "```python\nraise ValueError('x')\n```\n"):
        page = tmp_path / "bad.md"
        page.write_text(body, encoding="utf-8")
        with pytest.raises((AssertionError, ValueError)):
            run_page(page)


if __name__ == "__main__":
    run_page(Path(sys.argv[1]).resolve())
