"""Device, seeding and quick-mode switches shared by every entry point."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import math
import os
import random
import shutil
import tempfile
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

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
def cpu_facts() -> Mapping[str, object]:
    """The CPU's model name, its widest vector unit and its bfloat16 units, from /proc/cpuinfo (Linux; empty
    elsewhere): figures are recorded with the machine they came from, since AMX, AVX-512 BF16 and plain AVX2 CPUs
    train at different speeds, and one model name can cover both of the last two.
    Read once and read-only, so no caller can change what the next one sees."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return types.MappingProxyType({})
    fields = {key.strip(): value.strip() for key, value in
              (line.split(":", 1) for line in text.splitlines() if ":" in line)}
    flags = fields.get("flags", "").split()
    return types.MappingProxyType({"cpu": fields.get("model name", ""), "avx512": "avx512f" in flags,
                                   "amx": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags})


def _cpu_has_native_bfloat16() -> bool:
    facts = cpu_facts()
    return facts.get("amx", False) or facts.get("avx512_bf16", False)


def _cpu_capability_allows_avx512() -> bool:
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def mixed_precision(device: torch.device, enabled: bool = True):
    """bfloat16 autocast on `device` where it is fast (`fast_bfloat16`), else a context that does nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and fast_bfloat16(device))


SEED_LIMIT = 2**32 - 1      # seeds: what NumPy and torch both take
INTEGER_LIMIT = 2**31 - 1   # any other integer
SIZES = {"width": 512, "discriminator_width": 512, "latent_dim": 1024, "batch_size": 4096, "epochs": 100_000,
         "prior_components": 1000, "codebook_size": 8192, "code_dim": 512, "prior_width": 1024, "prior_layers": 32,
         "prior_heads": 64, "prior_epochs": 100_000, "provided_repeats": 100, "max_shift": 16}
LIMIT_REASON = "a bound that keeps a run within a laptop's memory and time"


def check_config(config, positive: tuple[str, ...] = (), signed: tuple[str, ...] = (),
                 fractions: tuple[str, ...] = (), limits: dict[str, float] | None = None) -> None:
    """Raise ValueError naming the field unless every number of `config` (tuples element by element) is finite and
    in range: at least 0 (any sign for `signed`), above 0 for `positive`, in [0, 1) for `fractions`, at most its
    limit (`limits`, else `SIZES`); a whole number where the field is an int, fitting 32 bits (seeds `SEED_LIMIT`).
    A bad value fails when the config is made, before any data is read, not epochs later."""
    limits = {**SIZES, **(limits or {})}
    declared = {field.name: str(field.type) for field in dataclasses.fields(config)}
    for name, value in vars(config).items():
        kind = declared.get(name, "")
        if kind in ("bool", "str") and not isinstance(value, bool if kind == "bool" else str):
            raise ValueError(f"{type(config).__name__}.{name} must be {'true or false' if kind == 'bool' else 'text'}, "
                             f"got {value!r}")
        if kind in ("bool", "str"):
            continue
        for number in value if isinstance(value, (tuple, list)) else (value,):
            problem = _out_of_range(name, number, kind, positive, signed, fractions, limits)
            if problem:
                raise ValueError(f"{type(config).__name__}.{name} must be {problem}, got {value!r}")


def _out_of_range(name: str, number, declared: str, positive, signed, fractions, limits) -> str | None:
    """What `number` must be, if it is not."""
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return "a number"
    if (declared == "int" or declared.startswith("tuple[int")) and not isinstance(number, int):
        return "a whole number"
    if not math.isfinite(number):
        return "a finite number"
    if name in fractions and not 0 <= number < 1:
        return "at least 0 and below 1"
    if name in positive and number <= 0:
        return "above 0"
    if name not in signed and number < 0:
        return "at least 0"
    ceiling = SEED_LIMIT if name == "seed" else limits.get(name, INTEGER_LIMIT if isinstance(number, int) else None)
    if ceiling is not None and abs(number) > ceiling:
        reason = f" ({LIMIT_REASON})" if name in SIZES else ""
        return f"at most {ceiling:,}{reason}"
    return None


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
