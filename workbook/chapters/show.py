"""Show the real code of a project file in a notebook, so a chapter never pastes a copy.

    show("course_project/common/db.py")                  # the whole file
    show("common/middleware.py", "TicketAuthMiddleware")  # a class or function, with decorators
    show("chat/consumers.py", "ChatConsumer.connect")     # a method
    show("course_project/settings.py", "CHANNEL_LAYERS")  # a top-level assignment
    show("pyproject.toml", lines=(60, 75))                # a line range
    show("pyproject.toml", start="[tool.pytest", end="filterwarnings")  # between two markers

Paths are relative to the repository root or to course_project/. The result renders as Markdown
(a caption with the path and line numbers, then a fenced block) and as plain text; both are plain
functions of the file's content, so nbval can compare them and a changed file shows up as a diff.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

from workbook.paths import PROJECT_DIR, REPO_ROOT

PACKAGE_ROOT = PROJECT_DIR
LANGUAGES = {
    ".py": "python",
    ".toml": "toml",
    ".sql": "sql",
    ".json": "json",
    ".cfg": "ini",
    ".ini": "ini",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".js": "javascript",
    ".html": "html",
    ".css": "css",
    ".md": "markdown",
    ".sh": "bash",
}


@dataclass(frozen=True)
class Source:
    path: str  # relative to the repository root
    first: int
    last: int
    text: str
    name: str | None = None
    lang: str = ""

    @property
    def caption(self) -> str:
        where = (
            f"line {self.first}" if self.first == self.last else f"lines {self.first}-{self.last}"
        )
        what = f"`{self.name}` in " if self.name else ""
        # A file of the finished project is the reference's, never the learner's copy.
        whose = "the reference's " if self.path.startswith("course_project/") else ""
        return f"{whose}{what}{self.path}, {where}"

    def _repr_markdown_(self) -> str:
        fence = "```"
        while fence in self.text:
            fence += "`"
        return f"**{self.caption}**\n\n{fence}{self.lang}\n{self.text}\n{fence}\n"

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(str(self))

    def __str__(self) -> str:
        return f"# {self.caption.replace('`', '')}\n{self.text}"


def path_resolve(path: str | Path) -> Path:
    """A project file by its path from the repository root or from course_project/."""
    for base in (REPO_ROOT, PACKAGE_ROOT):
        candidate = (base / path).resolve()
        if candidate.is_file() and candidate.is_relative_to(REPO_ROOT):
            return candidate
    raise FileNotFoundError(f"no file {path} under {REPO_ROOT} or {PACKAGE_ROOT}")


def _node_named(tree: ast.Module, dotted: str) -> ast.stmt:
    body: list[ast.stmt] = tree.body
    found: ast.stmt | None = None
    for part in dotted.split("."):
        found = next((node for node in body if _defines(node, part)), None)
        if found is None:
            raise LookupError(f"no {part!r} in {'module' if body is tree.body else dotted}")
        body = getattr(found, "body", [])
    assert found is not None
    return found


def _defines(node: ast.stmt, name: str) -> bool:
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.target.id == name
    return False


def _first_line(node: ast.stmt, lines: list[str]) -> int:
    """The node's first line, counting its decorators and the comment lines right above it."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    while first > 1 and lines[first - 2].lstrip().startswith("#"):
        first -= 1
    return first


def _marker_line(lines: list[str], marker: str, after: int, path: str) -> int:
    for number in range(after, len(lines) + 1):
        if marker in lines[number - 1]:
            return number
    raise LookupError(f"no line containing {marker!r} in {path} from line {after}")


def _statement_end(tree: ast.Module | None, line: int, lines: list[str]) -> int:
    """Where the outermost statement starting on `line` ends (Python), else the next blank line."""
    if tree is not None:
        ends = [
            n.end_lineno
            for n in ast.walk(tree)
            if isinstance(n, ast.stmt) and n.lineno == line and n.end_lineno
        ]
        if ends:
            return max(ends)
    end = line
    while end < len(lines) and lines[end].strip():
        end += 1
    return end


def source_get(
    path: str | Path,
    name: str | None = None,
    *,
    lines: tuple[int, int] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Source:
    """The piece of a project file that `show` displays."""
    file = path_resolve(path)
    rel = file.relative_to(REPO_ROOT).as_posix()
    text = file.read_text(encoding="utf-8")
    all_lines = text.splitlines()
    tree = ast.parse(text) if file.suffix == ".py" else None
    if sum(x is not None for x in (name, lines, start)) > 1:
        raise ValueError("pass one of name, lines or start")
    if name is not None:
        if tree is None:
            raise ValueError(f"{rel} is not a Python file: use lines= or start=")
        node = _node_named(tree, name)
        first, last = _first_line(node, all_lines), node.end_lineno or node.lineno
    elif lines is not None:
        first, last = lines
        if not 1 <= first <= last <= len(all_lines):
            raise ValueError(f"{rel} has {len(all_lines)} lines; asked for {first}-{last}")
    elif start is not None:
        first = _marker_line(all_lines, start, 1, rel)
        last = (
            _marker_line(all_lines, end, first, rel)
            if end
            else _statement_end(tree, first, all_lines)
        )
    else:
        first, last = 1, len(all_lines)
    body = textwrap.dedent("\n".join(all_lines[first - 1 : last]))
    return Source(rel, first, last, body, name, LANGUAGES.get(file.suffix, ""))


def show(
    path: str | Path,
    name: str | None = None,
    *,
    lines: tuple[int, int] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> None:
    """Display the real code of a project file: Markdown in a notebook, plain text elsewhere."""
    source = source_get(path, name, lines=lines, start=start, end=end)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None  # noqa: N806
    if get_ipython is not None and get_ipython() is not None:
        display(source)
    else:
        print(source)
