"""workbook.chapters.show: chapters display the project's real code, by name, range or marker."""

from __future__ import annotations

import pytest
from workbook.paths import REPO_ROOT
from workbook.chapters.show import path_resolve, show, source_get


def test_a_class_is_found_by_name_with_the_comment_lines_above_it():
    source = source_get("chat/routing.py", "websocket_urlpatterns")
    assert source.path == "course_project/chat/routing.py"
    assert source.text.startswith("# Group names allow")
    assert source.text.rstrip().endswith("]")


def test_a_decorated_function_starts_at_its_decorator():
    source = source_get("common/dbexecute.py", "transaction")
    assert source.text.startswith("@asynccontextmanager\nasync def transaction(")


def test_a_method_is_found_by_dotted_name_and_dedented():
    source = source_get("course_project/chat/consumers.py", "ChatConsumer.connect")
    assert source.text.startswith("async def connect(self)")
    lines = (REPO_ROOT / source.path).read_text().splitlines()[source.first - 1 : source.last]
    assert [line.strip() for line in lines] == [line.strip() for line in source.text.splitlines()]


def test_markers_and_line_ranges_select_lines_of_any_text_file():
    by_marker = source_get("pyproject.toml", start="[tool.pytest.ini_options]", end="testpaths")
    assert by_marker.lang == "toml"
    assert by_marker.text.splitlines()[0] == "[tool.pytest.ini_options]"
    by_range = source_get("pyproject.toml", lines=(by_marker.first, by_marker.last))
    assert by_range.text == by_marker.text


def test_the_display_is_a_plain_function_of_the_file():
    first, second = source_get("common/db.py", "pool_get"), source_get("common/db.py", "pool_get")
    assert first._repr_markdown_() == second._repr_markdown_()
    caption = (f"the reference's `pool_get` in course_project/common/db.py, "
               f"lines {first.first}-{first.last}")
    assert first._repr_markdown_().startswith(f"**{caption}**\n\n```python\n")
    assert str(first).startswith("# the reference's pool_get in course_project/common/db.py")


def test_show_prints_outside_a_notebook(capsys):
    show("common/db.py", "pools_stats")
    assert capsys.readouterr().out.startswith(
        "# the reference's pools_stats in course_project/common/db.py")


@pytest.mark.parametrize(
    "call",
    [
        lambda: source_get("no/such/file.py"),
        lambda: source_get("common/db.py", "no_such_function"),
        lambda: source_get("common/db.py", start="no such marker"),
        lambda: source_get("common/db.py", lines=(5, 100_000)),
        lambda: path_resolve("../../etc/passwd"),
    ],
)
def test_a_wrong_reference_fails_loudly(call):
    with pytest.raises((FileNotFoundError, LookupError, ValueError)):
        call()
