"""Finding, decoding and holding the hand images.

Every image that enters handgen (training or prediction) passes through `decode_image`, so the
same rules apply everywhere:

* colour images become grayscale (Pillow's ITU-R 601-2 luma, mode "L");
* an image that is not 32x32 is resized to 32x32 with bilinear filtering (aspect ratio is not
  kept: the odd 32x24 and 10x32 files in the wild are squashed or broken 32x32 images);
* 16-bit grayscale images are scaled to 8 bits over their full range (Pillow alone would clip them to white);
* a file that Pillow cannot decode (text, zip, truncated JPEG, empty file), an image larger than
  `MAX_PIXELS` (a decompression bomb) or smaller than `MIN_SIDE` pixels a side, a folder or a broken link
  with an image name, and a name the CSV cannot carry (a comma or a line break) are skipped with a warning
  naming the file and the reason, and counted.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_SIZE = 32
CHANNELS = 1
REAL, VAE_LABEL, GAN_LABEL = 0, 1, 2  # the detector's labels, as the CSV writes them
LABELS = {REAL: "real", VAE_LABEL: "VAE", GAN_LABEL: "GAN"}
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DATA_ENV = "HANDGEN_DATA"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_HANDS = "real_hands"   # the generators' training folder
DATASET_FOLDERS = (REAL_HANDS, "classifier", "test_hands")  # what the dataset holds
HOLDOUT_IMAGES = 500        # real hands never shown to a generator: the reference for its metrics
MAX_PIXELS = 4096 * 4096    # larger images are refused unread: a tiny file can decode to gigabytes
MIN_SIDE = 8                # smaller images hold no hand (the odd 10x32 files of the data pass)
JPEG_QUALITY = 75           # Pillow's default, as every real hand is stored
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class DataError(Exception):
    """A data folder is missing, empty, or holds no readable image."""


class SkippedFileWarning(UserWarning):
    """A file in an image folder could not be decoded and was left out."""


@dataclass
class ImageSet:
    """Decoded images of one folder: `images` uint8 (N, 1, 32, 32), `names` the file names."""

    images: torch.Tensor
    names: list[str]
    folder: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> reason

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, indices) -> ImageSet:
        """The images at `indices` (a sequence or tensor of ints), same folder."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(self.images[indices], [self.names[i] for i in indices.tolist()], self.folder)


def search_roots() -> list[Path]:
    """Where a folder name is looked for, in order: cwd, project root, $HANDGEN_DATA, ../shared/hands."""
    roots = [Path.cwd(), PROJECT_ROOT]
    if os.environ.get(DATA_ENV):
        roots.append(Path(os.environ[DATA_ENV]))
    roots += [Path.cwd().parent / "shared" / "hands", PROJECT_ROOT.parent / "shared" / "hands"]
    unique = []
    for root in roots:
        if root.resolve() not in [r.resolve() for r in unique]:
            unique.append(root)
    return unique


def find_folder(name: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """The data folder `name`: `path` if given, else the first of `search_roots()` that holds it."""
    if path is not None:
        candidates = [Path(path)]
    elif Path(name).is_absolute():
        candidates = [Path(name)]
    else:
        candidates = [root / name for root in search_roots()]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(f"image folder '{name}' not found; looked in: {looked}. "
                    f"Pass its path explicitly or set ${DATA_ENV} to the folder that holds it.")


def data_summary() -> str:
    """Where each folder of the dataset was found, or where to put it: one line a folder."""
    lines = []
    for name in DATASET_FOLDERS:
        try:
            lines.append(f"{name}: {find_folder(name)}")
        except DataError:
            target = Path(os.environ.get(DATA_ENV, "<a folder>")) / name
            lines.append(f"{name}: not found; put it at {target} (${DATA_ENV} names the folder that holds it)")
    return "\n".join(lines)


def decode_image(path: Path) -> np.ndarray:
    """One image file as uint8 (32, 32) grayscale; raises ValueError with the reason if unreadable."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValueError(f"image too large ({width}x{height} pixels; the limit is {MAX_PIXELS:,})")
            if min(width, height) < MIN_SIDE:
                raise ValueError(f"image too small to hold a hand ({width}x{height} pixels)")
            grey = _sixteen_bit_to_grey(image) if image.mode in SIXTEEN_BIT_MODES else image.convert("L")
            if grey.size != (IMAGE_SIZE, IMAGE_SIZE):
                grey = grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
            return np.asarray(grey, dtype=np.uint8)
    except UnidentifiedImageError:
        size = path.stat().st_size
        reason = "empty file" if size == 0 else f"not an image ({_sniff(path)}, {size} bytes)"
        raise ValueError(reason) from None
    except Image.DecompressionBombError as error:
        raise ValueError(f"image too large ({error})") from None
    except (OSError, SyntaxError, EOFError) as error:
        raise ValueError(f"corrupt image: {error or type(error).__name__}") from None
    except MemoryError:
        raise ValueError("the image does not fit in memory") from None


def _sixteen_bit_to_grey(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale image as 8-bit mode "L", scaled over the 16-bit range rather than clipped."""
    values = np.asarray(image, dtype=np.float64)
    return Image.fromarray(np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8), mode="L")


