"""Run All does not solve the exercises, and the stored outputs show what a learner who has not
solved them sees. With WORKBOOK_SOLUTIONS=1 every chapter still runs, and only the exercises'
solution and check cells differ from the stored outputs, and the first cell of the chapter after
each (which, unsolved, names the exercise whose solution it applies)."""

from __future__ import annotations

import nbformat
import pytest

from workbook.chapters.learner import LearnerServer, free_port
from workbook.chapters.notebooks import NOTEBOOKS_DIR, nbval_run

pytestmark = pytest.mark.live


def code_cells(path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def exercise_cells(path) -> set[str]:
    """nbval's names of a chapter's solution cells and the check cell after each."""
    names, after_solution = set(), False
    for number, cell in enumerate(code_cells(path)):
        if cell.source.startswith("%%learner solution"):
            names.add(f"{path.name}::Cell {number}")
            after_solution = True
        elif after_solution:
            names.add(f"{path.name}::Cell {number}")
            after_solution = False
    return names


def test_with_the_switch_only_the_exercises_and_what_names_them_change(tmp_path, monkeypatch):
    chapters = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))
    with_exercise = [p for p in chapters if exercise_cells(p)]
    assert len(with_exercise) >= 10, "the chapters' exercises have no %%learner solution"
    # Chapter 11 deploys for real (root, nginx, two nodes, a drill whose outcome varies with
    # timing); tests/reliability/test_deploy.py covers it, and test_chapters.py its stored check.
    run = [p for p in chapters[chapters.index(with_exercise[0]):chapters.index(with_exercise[-1]) + 2]
           if not p.name.startswith("11-")]
    port = free_port()
    monkeypatch.setenv("WORKBOOK_LEARNER_DIR", str(tmp_path / "my_project"))
    monkeypatch.setenv("WORKBOOK_LEARNER_PORT", str(port))
    monkeypatch.setenv("WORKBOOK_SOLUTIONS", "1")
    try:
        outcomes = nbval_run(run, workdir=tmp_path, timeout=900)
    finally:
        LearnerServer(tmp_path / "my_project", port).stop(quiet=True)
    expected = set().union(*(exercise_cells(p) for p in run))
    before = dict(zip(chapters[1:], chapters, strict=False))  # the chapter before each one
    expected |= {f"{after.name}::Cell 0" for after in run
                 if before.get(after) in run and exercise_cells(before[after])}
    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    assert failed == expected, (
        f"failed but not an exercise: {sorted(failed - expected)}; "
        f"an exercise or its naming that did not change: {sorted(expected - failed)}")
