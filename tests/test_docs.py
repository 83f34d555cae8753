"""The user documentation holds together: README.md, project.md and docs/*.md.

Every relative link resolves to a file (and to a heading, where it names an anchor), the README
stays a README (at most 300 lines), the pages carry no dated lab notes or tracker references,
docs/benchmarks.md is what `python bench/benchmarks_page.py` writes, and the README's results
table is that page's summary.
"""
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from tests.conftest import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", REPO_ROOT / "project.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", flags=re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", flags=re.M)


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def anchors(path: Path) -> Set[str]:
    """The anchors GitHub gives the headings of a Markdown file (duplicates get -1, -2, ...)."""
    seen: Dict[str, int] = {}
    found = set()
    for _, title in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf8"))):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link in a heading: its text
        slug = re.sub(r"[^\w\- ]", "", title.replace("`", "").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    found.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", path.read_text(encoding="utf8")))
    return found


def relative_links(page: Path) -> Iterator[Tuple[str, str, str]]:
    """(link, target path, anchor) of every link of ``page`` that is not a URL."""
    for link in LINK.findall(prose(page.read_text(encoding="utf8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link, flags=re.I):  # http:, https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        yield link, target, anchor


def test_the_pages_exist():
    names = {page.relative_to(REPO_ROOT).as_posix() for page in PAGES}
    expected = {"settings", "raw-text", "ensembles", "converting", "annotate", "benchmarks",
                "locate_label", "boundary_offset", "proposer_regressor"}
    assert {"README.md", "project.md"} <= names
    assert {f"docs/{name}.md" for name in expected} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_every_relative_link_resolves_to_a_file_and_heading(page):
    broken: List[str] = []
    for link, target, anchor in relative_links(page):
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link}: no file {path.relative_to(REPO_ROOT) if REPO_ROOT in path.parents else path}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{link}: no heading #{anchor} in {path.relative_to(REPO_ROOT)}")
    assert not broken, "\n".join(broken)


def test_the_readme_is_at_most_300_lines():
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_no_tracker_references_or_dated_notes(page):
    """No issue numbers anywhere; dates only on the benchmarks page, where each figure has its own."""
    text = page.read_text(encoding="utf8")
    assert not re.findall(r"issues? [0-9]+", text, flags=re.I)
    if page.name != "benchmarks.md":
        assert not re.findall(r"\b20[0-9]{2}-[01][0-9]-[0-3][0-9]\b", text)


@pytest.mark.slow
def test_benchmarks_page_is_what_its_command_writes():
    """docs/benchmarks.md is generated: after a change to bench/figures.json or bench/results/, rerun it."""
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "benchmarks_page.py"), "--check"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_results_table_is_the_benchmarks_summary():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf8")
    page = (REPO_ROOT / "docs" / "benchmarks.md").read_text(encoding="utf8")
    summary = page.split("## Summary\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in summary.splitlines() if line.startswith("|")]
    assert len(rows) > 2
    section = readme.split("## Which detector to choose\n", 1)[1].split("\n## ", 1)[0]
    assert [line for line in section.splitlines() if line.startswith("|")] == rows


def test_project_md_lists_the_current_project_commands(tmp_path):
    """`python -m spacy project document . --output project.md` keeps its generated section current."""
    from weasel.cli.document import project_document

    marker = "<!-- WEASEL: AUTO-GENERATED DOCS START (do not remove) -->"
    fresh = tmp_path / "project.md"
    project_document(REPO_ROOT, fresh)
    page, generated = (path.read_text(encoding="utf8") for path in (REPO_ROOT / "project.md", fresh))
    assert marker in page, "project.md lost its generated section: rerun spacy project document"
    assert page[page.index(marker):].strip() == generated[generated.index(marker):].strip()
