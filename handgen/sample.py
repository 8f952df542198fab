"""Drawing images from a trained generator and writing them as JPEG sets.

The JPEGs are written exactly like the real hands (Pillow defaults: baseline, quality 75, 4:2:0
tables, mode "L"), so the file format carries no signal a detector could pick up.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from torch import nn

from .data import JPEG_QUALITY, to_uint8
from .files import OutputError, current_umask, writing_to
from .runtime import VERSION

MAX_SAMPLES = 100_000  # at most this many images a call: 100 MB of uint8, minutes of decoding on a CPU
PROVENANCE_FILE = "provenance.txt"  # beside a written set: the checkpoint, seed and command that made it


class Sampler(Protocol):
    """What `generate` draws from: a VAE or a GAN (or any model that can draw codes and decode them)."""

    latent_dim: int

    def sample_latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n codes (n, latent_dim) on the model's device, drawn with the random `generator`."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, latent_dim) -> images (B, 1, 32, 32) in [-1, 1]."""


def is_sampler(model: object) -> bool:
    """Whether `model` can be sampled (the `Sampler` interface)."""
    return all(callable(getattr(model, name, None)) for name in ("sample_latent", "decode"))


@torch.inference_mode()
def generate(model: Sampler, n: int, seed: int = 0, batch_size: int = 500, *,
             standard_normal: bool = False, decoder: nn.Module | None = None) -> torch.Tensor:
    """n images uint8 (n, 1, 32, 32): codes from `model.sample_latent` (seeded), decoded by `model.decode`.

    For comparisons: `standard_normal` draws the codes from N(0, I) instead (the VAE's plain prior), and
    `decoder` replaces `model.decode` (e.g. a GAN's raw `generator` rather than its average).
    """
    noise = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()  # before the codes are drawn: a learned prior samples in eval mode
    if standard_normal:
        z = torch.randn(n, model.latent_dim, generator=noise).to(next(model.parameters()).device)
    else:
        z = model.sample_latent(n, noise)
    decode = decoder if decoder is not None else model.decode
    images = [to_uint8(decode(chunk)).cpu() for chunk in z.split(batch_size)]
    model.train(was_training)
    return torch.cat(images)


def file_names(prefix: str, n: int) -> list[str]:
    """`{prefix}_hand_001.jpeg` ... zero-padded to at least three digits."""
    digits = max(3, len(str(n)))
    return [f"{prefix}_hand_{i:0{digits}d}.jpeg" for i in range(1, n + 1)]


def save_jpeg(image: np.ndarray, path: Path) -> None:
    """uint8 (32, 32) array -> grayscale JPEG with the real data's settings."""
    Image.fromarray(image, mode="L").save(path, format="JPEG", quality=JPEG_QUALITY)


