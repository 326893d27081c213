"""Where the book's files live in this checkout: the project it builds, the chapters, and the
folders setup fills (all git-ignored but the first two)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO_ROOT / "course_project"  # the finished project the chapters build
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
RUN_DIR = REPO_ROOT / ".run"  # pid and log files of the servers the book starts
SERVICES_DIR = REPO_ROOT / ".services"  # data of project-local MariaDB/Redis
