"""The learner's copy of the project: built from the chapters' listings, served live.

    python -m workbook learner build DIR --through NN   the copy as chapter NN leaves it
    python -m workbook learner serve DIR [--port P]     its live server, in the background
    python -m workbook learner stop [--port P]          end that server
    python -m workbook learner regenerate               course_project/ rebuilt from the chapters

A listing is a code cell of a chapter whose first line is the `%%learner` cell magic:

    %%learner run          lines of `django-admin ...` or `python manage.py ...`, run in the copy,
                           or `rm PATH ...` (a learner's changed file is kept as PATH.mine)
    %%learner file PATH    the cell's body is the whole file PATH of the copy
    %%learner diff PATH    the body is a unified diff that changes PATH
    %%learner deliver PATH [PATH ...]
                           a module nobody types, delivered whole: PATH (a file, or a folder's
                           files) copied from the reference course_project/; the body holds
                           comments only (IPython refuses a cell magic without a body)
    %%learner solution file|diff PATH
                           an exercise's solution: applied by `build` and when the environment
                           has WORKBOOK_SOLUTIONS=1; in a chapter, only when the learner asks
                           (`%%learner solution --apply ...`), so Run All leaves the exercise open

Run in a chapter, the magic does its step in the learner's folder (`learner_dir()`); `build`
replays the listings of every chapter up to NN, in order, into any folder. So the chapters are the
one source of the files they write. Nothing the learner wrote is lost: a file that differs from
what a listing last wrote there is kept as PATH.mine (PATH.mine-2, ...) before a listing writes it
again, and a diff that does not apply changes nothing and says so (one already applied is a
no-op). The copy's `.workbook/written.json` records what each listing wrote and which listings are
done, so a chapter's first cell (`learner_catch_up`) brings a copy to where the chapters before it
leave it by doing the listings it lacks, and nothing else.

The learner's server and the Django commands run with `learner_env()`: the project's secret key,
a Redis database of the copy's own (LEARNER_REDIS_DB) and MySQL databases of its own
(Config.learner_dbs), so a learner's bug never touches the reference's data.

The learner's server is uvicorn with `--reload`: it picks up a saved file by itself, and a file
that does not import leaves the reloader waiting for the next save, with the traceback in its log.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from course_project.config import REPO_ROOT, RUN_DIR

from .errors import SetupError, step
from .localservers import process_alive

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
REFERENCE_DIR = REPO_ROOT / "course_project"  # the finished project the chapters build
DEFAULT_DIR = NOTEBOOKS_DIR / "my_project"  # inside the folder JupyterLab opens; git-ignored
DEFAULT_PORT = 8100
MANIFEST = ".workbook/written.json"  # files: path -> sha256 of what a listing last wrote there;
#                                      applied: the keys of the listings done in this copy
LEARNER_REDIS_DB = 1  # the reference uses the URL's own database (0 by default)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class ListingError(Exception):
    """A listing could not be applied; the learner's copy is unchanged."""

    def _render_traceback_(self) -> list[str]:  # IPython: the message, not the magic's frames
        return [f"ListingError: {self}"]


def learner_dir() -> Path:
    """The folder the chapters build: $WORKBOOK_LEARNER_DIR, else notebooks/my_project/."""
    return Path(os.environ.get("WORKBOOK_LEARNER_DIR") or DEFAULT_DIR).resolve()


def learner_port() -> int:
    return int(os.environ.get("WORKBOOK_LEARNER_PORT") or DEFAULT_PORT)


