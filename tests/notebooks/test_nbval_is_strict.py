"""The notebook check is real: pytest, configured as the project is, fails a chapter whose stored
output was altered, and passes the faithful copy.

If this canary fails, the suite does not compare notebook outputs (a lax option, a missing --nbval,
a sanitize rule that swallows everything), and every passing notebook test proves nothing.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest
from workbook.chapters.notebooks import NOTEBOOKS_DIR, nbval_run

pytestmark = pytest.mark.live

CANARY_CHAPTER = NOTEBOOKS_DIR / "00-setup.ipynb"  # short, and it touches every service


def stdout_cells(notebook) -> list[tuple[int, dict]]:
    """(code cell number as nbval counts them, its stdout output) for cells that print."""
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    return [
        (number, out)
        for number, cell in enumerate(code_cells)
        for out in cell.outputs
        if out.output_type == "stream" and out.name == "stdout"
    ]


def test_an_altered_output_fails_strict_nbval_and_the_faithful_copy_passes(tmp_path, live_server):
    faithful, altered = tmp_path / "faithful.ipynb", tmp_path / "altered.ipynb"
    shutil.copy(CANARY_CHAPTER, faithful)
    notebook = nbformat.read(CANARY_CHAPTER, as_version=4)
    number, output = stdout_cells(notebook)[-1]
    output.text = output.text.replace("passed", "passed, or so the file says")
    assert output.text != stdout_cells(nbformat.read(CANARY_CHAPTER, as_version=4))[-1][1].text
    nbformat.write(notebook, altered)

    outcomes = nbval_run([faithful, altered], workdir=tmp_path)

    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    assert len(outcomes) == 2 * code_cells, outcomes
    assert outcomes.pop(f"altered.ipynb::Cell {number}") == "failed"
    assert set(outcomes.values()) == {"passed"}, outcomes