def _sniff(path: Path) -> str:
    """A short guess of what a non-image file is, for the warning (from its first bytes only)."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK"):
        return "zip archive"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "text"
    return "unknown format"


def list_image_files(folder: Path) -> list[Path]:
    """Files of `folder` with an image suffix, sorted by name (hidden files ignored)."""
    return [path for path in _image_named_entries(folder) if path.is_file()]


def _image_named_entries(folder: Path) -> list[Path]:
    """Every visible entry of `folder` with an image suffix (files, folders, links), sorted by name."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def _unreadable_entry(path: Path) -> str | None:
    """Why an image-named entry cannot be an input image before it is opened, or None."""
    if path.is_symlink() and not path.exists():
        return "broken link"
    if not path.is_file():
        return "not a file (a folder or a special file)"
    if any(character in path.name for character in ",\n\r"):
        return "its name holds a comma or a line break, which a 'name, label' CSV line cannot carry; rename it"
    if not _is_utf8(path.name):
        return "its name is not valid UTF-8, which the CSV is written in; rename it"
    return None


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of the file system, kept as surrogates
        return False
    return True


def shown(path: Path) -> str:
    """A path as it can be printed: undecodable bytes of its name escaped."""
    text = str(path)
    return text if _is_utf8(text) else repr(os.fsencode(text))[2:-1]


def load_folder(name: str | os.PathLike, path: str | os.PathLike | None = None, *,
                warn: bool = True) -> ImageSet:
    """Decode every image of a folder once into an `ImageSet`; unreadable entries are skipped, named and counted."""
    folder = find_folder(name, path)
    entries = _image_named_entries(folder)
    if not entries:
        raise DataError(f"image folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    arrays, names, skipped = [], [], {}
    for entry in entries:
        try:
            reason = _unreadable_entry(entry)
            if reason:
                raise ValueError(reason)
            arrays.append(decode_image(entry))
            names.append(entry.name)
        except ValueError as error:
            skipped[shown(Path(entry.name))] = str(error)
            if warn:
                warnings.warn(f"skipped {shown(entry)}: {error}", SkippedFileWarning, stacklevel=2)
    if not arrays:
        raise DataError(f"image folder {folder}: none of its {len(entries)} files could be decoded")
    if skipped and warn:
        warnings.warn(f"{folder}: skipped {len(skipped)} of {len(entries)} files", SkippedFileWarning,
                      stacklevel=2)
    images = torch.from_numpy(np.stack(arrays)).unsqueeze(1)  # (N, 1, 32, 32) uint8
    return ImageSet(images, names, folder, skipped)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], same shape."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] with rounding; values outside the range saturate."""
    return images.detach().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def random_translate(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift each image (B, C, H, W) in [-1, 1] by up to `max_shift` pixels, filling with black; differentiable."""
    batch, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (batch, 1, 1), device=images.device)
    dx = torch.randint(0, 2 * max_shift + 1, (batch, 1, 1), device=images.device)
    rows = torch.arange(height, device=images.device).view(1, -1, 1) + dy    # (B, H, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, -1) + dx     # (B, 1, W)
    index = torch.arange(batch, device=images.device).view(-1, 1, 1)
    return padded[index, :, rows, cols].permute(0, 3, 1, 2)                  # (B, C, H, W)


def check_image_batch(images: torch.Tensor) -> None:
    """Raise a clear error unless `images` is (B, 1, 32, 32)."""
    expected = (CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    if images.dim() != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(f"expected images of shape (B, {CHANNELS}, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                         f"got {tuple(images.shape)}")


def holdout_split(n_images: int, n_holdout: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, holdout) of a fixed random split; holdout images never train a generator."""
    if not 0 <= n_holdout < n_images:
        raise ValueError(f"n_holdout={n_holdout} must be in [0, {n_images})")
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed))
    return order[n_holdout:].sort().values, order[:n_holdout].sort().values