def solutions_on() -> bool:
    """WORKBOOK_SOLUTIONS=1 (CI, `make test`, `make notebooks`): exercise solutions are applied."""
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
    env["QUIZ_STUDY_DB"], env["QUIZ_GAME_DB"] = cfg.learner_dbs
    env.update(QUIZ_MYSQL_HOST=cfg.mysql_host, QUIZ_MYSQL_PORT=str(cfg.mysql_port),
               QUIZ_MYSQL_USER=cfg.mysql_user, QUIZ_MYSQL_PASSWORD=cfg.mysql_password)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def redis_url_db(url: str, db: int) -> str:
    """`url` pointing at Redis database `db` ("redis://h:p/0" -> "redis://h:p/1")."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


# --- listings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    chapter: str  # "01"
    cell_id: str
    action: str  # run | file | diff | deliver
    path: str  # "" for run; the paths, space-separated, for deliver
    body: str
    solution: bool = False  # an exercise's solution
    apply: bool = False  # `--apply`: the learner asked for the solution

    @property
    def where(self) -> str:
        return f"chapter {self.chapter}, cell {self.cell_id}"

    @property
    def key(self) -> str:
        """Names this listing in the manifest by what it does (the magic in a chapter does not
        know its cell, and `build` does): its action, path and text, without the trailing
        spaces that IPython strips from a cell magic's lines."""
        body = "\n".join(line.rstrip() for line in self.body.rstrip().splitlines())
        if self.action == "deliver":  # a delivered file that changed is delivered again
            body = "\0".join(f"{rel}\0{_sha(text)}" for rel, text in delivered_files(self.path))
        return _sha("\0".join((self.action, self.path, body)))[:16]


def listing_parse(source: str, *, chapter: str = "", cell_id: str = "") -> Listing | None:
    """The listing a cell's source holds, or None if it is not a `%%learner` cell."""
    first, _, body = source.partition("\n")
    if not first.startswith("%%learner"):
        return None
    return listing_from_line(first.removeprefix("%%learner"), body, chapter=chapter,
                             cell_id=cell_id)


def listing_from_line(line: str, body: str, *, chapter: str = "", cell_id: str = "") -> Listing:
    words = line.split()
    solution = words[:1] == ["solution"]
    apply = solution and words[1:2] == ["--apply"]
    words = words[1 + apply:] if solution else words
    action = words[0] if words else ""
    if action == "run" and len(words) == 1 and not solution:
        return Listing(chapter, cell_id, "run", "", body)
    if (action in ("file", "diff") and len(words) == 2) or (
            action == "deliver" and len(words) >= 2 and not solution):
        for path in words[1:]:
            if path.startswith("/") or ".." in Path(path).parts:
                raise ListingError(f"{path!r}: a listing writes inside the project folder only")
        if action == "deliver" and any(ln.strip() and not ln.lstrip().startswith("#")
                                       for ln in body.splitlines()):
            raise ListingError("a deliver listing has no body: its files come from the reference")
        return Listing(chapter, cell_id, action, " ".join(words[1:]), body, solution, apply)
    raise ListingError(f"%%learner {line.strip()!r}: expected `run`, `file PATH`, `diff PATH`, "
                       "`deliver PATH ...`, or `solution [--apply] file|diff PATH`")


def delivered_files(paths: str) -> list[tuple[str, str]]:
    """(path, text) of each file a deliver listing copies from the reference: the file itself,
    or every file under a folder (bytecode aside), in path order."""
    out = []
    for rel in paths.split():
        source = REFERENCE_DIR / rel
        if source.is_dir():
            files = sorted(f for f in source.rglob("*")
                           if f.is_file() and "__pycache__" not in f.parts)
        elif source.is_file():
            files = [source]
        else:
            raise ListingError(f"{rel}: the reference course_project/ has no such file to deliver")
        out.extend((f.relative_to(REFERENCE_DIR).as_posix(), f.read_text(encoding="utf-8"))
                   for f in files)
    return out


