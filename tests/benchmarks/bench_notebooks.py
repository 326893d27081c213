"""The workbook itself: seconds to validate each chapter with `pytest --nbval <notebook>`, one
pytest process per chapter, against the live server (the chapters start it if it is down).

The anchor is a two-cell notebook written to a temporary folder and validated the same way: what
a kernel start and nbval cost before any chapter does anything. In a smoke run it is the only
notebook (the chapters are validated by the test suite itself).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .harness import REPO_ROOT, Options, Report, progress, ratio, scenario

NAME = "notebooks"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
CHAPTER_GLOB = "[0-9][0-9]-*.ipynb"
SANITIZE = NOTEBOOKS_DIR / "sanitize.cfg"
TIMEOUT_S = 900  # one chapter
_SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors|skipped)")


def anchor_notebook_write(folder: Path) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cells = [
        new_code_cell("print(1 + 1)", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text="2\n")]),
        new_code_cell("import sys\nprint(sys.version_info[0])", execution_count=2,
                      outputs=[new_output("stream", name="stdout", text="3\n")]),
    ]  # fmt: skip
    path = folder / "00-anchor.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


def notebook_validate(path: Path) -> dict:
    cmd = [
        sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env",
        f"--nbval-sanitize-with={SANITIZE}", "-q", "-p", "no:cacheprovider",
        f"--rootdir={REPO_ROOT}", "-c", str(REPO_ROOT / "pyproject.toml"), str(path),
    ]  # fmt: skip
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
        code, out = done.returncode, done.stdout
    except subprocess.TimeoutExpired as exc:
        code, out = -1, f"timed out after {TIMEOUT_S}s " + str(exc.stdout or "")
    seconds = time.monotonic() - started
    counts = {kind: 0 for kind in ("passed", "failed", "error")}
    tail = out.strip().splitlines()[-1:] or [""]
    for n, kind in _SUMMARY.findall(tail[0]):
        counts["error" if kind.startswith("error") else kind] = int(n)
    return {"seconds": seconds, "exit": code, **counts, "summary": tail[0][:200]}


def _cells(path: Path) -> int:
    import nbformat

    return sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)


@scenario(NAME, "seconds to validate each chapter notebook with pytest --nbval")
def run(opts: Options) -> Report:
    report = Report(NAME, "pytest --nbval per chapter (one pytest process each)")
    chapters = [] if opts.smoke else sorted(NOTEBOOKS_DIR.glob(CHAPTER_GLOB))
    if opts.chapters:
        chapters = [p for p in chapters if p.name.startswith(opts.chapters)]
    report.params = {"chapters": [p.name for p in chapters], "timeout_s": TIMEOUT_S}
    table = report.table(
        "seconds per chapter (the anchor: a 2-cell notebook, kernel start + nbval only)",
        ["notebook", "code cells", "seconds", "vs anchor", "cells passed", "failed", "result"],
    )
    with tempfile.TemporaryDirectory(prefix="bench-nb-") as tmp:
        anchor_path = anchor_notebook_write(Path(tmp))
        progress(NAME, "anchor notebook")
        anchor = notebook_validate(anchor_path)
        rows = [("anchor (2 cells)", _cells(anchor_path), anchor)]
        for i, path in enumerate(chapters, 1):
            progress(NAME, f"{i}/{len(chapters)} {path.name}")
            rows.append((path.name, _cells(path), notebook_validate(path)))
    total = 0.0
    for label, cells, res in rows:
        ok = res["exit"] == 0
        if label.startswith("anchor"):
            report.figures["anchor.seconds"] = res["seconds"]
        else:
            key = label.removesuffix(".ipynb")
            report.figures[f"{key}.seconds"] = res["seconds"]
            report.ratios[f"{key}.vs_anchor"] = ratio(res["seconds"], anchor["seconds"])
            total += res["seconds"]
        vs_anchor = ratio(res["seconds"], anchor["seconds"])
        bad = res["failed"] + res["error"]
        table.add(
            label, cells, res["seconds"], vs_anchor, res["passed"], bad, "ok" if ok else "FAILED"
        )
        if not ok:
            report.notes.append(f"{label}: {res['summary'] or 'exit ' + str(res['exit'])}")
    report.figures["chapters"] = len(chapters)
    report.figures["chapters_total_seconds"] = total
    report.figures["chapters_failed"] = sum(r["exit"] != 0 for _, _, r in rows[1:])
    if anchor["exit"] != 0:
        raise RuntimeError(f"the anchor notebook did not validate: {anchor['summary']}")
    return report
