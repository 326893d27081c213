"""A learner's mistake ends in a ✗ line that says what is wrong, with what their server logged,
never in a raw exception from the book's helpers: chapter 03's check of the chat consumer, run
in a kernel as the chapter runs it, against a copy whose chat/consumers.py is broken in each way
a newcomer breaks it (it does not import, a handler raises, connect() hangs, connect() refuses,
the reply goes to the wrong clients)."""

from __future__ import annotations

import nbformat
import pytest

from workbook.chapters.learner import LearnerServer, free_port
from workbook.chapters.learner_copy import build
from workbook.chapters.notebooks import NOTEBOOKS_DIR, _kernel_manager

pytestmark = pytest.mark.live

CHAPTER = NOTEBOOKS_DIR / "03-consumers.ipynb"
CHECK_CELL = "03-03g"  # two clients in one room: Alice's message reaches both


def _broken(good: str, old: str, new: str) -> str:
    assert old in good, f"the consumer as chapter 03 leaves it has no {old!r}"
    return good.replace(old, new, 1)


MISTAKES = {
    "does not import": (
        ("    async def connect(self):\n", "    async def connect(self)\n"),
        ["✗ not yet: your server does not load your code: the file named at the end of the "
         "traceback below does not import",
         "your server is not serving: its code does not load",
         'chat/consumers.py", line 7', "SyntaxError"]),
    "a handler raises": (
        ('event["message"]', 'event["text"]'),
        ["✗ not yet: a handler of your consumer raised, and uvicorn dropped the connection",
         "your server logged, while this cell ran:", "in chat_message", "KeyError: 'text'"]),
    "connect() hangs": (
        ("        await self.accept()\n",
         "        await asyncio.Event().wait()\n        await self.accept()\n"),
        ["no answer within 5 s: the handshake never finished",
         "✗ not yet: connect() in your consumer never finished the handshake"]),
    "connect() refuses": (
        ("        await self.accept()\n", "        await self.close()\n"),
        ["Bob got: refused with HTTP 403", "Alice got: refused with HTTP 403",
         "✗ not yet: your server refused the handshake (HTTP 403): does connect() in your "
         "consumer end with await self.accept()?"]),
    "the reply goes only to the sender": (
        ("        await self.channel_layer.group_send(\n"
         '            self.group_name, {"type": "chat.message", "message": message}\n'
         "        )\n",
         '        await self.send_json({"type": "message", "message": message,\n'
         '                              "room": self.room_name})\n'),
        ["Alice got: {'type': 'message', 'message': 'hello from Alice', 'room': 'lobby'}",
         "Bob got: nothing within 5 s",
         "✗ not yet: only Alice got it: receive_json() in chat/consumers.py must group_send"]),
}


def _text(cell) -> str:
    out = []
    for output in cell.outputs:
        if output.output_type == "stream":
            out.append(output.text)
        elif output.output_type == "error":
            out.append(f"RAISED {output.ename}: {output.evalue}")
    return "".join(out)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernel that ran chapter 03's first cell on a copy built through chapter 03, whose
    server it started; the copy's consumer, as the chapter leaves it."""
    from nbclient import NotebookClient

    root = tmp_path_factory.mktemp("mistakes") / "my_project"
    build(root, 3)
    port = free_port()
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBOOK_LEARNER_DIR", str(root))
    mp.setenv("WORKBOOK_LEARNER_PORT", str(port))
    chapter = nbformat.read(CHAPTER, as_version=4)
    check = next(c for c in chapter.cells if c.get("id") == CHECK_CELL)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        'from workbook.chapters.notebooks import chapter_start\n\nchapter_start("03")')]
    client = NotebookClient(nb, km=_kernel_manager(), timeout=120,
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    server = LearnerServer(root, port)
    try:
        with client.setup_kernel():
            client.execute_cell(nb.cells[0], 0)
            assert "your project: my_project/" in _text(nb.cells[0]), _text(nb.cells[0])
            yield client, nb, check.source, root, server
    finally:
        server.stop(quiet=True)
        mp.undo()


def _run_check(kernel) -> str:
    client, nb, source, _, _ = kernel
    nb.cells.append(nbformat.v4.new_code_cell(source))
    client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    return _text(nb.cells[-1])


def test_the_check_passes_on_the_consumer_as_the_chapter_leaves_it(kernel):
    said = _run_check(kernel)
    assert said.splitlines()[-1] == (
        "✓ both clients got Alice's message through your consumer's group"), said


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_broken_consumer_ends_in_a_cross_that_says_what_and_shows_the_server_log(kernel,
                                                                                   mistake):
    _, _, _, root, server = kernel
    consumer = root / "chat" / "consumers.py"
    good = consumer.read_text()
    (old, new), expected = MISTAKES[mistake]
    mark = server.mark()
    broken = _broken(good, old, new)
    if "asyncio." in broken:
        broken = broken.replace('"""\n\n', '"""\n\nimport asyncio\n', 1)
    try:
        consumer.write_text(broken)
        server.settle(mark)  # a reload that works, or a traceback that says it did not
        said = _run_check(kernel)
    finally:
        mark = server.mark()
        consumer.write_text(good)
        assert server.settle(mark), server.log_tail(mark)
    assert "RAISED" not in said, said
    assert sum(line.startswith("✗ not yet: ") for line in said.splitlines()) == 1, said
    for text in expected:
        assert text in said, f"{text!r} not in what the cell printed:\n{said}"