def write_images(images: torch.Tensor, folder: str | os.PathLike, prefix: str,
                 provenance: str | None = None) -> list[Path]:
    """Write uint8 images (N, 1, 32, 32) as `{prefix}_hand_NNN.jpeg`, replacing the folder atomically; `provenance`
    (what wrote them) goes beside them in `PROVENANCE_FILE`.

    The set is written into a hidden staging folder beside the target and then swapped in, so an interrupted run
    never leaves a half-written set; staging folders left by a killed run are removed by the next one. A target
    holding files that do not look like ours is left untouched.
    """
    folder = Path(os.path.realpath(folder)) if Path(folder).is_symlink() else Path(folder)  # a link stays a link
    _refuse_foreign_files(folder, prefix)
    names = file_names(prefix, len(images))
    with writing_to(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(folder, prefix)
        staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(folder), dir=folder.parent))
        try:
            os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it private; the set is an ordinary folder
            for name, image in zip(names, images.numpy()):
                save_jpeg(image[0], staging / name)
            if provenance is not None:
                (staging / PROVENANCE_FILE).write_text(provenance)
            _swap_in(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [folder / name for name in names]


def _staging_prefix(folder: Path) -> str:
    return f".{folder.name}.staging-"


def _remove_stale_staging(folder: Path, prefix: str) -> None:
    """Remove staging folders of an earlier, killed run into `folder` (they hold nothing but our JPEGs)."""
    ours = _our_file_pattern(prefix)
    for stale in folder.parent.glob(_staging_prefix(folder) + "*"):
        if stale.is_dir() and all(ours.fullmatch(path.name) for path in stale.iterdir()):
            shutil.rmtree(stale, ignore_errors=True)


def _our_file_pattern(prefix: str) -> re.Pattern:
    """The names `write_images` gives its files."""
    return re.compile(rf"{re.escape(prefix)}_hand_\d{{3,}}\.jpeg|{re.escape(PROVENANCE_FILE)}")


def sample_to_folder(model: nn.Module, folder: str | os.PathLike, n: int = 300, seed: int = 0,
                     prefix: str | None = None, checkpoint: str | os.PathLike | None = None) -> list[Path]:
    """Generate `n` images and write them as JPEGs into `folder`, with a provenance note naming `checkpoint` (the
    file the model was loaded from, hashed), the seed and the command that writes the same set; the file paths."""
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n must be between 1 and {MAX_SAMPLES:,}, got {n}")
    prefix = prefix or _prefix_of(model)
    _refuse_foreign_files(Path(folder), prefix)  # before minutes of sampling, not after
    note = provenance(model, folder, n, seed, checkpoint)
    return write_images(generate(model, n, seed), folder, prefix, note)


def _prefix_of(model: nn.Module) -> str:
    """File names say which kind of generator made them: VAE_hand_001.jpeg, GAN_hand_001.jpeg."""
    return "GAN" if "GAN" in type(model).__name__ else "VAE"


def provenance(model: nn.Module, folder: str | os.PathLike, n: int, seed: int,
               checkpoint: str | os.PathLike | None) -> str:
    """What wrote a sample set: the checkpoint and its SHA-256, the weights' hash, the seed, the command."""
    weights = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        weights.update(name.encode())
        weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    if checkpoint is None:
        source = "checkpoint: none (a model in memory)"
        command = "sample_to_folder(model, ...) from Python"
    else:
        digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
        checkpoint, folder = _relative(checkpoint), _relative(folder)
        source = f"checkpoint: {checkpoint}\ncheckpoint sha256: {digest}"
        command = shlex.join(["python", "-m", "handgen", "sample", "--checkpoint", str(checkpoint),
                              "--out", str(folder), "--n", str(n), "--seed", str(seed)])
    return (f"{n} {type(model).__name__} samples written by handgen {VERSION}\n{source}\n"
            f"weights sha256: {weights.hexdigest()}\nseed: {seed}\ncommand: {command}\n")


def _relative(path: str | os.PathLike) -> str:
    """`path` from the working folder when it lies inside it, so the note reads the same on every clone."""
    absolute, here = Path(path).resolve(), Path.cwd().resolve()
    return str(absolute.relative_to(here)) if absolute.is_relative_to(here) else str(path)


def _refuse_foreign_files(folder: Path, prefix: str) -> None:
    if not folder.exists():
        return
    if not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; nothing was written")
    ours = _our_file_pattern(prefix)
    foreign = sorted(p.name for p in folder.iterdir() if not ours.fullmatch(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise OutputError(f"{folder} holds {len(foreign)} file(s) handgen did not write ({shown}); "
                                "move them away or choose another folder. Nothing was written.")


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace `folder` by `staging` with two renames; the old set is removed only afterwards."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    retired = staging.with_name(staging.name + ".old")
    os.replace(folder, retired)
    os.replace(staging, folder)
    shutil.rmtree(retired)


def image_grid(images: torch.Tensor, columns: int = 10, padding: int = 2) -> np.ndarray:
    """uint8 images (N, 1, H, W) -> one uint8 (rows*(H+p), columns*(W+p)) mosaic for display."""
    n, _, height, width = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding), 255, np.uint8)
    for i, image in enumerate(images.numpy()):
        top, left = padding + (i // columns) * (height + padding), padding + (i % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image[0]
    return grid
