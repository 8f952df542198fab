"""Device, seeding and quick-mode switches shared by every entry point."""

from __future__ import annotations

import atexit
import functools
import math
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

VERSION = "0.1.0"  # the package version (`handgen.__version__`)
QUICK_ENV = "HANDGEN_QUICK"

# Where things live by default, relative to the working folder (the repository, in every documented use)
CHECKPOINTS = Path("checkpoints")   # final weights, small enough to commit
RUNS = Path("runs")                 # training runs and caches, never committed
RESULTS = Path("results")           # measurements, one JSON line each
ZOO_CACHE = RUNS / "zoo.pt"         # the generator zoo's samples
PREDICTIONS_CSV = Path("Classification Result.csv")


class OutputError(Exception):
    """An output path cannot be written, or holds files handgen did not write; nothing was changed."""


@contextmanager
def writing_to(path: Path) -> Iterator[None]:
    """Turn an OS error while writing `path` into one line naming it and the reason."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputError(f"cannot write {path}: {reason}; nothing was changed") from None


def replace_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file through `write(handle)` into a temporary file of its own in the target's folder (flushed and
    fsynced), then rename it into place: readers and racing writers only ever see a whole file, and an interrupted
    write leaves the old one."""
    path = Path(path)
    with writing_to(path):
        path.parent.mkdir(parents=True, exist_ok=True)
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


def current_umask() -> int:
    """The process's file-creation mask (reading it means setting it, so it is put back at once)."""
    current = os.umask(0)
    os.umask(current)
    return current


def pick_device(preferred: str | None = None) -> torch.device:
    """CUDA when present (Colab), else CPU; `preferred` ("cpu", "cuda") overrides."""
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_summary(device: torch.device | None = None) -> str:
    """One line: the device training will use, and whether bfloat16 autocast runs there (`fast_bfloat16`)."""
    device = device or pick_device()
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        detail = f"{torch.cuda.get_device_name(device)}, compute capability {major}.{minor}"
    else:
        detail = f"{torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}"
    return f"device {device.type} ({detail}); bfloat16 autocast {'on' if fast_bfloat16(device) else 'off'}"


def fast_bfloat16(device: torch.device) -> bool:
    """Whether bfloat16 autocast speeds training up on `device`: only where the hardware runs it natively.

    CUDA: compute capability 8.0 or more (Ampere on). Older GPUs such as Colab's T4 report bfloat16 as supported
    but emulate it, slower than float32. CPU: AMX or AVX-512 BF16 units, and torch allowed to use AVX-512
    (`ATEN_CPU_CAPABILITY` can cap it); elsewhere bfloat16 is emulated, slower than float32.
    """
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)
    return device.type == "cpu" and _cpu_has_native_bfloat16() and _cpu_capability_allows_avx512()


@functools.cache
def _cpu_has_native_bfloat16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def _cpu_capability_allows_avx512() -> bool:
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def mixed_precision(device: torch.device, enabled: bool = True):
    """bfloat16 autocast on `device` where it is fast (`fast_bfloat16`), else a context that does nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and fast_bfloat16(device))


def check_config(config, positive: tuple[str, ...] = (), signed: tuple[str, ...] = ()) -> None:
    """Raise ValueError naming the field unless every number of `config` is finite and >= 0 (any sign for those
    named in `signed`), and those named in `positive` are > 0: a bad value fails when the config is made, not
    epochs later."""
    for name, value in vars(config).items():
        numbers = value if isinstance(value, tuple) else (value,)
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                continue
            if not math.isfinite(number) or (number < 0 and name not in signed) or (name in positive and number <= 0):
                need = "a finite number above 0" if name in positive else "a finite number of at least 0"
                raise ValueError(f"{type(config).__name__}.{name} must be {need}, got {value!r}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a run on CPU repeats bit for bit."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def quick_mode() -> bool:
    """True when HANDGEN_QUICK is set: notebooks and `make` shrink data and epochs for CI."""
    return os.environ.get(QUICK_ENV, "").strip() not in ("", "0", "false", "False")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (e.g. weight initialisation) from `seed` without disturbing the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def preserved_random_state() -> Iterator[None]:
    """Run a block that seeds or draws at will, then restore Python's, NumPy's and torch's RNG states."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


def output_root() -> Path:
    """Where notebooks write checkpoints and JPEGs: the working folder, or a scratch folder in quick mode.

    Quick mode must never overwrite the committed outputs, so it writes into a fresh temporary folder, removed
    when the process (the notebook's kernel) exits.
    """
    if quick_mode():
        scratch = Path(tempfile.mkdtemp(prefix="handgen-quick-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        return scratch
    return Path.cwd()
