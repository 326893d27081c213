"""What every benchmark shares: the scenario registry, the report (tables, figures, ratios,
targets), the machine description, percentiles, progress lines and the JSON file.

A scenario is a plain function `run(opts) -> Report`, registered by name with `@scenario`. Each
one runs its anchor in the same process run, one after the other (or interleaved), so a ratio
holds on a noisy machine even when the absolute figures do not.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
# The only ports the benchmarks may serve on: the project under test, and the anchor.
PROJECT_PORT = 8300
ANCHOR_PORT = 8301

# The values of QUIZ_CHANNEL_LAYER the websocket benchmarks compare (settings.py's CHANNEL_LAYERS):
# "redis" is channels_redis' stock RedisChannelLayer.
LAYERS = ("redis", "inbox", "pubsub")
SMOKE_LAYERS = ("inbox",)  # a smoke run checks that the code runs, one server is enough

PACKAGES = (
    "Django",
    "channels",
    "channels-redis",
    "redis",
    "uvicorn",
    "websockets",
    "aiomysql",
    "PyMySQL",
    "msgpack",
)


@dataclass(frozen=True)
class Options:
    smoke: bool = False
    out_dir: Path = RESULTS_DIR
    chapters: tuple[str, ...] = ()  # notebooks benchmark: only these (name prefixes)

    def pick(self, full: Any, smoke: Any) -> Any:
        return smoke if self.smoke else full

    @property
    def layers(self) -> tuple[str, ...]:
        return SMOKE_LAYERS if self.smoke else LAYERS


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        if len(row) != len(self.columns):
            raise ValueError(f"{self.title}: {len(row)} cells for {len(self.columns)} columns")
        self.rows.append(list(row))


@dataclass
class Target:
    value: float
    op: str  # "<=" or ">="
    limit: float

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit


@dataclass
class Report:
    name: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self, title: str, columns: Sequence[str]) -> Table:
        table = Table(title, list(columns))
        self.tables.append(table)
        return table

    def target(self, key: str, op: str, limit: float) -> None:
        """A target on a ratio or, failing that, a figure of this report."""
        value = self.ratios[key] if key in self.ratios else self.figures[key]
        self.targets[key] = Target(value, op, limit)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    run: Callable[[Options], Report]


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, title: str) -> Callable[[Callable[[Options], Report]], Callable]:
    """Register a benchmark under `name` (what `run.py --only` takes)."""

    def register(fn: Callable[[Options], Report]) -> Callable[[Options], Report]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = Scenario(name, title, fn)
        return fn

    return register


# -- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ratio(value: float, anchor: float) -> float:
    return value / anchor if anchor else math.inf


CLOCK_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")  # the resolution of a process's CPU times


def cpu_ratio_put(report: Report, key: str, value_ms: float, anchor_ms: float) -> None:
    """report.ratios[key] = value / anchor, unless the anchor's CPU stayed under one clock tick
    (a smoke run's few rounds can): then a note says why there is no ratio, not an infinity."""
    if anchor_ms > 0:
        report.ratios[key] = ratio(value_ms, anchor_ms)
    else:
        report.notes.append(f"{key}: the anchor used less CPU than one clock tick "
                            f"({CLOCK_TICK_MS:.0f} ms) in this run, so there is no ratio")


def progress(name: str, message: str) -> None:
    print(f"[bench:{name}] {message}", flush=True)


def nofile_raise(wanted: int = 65536) -> int:
    """Raise this process's open-file limit (children, such as uvicorn, inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- machine ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _servers_versions() -> dict[str, str | None]:
    import pymysql
    import redis

    from course_project.config import config_get

    cfg, out = config_get(), {}
    try:
        with redis.Redis.from_url(cfg.redis_url) as r:
            out["redis_server"] = r.info("server")["redis_version"]
    except Exception:
        out["redis_server"] = None
    try:
        conn = pymysql.connect(host=cfg.mysql_host, port=cfg.mysql_port, user=cfg.mysql_user,
                               password=cfg.mysql_password, connect_timeout=5)  # fmt: skip
        with conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            out["mysql_server"] = cur.fetchone()[0]
    except Exception:
        out["mysql_server"] = None
    return out


def machine_describe() -> dict[str, Any]:
    import psutil

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": versions,
        "servers": _servers_versions(),
    }


# -- output ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 100_000:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def table_format(table: Table) -> str:
    cells = [table.columns] + [[_cell(v) for v in row] for row in table.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(table.columns))]
    lines = [table.title]
    for n, row in enumerate(cells):
        padded = (
            c.rjust(w) if n and i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        lines.append("  " + "  ".join(padded))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report_format(report: Report) -> str:
    parts = [f"== {report.name}: {report.title}"]
    parts.extend(table_format(t) for t in report.tables)
    if report.targets:
        lines = ["targets"]
        for key, t in report.targets.items():
            verdict = "met" if t.met else "MISSED"
            lines.append(f"  {key} = {t.value:.2f} (target {t.op} {t.limit:g}): {verdict}")
        parts.append("\n".join(lines))
    parts.extend(f"note: {n}" for n in report.notes)
    return "\n\n".join(parts)


def report_document(report: Report, opts: Options, seconds: float) -> dict[str, Any]:
    return {
        "name": report.name,
        "title": report.title,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": opts.smoke,
        "seconds": round(seconds, 2),
        "machine": machine_describe(),
        "params": report.params,
        "figures": report.figures,
        "ratios": report.ratios,
        "targets": {
            k: {"value": t.value, "op": t.op, "limit": t.limit, "met": t.met}
            for k, t in report.targets.items()
        },
        "tables": [{"title": t.title, "columns": t.columns, "rows": t.rows} for t in report.tables],
        "notes": report.notes,
        "argv": sys.argv[1:],
    }


def report_write(report: Report, opts: Options, seconds: float) -> Path:
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    path = opts.out_dir / f"{report.name}.json"
    doc = report_document(report, opts, seconds)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n")
    return path


def elapsed_since(started: float) -> float:
    return time.monotonic() - started
