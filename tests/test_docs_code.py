"""The Python examples of README.md and docs/*.md run as written, and their links resolve.

Every ```python block of a page runs, in the order of the page, in one namespace per page (a later
block may use names an earlier one defined). A block whose fence is directly preceded by the line
`<!-- skip -->` is not run (for runs that take minutes; the README's tour is never skipped).
```bash and other blocks are never run. Each page runs in a temporary working directory with
matplotlib's non-interactive backend, so nothing is written into the repository.

Every relative link and image of these pages must name a file of the repository, and a `#anchor`
a heading of the page it points to (anchors as GitHub makes them from headings).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_MARK = "<!-- skip -->"
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")  # indent, fence, language
PYTHON = ("python", "py", "python3")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line number of the block's first source line in its page
    source: str
    skip: bool


def python_blocks(text: str, name: str = "<page>") -> list[Block]:
    """The ```python blocks of a markdown text, in order, each with its line number and whether a
    `<!-- skip -->` line directly precedes its fence (blank lines between are allowed)."""
    lines = text.splitlines()
    blocks, previous, i = [], "", 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent, fence, lang = m.groups()
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            raise ValueError(f"{name}:{i + 1}: code block opened with {fence} is never closed")
        if lang.lower() in PYTHON:
            body = textwrap.dedent("\n".join(line.removeprefix(indent) for line in lines[start:end]))
            blocks.append(Block(start + 1, body, previous == SKIP_MARK))
        previous, i = "", end + 1
    return blocks


def run_page(path: Path) -> int:
    """Execute the runnable Python blocks of one page in one namespace; returns how many ran.
    Tracebacks name the page and its line numbers."""
    namespace = {"__name__": "__docs__"}
    ran = 0
    for block in python_blocks(path.read_text(encoding="utf-8"), path.name):
        if block.skip:
            continue
        code = compile("\n" * (block.line - 1) + block.source, str(path), "exec")
        exec(code, namespace)
        ran += 1
    return ran


def test_parser_finds_python_blocks_in_order_and_honours_skip():
    text = ("# t\n\n```python\na = 1\n```\n\n```bash\nexit 1\n```\n<!-- skip -->\n\n```python\nraise SystemExit\n```\n"
            "- item\n\n  ```python\n  b = a + 1\n  ```\n")
    blocks = python_blocks(text)
    assert [(b.line, b.source, b.skip) for b in blocks] == [(4, "a = 1", False), (13, "raise SystemExit", True),
                                                             (18, "b = a + 1", False)]


def test_parser_rejects_an_unclosed_block():
    with pytest.raises(ValueError, match="never closed"):
        python_blocks("text\n```python\nx = 1\n", "page.md")


def test_the_readme_tour_is_never_skipped():
    blocks = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"), "README.md")
    assert blocks, "README.md has no ```python block: the tour is missing"
    assert not any(b.skip for b in blocks), "README.md marks a Python block with <!-- skip -->"


def test_a_failing_block_fails_the_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\nText.\n\n```python\ny = x + undefined_name\n```\n")
    with pytest.raises(NameError, match="undefined_name"):
        run_page(page)


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_code_runs(path, tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a page's BLAS thread setting then stays for the session
        run_page(path)
    else:
        with threadpool_limits(1, user_api="blas"):  # restores any count a page sets
            run_page(path)
    plt.close("all")


def without_code(text: str) -> str:
    """The text with fenced blocks and inline code removed (links inside code are not links)."""
    lines, out, fence = text.splitlines(), [], None
    for line in lines:
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a markdown file: lower case, punctuation dropped,
    spaces to hyphens."""
    heads = [line.lstrip("#").strip() for line in without_code(path.read_text(encoding="utf-8")).splitlines()
             if re.match(r"#{1,6} ", line)]
    return {re.sub(r"[^\w\- ]", "", h.replace("`", "").lower()).replace(" ", "-") for h in heads}


def test_anchor_rule_follows_github():
    page_anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
                    for h in ("5. Reported numbers", "Ablations: c-detach and no clipping")}
    assert page_anchors == {"5-reported-numbers", "ablations-c-detach-and-no-clipping"}


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(path):
    broken = []
    for target in LINK.findall(without_code(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif not dest.resolve().is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)
