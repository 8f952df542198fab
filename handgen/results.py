"""The one reader and writer of `results/`: JSON lines, one measurement a line, appended, never rewritten.

Every figure in the README, the notebooks and `docs/EXPERIMENTS.md` is read from such a file; a row carries its own
recipe (config) and the key names `evaluate` prints (`fool_rate`, `two_sample_accuracy`, `fid_pix`, ...).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import warnings
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from .files import writing_to


def append_rows(rows: Iterable[dict], path: str | os.PathLike) -> int:
    """Append rows to a JSON-lines file (created with its folder), each with the time it was written; the count.

    The lines go in whole or not at all: under an advisory lock (so racing writers never interleave), in one write,
    flushed to disk; if the write fails (a full disk), the file is cut back to where it was.
    """
    path = Path(path)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data = "".join(json.dumps({"time": now, **row}) + "\n" for row in rows).encode("utf-8")
    with writing_to(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            start = os.fstat(descriptor).st_size
            try:
                if os.write(descriptor, data) != len(data):
                    raise OSError(errno.ENOSPC, "No space left on device")
                os.fsync(descriptor)
            except OSError:
                os.ftruncate(descriptor, start)
                raise
        finally:
            os.close(descriptor)  # releases the lock
    return data.count(b"\n")


def read_rows(path: str | os.PathLike, **where) -> list[dict]:
    """The rows of a JSON-lines file whose fields equal every `where` value, in the order written. A torn last line
    (a writer killed mid-line) is left out with a warning; a damaged line elsewhere is an error naming it."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) and not text.endswith("\n"):
                warnings.warn(f"{path}: its last line is incomplete (a write was cut off); it is left out",
                              stacklevel=2)
                continue
            raise ValueError(f"{path}, line {number}: not a JSON row") from None
    return [row for row in rows if all(row.get(key) == value for key, value in where.items())]


def with_cpu_minutes(curves: list[dict]) -> list[dict]:
    """Curve rows with `cpu_minutes`: their training's wall minutes times the threads it ran on, the cost a run
    would have on one core (curves run side by side, one thread each, compare with a two-thread run)."""
    return [{**row, "cpu_minutes": row["train_minutes"] * row["threads"]} for row in curves]


def format_table(rows: list[dict]) -> str:
    """Rows as an aligned plain-text table: every key of any row is a column (a folder's row has no two-sample
    figures, a checkpoint's has), and a row without a key leaves its cell blank."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])
