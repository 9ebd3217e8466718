"""README.md as data: its fenced blocks by section, and a runner for its shell blocks.

Every block is run by some test (`tests/test_docs.py::test_every_readme_block_is_run_by_a_named_test` keeps the
list); these helpers are what those tests share.
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)


@dataclass(frozen=True)
class Block:
    section: str  # the `## ` heading it is under
    lang: str  # python, bash, ... ("" for none)
    line: int  # 1-based line of the opening fence
    text: str


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    heads = [(m.start(), m.group(1)) for m in re.finditer(r"^## (.+)$", text, flags=re.M)]
    blocks = []
    for m in _FENCE.finditer(text):
        section = next((h for pos, h in reversed(heads) if pos < m.start()), "")
        blocks.append(Block(section, m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2)))
    return blocks


def section_blocks(heading: str, lang: str) -> list[str]:
    """The `lang` blocks of the README section `## heading`, in order (fails when the section is missing)."""
    blocks = readme_blocks()
    assert any(b.section == heading for b in blocks), f"README.md has no '## {heading}' section with code"
    return [b.text for b in blocks if b.section == heading and b.lang == lang]


def rewrite(block: str, budget: Mapping[str, str]) -> str:
    """`block` with each `budget` key replaced by its value (a tiny size for a documented one); each must occur."""
    for old, new in budget.items():
        assert old in block, f"the README block no longer contains {old!r}:\n{block}"
        block = block.replace(old, new)
    return block


# `make TARGET` in a README block is the Makefile's own target: run dry (`make -n`) in the repository, since the
# targets that matter (test, demo, bench) are the suite itself or are run for real by their own tests.
DRY_MAKE = 'make() { command make --no-print-directory -n -C "$ADAPT_ROOT" "$@"; }\n'


def run_shell(block: str, cwd: Path, env: Mapping[str, str], prelude: str = DRY_MAKE,
              timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a README shell block with `bash -euo pipefail` after `prelude`; fails with its output if it fails."""
    full = {**os.environ, **env, "ADAPT_ROOT": str(ROOT)}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", prelude + block], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (f"README block failed ({proc.returncode}):\n{block}\n--- stdout ---\n"
                                  f"{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
    return proc
