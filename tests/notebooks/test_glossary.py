"""Concepts in order: a chapter's prose uses a term of the glossary (notebooks/glossary.md) only
from the chapter that teaches it on. Before that, the same sentence must say which chapter
teaches it (a look-ahead, "the ticket (chapter 05)"), or the cell must be a map of the whole
course (it starts with the comment `<!-- map of the course`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from workbook.paths import NOTEBOOKS_DIR

GLOSSARY = NOTEBOOKS_DIR / "glossary.md"
CHAPTERS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))
MAP_MARK = "<!-- map of the course"


@dataclass(frozen=True)
class Term:
    term: str
    chinese: str
    meaning: str
    chapter: int

    def used_in(self, text: str) -> bool:
        """`text` names the term: as a word, any case, plural too, code quotes ignored."""
        pattern = r"(?<![\w.])" + re.escape(self.term) + r"(?:e?s)?(?!\w)"
        return re.search(pattern, text.replace("`", ""), re.IGNORECASE) is not None


def glossary() -> list[Term]:
    terms = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[3].isdigit():
            terms.append(Term(cells[0], cells[1], cells[2], int(cells[3])))
    return terms


def sentences(markdown: str) -> list[str]:
    """A cell's prose, a sentence (or a table row, or a list item) each; code blocks left out."""
    markdown = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[*-] |\d+\. |\|))", markdown):
        out.extend(re.split(r"(?<=[.!?])\s+(?=[A-Z`*(\"])", block))
    return [s.strip() for s in out if s.strip()]


def prose(path) -> list[tuple[str, str]]:
    """(cell id, sentence) of a chapter's markdown, but cells that map the whole course."""
    out = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown" and MAP_MARK not in source:
            out.extend((cell.get("id", "?"), s) for s in sentences(source))
    return out


def test_the_glossary_gives_each_term_its_chinese_a_line_and_a_chapter_that_uses_it():
    terms = glossary()
    assert len(terms) >= 30
    assert len({t.term.lower() for t in terms}) == len(terms), "a term is listed twice"
    numbers = {int(p.name[:2]) for p in CHAPTERS}
    for term in terms:
        assert term.chinese and len(term.meaning.split()) >= 5, term
        assert term.chapter in numbers, f"{term.term}: no chapter {term.chapter:02d}"
        taught = next(p for p in CHAPTERS if int(p.name[:2]) == term.chapter)
        assert any(term.used_in(s) for _, s in prose(taught)), (
            f"{term.term} is said to be taught in {taught.name}, whose prose never names it")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_uses_a_term_only_from_its_chapter_on_or_says_where_it_is_taught(path):
    chapter = int(path.name[:2])
    early = []
    for cell_id, sentence in prose(path):
        for term in glossary():
            if term.chapter <= chapter or not term.used_in(sentence):
                continue
            if re.search(rf"\bchapters? [0-9 ,and-]*\b{term.chapter:02d}\b", sentence):
                continue  # a look-ahead: the sentence says where the term is taught
            early.append(f"cell {cell_id}: {term.term!r} (chapter {term.chapter:02d}) in "
                         f"{sentence[:100]!r}")
    assert not early, f"{len(early)} use(s) before the chapter that teaches them:\n" + "\n".join(
        early)
