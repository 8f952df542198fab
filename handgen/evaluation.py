"""Scoring sets of generated hands against real ones: realism figures first, pixel statistics second.

The realism figures (`realism`): the independent judge's fool rate and the two-sample test, each beside its real
floor. The pixel figures: FID, KID, precision and recall in the space of principal components of pixels (no network
can fool it, but it cannot see fine detail either: it sits at its floor for every generator here), the copy share
(the memorisation guard) and the share of black pixels.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_model
from .classifier import ClassifierConfig, HandClassifier
from .data import REAL_HANDS, generator_split, load_folder
from .detection import provided_examples
from .metrics import PixelPCA, copy_share, frechet_distance, kernel_distance, precision_recall
from .realism import TWO_SAMPLE_CONFIG, TWO_SAMPLE_SIZE, fool_rate, train_judge, two_sample_test
from .sample import as_jpeg_files, generate

BLACK_LEVEL = 10  # a pixel below this grey level counts as background


class PixelStatistics:
    """Scores uint8 image sets (N, 1, 32, 32) against held-out real hands in pixel-PCA space.

    The held-out hands (never seen by a generator) are split in halves: the second half is the reference every
    set is compared with; the first half, scored the same way, is the floor a perfect generator would reach. Every
    set is cut to the size of a half, so FID (biased upwards at small n) and the k-NN figures compare like with
    like. KID is unbiased, so it reads the same at any n.
    """

    def __init__(self, train: np.ndarray, holdout: np.ndarray, with_floor: bool = True):
        """`with_floor=False` compares with all held-out hands (half the variance; for tuning, which needs no floor)."""
        half = len(holdout) // 2 if with_floor else 0
        self.train, self.size = np.asarray(train), len(holdout) - half
        self.floor, self.reference = np.asarray(holdout[:half]), np.asarray(holdout[half:half + self.size])
        self.features = PixelPCA.fit(self.train)
        self._reference = self.features(self.reference)

    def distances(self, images: np.ndarray) -> dict[str, float]:
        """FID and KID (x1000) of a set: cheap enough to score every few epochs."""
        features = self.features(np.asarray(images)[:self.size])
        return {"fid_pix": frechet_distance(features, self._reference),
                "kid_pix_x1000": 1000 * kernel_distance(features, self._reference)}

    def row(self, images: np.ndarray) -> dict[str, float]:
        """FID, KID, precision and recall, then the copy share and the share of black pixels."""
        images = np.asarray(images)[:self.size]
        row = {"n_pix": len(images), **self.distances(images)}
        row["precision_pix"], row["recall_pix"] = precision_recall(self._reference, self.features(images))
        row["copy_share"] = copy_share(images, self.train, self.floor)
        row["black_share"] = float((images < BLACK_LEVEL).mean())
        return row


class Yardstick:
    """Every figure for sets of uint8 images (N, 1, 32, 32): realism (judge, two-sample test) and pixel statistics.

    The two-sample test pits a set against as many of a fixed draw of real training hands; its floor is a second,
    disjoint draw against the first. It needs `size` images: with 300 a side its networks learn too little to tell
    even the earlier 30-epoch GAN from real hands (`results/yardstick.jsonl`), so smaller sets get the judge and the
    pixel figures only. `judge=None` or `two_sample=False` leaves those figures out.
    """

    def __init__(self, train: torch.Tensor, holdout: torch.Tensor, judge: HandClassifier | None = None,
                 two_sample: bool = True, size: int = TWO_SAMPLE_SIZE,
                 two_sample_config: ClassifierConfig = TWO_SAMPLE_CONFIG, seed: int = 0):
        """`size`: most images a side of a two-sample test (a quick mode may shrink it and `two_sample_config`)."""
        self.holdout, self.judge, self.two_sample, self.size = holdout, judge, two_sample, size
        self.two_sample_config = two_sample_config
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
        half = min(size, len(train) // 2)
        self.real_draw, self.other_real_draw = train[order[:half]], train[order[half:2 * half]]
        self.pixels = PixelStatistics(train.numpy(), holdout.numpy())

    def row(self, name: str, images: torch.Tensor) -> dict[str, float | str]:
        """The figures of one set, rounded to three decimals."""
        row: dict[str, float | str] = {"set": name, "n": len(images)}
        if self.judge is not None:
            row.update(fool_rate(self.judge, images))
        if self.two_sample and len(images) >= self.size:
            row.update(two_sample_test(images[:self.size], self.real_draw, self.two_sample_config))
        row.update(self.pixels.row(images.numpy()))
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()}

    def floor(self, two_sample: bool = True) -> dict[str, float | str]:
        """What real hands score: the judge on held-out hands, two draws of training hands against each other."""
        row: dict[str, float | str] = {"set": REAL_FLOOR, "n": len(self.holdout)}
        if self.judge is not None:
            row.update(fool_rate(self.judge, self.holdout))
        if self.two_sample and two_sample:
            row.update(two_sample_test(self.other_real_draw, self.real_draw, self.two_sample_config))
        row.update(self.pixels.row(self.pixels.floor))
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()}

    def table(self, sets: dict[str, torch.Tensor]) -> list[dict[str, float | str]]:
        """One row per set, then the real floor (with a two-sample test if any set had one)."""
        rows = [self.row(name, images) for name, images in sets.items()]
        return rows + [self.floor(two_sample=any("two_sample_accuracy" in row for row in rows))]


REAL_FLOOR = "real hands (floor)"


def build_yardstick(real: str | os.PathLike | None = None, judge_folder: str | os.PathLike = "checkpoints",
                    two_sample: bool = True, quick: bool = False, progress: bool = True) -> Yardstick:
    """The yardstick on the generators' split of the real hands, with the judge from `judge_folder` (trained there
    first if its data or config changed). Quick mode (a smoke run): two-sample tests of 100 images, one epoch."""
    train, holdout = generator_split(load_folder(REAL_HANDS, real))
    judge, _ = train_judge(train.images, holdout.images, provided_examples(warn=False), judge_folder,
                           progress=progress)
    if quick:
        return Yardstick(train.images, holdout.images, judge, two_sample, size=100,
                         two_sample_config=dataclasses.replace(TWO_SAMPLE_CONFIG, epochs=1, batch_size=32))
    return Yardstick(train.images, holdout.images, judge, two_sample)


SAMPLES_PER_CHECKPOINT = TWO_SAMPLE_SIZE


def images_of(source: str | os.PathLike, n: int = SAMPLES_PER_CHECKPOINT) -> torch.Tensor:
    """uint8 images of a folder of JPEGs, or `n` fresh samples of a generator checkpoint stored as JPEGs would be."""
    if Path(source).is_file():
        model, _ = load_model(source)
        if not hasattr(model, "sample_latent"):
            raise ValueError(f"{source} holds a {type(model).__name__}, not a generator")
        return as_jpeg_files(generate(model, n, seed=1))
    return load_folder(source).images


def format_table(rows: list[dict]) -> str:
    """Rows of equal keys as an aligned plain-text table."""
    columns = list(rows[0])
    cells = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])
