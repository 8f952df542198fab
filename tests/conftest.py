"""Shared fixtures: tiny synthetic image folders built in each test's temporary directory."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # the drivers' own tests import them


def synthetic_hands(n: int, seed: int = 0) -> np.ndarray:
    """n uint8 (32, 32) images: a bright blob on black at random places, enough to learn from."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    images = []
    for _ in range(n):
        cy, cx, radius = rng.uniform(10, 22), rng.uniform(10, 22), rng.uniform(4, 9)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))
        images.append((blob * 230 + rng.normal(0, 5, (32, 32))).clip(0, 255).astype(np.uint8))
    return np.stack(images)


def write_jpegs(folder: Path, images: np.ndarray, prefix: str = "img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{prefix}_{i:04d}.jpeg"
        Image.fromarray(image, mode="L").save(path, quality=75)
        paths.append(path)
    return paths


@pytest.fixture
def hands_folder(tmp_path: Path) -> Path:
    """A folder of 96 clean synthetic 32x32 grayscale JPEGs."""
    folder = tmp_path / "real_hands"
    write_jpegs(folder, synthetic_hands(96))
    return folder


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    """Four good JPEGs plus one of every irregular kind met in the wild."""
    folder = tmp_path / "messy"
    write_jpegs(folder, synthetic_hands(4))
    rgb = np.stack([synthetic_hands(1, seed=1)[0]] * 3, axis=-1)
    Image.fromarray(rgb, mode="RGB").save(folder / "rgb.jpeg")
    Image.fromarray(synthetic_hands(1)[0][:24]).save(folder / "short_32x24.jpeg")   # 32 wide, 24 high
    Image.fromarray(synthetic_hands(1)[0][:, :10]).save(folder / "narrow_10x32.jpeg")
    (folder / "list.jpeg").write_text("000001.jpeg\n000002.jpeg\n")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a.txt", "hello")
    (folder / "archive.jpeg").write_bytes(archive.getvalue())
    good = (folder / "img_0000.jpeg").read_bytes()
    (folder / "truncated.jpeg").write_bytes(good[: len(good) // 2])
    (folder / "empty.jpeg").write_bytes(b"")
    return folder


@pytest.fixture(autouse=True)
def _single_thread_determinism():
    torch.set_num_threads(1)
    yield
