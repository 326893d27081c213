"""What each chapter asks of a learner, read from the chapters themselves: the files its listings
give the copy, the lines the learner types, the checks of their code, the prose to read, and a
time estimate from those. Chapter 00 prints it, so the course's map is never typed by hand.

Typed lines are what a learner types: the non-blank lines of a `file` listing, the `+` lines of a
`diff`, the command lines of a `run`; a delivered module is copied, not typed, and an exercise's
solution is the learner's to write, so neither counts. A check is a code cell that calls
`check(...)` outside an exercise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from workbook.chapters.listings import Listing, listing_parse
from workbook.paths import NOTEBOOKS_DIR

READ_WORDS_PER_MINUTE = 180
TYPE_SECONDS_PER_LINE = 20
CHECK_SECONDS = 30  # run it, read what it says


@dataclass
class ChapterMap:
    chapter: str  # "03"
    title: str
    files: dict[str, str] = field(default_factory=dict)  # path -> "written" | "changed" |
    #                                                        "delivered"
    typed: int = 0
    checks: int = 0
    most_between_checks: int = 0  # the most typed lines before a check comes
    words: int = 0

    @property
    def minutes(self) -> int:
        seconds = (self.words / READ_WORDS_PER_MINUTE * 60 + self.typed * TYPE_SECONDS_PER_LINE
                   + self.checks * CHECK_SECONDS)
        return max(5, round(seconds / 60 / 5) * 5)


def typed_lines(listing: Listing) -> int:
    if listing.solution or listing.action == "deliver":
        return 0
    lines = listing.body.splitlines()
    if listing.action == "diff":
        return sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++")
                   and ln[1:].strip())
    return sum(1 for ln in lines if ln.strip() and not (listing.action == "run"
                                                        and ln.lstrip().startswith("#")))


def _words(text: str) -> int:
    """Words of prose: runs of Latin letters or digits, and each Chinese character (about how
    fast either is read), code spans and fenced blocks left out."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    return len(re.findall(r"[A-Za-z0-9][A-Za-z0-9'’-]*|[\u4e00-\u9fff]", text))


def chapter_map(path: Path) -> ChapterMap:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
               for c in cells]
    heading = next((ln for s in sources[:1] for ln in s.splitlines() if ln.startswith("# ")),
                   f"# {path.stem}")
    title = heading.lstrip("# ")
    out = ChapterMap(path.name[:2], title.split("·", 1)[-1].strip())
    since_check = 0
    kinds = {"file": "written", "diff": "changed", "deliver": "delivered"}
    after_solution = False  # the code cell after a solution is the exercise's check
    for cell, source in zip(cells, sources, strict=True):
        if cell["cell_type"] == "markdown":
            out.words += _words(source)
            continue
        if cell["cell_type"] != "code":
            continue
        listing = listing_parse(source)
        if listing is not None:
            n = typed_lines(listing)
            out.typed += n
            since_check += n
            if not listing.solution and listing.action != "run":
                for rel in listing.path.split():
                    out.files.setdefault(rel, kinds[listing.action])
        elif "check(" in source and not after_solution:
            out.checks += 1
            out.most_between_checks = max(out.most_between_checks, since_check)
            since_check = 0
        after_solution = listing is not None and listing.solution
    out.most_between_checks = max(out.most_between_checks, since_check)
    return out


def course_map(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[ChapterMap]:
    return [chapter_map(p) for p in sorted(notebooks_dir.glob("[0-9][0-9]-*.ipynb"))]


def course_map_table(notebooks_dir: Path = NOTEBOOKS_DIR) -> str:
    """The map as a plain-text table, a chapter a block: its numbers, then its files."""
    rows = [f"time: reading at {READ_WORDS_PER_MINUTE} words a minute, {TYPE_SECONDS_PER_LINE} s "
            f"a typed line, {CHECK_SECONDS} s a check, in steps of 5 minutes"]
    for m in course_map(notebooks_dir):
        typing = (f"; {m.typed} lines to type, {m.checks} check{'s' * (m.checks != 1)} of "
                  f"your code, at most {m.most_between_checks} typed lines before a check"
                  if m.typed else "")
        rows.append(f"{m.chapter} {m.title}: about {m.minutes} min{typing}")
        for kind in ("written", "changed", "delivered"):
            paths = [p for p, k in m.files.items() if k == kind]
            if paths:
                rows.append(f"     {kind + ':':<10} {', '.join(paths)}")
    return "\n".join(rows)
