"""Device, seeding and quick-mode switches shared by every entry point."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

QUICK_ENV = "HANDGEN_QUICK"


def pick_device(preferred: str | None = None) -> torch.device:
    """CUDA when present (Colab), else CPU; `preferred` ("cpu", "cuda") overrides."""
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def output_root() -> Path:
    """Where notebooks write checkpoints and JPEGs: the working folder, or a scratch folder in quick mode.

    Quick mode must never overwrite the committed outputs, so it writes into a fresh temporary folder.
    """
    if quick_mode():
        return Path(tempfile.mkdtemp(prefix="handgen-quick-"))
    return Path.cwd()
