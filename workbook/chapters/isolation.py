"""Where the learner's copy lives and how its processes run apart from the reference project.

The copy is `learner_dir()` (notebooks/my_project/ unless WORKBOOK_LEARNER_DIR says otherwise),
served on `learner_port()`. Its server and the Django commands run in it get `learner_env()`:
the project's secret key, a Redis database of the copy's own (LEARNER_REDIS_DB) and MySQL
databases of its own (`learner_dbs`), so a learner's bug never touches the reference's data.

They also run without the reference on the path (`python_apart`): the copy uses the same
package names (course_project, chat, common, ...), and a module the learner has not written
yet must fail to import, not quietly come from the reference.
"""

from __future__ import annotations

import os
import re
import site
import sys
from pathlib import Path

from workbook.errors import SetupError
from workbook.paths import NOTEBOOKS_DIR
from workbook.setup.services import LEARNER_REDIS_DB, learner_dbs

DEFAULT_DIR = NOTEBOOKS_DIR / "my_project"  # inside the folder JupyterLab opens; git-ignored
DEFAULT_PORT = 8100


def learner_dir() -> Path:
    """The folder the chapters build: $WORKBOOK_LEARNER_DIR, else notebooks/my_project/."""
    return Path(os.environ.get("WORKBOOK_LEARNER_DIR") or DEFAULT_DIR).resolve()


def learner_port() -> int:
    return int(os.environ.get("WORKBOOK_LEARNER_PORT") or DEFAULT_PORT)


def solutions_on() -> bool:
    """WORKBOOK_SOLUTIONS=1: the chapters apply their exercises' solutions (tests/notebooks/
    test_exercises.py sets it; Run All, `make test` and `make notebooks` leave them undone)."""
    return os.environ.get("WORKBOOK_SOLUTIONS", "").strip() == "1"


def learner_env() -> dict[str, str]:
    """The environment of the learner's server and of the Django commands run in the copy: this
    one, without the reference's settings module, with the project's secret key, and the copy's
    own Redis database and MySQL databases (made by `make services`)."""
    from course_project.config import config_get

    cfg = config_get()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["DJANGO_SECRET_KEY"] = cfg.secret_key
    env["QUIZ_REDIS_URL"] = redis_url_db(cfg.redis_url, LEARNER_REDIS_DB)
    env["QUIZ_STUDY_DB"], env["QUIZ_GAME_DB"] = learner_dbs(cfg)
    env.update(QUIZ_MYSQL_HOST=cfg.mysql_host, QUIZ_MYSQL_PORT=str(cfg.mysql_port),
               QUIZ_MYSQL_USER=cfg.mysql_user, QUIZ_MYSQL_PASSWORD=cfg.mysql_password)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def redis_url_db(url: str, db: int) -> str:
    """`url` pointing at Redis database `db` ("redis://h:p/0" -> "redis://h:p/1")."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def settings_module(root: Path) -> str:
    """The settings module manage.py names ('mysite.settings')."""
    try:
        text = (root / "manage.py").read_text()
    except OSError:
        raise SetupError(f"{root} holds no manage.py", "build it first (chapter 01, or "
                         "`python -m workbook learner build DIR --through 01`)") from None
    m = re.search(r"DJANGO_SETTINGS_MODULE['\"],\s*['\"]([\w.]+)['\"]", text)
    if not m:
        raise SetupError(f"{root}/manage.py names no DJANGO_SETTINGS_MODULE",
                         "restore it from chapter 01's listing")
    return m.group(1)


# The programs a copy's process runs, after `python -S -c`: each takes the library folders off its
# argv (see python_apart) and puts them on sys.path.
_LIBRARIES = "import os, sys; sys.path.extend(sys.argv.pop(1).split(os.pathsep)); "
_PROGRAMS = {
    # uvicorn's reload worker is a spawned process: it gets -S and this sys.path from its parent.
    "uvicorn": "sys.argv[0] = 'uvicorn'; from uvicorn.main import main; main()",
    # `startproject course_project` would otherwise refuse a name the reference already takes.
    "django-admin": ("from django.core.management import execute_from_command_line; "
                     "execute_from_command_line(['django-admin', *sys.argv[1:]])"),
    "manage.py": ("import runpy; sys.path.insert(0, '.'); sys.argv[0] = 'manage.py'; "
                  "runpy.run_path('manage.py', run_name='__main__')"),
    # The copy's own tests (chapter 12), with the copy's pytest.ini and conftest.py.
    "pytest": "import pytest; sys.path.insert(0, '.'); sys.exit(pytest.main(sys.argv[1:]))",
}


def libraries() -> list[str]:
    """The folders this Python installs libraries into (site-packages, and the user's)."""
    folders = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        folders.append(site.getusersitepackages())
    return folders


def python_apart(program: str, *args: str) -> list[str]:
    """The argv that runs `program` (uvicorn, django-admin, manage.py or pytest) with `args` for
    the copy: this Python with `-S`, so that no `.pth` file of site-packages runs. The editable
    install of this project is such a file, and it makes the reference's packages (and the
    workbook) importable from anywhere; without it the process finds the libraries, which
    `libraries()` puts on its path, and the copy in its own folder, and nothing else."""
    return [sys.executable, "-S", "-c", _LIBRARIES + _PROGRAMS[program],
            os.pathsep.join(libraries()), *args]
