"""Run the benchmarks: print each one's table of figures and ratios, write it as JSON.

    python tests/benchmarks/run.py                 every benchmark, full size
    python tests/benchmarks/run.py --smoke         every benchmark, tiny (what the test suite runs)
    python tests/benchmarks/run.py --only NAME ...  some of them (--list shows the names)
    python tests/benchmarks/run.py --out DIR       JSON somewhere else than tests/benchmarks/results
    python tests/benchmarks/run.py --only notebooks --chapters 00 03   some chapters only

Needs MySQL, Redis and the project's .env (`make services`); serves only on ports 8300 (the
project) and 8301 (the anchor), loopback only.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests.benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "tests.benchmarks"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "course_project.settings")

from .harness import (  # noqa: E402
    RESULTS_DIR,
    SCENARIOS,
    Options,
    nofile_raise,
    progress,
    report_format,
    report_write,
)

# One module per benchmark; each registers itself with @scenario.
SCENARIO_MODULES = ("bench_broadcast", "bench_connections", "bench_db", "bench_notebooks",
                    "bench_game_broadcast", "bench_scale", "bench_chat_chapters")


def scenarios_load() -> None:
    for module in SCENARIO_MODULES:
        importlib.import_module(f"{__package__}.{module}")


def main(argv: list[str] | None = None) -> int:
    scenarios_load()
    parser = argparse.ArgumentParser(prog="tests/benchmarks/run.py", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that each runs")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), metavar="NAME")
    parser.add_argument("--out", type=Path, help=f"JSON directory (default {RESULTS_DIR})")
    parser.add_argument(
        "--chapters", nargs="+", default=[], metavar="NN", help="notebooks: only these chapters"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.name:18} {s.title}")
        return 0
    out = args.out or (RESULTS_DIR / "smoke" if args.smoke else RESULTS_DIR)
    opts = Options(smoke=args.smoke, out_dir=out, chapters=tuple(args.chapters))
    nofile_raise()  # before any server starts: uvicorn inherits the limit
    failed = []
    for name in args.only or list(SCENARIOS):
        bench = SCENARIOS[name]
        progress(name, f"start{' (smoke)' if opts.smoke else ''}: {bench.title}")
        started = time.monotonic()
        try:
            report = bench.run(opts)
        except Exception:
            traceback.print_exc()
            progress(name, "FAILED")
            failed.append(name)
            continue
        seconds = time.monotonic() - started
        path = report_write(report, opts, seconds)
        print("\n" + report_format(report) + "\n", flush=True)
        progress(name, f"done in {seconds:.1f}s, wrote {path}")
    if failed:
        progress("run", f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
