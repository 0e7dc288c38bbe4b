"""Static checks of the documentation sources (the build itself runs in CI after pytest).

They catch, without building, the defects a reader saw on the MkDocs site: formulas
split by a line that Markdown reads as a list item, generated tables whose titles land
at the top level of their host page, and MkDocs syntax that MyST renders verbatim.
"""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
# Written by benchmarks/*.py and namcore reproduce; pulled into pages with {include}.
SNIPPETS = [*sorted(DOCS.glob("benchmarks/*.md")), *sorted(DOCS.glob("results/*results.md"))]
PAGES = sorted(p for p in DOCS.rglob("*.md") if p not in SNIPPETS and "api" not in p.parts)
FENCE = re.compile(r"^\s*(```|~~~|:::)")


def _prose_lines(page: Path):
    """(line number, line) outside fenced blocks."""
    fenced = False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if FENCE.match(line):  # code blocks and directives: not prose
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def _includes():
    """Every {include} of the pages: (host page, included file, heading offset)."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(r"```\{include\} (\S+)\n((?::[\w-]+:.*\n)*)```", text):
            options = dict(re.findall(r":([\w-]+): *(.*)", match.group(2)))
            target = (page.parent / match.group(1)).resolve()
            found.append((page, target, int(options.get("heading-offset", 0))))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_no_mkdocs_syntax_left(page):
    for number, line in _prose_lines(page):
        prose = re.sub(r"`[^`]*`", "", line)
        assert not re.search(r"\\\(|\\\[", prose), f"{page.name}:{number}: use $...$ / $$"
        assert not prose.startswith(("!!! ", "??? ", "--8<--")), f"{page.name}:{number}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_no_line_inside_a_formula_starts_a_list_item(page):
    inside = False
    for number, line in _prose_lines(page):
        if not line.strip():
            inside = False
            continue
        if inside and re.match(r"\s*([-+*]\s|\d+[.)]\s|#|>)", line):
            pytest.fail(f"{page.name}:{number}: Markdown reads this line as a new block")
        dollars = re.sub(r"`[^`]*`", "", line).replace("$$", "").count("$")
        inside ^= dollars % 2 == 1


def test_every_generated_snippet_is_included_below_a_heading():
    included = {target: (page, offset) for page, target, offset in _includes()}
    for snippet in SNIPPETS:
        if snippet.name == "gpu.md":  # written only on a machine with a GPU
            continue
        assert snippet.resolve() in included, f"{snippet.name} is not included by any page"
        page, offset = included[snippet.resolve()]
        top = min((len(m) for m in re.findall(r"^(#+) ", snippet.read_text(), re.M)), default=None)
        host = [len(m) for m in re.findall(r"^(#+) ", page.read_text(), re.M)]
        if top is not None:
            assert top + offset >= 3 and top + offset > min(host), (
                f"{page.name} includes {snippet.name} with heading-offset {offset}: its "
                "headings would become top-level sections of the page"
            )