def chapter_listings(notebook: Path) -> list[Listing]:
    # The notebook's JSON read directly: nbformat's import and schema check would cost a chapter's
    # first cell two seconds.
    chapter = notebook.name[:2]
    out = []
    for cell in json.loads(notebook.read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            listing = listing_parse(source, chapter=chapter, cell_id=cell.get("id", "?"))
            if listing is not None:
                out.append(listing)
    return out


def listings_through(through: int, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Listing]:
    """Every listing of chapters 00..through, in chapter and cell order."""
    out: list[Listing] = []
    for nb in sorted(notebooks_dir.glob("[0-9][0-9]-*.ipynb")):
        if int(nb.name[:2]) <= through:
            out.extend(chapter_listings(nb))
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _manifest_data(root: Path) -> dict:
    try:
        data = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        data = {}
    return {"files": data.get("files", {}), "applied": data.get("applied", [])}


def _manifest_write(root: Path, data: dict) -> None:
    target = root / MANIFEST
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _manifest(root: Path) -> dict[str, str]:
    """path -> sha256 of what a listing last wrote there."""
    return _manifest_data(root)["files"]


def _manifest_set(root: Path, path: str, text: str) -> None:
    data = _manifest_data(root)
    data["files"][path] = _sha(text)
    _manifest_write(root, data)


def applied(root: Path) -> set[str]:
    """The keys of the listings done in the copy at `root`."""
    return set(_manifest_data(root)["applied"])


def _applied_add(root: Path, listing: Listing) -> None:
    data = _manifest_data(root)
    if listing.key not in data["applied"]:
        data["applied"].append(listing.key)
        _manifest_write(root, data)


def _keep_mine(target: Path) -> Path:
    n, kept = 1, target.with_name(target.name + ".mine")
    while kept.exists():
        n += 1
        kept = target.with_name(f"{target.name}.mine-{n}")
    target.rename(kept)
    return kept


def diff_apply(text: str, diff: str) -> str:
    """`text` changed by a unified diff whose context and removed lines must match exactly
    (a hunk may sit a few lines from where its header says); `text` itself if the diff is
    already applied. ListingError if neither."""
    try:
        return _diff_apply(text, diff, reverse=False)
    except ListingError as exc:
        try:
            _diff_apply(text, diff, reverse=True)
        except ListingError:
            raise exc from None
        return text  # every hunk's result is already there: applied before


def _diff_apply(text: str, diff: str, *, reverse: bool) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0  # next line of `lines` not yet copied
    hunks: list[tuple[int, list[str]]] = []
    for raw in diff.splitlines():
        if raw.startswith(("--- ", "+++ ")):
            continue
        m = _HUNK.match(raw)
        if m:
            hunks.append((int(m.group(1)), []))
        elif hunks and raw[:1] in (" ", "-", "+"):
            hunks[-1][1].append(raw)
        elif hunks and raw == "":
            hunks[-1][1].append(" ")  # an editor stripped the blank context line's space
        elif raw.startswith("\\"):
            continue
        elif raw.strip():
            raise ListingError(f"not a unified diff line: {raw!r}")
    if not hunks:
        raise ListingError("the diff has no hunk (@@ ... @@)")
    for start, body in hunks:
        old = [b[1:] for b in body if b[0] in (" +" if reverse else " -")]
        new = [b[1:] for b in body if b[0] in (" -" if reverse else " +")]
        want = max(start - 1, 0)
        at = next((i for i in sorted(range(pos, len(lines) + 1), key=lambda i: abs(i - want))
                   if [s.rstrip("\n") for s in lines[i:i + len(old)]] == old), None)
        if at is None:
            shown = "\n".join(old[:3])
            raise ListingError(f"a hunk of the diff does not match the file (near line {start}):"
                               f"\n{shown}")
        out.extend(lines[pos:at])
        out.extend(s + "\n" for s in new)
        pos = at + len(old)
    out.extend(lines[pos:])
    return "".join(out)


def _run_line(root: Path, line: str) -> str:
    words = shlex.split(line)
    if words[:1] == ["rm"]:
        return _remove(root, words[1:])
    if words[:1] == ["django-admin"]:
        args = [sys.executable, "-c", _DJANGO_ADMIN, str(REFERENCE_DIR), *words[1:]]
    elif words[:2] == ["python", "manage.py"]:
        args = [sys.executable, "-c", _MANAGE, str(REFERENCE_DIR), *words[2:]]
    else:
        raise ListingError(f"{line!r}: a run listing takes `django-admin ...`, "
                           "`python manage.py ...` or `rm PATH ...` lines")
    if words[1:2] == ["startproject"] and (root / "manage.py").exists():
        return f"kept: {root.name}/ already holds a project (manage.py)"
    if words[1:3] == ["manage.py", "startapp"] and len(words) > 3 and (root / words[3]).exists():
        return f"kept: the app {words[3]}/ already exists"
    root.mkdir(parents=True, exist_ok=True)
    before = _stats(root)
    done = subprocess.run(args, cwd=root, env=learner_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise ListingError(f"{line!r} failed: {(done.stderr or done.stdout).strip()}")
    for rel, stat in sorted(_stats(root).items()):  # what the command wrote counts as a listing's
        if before.get(rel) != stat:
            _manifest_set(root, rel, (root / rel).read_text(errors="replace"))
    return f"ran: {line}"


def _remove(root: Path, paths: list[str]) -> str:
    """`rm PATH ...`: files (or folders) of the copy go. One the learner changed since a listing
    or command wrote it is kept as PATH.mine instead; one already gone is no error."""
    if not paths or any(p.startswith(("-", "/")) or ".." in Path(p).parts for p in paths):
        raise ListingError(f"rm {' '.join(paths)}: takes paths inside the project folder, no flags")
    data = _manifest_data(root)
    said = []
    for rel in paths:
        target = root / rel
        files = sorted(f for f in target.rglob("*") if f.is_file()) if target.is_dir() else (
            [target] if target.exists() else [])
        for f in files:
            frel = f.relative_to(root).as_posix()
            written = data["files"].pop(frel, None)
            if "__pycache__" in f.parts or written == _sha(f.read_text(errors="replace")):
                f.unlink()
            else:
                said.append(f"kept your {frel} as {_keep_mine(f).name}")
        if target.is_dir():
            for d in sorted((d for d in target.rglob("*") if d.is_dir()), reverse=True):
                if not any(d.iterdir()):
                    d.rmdir()
            if not any(target.iterdir()):
                target.rmdir()
    _manifest_write(root, data)
    return "; ".join([f"removed: {' '.join(paths)}", *said])


def _stats(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file of the copy, but the manifest and bytecode."""
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".workbook/") and "__pycache__" not in rel:
            st = path.stat()
            out[rel] = (st.st_mtime_ns, st.st_size)
    return out


def listing_apply(listing: Listing, root: Path) -> list[str]:
    """Do one listing's step in the copy at `root` and record it as done; what it did, a line
    each. ListingError (and the copy unchanged) if it cannot be done."""
    said = _listing_do(listing, root)
    _applied_add(root, listing)
    return said


def _listing_do(listing: Listing, root: Path) -> list[str]:
    if listing.action == "run":
        return [_run_line(root, ln) for ln in listing.body.splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
    if listing.action == "deliver":
        return [line for rel, text in delivered_files(listing.path)
                for line in _file_write(root, rel, text, "delivered")]
    target = root / listing.path
    current = target.read_text() if target.exists() else None
    if listing.action == "file":
        new = listing.body if listing.body.endswith("\n") else listing.body + "\n"
    else:
        if current is None:
            raise ListingError(f"{listing.path} does not exist yet: its diff has nothing to "
                               "change (build the earlier chapters first)")
        try:
            new = diff_apply(current, listing.body)
        except ListingError as exc:
            raise ListingError(f"{listing.path}: {exc}. Your file is unchanged; compare it with "
                               "the listing, or build a fresh copy to compare with: "
                               "`python -m workbook learner build DIR --through NN`") from None
    return _file_write(root, listing.path, new, "wrote" if listing.action == "file" else "changed",
                       keep=listing.action == "file")


def _file_write(root: Path, rel: str, new: str, verb: str, *, keep: bool = True) -> list[str]:
    """Write `new` to `rel` of the copy; with `keep`, a version the learner changed since a
    listing last wrote it is kept as .mine first (a diff applies to the learner's own text)."""
    target = root / rel
    current = target.read_text() if target.exists() else None
    if current == new:
        return [f"unchanged: {rel}"]
    said = []
    if keep and current is not None and _manifest(root).get(rel) != _sha(current):
        said.append(f"kept your version as {_keep_mine(target).name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(new)
    _manifest_set(root, rel, new)
    return [f"{verb}: {rel}", *said]


def build(root: Path, through: int, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Listing]:
    """Replay the listings of chapters 00..through into `root`, solutions included."""
    listings = listings_through(through, notebooks_dir)
    for listing in listings:
        try:
            for line in listing_apply(listing, root):
                step("learner", f"{listing.where}: {line}")
        except ListingError as exc:
            raise SetupError(f"{listing.where}: {exc}", "fix the listing in that chapter") from None
    step("learner", f"{root} built through chapter {through:02d} ({len(listings)} listings)")
    return listings


def last_chapter(notebooks_dir: Path = NOTEBOOKS_DIR) -> int:
    return max(int(nb.name[:2]) for nb in notebooks_dir.glob("[0-9][0-9]-*.ipynb"))


def project_files(root: Path) -> dict[str, Path]:
    """The files of a project folder that a build must reproduce: all but the workbook's own
    helpers (course_project/workbook/), bytecode, packaging metadata and a copy's manifest."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or rel.parts[0] in ("workbook", ".workbook") or any(
                part == "__pycache__" or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.suffix in (".pyc", ".mine") or ".mine-" in path.name:
            continue
        out[rel.as_posix()] = path
    return out


def build_differences(built: Path, reference: Path = REFERENCE_DIR) -> list[str]:
    """How a built copy differs from the reference project, a line each, in path order (the
    first line is the first difference); empty when the chapters reproduce it."""
    mine, ref = project_files(built), project_files(reference)
    out = []
    for rel in sorted(set(mine) | set(ref)):
        if rel not in ref:
            out.append(f"{rel}: the chapters write it, course_project/ has no such file")
        elif rel not in mine:
            out.append(f"{rel}: in course_project/, but no chapter writes or delivers it")
        elif mine[rel].read_bytes() != ref[rel].read_bytes():
            a = ref[rel].read_text(errors="replace").splitlines()
            b = mine[rel].read_text(errors="replace").splitlines()
            common = min(len(a), len(b))
            line = next((i for i in range(common) if a[i] != b[i]), common)
            out.append(f"{rel}: differs from line {line + 1} on (course_project/ "
                       f"{a[line]!r:.60} vs the chapters' {b[line]!r:.60})"
                       if line < common else
                       f"{rel}: differs from line {line + 1} on ("
                       + ("course_project/'s" if len(a) > len(b) else "the chapters'")
                       + " file goes on where the other ends)")
    return out


def regenerate(reference: Path = REFERENCE_DIR) -> list[str]:
    """Rebuild course_project/ from the chapters: build a fresh copy through the last chapter,
    write every file of it that course_project/ lacks or holds otherwise, and name (without
    deleting) the files no chapter writes. What it did, a line each."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="regenerate-") as tmp:
        built = Path(tmp) / "course_project"
        build(built, last_chapter())
        mine, ref = project_files(built), project_files(reference)
        said = []
        for rel, path in mine.items():
            if rel not in ref or ref[rel].read_bytes() != path.read_bytes():
                target = reference / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                said.append(f"wrote course_project/{rel}")
        said += [f"course_project/{rel}: no chapter writes it (deliver it, or delete it)"
                 for rel in ref if rel not in mine]
    return said or ["course_project/ is what the chapters build: nothing to do"]


def learner_catch_up(chapter: int, root: Path | None = None,
                     notebooks_dir: Path = NOTEBOOKS_DIR) -> list[str]:
    """Bring the copy to where chapters 00..chapter-1 leave it: do the listings (solutions
    included) it has not done yet, in order, keeping what the learner wrote. What a learner
    should hear about, a line each (a version of theirs kept, a listing that would not apply);
    nothing when the copy only lacked steps."""
    root = root or learner_dir()
    done = applied(root)
    said = []
    for listing in listings_through(chapter - 1, notebooks_dir):
        if listing.key in done:
            continue
        try:
            said.extend(f"{listing.path}: {ln}" for ln in listing_apply(listing, root)
                        if ln.startswith("kept your"))
        except ListingError as exc:
            if listing.solution:  # the learner solved it their own way: theirs stays
                _applied_add(root, listing)
                said.append(f"{listing.path}: kept your own solution of chapter "
                            f"{listing.chapter}'s exercise (its listing does not apply to it)")
                continue
            said.append(f"{listing.where} did not apply: {exc}")
            break  # the later listings build on this one
    return said


def learner_magic(line: str, cell: str) -> None:
    """The `%%learner` cell magic: this cell's step, done in the learner's folder. A failed step
    raises ListingError (the copy unchanged), so Run All stops where the copy went wrong."""
    root = learner_dir()
    server = learner_server()
    mark = server.mark()
    listing = listing_from_line(line, cell)
    if listing.solution and not (listing.apply or solutions_on()):
        print("The exercise is yours: this solution was not applied, and the check below says "
              "what is missing.\nTo apply it, run this cell with `%%learner solution --apply "
              f"{listing.action} {listing.path}` as its first line.")
        return
    said = listing_apply(listing, root)
    print("\n".join(said))
    running = server._state() is not None
    # The reloader watches Python files only: a template or a script is read when it is served.
    if running and any(s.startswith(("wrote", "changed", "delivered")) and s.endswith(".py")
                       for s in said):
        print("your server reloaded it" if server.settle(mark) else
              f"your server has not reloaded it yet: {server.problem(mark) or 'see its log'}")


_cell_start: dict[str, int] = {}  # where the learner's server log stood when this cell began


def _cell_started(*_args) -> None:
    _cell_start["log"] = learner_server().mark()


def load_ipython_extension(ipython) -> None:
    ipython.register_magic_function(learner_magic, "cell", "learner")
    if _cell_started not in ipython.events.callbacks["pre_run_cell"]:
        ipython.events.register("pre_run_cell", _cell_started)


# --- the learner's server -------------------------------------------------------------------


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

# uvicorn, with the reference project's folder taken off sys.path first: the learner's copy uses
# the same package names (course_project, chat, common, ...), and a module the learner has not
# written yet must fail to import, not quietly come from the reference. uvicorn's reload worker
# is a spawned process, which starts with this sys.path.
_OFF_PATH = ("import sys; ref = sys.argv.pop(1); "
             "sys.path[:] = [p for p in sys.path if p.rstrip('/') != ref]; ")
_LAUNCH = _OFF_PATH + "sys.argv[0] = 'uvicorn'; from uvicorn.main import main; main()"

# The same for Django's commands: `startproject course_project` would otherwise refuse a name that
# the reference already takes, and manage.py would find the reference's apps.
_DJANGO_ADMIN = _OFF_PATH + ("from django.core.management import execute_from_command_line; "
                             "execute_from_command_line(['django-admin', *sys.argv[1:]])")
_MANAGE = _OFF_PATH + ("import runpy; sys.path.insert(0, '.'); sys.argv[0] = 'manage.py'; "
                       "runpy.run_path('manage.py', run_name='__main__')")
# pytest for the copy's own tests (chapter 11), with the copy's pytest.ini and conftest.py.
PYTEST_LAUNCH = _OFF_PATH + ("import pytest; sys.path.insert(0, '.'); "
                             "sys.exit(pytest.main(sys.argv[1:]))")


@dataclass
class LearnerServer:
    root: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    offset: int = 0  # where the log stood when this object last started the server
    env_extra: dict[str, str] | None = None  # on top of learner_env(), e.g. a broken password

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"learner-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return RUN_DIR / f"learner-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _state(self) -> tuple[int, str] | None:
        """(pid, folder served) of the reloader this project started, if it is alive."""
        try:
            data = json.loads(self.pid_file.read_text())
            os.kill(int(data["pid"]), 0)
            return int(data["pid"]), str(data["root"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def answers(self) -> bool:
        """Some HTTP answer at / (any status: a 404 is the learner's app talking)."""
        try:
            with urllib.request.urlopen(self.url + "/", timeout=10):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False

    def command(self) -> list[str]:
        app = settings_module(self.root).rsplit(".", 1)[0] + ".asgi:application"
        return [sys.executable, "-c", _LAUNCH, str(REFERENCE_DIR), app, "--app-dir", str(self.root),
                "--host", self.host, "--port", str(self.port),
                "--reload", "--reload-dir", str(self.root), "--reload-delay", "0.1",
                "--ws", "websockets-sansio", "--ws-per-message-deflate", "false",
                "--no-access-log"]

    def start(self, timeout: float = 20.0) -> str:
        """Serve the copy (a no-op if this server already serves it). Returns a status line;
        a copy that does not import still leaves the reloader running (see `problem()`)."""
        state = self._state()
        if state is not None and state[1] == str(self.root):
            return f"already serving {self.root.name}/ at {self.url} (pid {state[0]})"
        if state is not None:
            self.stop(quiet=True)
        from .localservers import port_open

        if port_open(self.host, self.port):
            raise SetupError(f"port {self.port} is held by another program",
                             "stop it or set WORKBOOK_LEARNER_PORT to a free port")
        RUN_DIR.mkdir(exist_ok=True)
        env = {**learner_env(), **(self.env_extra or {})}
        offset = self.offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(self.command(), cwd=self.root, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "root": str(self.root)}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise SetupError(f"uvicorn exited at once: {self.log_tail(offset)[-1:]}",
                                 f"read {self.log_file}")
            if self.answers():
                return f"serving {self.root.name}/ at {self.url} (pid {proc.pid})"
            if self.problem(offset):
                return f"started at {self.url}, but the project does not import (see its log)"
            if any("Application startup failed" in ln for ln in self.log_tail(offset)):
                return f"started at {self.url}, but the application's startup failed (see its log)"
            time.sleep(0.2)
        return f"started at {self.url}, not answering yet after {timeout:.0f} s (see its log)"

    def stop(self, quiet: bool = False, timeout: float = 10.0) -> None:
        state = self._state()
        self.pid_file.unlink(missing_ok=True)
        if state is None:
            if not quiet:
                step("learner", f"no learner server on port {self.port}")
            return
        pid = state[0]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(0.1)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if not quiet:
            step("learner", f"stopped the learner server on port {self.port} (pid {pid})")

    def settle(self, mark: int, timeout: float = 20.0) -> bool:
        """Wait for the reload that a file saved after log offset `mark` causes: True once a
        new worker started and answers, False if its code failed or time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any("Application startup complete" in ln for ln in self.log_tail(mark)):
                return self.answers()
            if self.problem(mark):
                return False
            time.sleep(0.05)
        return False

    def log_tail(self, offset: int | None = None) -> list[str]:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(self.offset if offset is None else offset)
                return f.read().decode(errors="replace").splitlines()
        except OSError:
            return []

    def mark(self) -> int:
        """Where the log ends now: pass it to problem() to see only what happens after."""
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    def problem(self, offset: int | None = None, wait: float = 0.0) -> str | None:
        """The last traceback the server logged after `offset`, if its code failed since
        (waiting up to `wait` seconds for one to appear)."""
        deadline = time.monotonic() + wait
        lines = self.log_tail(offset)
        while time.monotonic() < deadline and not any(
                ln.startswith("Traceback (most recent") for ln in lines):
            time.sleep(0.05)
            lines = self.log_tail(offset)
        starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent")]
        if not starts:
            return None
        block = lines[starts[-1]:]
        end = next((i for i, ln in enumerate(block[1:], 1)
                    if ln and not ln.startswith((" ", "Traceback", "During", "The above"))), None)
        block = block[: end + 1] if end is not None else block
        # The learner's own frames and the error: the library frames above them say little.
        mine = next((i for i, ln in enumerate(block) if f'File "{self.root}/' in ln), None)
        if mine is not None:
            block = [block[0], "  ...", *block[mine:]]
        return "\n".join(block)


def learner_chapter_start(chapter: int) -> LearnerServer | None:
    """A chapter's first cell, for the learner's copy: the listings of the chapters before it
    that the copy lacks are done (learner_catch_up), and its server is started (a no-op if up).
    Chapter 00 comes before the copy and leaves it alone."""
    if chapter < 1:
        return None
    root = learner_dir()
    server = learner_server()
    mark = server.mark()
    before = _manifest(root)
    for line in learner_catch_up(chapter, root):
        print(line)
    if not (root / "manage.py").exists():
        return None  # chapter 01 starts the project
    state = server._state()
    running = state is not None and state[1] == str(root)
    said = server.start()
    changed = {rel for rel, sha in _manifest(root).items() if before.get(rel) != sha}
    if running and any(rel.endswith(".py") for rel in changed):
        server.settle(mark)  # the catch-up changed files under the running server: its reload
    print(f"your project: {root.name}/, served at {server.url}")
    problem = server.problem(mark if running else None)
    if problem and not server.answers():
        print(said, problem, sep="\n")
    return server


def check(ok: bool, passed: str, hint: str) -> None:
    """One line for a check of the learner's code: what holds, or what is missing and where;
    when it fails, also the traceback the learner's server logged while this cell ran."""
    print(f"✓ {passed}" if ok else f"✗ not yet: {hint}")
    if not ok and "log" in _cell_start:
        problem = learner_server().problem(_cell_start["log"], wait=0.5)
        if problem:
            print("your server logged, while this cell ran:", problem, sep="\n")


def learner_manage(*args: str, root: Path | None = None) -> str:
    """`python manage.py ARGS` in the learner's copy, with its own settings (learner_env()):
    what it printed. ListingError with the error's last line if it fails."""
    root = root or learner_dir()
    done = subprocess.run([sys.executable, "-c", _MANAGE, str(REFERENCE_DIR), *args], cwd=root,
                          env=learner_env(), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ListingError(f"python manage.py {' '.join(args)} failed: {last[0]}")
    return done.stdout


def free_port() -> int:
    """A TCP port nothing listens on now (a sandbox's server, a second server of a copy)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def learner_server() -> LearnerServer:
    return LearnerServer(learner_dir(), learner_port())


def learner_serve() -> LearnerServer:
    """For a chapter: serve the learner's copy (a no-op when it is up) and say where; if the copy
    does not import, the traceback from its log."""
    server = learner_server()
    said = server.start()
    print(f"your project's server: {server.url}" if server.answers() else said)
    problem = server.problem()
    if problem and not server.answers():
        print(problem)
    return server


@contextlib.contextmanager
def learner_sandbox() -> Iterator[Path]:
    """A throw-away learner's copy and port for `make test` and `make notebooks`, so that they
    never touch a learner's own folder, with the exercises solved (WORKBOOK_SOLUTIONS=1 unless
    the environment says otherwise). Its server is stopped and the folder removed after."""
    if os.environ.get("WORKBOOK_LEARNER_DIR"):
        yield learner_dir()  # the caller chose a folder: use it, leave it
        return
    import tempfile

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="learner-") as tmp:
        root = Path(tmp) / "my_project"
        ours = ["WORKBOOK_LEARNER_DIR", "WORKBOOK_LEARNER_PORT"]
        os.environ.update(WORKBOOK_LEARNER_DIR=str(root), WORKBOOK_LEARNER_PORT=str(port))
        if "WORKBOOK_SOLUTIONS" not in os.environ:
            os.environ["WORKBOOK_SOLUTIONS"] = "1"
            ours.append("WORKBOOK_SOLUTIONS")
        try:
            yield root
        finally:
            LearnerServer(root, port).stop(quiet=True)
            for key in ours:
                os.environ.pop(key, None)


def sandbox_configure(config) -> None:
    """pytest_configure of the conftests: the session's throw-away copy (learner_sandbox)."""
    config._learner_sandbox = contextlib.ExitStack()
    config._learner_sandbox.enter_context(learner_sandbox())


def sandbox_unconfigure(config) -> None:
    stack = getattr(config, "_learner_sandbox", None)
    if stack is not None:
        stack.close()


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbook learner")
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build the learner's copy from the chapters' listings")
    p_build.add_argument("dir", type=Path)
    p_build.add_argument("--through", type=int, required=True, help="last chapter, e.g. 01")
    sub.add_parser("regenerate", help="rewrite course_project/ from the chapters' listings")
    p_serve = sub.add_parser("serve", help="serve a learner's copy in the background")
    p_serve.add_argument("dir", type=Path, nargs="?", default=None)
    p_serve.add_argument("--port", type=int, default=None)
    p_stop = sub.add_parser("stop", help="stop the learner server on a port")
    p_stop.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    port = getattr(args, "port", None) or learner_port()  # build takes no --port
    if args.command == "build":
        build(args.dir.resolve(), args.through)
    elif args.command == "regenerate":
        for line in regenerate():
            step("learner", line)
    elif args.command == "serve":
        server = LearnerServer((args.dir or learner_dir()).resolve(), port)
        step("learner", server.start())
        problem = server.problem()
        if problem and not server.answers():
            print(problem, file=sys.stderr)
    else:
        LearnerServer(learner_dir(), port).stop()
    return 0
