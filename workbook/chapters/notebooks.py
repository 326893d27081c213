"""The chapters' machinery: the first cell of every chapter, and `make notebooks`.

    chapter_start("NN")        first code cell of chapter NN: Django settings, the live server,
                               the learner's copy brought up to chapter NN and its server
    ServerLog()                the live server's log lines from now on
    nbval_run(paths, workdir)  pytest, configured as the project is, on some notebooks: the
                               outcome of every cell (the canary test and chapter 11 use it)
    notebooks_execute([...])   re-run notebooks/NN-*.ipynb (all, or those named) from a fresh
                               kernel, in place, saving the outputs nbval later compares
    bench_recorded(name)       the full-size `make bench` results a chapter's sentences cite
                               (tests/benchmarks/results/<name>.json)

The kernel is this interpreter (the same one nbval's --nbval-current-env starts), its working
directory is notebooks/, and its own stderr goes to .run/notebooks-kernel.log.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from workbook.errors import SetupError, step
from workbook.paths import REPO_ROOT, RUN_DIR

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
CHAPTER_GLOB = "[0-9][0-9]-*.ipynb"
SANITIZE_FILE = NOTEBOOKS_DIR / "sanitize.cfg"
CELL_TIMEOUT = 60
KERNEL_LOG = RUN_DIR / "notebooks-kernel.log"
BENCH_RESULTS_DIR = REPO_ROOT / "tests" / "benchmarks" / "results"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def chapter_start(chapter: str = "") -> None:
    """Django settings for this kernel, and the live server (started, or restarted when it runs
    older code, quietly). For chapter NN, the learner's copy as the chapters before it leave it,
    and its server (workbook.chapters.learner.learner_chapter_start)."""
    import django

    from workbook.setup.liveserver import LiveServer

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "course_project.settings")
    django.setup()
    _learner_magic_load()
    server = LiveServer.default()
    with contextlib.redirect_stdout(io.StringIO()):  # a no-op when it runs this checkout's code
        server.start()
    print(f"settings: {os.environ['DJANGO_SETTINGS_MODULE']}")
    print(f"live server: {server.url} answers /api/health")
    if chapter:
        from workbook.chapters.learner import learner_chapter_start

        learner_chapter_start(int(chapter))


def _learner_magic_load() -> None:
    """`%%learner` in this kernel (a listing cell writes the learner's copy; learner.py)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ipython = get_ipython()
    if ipython is not None:
        from workbook.chapters.learner import load_ipython_extension

        load_ipython_extension(ipython)


class ServerLog:
    """What the live server logs from now on, for cells that show the server's side of a story."""

    def __init__(self) -> None:
        from workbook.setup.liveserver import LiveServer

        self.file = LiveServer.default().log_file
        self.offset = self.file.stat().st_size if self.file.exists() else 0

    def lines(self, contains: str = "", *, wait: float = 2.0) -> list[str]:
        """New lines containing `contains`, waiting up to `wait` seconds for the first one."""
        deadline = time.monotonic() + wait
        while True:
            text = (
                self.file.read_bytes()[self.offset :].decode("utf-8", "replace")
                if self.file.exists()
                else ""
            )
            found = [line for line in text.splitlines() if contains in line]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)


def bench_recorded(name: str) -> dict:
    """The recorded results of benchmark `name` (its JSON as `make bench` wrote it), so that a
    figure in a chapter is printed from the run it comes from, never typed. SetupError if the
    file is missing or holds a smoke run (too small to quote)."""
    import json

    path = BENCH_RESULTS_DIR / f"{name}.json"
    if not path.exists():
        raise SetupError(f"no recorded results for {name!r} ({path})", "make bench")
    report = json.loads(path.read_text())
    if report.get("smoke"):
        raise SetupError(f"{path} holds a smoke run, not figures to quote", "make bench")
    return report


def matplotlib_cache_warm() -> None:
    """Build matplotlib's font cache now: on a fresh machine its first import logs a warning,
    which would land in a notebook cell's stderr and fail nbval."""
    with contextlib.redirect_stderr(io.StringIO()):
        import matplotlib.font_manager  # noqa: F401


