"""The user documents: every link in README.md and docs/ resolves, the README stays a front door
(short, its Quick start shorter, "What it reproduces today" near the top), no tracker numbers, and
`llara --help` and the report point to the same places."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
TRACKER = re.compile(r"issue[- ]?[0-9]+", re.IGNORECASE)
# The places `llara --help` and the report both send a reader to.
PLACES = re.compile(r"README\.md|docs/[\w./-]+\.md")


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, inline code spans blanked out."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, CODE_SPAN.sub(lambda m: "x" * len(m.group(2)), line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*]|(?<!\w)_|_(?!\w)", "", text)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, GitHub's -1, -2 suffixes for repeats included."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    """Each link of ``path`` that does not resolve, as 'file:line: target: why'."""
    problems = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(line):
            target = match.group(2)
            where = f"{path.relative_to(root)}:{number}: {target}"
            parsed = urlparse(target)
            if parsed.scheme in ("http", "https"):
                if not parsed.netloc or "." not in parsed.netloc:
                    problems.append(f"{where}: not a URL")
                continue
            if parsed.scheme:  # mailto: and the like are not used; a typo'd scheme is an error
                problems.append(f"{where}: unexpected scheme {parsed.scheme!r}")
                continue
            file_part, _, fragment = target.partition("#")
            linked = (path.parent / unquote(file_part)).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{where}: no such file")
                continue
            if root.resolve() not in linked.parents and linked != root.resolve():
                problems.append(f"{where}: outside the repository")
                continue
            if fragment:
                if linked.suffix != ".md":
                    problems.append(f"{where}: an anchor into a file that is not Markdown")
                elif unquote(fragment) not in anchors(linked):
                    problems.append(f"{where}: no heading with anchor #{fragment} in {linked.name}")
    return problems


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


# A repository path named in backticks (`stages/registry.py`); placeholders and the how-to's
# example stage (`flows/cli/my_stage.py`) are not files.
CODE_PATH = re.compile(r"`((?:docs|stages|flows|tasks|artifacts|benchmarks|tests)/[^`\s]*)`")


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_paths_named_in_backticks_exist(path: Path) -> None:
    missing = [
        f"{number}: {name}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for name in CODE_PATH.findall(line)
        if not any(c in name for c in "<*{") and "my_stage" not in name and not (REPO / name).exists()
    ]
    assert missing == []


def test_the_checker_finds_broken_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## A section: `code`, (dated) 2026\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n\n"
        "[fine](docs/other.md) [anchor](docs/other.md#a-section-code-dated-2026) [self](#top)\n"
        "[gone](docs/missing.md) [bad anchor](docs/other.md#nope) ![img](docs/none.png)\n"
        "[web](https://example.org/x) [not a url](https://) `[in code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n"
    )
    problems = broken_links(page, root=tmp_path)
    assert [p.split(": ")[1] for p in problems] == [
        "docs/missing.md",
        "docs/other.md#nope",
        "docs/none.png",
        "https://",
    ], problems


def test_slugs_follow_github() -> None:
    assert slug("Results: `paper` profile on one NVIDIA H200, cut to 100 optimizer steps (2026-11-26)") == (
        "results-paper-profile-on-one-nvidia-h200-cut-to-100-optimizer-steps-2026-11-26"
    )
    assert slug("Does the LLM learn LLaRA's task? LastFM") == "does-the-llm-learn-llaras-task-lastfm"
    assert slug("`make run`, end to end") == "make-run-end-to-end"
    assert slug("LastFM SASRec: L2 1e-4 (2026-12-01)") == "lastfm-sasrec-l2-1e-4-2026-12-01"


def test_the_readme_is_a_front_door() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, len(lines)
    headings = {line: i for i, line in enumerate(lines) if line.startswith("## ")}
    start = headings["## Quick start"]
    end = min(i for i in headings.values() if i > start)
    assert end - start <= 25, f"Quick start is {end - start} lines"
    table = headings["## What it reproduces today"]
    assert table < 80 and any(line.startswith("|") for line in lines[table : table + 10])
    assert "## Benchmarks" in headings and "docs/performance.md" in "\n".join(lines)


def test_no_tracker_numbers_in_user_documents() -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in documents()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TRACKER.search(line)
    ]
    assert found == []


def test_help_and_report_point_to_the_same_places() -> None:
    from typer.main import get_command

    from flows.cli import app
    from stages.report.report import SEE_ALSO

    epilog = get_command(app).epilog or ""
    assert set(PLACES.findall(epilog)) == set(PLACES.findall(SEE_ALSO)) != set()
    for place in PLACES.findall(epilog):
        assert (REPO / place).is_file(), place
    assert '"What it reproduces today"' in epilog
    assert "## What it reproduces today" in (REPO / "README.md").read_text(encoding="utf-8")
    assert not TRACKER.search(epilog) and not TRACKER.search(SEE_ALSO)
