"""The learner's copy: built from listings in chapter-like notebooks, served by a real uvicorn
with --reload, broken and repaired the way a learner would."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from workbook.chapters.learner import LearnerServer, free_port
from workbook.chapters.learner_copy import build, listing_apply
from workbook.chapters.listings import Listing, diff_apply
from workbook.errors import SetupError

URLS_DIFF = """\
@@ -17,6 +17,10 @@
 from django.contrib import admin
 from django.urls import path
+from hello.views import hello
+from hello.probe import probe

 urlpatterns = [
     path('admin/', admin.site.urls),
+    path('hello/', hello),
+    path('probe/', probe),
 ]
"""
VIEW = ("from django.http import HttpResponse\n\n\n"
        "def hello(request):\n    return HttpResponse('{}')\n")


PROBE = """\
import importlib.util

from django.http import HttpResponse


def probe(request):
    found = [name for name in ("course_project", "answer_game", "common", "workbook")
             if importlib.util.find_spec(name) is not None]
    return HttpResponse(",".join(found) or "none")
"""


def chapters(folder: Path) -> Path:
    """Two chapters: 01 starts a project and adds a view, 02 routes it."""
    folder.mkdir()
    cells = {
        "01-start.ipynb": ["%%learner run\ndjango-admin startproject mysite .",
                           "print('not a listing')",
                           "%%learner file hello/views.py\n" + VIEW.format("hi"),
                           "%%learner file hello/probe.py\n" + PROBE],
        "02-route.ipynb": ["%%learner diff mysite/urls.py\n" + URLS_DIFF],
    }
    for name, sources in cells.items():
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("# chapter")] + [
            nbformat.v4.new_code_cell(src) for src in sources]
        nbformat.write(nb, folder / name)
    return folder


def get(url: str, timeout: float = 20) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
            if got:
                return got
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.3)


def test_build_through_a_chapter_applies_only_the_listings_up_to_it(tmp_path):
    nbs = chapters(tmp_path / "nb")
    build(tmp_path / "one", 1, nbs)
    assert (tmp_path / "one" / "manage.py").exists()
    assert (tmp_path / "one" / "hello" / "views.py").read_text() == VIEW.format("hi")
    assert "hello" not in (tmp_path / "one" / "mysite" / "urls.py").read_text()
    build(tmp_path / "two", 2, nbs)
    assert "path('hello/', hello)" in (tmp_path / "two" / "mysite" / "urls.py").read_text()


def test_building_again_changes_nothing_and_keeps_what_the_learner_wrote(tmp_path):
    nbs = chapters(tmp_path / "nb")
    root = tmp_path / "proj"
    build(root, 1, nbs)
    view = root / "hello" / "views.py"
    view.write_text(VIEW.format("mine"))
    build(root, 1, nbs)
    assert view.read_text() == VIEW.format("hi")
    assert (root / "hello" / "views.py.mine").read_text() == VIEW.format("mine")
    build(root, 1, nbs)  # unchanged now: nothing more is kept
    assert not (root / "hello" / "views.py.mine-2").exists()


def test_a_diff_that_does_not_match_changes_nothing_and_says_where(tmp_path):
    nbs = chapters(tmp_path / "nb")
    root = tmp_path / "proj"
    build(root, 1, nbs)
    urls = root / "mysite" / "urls.py"
    urls.write_text(urls.read_text().replace("from django.urls import path", "from x import y"))
    before = urls.read_text()
    with pytest.raises(SetupError, match=r"chapter 02, cell .*mysite/urls.py.*does not match"):
        build(root, 2, nbs)
    assert urls.read_text() == before


def test_diff_apply_finds_a_hunk_that_moved_and_refuses_a_wrong_context():
    text = "a\nb\nc\nd\n"
    assert diff_apply("x\n" + text, "@@ -2,2 +2,3 @@\n b\n+B\n c\n") == "x\na\nb\nB\nc\nd\n"
    from workbook.chapters.listings import ListingError

    with pytest.raises(ListingError, match="does not match"):
        diff_apply(text, "@@ -1,2 +1,2 @@\n a\n-z\n+Z\n")


def test_a_diff_that_does_not_match_names_the_line_of_the_file_that_differs():
    from workbook.chapters.listings import ListingError

    mine = "import os\n\nDEBUG = True\nNAME = 'mine'\n"
    listing = "@@ -1,4 +1,4 @@\n import os\n \n DEBUG = False\n-NAME = 'x'\n+NAME = 'y'\n"
    with pytest.raises(ListingError) as raised:
        diff_apply(mine, listing)
    assert str(raised.value).endswith(
        "line 3 reads 'DEBUG = True', where the listing expects 'DEBUG = False'")


def test_a_listing_cannot_write_outside_the_copy(tmp_path):
    from workbook.chapters.listings import ListingError, listing_parse

    with pytest.raises(ListingError, match="inside the project folder"):
        listing_parse("%%learner file ../escape.py\nx = 1\n")
    with pytest.raises(ListingError, match="django-admin"):
        listing_apply(Listing("01", "c", "run", "", "curl http://example.com\n"), tmp_path)
    with pytest.raises(ListingError, match="inside the project folder"):
        listing_apply(Listing("01", "c", "run", "", "rm -rf /\n"), tmp_path)


def test_the_learner_server_reloads_a_saved_file_and_survives_a_syntax_error(tmp_path):
    nbs = chapters(tmp_path / "nb")
    root = tmp_path / "proj"
    build(root, 2, nbs)
    server = LearnerServer(root, free_port())
    try:
        assert server.start().startswith("serving proj/")
        assert server.start().startswith("already serving")
        assert get(server.url + "/hello/") == (200, "hi")
        # the reference project's packages are not importable from the learner's server
        assert get(server.url + "/probe/") == (200, "none")
        # a checkpoint JupyterLab's editor saves beside the file is no reason to reload
        mark = server.mark()
        checkpoints = root / "hello" / ".ipynb_checkpoints"
        checkpoints.mkdir()
        (checkpoints / "views-checkpoint.py").write_text(VIEW.format("checkpoint"))
        time.sleep(1.5)
        assert not any("Reloading" in line for line in server.log_tail(mark))
        view = root / "hello" / "views.py"
        view.write_text(VIEW.format("hi").replace("(request):", "(request)"))
        status = until(lambda: (s := get(server.url + "/hello/")[0]) != 200 and s)
        assert status == 500
        problem = server.problem()
        assert f'File "{root.name}/hello/views.py", line 4' in problem
        assert problem.endswith("SyntaxError: expected ':'")
        view.write_text(VIEW.format("fixed"))
        assert until(lambda: get(server.url + "/hello/") == (200, "fixed"))
    finally:
        server.stop(quiet=True)
    assert not server.answers()


def test_the_commands_build_serve_and_stop(tmp_path):
    root, port = tmp_path / "proj", free_port()
    base = [sys.executable, "-m", "workbook", "learner"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)

    built = tmp_path / "built"
    out = run("build", str(built), "--through", "01")
    assert out.returncode == 0 and (built / "course_project" / "asgi.py").exists(), out
    assert "built through chapter 01" in out.stdout, out
    root.mkdir()
    # serve refuses a folder without a project, with the fix
    out = run("serve", str(root), "--port", str(port))
    assert out.returncode == 2 and "holds no manage.py" in out.stderr, out
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)],
                   check=True, capture_output=True)
    out = run("serve", str(root), "--port", str(port))
    assert out.returncode == 0 and f"serving proj/ at http://127.0.0.1:{port}" in out.stdout, out
    assert get(f"http://127.0.0.1:{port}/")[0] == 200  # Django's start page, DEBUG on
    out = run("stop", "--port", str(port))
    assert out.returncode == 0 and "stopped the learner server" in out.stdout, out
    assert run("stop", "--port", str(port)).stdout.strip().endswith(f"port {port}")


def test_startproject_takes_the_reference_projects_name(tmp_path):
    """The reference's folder is on this interpreter's path, and Django refuses a project name
    that is already importable: the listing runs Django without it."""
    said = listing_apply(Listing("01", "c", "run", "",
                                 "django-admin startproject course_project .\n"), tmp_path)
    assert said == ["ran: django-admin startproject course_project ."]
    assert (tmp_path / "course_project" / "asgi.py").exists()
    assert listing_apply(Listing("01", "c", "run", "", "python manage.py startapp chat\n"),
                         tmp_path) == ["ran: python manage.py startapp chat"]
    assert (tmp_path / "chat" / "apps.py").exists()


def test_a_diff_already_applied_is_a_no_op():
    text = "a\nb\nc\n"
    diff = "@@ -1,2 +1,3 @@\n a\n+B\n b\n"
    once = diff_apply(text, diff)
    assert once == "a\nB\nb\nc\n"
    assert diff_apply(once, diff) == once


def exercise_chapter(folder: Path) -> Path:
    """One chapter: a project, a view, and an exercise whose solution changes the view."""
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in [
        "%%learner run\ndjango-admin startproject mysite .",
        "%%learner file hello/views.py\n" + VIEW.format("hi"),
        "%%learner solution diff hello/views.py\n"
        "@@ -4,2 +4,2 @@\n def hello(request):\n-    return HttpResponse('hi')\n"
        "+    return HttpResponse('solved')\n",
    ]]
    nbformat.write(nb, folder / "01-ex.ipynb")
    return folder


def test_a_solution_is_applied_only_when_asked_or_switched_on(tmp_path, monkeypatch, capsys):
    from workbook.chapters.learner import learner_magic

    root = tmp_path / "proj"
    monkeypatch.setenv("WORKBOOK_LEARNER_DIR", str(root))
    monkeypatch.setenv("WORKBOOK_LEARNER_PORT", str(free_port()))  # no server runs there
    listings = [cell.source for cell in
                nbformat.read(exercise_chapter(tmp_path / "nb") / "01-ex.ipynb", 4).cells]
    for source in listings[:2]:
        line, _, body = source.partition("\n")
        learner_magic(line.removeprefix("%%learner"), body)
    view = root / "hello" / "views.py"
    line, _, body = listings[2].partition("\n")
    monkeypatch.setenv("WORKBOOK_SOLUTIONS", "0")
    learner_magic(line.removeprefix("%%learner"), body)
    assert "The exercise is yours" in capsys.readouterr().out
    assert "'hi'" in view.read_text()
    learner_magic(line.removeprefix("%%learner").replace("solution", "solution --apply"), body)
    assert "'solved'" in view.read_text()


def test_a_chapter_run_again_skips_what_it_did_and_keeps_what_changed_since(tmp_path,
                                                                          monkeypatch, capsys):
    """Restart & Run All of a chapter the copy went past: its listings are done already, so they
    are skipped with a line each, and the learner's line after them stays; a file that is gone
    is written again."""
    from workbook.chapters.learner import learner_magic

    root = tmp_path / "proj"
    monkeypatch.setenv("WORKBOOK_LEARNER_DIR", str(root))
    monkeypatch.setenv("WORKBOOK_LEARNER_PORT", str(free_port()))
    monkeypatch.setenv("WORKBOOK_SOLUTIONS", "1")
    cells = nbformat.read(exercise_chapter(tmp_path / "nb") / "01-ex.ipynb", 4).cells

    def run_all():
        for cell in cells:
            line, _, body = cell.source.partition("\n")
            learner_magic(line.removeprefix("%%learner"), body)

    run_all()
    view = root / "hello" / "views.py"
    mine = view.read_text() + "# a line of my own\n"
    view.write_text(mine)
    capsys.readouterr()
    run_all()
    said = capsys.readouterr().out.splitlines()
    assert said[1:] == ["already done in your copy, skipped: hello/views.py stays as it is now, "
                        "with whatever you or a later chapter changed since"] * 2, said
    assert view.read_text() == mine and not view.with_name("views.py.mine").exists()
    view.unlink()
    run_all()
    assert "'hi'" in view.read_text() and "'solved'" not in view.read_text()


def test_catch_up_does_the_missing_listings_solutions_included_and_keeps_the_learners(tmp_path):
    from workbook.chapters.learner_copy import applied, learner_catch_up

    nbs = exercise_chapter(tmp_path / "nb")
    root = tmp_path / "proj"
    assert learner_catch_up(2, root, nbs) == [  # from nothing: the exercise is named
        "chapter 01's exercise was not done in your copy: its solution is now applied to "
        "hello/views.py, as the next steps build on it"]
    view = root / "hello" / "views.py"
    assert "'solved'" in view.read_text()
    assert len(applied(root)) == 3
    assert learner_catch_up(2, root, nbs) == []  # nothing left to do
    # A learner who wrote the view their own way before the listings ran keeps their file.
    fresh = tmp_path / "fresh"
    (fresh / "hello").mkdir(parents=True)
    (fresh / "hello" / "views.py").write_text("# mine\n")
    said = learner_catch_up(2, fresh, nbs)
    assert said[0] == "hello/views.py: kept your version as views.py.mine"
    assert (fresh / "hello" / "views.py.mine").read_text() == "# mine\n"


def test_a_listing_done_by_the_magic_counts_as_done_when_a_chapter_catches_up(tmp_path,
                                                                               monkeypatch):
    """IPython hands a cell magic its lines without trailing spaces (a diff's blank context
    line " " arrives as ""): the listing must still be the one the chapter file holds."""
    from IPython.core.inputtransformer2 import TransformerManager

    from workbook.chapters.learner import learner_magic
    from workbook.chapters.learner_copy import applied, learner_catch_up
    from workbook.chapters.listings import chapter_listings

    nbs = exercise_chapter(tmp_path / "nb")
    nb = nbformat.read(nbs / "01-ex.ipynb", 4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(
        "%%learner diff hello/views.py\n@@ -1,3 +1,4 @@\n from django.http import HttpResponse\n"
        " \n+# a comment\n \n"))
    nbformat.write(nb, nbs / "01-ex.ipynb")
    root = tmp_path / "proj"
    monkeypatch.setenv("WORKBOOK_LEARNER_DIR", str(root))
    monkeypatch.setenv("WORKBOOK_LEARNER_PORT", str(free_port()))
    monkeypatch.setenv("WORKBOOK_SOLUTIONS", "1")
    calls = []
    for cell in nb.cells:
        python = TransformerManager().transform_cell(cell.source)
        calls.append(python)
        exec(python, {"get_ipython": lambda: type("IP", (), {
            "run_cell_magic": staticmethod(lambda name, line, body: learner_magic(line, body))})()})
    assert all("run_cell_magic" in python for python in calls)
    before = (root / "hello" / "views.py").read_text()
    assert "# a comment" in before and "'solved'" in before
    assert {listing.key for listing in chapter_listings(nbs / "01-ex.ipynb")} <= applied(root)
    assert learner_catch_up(2, root, nbs) == []
    assert (root / "hello" / "views.py").read_text() == before


def test_catch_up_keeps_a_solution_the_learner_wrote_their_own_way(tmp_path, monkeypatch):
    from workbook.chapters.learner import learner_magic
    from workbook.chapters.learner_copy import learner_catch_up

    nbs = exercise_chapter(tmp_path / "nb")
    root = tmp_path / "proj"
    monkeypatch.setenv("WORKBOOK_LEARNER_DIR", str(root))
    monkeypatch.setenv("WORKBOOK_LEARNER_PORT", str(free_port()))
    monkeypatch.setenv("WORKBOOK_SOLUTIONS", "0")
    for cell in nbformat.read(nbs / "01-ex.ipynb", 4).cells:
        line, _, body = cell.source.partition("\n")
        learner_magic(line.removeprefix("%%learner"), body)  # the solution stays unapplied
    view = root / "hello" / "views.py"
    mine = view.read_text().replace("'hi'", "'my own'")
    view.write_text(mine)
    said = learner_catch_up(2, root, nbs)
    assert said == ["hello/views.py: kept your own solution of chapter 01's exercise "
                    "(its listing does not apply to it)"]
    assert view.read_text() == mine
    assert learner_catch_up(2, root, nbs) == []  # said once, not at every chapter


def test_a_failing_check_shows_the_traceback_the_server_logged_during_the_cell(tmp_path,
                                                                              monkeypatch,
                                                                              capsys):
    from workbook.chapters import learner

    nbs = chapters(tmp_path / "nb")
    root = tmp_path / "proj"
    build(root, 2, nbs)
    port = free_port()
    monkeypatch.setenv("WORKBOOK_LEARNER_DIR", str(root))
    monkeypatch.setenv("WORKBOOK_LEARNER_PORT", str(port))
    server = LearnerServer(root, port)
    try:
        server.start()
        (root / "hello" / "views.py").write_text(VIEW.format("hi").replace(
            "return HttpResponse('hi')", "return HttpResponse(1 / 0)"))
        until(lambda: get(server.url + "/hello/")[0] == 500)
        learner._cell_started()  # a new cell begins
        assert get(server.url + "/hello/")[0] == 500
        capsys.readouterr()  # what the build and the start printed
        learner.check(False, "fine", "look at hello/views.py")
        out = capsys.readouterr().out
        assert out.startswith("✗ not yet: look at hello/views.py\n")
        assert "your server logged, while this cell ran:" in out
        assert out.rstrip().endswith("ZeroDivisionError: division by zero")
        learner._cell_started()
        learner.check(True, "fine", "look at hello/views.py")
        assert capsys.readouterr().out == "✓ fine\n"
    finally:
        server.stop(quiet=True)
        learner._cell_start.clear()


def test_a_deliver_listing_copies_the_reference_files_and_keeps_the_learners(tmp_path):
    from workbook.chapters.listings import REFERENCE_DIR, ListingError, listing_parse

    listing = listing_parse("%%learner deliver answer_game/rules.py answer_game/templates\n",
                            chapter="09", cell_id="c")
    root = tmp_path / "proj"
    said = listing_apply(listing, root)
    rules = root / "answer_game" / "rules.py"
    assert rules.read_text() == (REFERENCE_DIR / "answer_game" / "rules.py").read_text()
    play = root / "answer_game" / "templates" / "answer_game" / "play.html"
    assert play.read_text() == (REFERENCE_DIR / play.relative_to(root)).read_text()
    assert "delivered: answer_game/rules.py" in said
    rules.write_text("# mine\n")
    assert "kept your version as rules.py.mine" in listing_apply(listing, root)
    assert (root / "answer_game" / "rules.py.mine").read_text() == "# mine\n"
    assert listing_apply(listing, root)[0] == "unchanged: answer_game/rules.py"
    with pytest.raises(ListingError, match="no such file"):
        listing_apply(listing_parse("%%learner deliver answer_game/nope.py\n"), root)
    with pytest.raises(ListingError, match="no body"):
        listing_parse("%%learner deliver answer_game/rules.py\nx = 1\n")


def test_an_rm_line_removes_what_was_written_and_keeps_what_the_learner_changed(tmp_path):
    from workbook.chapters.listings import ListingError, listing_parse

    nbs = chapters(tmp_path / "nb")
    root = tmp_path / "proj"
    build(root, 1, nbs)
    (root / "hello" / "probe.py").write_text("# mine\n")
    said = listing_apply(listing_parse("%%learner run\nrm mysite/wsgi.py hello\n"), root)
    assert not (root / "mysite" / "wsgi.py").exists()
    assert not (root / "hello" / "views.py").exists()
    assert (root / "hello" / "probe.py.mine").read_text() == "# mine\n"
    assert "kept your hello/probe.py as probe.py.mine" in said[0]
    listing_apply(listing_parse("%%learner run\nrm mysite/wsgi.py\n"), root)  # gone: no error
    with pytest.raises(ListingError, match="inside the project folder"):
        listing_apply(listing_parse("%%learner run\nrm -rf ../x\n"), root)
