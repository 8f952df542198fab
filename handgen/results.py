"""The one reader and writer of `results/`: JSON lines, one measurement a line, appended, never rewritten.

Every figure in the README, the notebooks and `docs/EXPERIMENTS.md` is read from such a file; a row carries its own
recipe (config) and the key names `evaluate` prints (`fool_rate`, `two_sample_accuracy`, `fid_pix`, ...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path


def append_rows(rows: Iterable[dict], path: str | os.PathLike, stamp: bool = True) -> int:
    """Append rows to a JSON-lines file (created with its folder), each with the time it was written; the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = [json.dumps({"time": now, **row} if stamp else row) + "\n" for row in rows]
    with path.open("a") as handle:
        handle.writelines(lines)
    return len(lines)


def read_rows(path: str | os.PathLike, **where) -> list[dict]:
    """The rows of a JSON-lines file whose fields equal every `where` value, in the order written."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [row for row in rows if all(row.get(key) == value for key, value in where.items())]


def with_cpu_minutes(curves: list[dict]) -> list[dict]:
    """Curve rows with `cpu_minutes`: their training's wall minutes times the threads it ran on, the cost a run
    would have on one core (curves run side by side, one thread each, compare with a two-thread run)."""
    return [{**row, "cpu_minutes": row["train_minutes"] * row["threads"]} for row in curves]
