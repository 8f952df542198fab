"""The files handgen writes: checked before any work starts, written whole or not at all, never someone else's.

An output path is refused, in one line naming it and the reason, before anything is trained or scored: when its
folder cannot hold it, when it is one of the command's inputs, or when it holds a file of another kind: one handgen
did not write, or one it wrote for another purpose (a detector given as the CSV, a VAE checkpoint as the zoo
cache). A write goes to a temporary file of its own beside the target, is flushed to disk and renamed over it, so
readers and racing writers only ever see a whole file; a symbolic link to the target stays a link.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

SQLITE_HEADER = b"SQLite format 3\x00"
PREDICTION_LINE = re.compile(r"[^,\r\n]+, [0-9]")
KINDS = {"checkpoint": "a handgen checkpoint", "zoo cache": "a zoo cache", "predictions": "a predictions CSV",
         "rows": "JSON-lines rows", "study storage": "a study database", "empty": "nothing (an empty file)"}


class OutputError(Exception):
    """An output path cannot be written, or holds something handgen must not replace; nothing was changed."""


@contextmanager
def writing_to(path: Path) -> Iterator[None]:
    """Turn an OS error while writing `path` into one line naming it and the reason."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputError(f"cannot write {path}: {reason}; nothing was changed") from None


def current_umask() -> int:
    """The process's file-creation mask (reading it means setting it, so it is put back at once)."""
    current = os.umask(0)
    os.umask(current)
    return current


def replace_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file through `write(handle)` into a temporary file of its own in the target's folder (flushed and
    fsynced), then rename it into place: readers and racing writers only ever see a whole file, and an interrupted
    write leaves the old one. A link is followed: the file it points to is replaced, the link stays."""
    path = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)
    with writing_to(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
        try:
            with handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(handle.name, 0o666 & ~current_umask())
            os.replace(handle.name, path)
        finally:
            Path(handle.name).unlink(missing_ok=True)
    return path


def kind_of(path: str | os.PathLike) -> str | None:
    """What an existing file holds, judged from its first bytes (a checkpoint or zoo cache is opened safely):
    a key of `KINDS`, or None for anything handgen did not write."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        return "empty"
    if head.startswith(SQLITE_HEADER):
        return "study storage"
    if head.startswith(b"PK\x03\x04"):
        return _torch_kind(path)
    try:
        lines = head.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    complete = lines[:-1] if len(head) == 4096 else lines  # the last line may be cut by the 4096 bytes
    if complete and all(PREDICTION_LINE.fullmatch(line) for line in complete):
        return "predictions"
    if lines and lines[0].startswith("{") and all(line.startswith("{") for line in complete if line.strip()):
        return "rows"
    return None


def _torch_kind(path: Path) -> str | None:
    import torch  # only for files that look like torch archives

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a zip that is no torch file, a damaged or unsafe one: not ours
        return None
    if isinstance(state, dict) and "version" in state and "kind" in state:
        return "checkpoint"
    if isinstance(state, dict) and {"key", "images", "labels", "sources"} <= set(state):
        return "zoo cache"
    return None


def check_output(path: str | os.PathLike, kind: str, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Refuse, before any work, an output file that cannot be written or whose writing would destroy something:
    its folder must exist or be creatable, and be writable; it must be none of the command's `inputs`; a file there
    must be of `kind` (a key of `KINDS`), written by handgen, or empty."""
    path = Path(path)
    if any(other is not None and _same_file(path, Path(other)) for other in inputs):
        raise OutputError(f"{path} is also an input of this command; choose another output path")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; name a file inside it")
    _check_folder(path)
    if path.exists():
        found = kind_of(path)
        if found not in (kind, "empty"):
            held = KINDS.get(found, "a file handgen did not write") if found else "a file handgen did not write"
            raise OutputError(f"{path} holds {held}, not {KINDS[kind]}: handgen replaces only its own {kind} files; "
                              "choose another path or move that file away")
    return path


def check_output_folder(folder: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """The same for a folder of written images: its parent must be writable and it must be none of the inputs
    (whether what it holds is ours is `sample.write_images`' check)."""
    folder = Path(folder)
    if any(other is not None and _same_file(folder, Path(other)) for other in inputs):
        raise OutputError(f"{folder} is also an input of this command; choose another output folder")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; nothing was written")
    _check_folder(Path(os.path.realpath(folder)) / "placeholder")
    return folder


def _check_folder(path: Path) -> None:
    """The nearest existing folder above `path` must be a writable folder."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"cannot write {path}: {ancestor} is a file, not a folder")
    try:  # a probe says more than permission bits (read-only mounts, /proc, root's own rules)
        tempfile.NamedTemporaryFile(dir=ancestor, prefix=".handgen-probe-").close()
    except OSError as error:
        raise OutputError(f"cannot write {path}: {ancestor} does not take new files "
                          f"({error.strerror or type(error).__name__})") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


STALE_SECONDS = 3600  # a temporary file this old belongs to a write that was killed, not to one under way


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Remove the temporary files that earlier, killed writes of `path` left beside it (`.{name}.*.tmp`)."""
    path = Path(path)
    now = time.time()
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink()
        except OSError:
            continue
