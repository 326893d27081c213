"""The rules every chapter follows, checked on the stored files (nbval checks the outputs)."""

from __future__ import annotations

import re
import tomllib

import nbformat
import pytest
from workbook.paths import REPO_ROOT
from workbook.chapters.notebooks import CHAPTER_GLOB, NOTEBOOKS_DIR

CHAPTERS = sorted(NOTEBOOKS_DIR.glob(CHAPTER_GLOB))
IGNORE = "NBVAL_IGNORE_OUTPUT"


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_there_are_chapters_and_an_index():
    assert len(CHAPTERS) >= 10
    assert (NOTEBOOKS_DIR / "index.ipynb").exists()


def test_the_index_links_every_chapter_and_every_link_resolves():
    text = "\n".join(c.source for c in nbformat.read(NOTEBOOKS_DIR / "index.ipynb", 4).cells)
    links = set(re.findall(r"\]\(([^)]+\.ipynb)\)", text))
    assert {p.name for p in CHAPTERS} <= links
    assert all((NOTEBOOKS_DIR / link).exists() for link in links), links


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_code_cell_ran_in_order_from_a_fresh_kernel_and_stored_its_output(path):
    cells = [c for c in code_cells(path) if c.source.strip()]
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    silent = [c.source.splitlines()[0] for c in cells if not c.outputs]
    assert not silent, f"cells with no output compare nothing: {silent}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_stores_an_error_or_skips_a_cell(path):
    for cell in code_cells(path):
        assert all(out.output_type != "error" for out in cell.outputs), cell.source[:80]
        assert "NBVAL_SKIP" not in cell.source and "NBVAL_RAISES_EXCEPTION" not in cell.source
        assert not {"nbval-skip", "raises-exception"} & set(cell.metadata.get("tags", []))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_starts_the_same_way_and_stores_its_exercise_unsolved(path):
    cells = code_cells(path)
    assert f'chapter_start("{path.name[:2]}")' in cells[0].source
    solutions = [c for c in cells if "solution" in c.metadata.get("tags", [])]
    assert solutions and all(c.metadata["jupyter"]["source_hidden"] for c in solutions)
    check = cells[cells.index(solutions[-1]) + 1]  # only clean-up may follow the check
    out = "".join(o.get("text", "") for o in check.outputs)
    if solutions[-1].source.startswith("%%learner solution"):  # it builds the learner's copy
        # as Run All leaves it for a learner: the check says what is missing
        assert "check(" in check.source and "\n✗ not yet: " in "\n" + out and "✓" not in out
        assert all(c.source.startswith("%%learner solution") for c in solutions)
    else:
        assert "assert" in check.source and out.endswith("check passed\n")


def test_at_most_15_percent_of_code_cells_ignore_their_output():
    cells = [c for path in CHAPTERS for c in code_cells(path)]
    ignored = [
        c
        for c in cells
        if IGNORE in c.source or "nbval-ignore-output" in c.metadata.get("tags", [])
    ]
    assert len(ignored) <= 0.15 * len(cells)


def test_pytest_collects_the_notebooks_with_strict_nbval():
    options = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    addopts = options["ini_options"]["addopts"].split()
    assert "notebooks" in options["ini_options"]["testpaths"]
    lax = "--nbval" + "-lax"  # spelled apart so a grep for the flag finds only real uses
    assert "--nbval" in addopts and lax not in addopts
    sanitize = next(a.split("=", 1)[1] for a in addopts if a.startswith("--nbval-sanitize-with="))
    assert (REPO_ROOT / sanitize).is_file()
