"""What the listings do to a learner's copy: apply one, build a copy through a chapter, catch a
copy up, and rebuild course_project/ from the chapters.

Nothing the learner wrote is lost: a file that differs from what a listing last wrote there is
kept as PATH.mine (PATH.mine-2, ...) before a listing writes it again, and a diff that does not
apply changes nothing and says so (one already applied is a no-op). The copy's
`.workbook/written.json` records what each listing wrote and which listings are done, so a
chapter's first cell (`learner_catch_up`) brings a copy to where the chapters before it leave it
by doing the listings it lacks, and nothing else.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from workbook.chapters.isolation import learner_dir, learner_env, python_apart
from workbook.chapters.listings import (
    REFERENCE_DIR,
    Listing,
    ListingError,
    _sha,
    delivered_files,
    diff_apply,
    last_chapter,
    listings_through,
)
from workbook.errors import SetupError, step
from workbook.paths import NOTEBOOKS_DIR

MANIFEST = ".workbook/written.json"  # files: path -> sha256 of what a listing last wrote there;
#                                      applied: the keys of the listings done in this copy


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


def _run_line(root: Path, line: str) -> str:
    words = shlex.split(line)
    if words[:1] == ["rm"]:
        return _remove(root, words[1:])
    if words[:1] == ["django-admin"]:
        args = python_apart("django-admin", *words[1:])
    elif words[:2] == ["python", "manage.py"]:
        args = python_apart("manage.py", *words[2:])
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


def already_done(listing: Listing, root: Path) -> str | None:
    """One line when `listing` was done in the copy at `root` before and what it wrote is still
    there (a chapter run again): it is not done again, so nothing the learner or a later chapter
    changed since is overwritten. None when it is to be done (a `run` listing is always redone:
    its commands keep what exists)."""
    if listing.action == "run" or listing.key not in applied(root):
        return None
    paths = ([rel for rel, _ in delivered_files(listing.path)] if listing.action == "deliver"
             else [listing.path])
    if not all((root / rel).exists() for rel in paths):
        return None
    return (f"already done in your copy, skipped: {' '.join(paths)} stays as it is now, with "
            "whatever you or a later chapter changed since")


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


def project_files(root: Path) -> dict[str, Path]:
    """The files of a project folder that a build must reproduce: every one, but what tools
    leave beside the code (bytecode, caches, packaging metadata, Jupyter's checkpoints), a copy's
    own manifest (.workbook/) and the learner's kept versions (.mine)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or rel.parts[0] == ".workbook" or any(
                part in _TOOL_LEFTOVERS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.suffix in (".pyc", ".mine") or ".mine-" in path.name:
            continue
        out[rel.as_posix()] = path
    return out


_TOOL_LEFTOVERS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"}


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
    should hear about, a line each (a version of theirs kept, an exercise's solution applied, a
    listing that would not apply); nothing when the copy only lacked the chapters' steps."""
    root = root or learner_dir()
    done = applied(root)
    said = []
    for listing in listings_through(chapter - 1, notebooks_dir):
        if listing.key in done:
            continue
        try:
            said.extend(f"{listing.path}: {ln}" for ln in listing_apply(listing, root)
                        if ln.startswith("kept your"))
            if listing.solution:
                said.append(f"chapter {listing.chapter}'s exercise was not done in your copy: "
                            f"its solution is now applied to {listing.path}, as the next steps "
                            "build on it")
        except ListingError as exc:
            if listing.solution:  # the learner solved it their own way: theirs stays
                _applied_add(root, listing)
                said.append(f"{listing.path}: kept your own solution of chapter "
                            f"{listing.chapter}'s exercise (its listing does not apply to it)")
                continue
            said.append(f"{listing.where} did not apply: {exc}")
            break  # the later listings build on this one
    return said