def generator_split(data: ImageSet, n_holdout: int = HOLDOUT_IMAGES, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """(train, holdout) of the real hands; small folders keep a tenth back instead of `n_holdout`."""
    train, holdout = holdout_split(len(data), min(n_holdout, len(data) // 10), seed)
    return data.subset(train), data.subset(holdout)


def real_hands_split(path: str | os.PathLike | None = None) -> tuple[ImageSet, ImageSet]:
    """The generators' (train, holdout) split of `real_hands/` (or the folder at `path`), decoded once per process;
    the tensors are shared between callers, so treat them as read-only."""
    return _real_hands_split(str(find_folder(REAL_HANDS, path).resolve()))


@functools.cache
def _real_hands_split(folder: str) -> tuple[ImageSet, ImageSet]:
    return generator_split(load_folder(REAL_HANDS, folder, warn=False))


STRIP_IMAGES = 1024  # images in one JPEG file: 32768 pixels wide, below the format's limit of 65535


def jpeg_round_trip(images: torch.Tensor, quality: int | list[int] = JPEG_QUALITY) -> torch.Tensor:
    """uint8 images (N, 1, H, W) as they read back from grayscale JPEG files written at `quality` (one for all,
    or one per image).

    Every real and provided hand is a quality-75 JPEG; generated fakes go through the same compression before a
    detector or a judge sees them, so "no JPEG artefacts" cannot be the sign of a fake.

    Images of one quality are saved side by side in one file (`STRIP_IMAGES` at most), which is many times faster
    than one file each and gives the same pixels: a grayscale baseline JPEG codes each 8x8 block on its own (the
    chain of DC differences is lossless), so where W is a multiple of 8 no block straddles two images; other
    widths get one file each.
    """
    qualities = np.full(len(images), quality) if isinstance(quality, int) else np.asarray(quality)
    if len(qualities) != len(images):
        raise ValueError(f"jpeg_round_trip: {len(qualities)} qualities for {len(images)} images")
    pixels = images.numpy()[:, 0]
    trips = np.empty_like(pixels)
    width = pixels.shape[-1]
    per_file = STRIP_IMAGES if width % 8 == 0 else 1
    for value in np.unique(qualities):
        chosen = np.flatnonzero(qualities == value)
        for start in range(0, len(chosen), per_file):
            part = chosen[start:start + per_file]
            strip = _round_trip(np.concatenate(pixels[part], axis=1), int(value))
            trips[part] = np.stack(np.split(strip, len(part), axis=1))
    return torch.from_numpy(trips[:, None])


def _round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("L"))


def image_hashes(images: torch.Tensor) -> list[str]:
    """One content hash per uint8 image: finds the same hand under two file names."""
    return [hashlib.blake2b(image.numpy().tobytes(), digest_size=12).hexdigest() for image in images]


@dataclass
class LabelledSet:
    """uint8 images (N, 1, 32, 32) with labels (N,) of `LABELS`, the source of each image (a folder, or one snapshot
    of one of our generators) and the model that made it (a student's model, or the source); `models` defaults to the
    sources."""

    images: torch.Tensor
    labels: torch.Tensor
    sources: list[str]
    models: list[str] | None = None

    def __post_init__(self) -> None:
        if self.models is None:
            self.models = list(self.sources)

    def __len__(self) -> int:
        return len(self.sources)

    @classmethod
    def from_images(cls, images: torch.Tensor, label: int, source: str, models: list[str] | None = None) -> LabelledSet:
        return cls(images, torch.full((len(images),), label, dtype=torch.long), [source] * len(images), models)

    @classmethod
    def concat(cls, parts: list[LabelledSet]) -> LabelledSet:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(torch.empty(0, CHANNELS, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8),
                       torch.empty(0, dtype=torch.long), [])
        return cls(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
                   [s for p in parts for s in p.sources], [m for p in parts for m in p.models])

    def subset(self, mask_or_indices) -> LabelledSet:
        indices = torch.as_tensor(mask_or_indices)
        if indices.dtype == torch.bool:
            indices = indices.nonzero().squeeze(1)
        indices = indices.tolist()
        return LabelledSet(self.images[indices], self.labels[indices], [self.sources[i] for i in indices],
                           [self.models[i] for i in indices])

    def examples(self, label: int, n: int, seed: int = 0) -> torch.Tensor:
        """Up to n images of one class, drawn at random (seeded) for display."""
        indices = (self.labels == label).nonzero().squeeze(1)
        return self.images[indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:n]]]

    def counts(self) -> dict[str, int]:
        """Images per class name."""
        tally = Counter(self.labels.tolist())
        return {name: tally.get(label, 0) for label, name in LABELS.items()}


def describe_folder(name: str | os.PathLike, path: str | os.PathLike | None = None) -> Counter:
    """How many files of a folder are of each kind: 'L 32x32', 'RGB 32x32', 'L 32x24', 'unreadable: ...'."""
    kinds: Counter = Counter()
    for file in list_image_files(find_folder(name, path)):
        try:
            with Image.open(file) as image:
                kinds[f"{image.mode} {image.size[0]}x{image.size[1]}"] += 1
        except (UnidentifiedImageError, OSError):
            try:
                decode_image(file)
            except ValueError as error:
                kinds[f"unreadable: {error}"] += 1
    return kinds
