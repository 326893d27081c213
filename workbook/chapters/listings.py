"""The listings: the `%%learner` cells of the chapters, read from the notebooks, and the unified
diffs some of them hold. Pure: nothing here touches a learner's copy (learner_copy.py does).

A listing is a code cell whose first line is the `%%learner` cell magic:

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
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from workbook.paths import NOTEBOOKS_DIR, PROJECT_DIR

REFERENCE_DIR = PROJECT_DIR  # the finished project the chapters build
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class ListingError(Exception):
    """A listing could not be applied; the learner's copy is unchanged."""

    def _render_traceback_(self) -> list[str]:  # IPython: the message, not the magic's frames
        return [f"ListingError: {self}"]


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
            raise ListingError(_mismatch([s.rstrip("\n") for s in lines], old, pos, want))
        out.extend(lines[pos:at])
        out.extend(s + "\n" for s in new)
        pos = at + len(old)
    out.extend(lines[pos:])
    return "".join(out)


def _mismatch(lines: list[str], old: list[str], pos: int, want: int) -> str:
    """Where a hunk's context and removed lines (`old`) fail to match the file: the place where
    most of them match (the nearest to where the hunk wants to be, on a tie), and the first line
    there that differs."""
    def matching(i: int) -> int:
        return sum(1 for k, line in enumerate(old) if i + k < len(lines) and lines[i + k] == line)

    best = max(range(pos, len(lines) + 1), key=lambda i: (matching(i), -abs(i - want)))
    if matching(best) == 0:
        return (f"a hunk of the diff does not match the file: near line {want + 1} the listing "
                f"expects {old[0]!r}, and no line of the file from line {pos + 1} on reads so")
    k = next(k for k, line in enumerate(old) if best + k >= len(lines) or lines[best + k] != line)
    found = repr(lines[best + k]) if best + k < len(lines) else "the end of the file"
    return (f"a hunk of the diff does not match the file: line {best + k + 1} reads {found}, "
            f"where the listing expects {old[k]!r}")


def last_chapter(notebooks_dir: Path = NOTEBOOKS_DIR) -> int:
    return max(int(nb.name[:2]) for nb in notebooks_dir.glob("[0-9][0-9]-*.ipynb"))


