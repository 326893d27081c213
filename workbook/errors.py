from __future__ import annotations


class SetupError(Exception):
    """A setup step that cannot go on: what is wrong, and the exact command that fixes it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} -- fix: {fix}")
        self.problem = problem
        self.fix = fix


def step(name: str, message: str) -> None:
    print(f"[{name}] {message}", flush=True)
