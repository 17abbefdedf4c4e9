"""The documents hold together: every relative link in README.md and docs/*.md reaches a file of the repository
(and, with an anchor, a heading of it), and every section the code cites in docs/ exists."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from support.paths import ROOT

# [text](target) or [text](target "title"); the text may hold brackets of its own, as in [`a[0]`](b).
_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
# How code comments cite a section: docs/design.md, "Section name" (docs/rules.md too).
_CITATION = re.compile(r"docs/([\w.-]+\.md), \"([^\"]+)\"")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a Markdown file outside fenced code blocks, with their 1-based numbers."""
    lines = []
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text without markup, lower case, punctuation dropped, spaces as -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file; a repeated heading gets -1, -2... as on GitHub."""
    seen: Counter[str] = Counter()
    found = set()
    for _, line in prose_lines(path):
        match = _HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def headings(path: Path) -> set[str]:
    return {match.group(2) for _, line in prose_lines(path) if (match := _HEADING.match(line)) is not None}


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """`FILE:LINE: target (why)` for each relative link of `path` that reaches nothing inside `root`."""
    broken = []
    for number, line in prose_lines(path):
        # Code spans are not links, but a link's text may be one: drop the spans outside brackets only.
        text = re.sub(r"(?<!\[)`[^`]*`(?!\])", "", line)
        for target in _LINK.findall(text):
            if _SCHEME.match(target):
                continue
            where = f"{path.relative_to(root)}:{number}: {target}"
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.is_relative_to(root):
                broken.append(f"{where} (outside the repository)")
            elif not resolved.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{where} (no such heading)")
    return broken


def test_relative_links_reach_a_file_and_a_heading() -> None:
    broken = [problem for path in documents() for problem in broken_links(path)]
    assert broken == []


def test_sections_cited_by_the_code_exist() -> None:
    cited = [ROOT / "route_rules.yaml", *sorted((ROOT / "console_proxy").rglob("*.py"))]
    missing = []
    for path in cited:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for name, section in _CITATION.findall(line):
                document = ROOT / "docs" / name
                if not document.is_file() or section not in headings(document):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: docs/{name}, {section!r}")
    assert missing == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[a](docs/a.md) [b](docs/a.md#a-section) [c](#top) [d](docs/) [e](https://example.com/x.md)", []),
        ("[a](docs/gone.md)", ["README.md:3: docs/gone.md (no such file)"]),
        (
            "[a](docs/a.md#nope) [b](#bottom)",
            ["README.md:3: docs/a.md#nope (no such heading)", "README.md:3: #bottom (no such heading)"],
        ),
        ("[a](../outside.md)", ["README.md:3: ../outside.md (outside the repository)"]),
        ('[`a[0]`](docs/gone.md "title")', ["README.md:3: docs/gone.md (no such file)"]),
        ("`[a](docs/gone.md)` is code, not a link", []),
        ("```\n[a](docs/gone.md)\n```", []),
        ("[a](docs/a.md#a-section-1)", ["README.md:3: docs/a.md#a-section-1 (no such heading)"]),
    ],
)
def test_a_broken_link_is_reported(tmp_path: Path, line: str, expected: list[str]) -> None:
    # The checks pass on the real files; on these they must fail (or not) exactly as listed.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## A section\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Top\n\n{line}\n", encoding="utf-8")
    assert broken_links(readme, tmp_path) == expected


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Route rules (`route_rules.yaml`)", "route-rules-route_rulesyaml"),
        ("Deployment: several replicas and one Redis", "deployment-several-replicas-and-one-redis"),
        ("Origins, hosts and limits", "origins-hosts-and-limits"),
        ("Serving: `console-proxy serve`", "serving-console-proxy-serve"),
    ],
)
def test_anchors_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_repeated_heading_gets_a_number(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Notes\n\n```\n# not a heading\n```\n", encoding="utf-8")
    assert anchors(page) == {"notes", "notes-1"}
