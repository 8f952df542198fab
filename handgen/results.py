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


def with_clean_minutes(curves: list[dict], speeds: list[dict], threads: int = 2) -> list[dict]:
    """Curve rows with `cpu_minutes`: their images seen over their recipe's training speed, timed alone at `threads`
    (`python -m handgen.bench --recipes ...`); runs that shared the cores compare fairly. Rows of a recipe without
    a timing are left out."""
    speed = {(row["family"], row["recipe"]): row["images_per_second"] for row in speeds if row["threads"] == threads}
    return [{**row, "cpu_minutes": row["images_seen"] / speed[(row["family"], row["recipe"])] / 60}
            for row in curves if (row["family"], row["recipe"]) in speed]
