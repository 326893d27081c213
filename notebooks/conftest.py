"""pytest glue for the chapters (collected by nbval, see pyproject.toml's pytest options)."""

from __future__ import annotations

from pathlib import Path


def pytest_configure(config):
    # Tests and chapters build a throw-away learner's copy (workbook.chapters.learner.learner_sandbox),
    # never the learner's own notebooks/my_project/.
    from workbook.chapters.learner import sandbox_configure

    sandbox_configure(config)
    # addopts names the sanitize file relative to the repository root; make that hold wherever
    # pytest was started from.
    given = config.option.nbval_sanitize_with
    if given and not Path(given).is_absolute():
        config.option.nbval_sanitize_with = str(config.rootpath / given)


def pytest_sessionstart(session):
    # The kernels run this interpreter: build matplotlib's font cache here, once, so its first-run
    # warning never lands in a cell's stderr.
    from workbook.chapters.notebooks import matplotlib_cache_warm

    matplotlib_cache_warm()


def pytest_unconfigure(config):
    from workbook.chapters.learner import sandbox_unconfigure

    sandbox_unconfigure(config)
