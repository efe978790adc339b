"""Fenced code blocks of README.md and docs/*.md, with the ``docs-test`` marker before each.

A marker is an HTML comment on the line just before a fenced block; tests/test_docs_examples.py
explains the modes. tests/test_package.py runs the README's API block from the installed wheel.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

__all__ = ["ROOT", "Block", "read_blocks"]

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<mode>[\w-]+)(?P<options>[^>]*?)\s*-->\s*$")
_MODES = {"compile", "output", "run", "signature", "skip"}


@dataclasses.dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    mode: str
    options: dict[str, str]

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def id(self) -> str:
        return f"{self.where}-{self.lang}-{self.mode}"


def read_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening or not opening["lang"]:
            i += 1
            continue
        indent, lang = opening["indent"], opening["lang"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        assert j < len(lines), f"{page.name}:{i + 1}: the ``` block is never closed"
        marker = _MARKER.match(lines[i - 1]) if i else None
        mode = marker["mode"] if marker else "compile"
        assert mode in _MODES, f"{page.name}:{i}: unknown docs-test mode {mode!r}"
        options = dict(re.findall(r"(\w+)=(\S+)", marker["options"])) if marker else {}
        blocks.append(Block(page, i + 1, lang, "\n".join(body) + "\n", mode, options))
        i = j + 1
    return blocks