def nbval_run(paths: list[Path], *, workdir: Path, timeout: float = 240) -> dict[str, str]:
    """Run pytest with the project's own configuration (so its nbval options, whatever they are)
    on notebooks kept in `workdir`, in a separate process: {"name.ipynb::Cell N": outcome}."""
    report = workdir / "nbval-report.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(REPO_ROOT / "pyproject.toml"),
        f"--rootdir={REPO_ROOT}",
        "-q",
        "-o",
        "junit_family=xunit1",
        f"--junitxml={report}",
        *(str(p) for p in paths),
    ]
    subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    if not report.exists():
        raise RuntimeError(f"pytest wrote no report: {' '.join(cmd)}")
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        notebook = Path(case.get("file", "")).name  # xunit1 names the file of each case
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        outcomes[f"{notebook}::{case.get('name')}"] = (
            "failed" if failed else "skipped" if skipped else "passed"
        )
    return outcomes


def chapters_select(names: list[str]) -> list[Path]:
    chapters = sorted(NOTEBOOKS_DIR.glob(CHAPTER_GLOB))
    if not names:
        return chapters
    picked = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        found = [p for p in chapters if p.stem == stem or p.stem.startswith(f"{stem}-")]
        if not found:
            raise SetupError(
                f"no chapter matches {name!r}",
                f"pick one of: {', '.join(p.stem for p in chapters)}",
            )
        picked.extend(p for p in found if p not in picked)
    return picked


def _kernel_manager():
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

    return KernelManager(kernel_name="this-python", kernel_spec_manager=ThisPython())


def _error_cell(nb) -> tuple[int, str]:
    """The first code cell (counting code cells from 0, as nbval does) with an error output."""
    number = -1
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        number += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return number, _ANSI.sub("", "\n".join(out.get("traceback", [])))
    return number, ""


def chapter_execute(path: Path, *, timeout: float = CELL_TIMEOUT) -> float:
    """Run one chapter from a fresh kernel and save it in place; the seconds it took."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # timestamps from other runners only churn diffs
    km = _kernel_manager()
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        startup_timeout=120,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    RUN_DIR.mkdir(exist_ok=True)
    with open(KERNEL_LOG, "a") as log:
        log.write(f"--- {path.name}\n")
        log.flush()
        try:
            client.execute(stderr=log, stdout=log)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
            number, traceback = _error_cell(nb)
            print(traceback or _ANSI.sub("", str(exc)), file=sys.stderr)
            what = getattr(exc, "ename", type(exc).__name__)
            raise SetupError(
                f"{path.name} failed in code cell {number}: {what}: "
                f"{getattr(exc, 'evalue', '') or str(exc).splitlines()[0]} (file left unchanged)",
                f"run it cell by cell in JupyterLab (make lab); the kernel's own messages are in "
                f"{KERNEL_LOG.relative_to(REPO_ROOT)}",
            ) from None
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = streams_joined(cell.outputs)
    nbformat.write(nb, path)
    return time.monotonic() - started


def streams_joined(outputs: list) -> list:
    """A cell's outputs with each run of stdout (or stderr) pieces joined into one: how the kernel
    cut a cell's printing into messages depends on timing, and would churn the stored files
    (nbval compares the joined text too)."""
    out: list = []
    for output in outputs:
        last = out[-1] if out else None
        if (output.get("output_type") == "stream" and last is not None
                and last.get("output_type") == "stream" and last.get("name") == output.get("name")):
            last["text"] += output["text"]
        else:
            out.append(output)
    return out


def notebooks_execute(args: list[str]) -> None:
    chapters = chapters_select(args)
    if not chapters:
        raise SetupError(f"no chapters in {NOTEBOOKS_DIR}", "check out the notebooks/ folder")
    matplotlib_cache_warm()
    from workbook.chapters.learner import learner_sandbox

    total = 0.0
    with learner_sandbox():  # the chapters build a throw-away copy, never the learner's own
        for path in chapters:
            seconds = chapter_execute(path)
            total += seconds
            step("notebooks", f"{path.name:<34} {seconds:5.1f}s")
    step("notebooks", f"{len(chapters)} chapter(s) executed and saved in {total:.1f}s")
