"""Run All does not solve the exercises: without WORKBOOK_SOLUTIONS=1 every chapter still runs,
and only the exercises' solution and check cells differ from the stored (solved) outputs."""

from __future__ import annotations

import nbformat
import pytest

from workbook.chapters.learner import LearnerServer, free_port
from workbook.chapters.notebooks import NOTEBOOKS_DIR, nbval_run

pytestmark = pytest.mark.live


def exercise_cells(path) -> set[str]:
    """nbval's names of a chapter's solution cells and the check cell after each."""
    names, number, after_solution = set(), -1, False
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        number += 1
        if cell.source.startswith("%%learner solution"):
            names.add(f"{path.name}::Cell {number}")
            after_solution = True
        elif after_solution:
            names.add(f"{path.name}::Cell {number}")
            after_solution = False
    return names


def test_without_the_switch_only_the_exercises_are_left_undone(tmp_path, monkeypatch):
    chapters = [p for p in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))
                if exercise_cells(p)]
    assert chapters, "no chapter has an exercise with a %%learner solution"
    port = free_port()
    monkeypatch.setenv("WORKBOOK_LEARNER_DIR", str(tmp_path / "my_project"))
    monkeypatch.setenv("WORKBOOK_LEARNER_PORT", str(port))
    monkeypatch.setenv("WORKBOOK_SOLUTIONS", "0")
    try:
        outcomes = nbval_run(chapters, workdir=tmp_path, timeout=600)
    finally:
        LearnerServer(tmp_path / "my_project", port).stop(quiet=True)
    expected = set().union(*(exercise_cells(p) for p in chapters))
    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    assert failed == expected, (
        f"failed but not an exercise: {sorted(failed - expected)}; "
        f"an exercise that passed unsolved: {sorted(expected - failed)}")
