"""MkDocs hooks: pages generated at build time from reports kept at the repository's root.

``REPRODUCTION.md`` (written by ``ipfl reproduce``) and ``CLAIMS.md`` (written by ``ipfl
audit``) stay where their commands and tests expect them; the site shows them as
``reproduction.md`` and ``claims-report.md``, with their links rewritten to the site's
pages, and the figures REPRODUCTION.md shows copied under ``repro/``. Nothing is edited
by hand and nothing is fetched.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent
REPRO = ROOT / "experiments-out" / "repro"

#: Root files shown on the site: source, page, and (pattern, replacement) rewrites.
GENERATED: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "REPRODUCTION.md": ("reproduction.md", [
        (r"\]\(experiments-out/repro/", "](repro/"),
        (r"\bdocs/experiments-repro-preset\.md\b",
         "[docs/experiments-repro-preset.md](experiments-repro-preset.md)"),
        (r"\bdocs/experiments-regimes\.md\b",
         "[docs/experiments-regimes.md](experiments-regimes.md)"),
    ]),
    "CLAIMS.md": ("claims-report.md", []),
}


def page_text(source: str) -> str:
    """Return the site page made from the root file ``source`` (links rewritten)."""
    page, rewrites = GENERATED[source]
    text = (ROOT / source).read_text(encoding="utf-8")
    for pattern, repl in rewrites:
        text = re.sub(pattern, repl, text)
    note = (f"<!-- Generated from {source} at the repository's root by docs_hooks.py; "
            "edit the command that writes it, not this page. -->\n")
    return note + text


def on_files(files: Files, config) -> Files:
    """Add the generated pages and REPRODUCTION.md's figures to the site's files."""
    for source, (page, _) in GENERATED.items():
        files.append(File.generated(config, page, content=page_text(source)))
    for png in sorted(REPRO.glob("*/*.png")):
        files.append(File.generated(config, f"repro/{png.relative_to(REPRO).as_posix()}",
                                    abs_src_path=str(png)))
    return files
