"""Every benchmark runs, tiny, and writes a well-formed result: behaviour, never speed.

One `run.py --smoke` process runs them all (servers on ports 8300 and 8301, real MySQL and
Redis), as `make bench` would, into a temporary folder.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from .harness import SCENARIOS
from .run import scenarios_load

pytestmark = pytest.mark.live

RUN = Path(__file__).resolve().parent / "run.py"
REPO_ROOT = RUN.parents[2]
scenarios_load()
NAMES = sorted(SCENARIOS)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.parametrize("name", NAMES)
def test_each_benchmark_writes_a_well_formed_json_result(smoke, name):
    out, _ = smoke
    doc = json.loads((out / f"{name}.json").read_text())
    assert doc["name"] == name and doc["smoke"] is True
    assert datetime.fromisoformat(doc["date"]).tzinfo is not None
    machine = doc["machine"]
    assert machine["cores"] >= 1 and machine["ram_gib"] > 0 and machine["python"].count(".") == 2
    assert machine["versions"]["channels"] and machine["versions"]["websockets"]
    assert doc["figures"] and all(_number(v) for v in doc["figures"].values()), doc["figures"]
    assert all(_number(v) and v > 0 for v in doc["ratios"].values()), doc["ratios"]
    for key, t in doc["targets"].items():
        assert t["op"] in ("<=", ">=") and _number(t["limit"]), key
        met = t["value"] <= t["limit"] if t["op"] == "<=" else t["value"] >= t["limit"]
        assert t["met"] == met, key
    assert doc["tables"]
    for table in doc["tables"]:
        assert table["rows"] and all(len(r) == len(table["columns"]) for r in table["rows"])


def test_each_benchmark_prints_its_table(smoke):
    _, stdout = smoke
    for name in NAMES:
        assert f"== {name}:" in stdout


def test_every_broadcast_round_reached_all_50_clients(smoke):
    out, _ = smoke
    figures = json.loads((out / "broadcast_chat.json").read_text())["figures"]
    lost = {k: v for k, v in figures.items() if k.endswith("_lost")}
    assert lost and set(lost.values()) == {0}


def test_every_game_answer_reached_all_50_players_and_the_anchor_frame_matches_its_size(smoke):
    out, _ = smoke
    doc = json.loads((out / "broadcast_game.json").read_text())
    lost = {k: v for k, v in doc["figures"].items() if k.endswith("_lost")}
    assert lost and set(lost.values()) == {0}
    measured = [v for k, v in doc["params"].items() if k.endswith("progress_frame_bytes_last")]
    assert measured and all(abs(n - doc["params"]["anchor_frame_bytes"]) <= 2 for n in measured)


def test_the_small_scale_run_finished_every_game_and_answered_every_answer(smoke):
    out, _ = smoke
    doc = json.loads((out / "scale.json").read_text())
    f, p = doc["figures"], doc["params"]
    assert f["lost"] == 0 and f["answers"] == p["players"] * p["questions"]
    assert f["acks"] + f["rejected"] == f["answers"] and f["acks"] > 0
    for server in ("bench-a", "bench-b"):
        assert f[f"{server}.cpu_s"] > 0 and f[f"{server}.rss_peak_mib"] > 0
    assert f["bench-a.rooms_driven"] + f["bench-b.rooms_driven"] >= p["rooms"]


def test_the_database_paths_all_did_lookups_and_dbexecute_is_compared_with_both(smoke):
    out, _ = smoke
    doc = json.loads((out / "db_lookup.json").read_text())
    rates = [v for k, v in doc["figures"].items() if k.endswith(".lookups_per_s")]
    assert len(rates) == 4 and min(rates) > 0
    assert {"dbexecute_vs_raw", "dbexecute_vs_orm_async"} <= set(doc["targets"])


def test_the_runner_lists_its_benchmarks_and_refuses_an_unknown_one():
    listed = subprocess.run(
        [sys.executable, str(RUN), "--list"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0 and all(name in listed.stdout for name in NAMES)
    unknown = subprocess.run(
        [sys.executable, str(RUN), "--only", "no-such-bench"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


def test_an_anchor_cpu_under_one_clock_tick_gives_a_note_not_an_infinite_ratio():
    from .harness import Report, cpu_ratio_put

    report = Report("x", "x")
    cpu_ratio_put(report, "inbox.cpu_vs_anchor", 2.5, 0.0)
    cpu_ratio_put(report, "pubsub.cpu_vs_anchor", 2.5, 1.25)
    assert report.ratios == {"pubsub.cpu_vs_anchor": 2.0}
    [note] = report.notes
    assert note.startswith("inbox.cpu_vs_anchor: the anchor used less CPU than one clock tick")
