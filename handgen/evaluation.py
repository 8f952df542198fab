"""Scoring sets of generated images against held-out real hands (a thin layer over `metrics`).

Two feature spaces, both built by the project itself: principal components of pixels (`pix`), which no
network can fool, and the detector's penultimate layer (`det`), which sees structure pixels miss. The
detector was trained on fakes of our own generators, so `det` is a harsh judge of those: it reads how
tellable they are, not only how good.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .classifier import HandClassifier
from .data import REAL_HANDS, generator_split, load_folder, to_float
from .metrics import PixelPCA, copy_share, frechet_distance, kernel_distance, precision_recall

BLACK_LEVEL = 10  # a pixel below this grey level counts as background
FeatureMap = Callable[[np.ndarray], np.ndarray]  # uint8 images (N, 1, 32, 32) -> features (N, D)


def detector_features(model: HandClassifier, batch_size: int = 1000) -> FeatureMap:
    """The detector's penultimate layer as a feature map (eval mode, deterministic)."""
    device = next(model.parameters()).device

    @torch.inference_mode()
    def features(images: np.ndarray) -> np.ndarray:
        model.eval()
        chunks = [model.embed(to_float(chunk.to(device))).cpu() for chunk in torch.as_tensor(images).split(batch_size)]
        return torch.cat(chunks).double().numpy()

    return features


class QualityJudge:
    """Scores uint8 image sets against held-out real hands, in every feature space it is given.

    The held-out hands (never seen by a generator) are split in halves: the second half is the reference
    every set is compared with; the first half, scored the same way, is the floor a perfect generator
    would reach. Every set is cut to the size of a half, so FID (biased upwards at small n) and the
    k-NN figures compare like with like. KID is unbiased, so it reads the same at any n.
    """

    def __init__(self, train: np.ndarray, holdout: np.ndarray, detector: HandClassifier | None = None,
                 with_floor: bool = True):
        """`with_floor=False` compares with all held-out hands (half the variance; for tuning, which needs no floor)."""
        half = len(holdout) // 2 if with_floor else 0
        self.train, self.size = np.asarray(train), len(holdout) - half
        self.floor, self.reference = np.asarray(holdout[:half]), np.asarray(holdout[half:half + self.size])
        self.spaces: dict[str, FeatureMap] = {"pix": PixelPCA.fit(self.train)}
        if detector is not None:
            self.spaces["det"] = detector_features(detector)
        self._reference = {name: space(self.reference) for name, space in self.spaces.items()}

    def distances(self, images: np.ndarray, space: str = "pix") -> dict[str, float]:
        """FID and KID (x1000) of a set in one space: the tuning objective, cheap enough per epoch."""
        features = self.spaces[space](np.asarray(images)[:self.size])
        return {f"fid_{space}": frechet_distance(features, self._reference[space]),
                f"kid_{space}_x1000": 1000 * kernel_distance(features, self._reference[space])}

    def row(self, name: str, images: np.ndarray) -> dict[str, float | str]:
        """Every figure for one set: per space FID, KID, precision, recall; then copies and black share."""
        images = np.asarray(images)[:self.size]
        row: dict[str, float | str] = {"set": name, "n": len(images)}
        for space in self.spaces:
            row.update(self.distances(images, space))
            precision, recall = precision_recall(self._reference[space], self.spaces[space](images))
            row.update({f"precision_{space}": precision, f"recall_{space}": recall})
        row["copy_share"] = copy_share(images, self.train, self.floor)
        row["black_share"] = float((images < BLACK_LEVEL).mean())
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()}

    def table(self, sets: dict[str, np.ndarray]) -> list[dict[str, float | str]]:
        """One row per set, then the real floor."""
        if not len(self.floor):
            raise ValueError("this judge was built with_floor=False: it has no floor to print")
        return [self.row(name, images) for name, images in sets.items()] + [self.row("real held-out (floor)",
                                                                                      self.floor)]


def quality_table(sets: dict[str, np.ndarray], train_images: np.ndarray, holdout_images: np.ndarray,
                  detector: HandClassifier | None = None) -> list[dict[str, float | str]]:
    """One row per set of uint8 images plus the real floor; see `QualityJudge`."""
    return QualityJudge(train_images, holdout_images, detector).table(sets)


def evaluate_folders(folders: list[str | Path], detector: HandClassifier | None = None,
                     real: str | Path | None = None) -> list[dict[str, float | str]]:
    """Score folders of generated JPEGs against the generators' held-out real hands; one row each plus the floor."""
    train, holdout = generator_split(load_folder(REAL_HANDS, real))
    judge = QualityJudge(train.images.numpy(), holdout.images.numpy(), detector)
    return judge.table({str(folder): load_folder(folder).images.numpy() for folder in folders})


def format_table(rows: list[dict]) -> str:
    """Rows of equal keys as an aligned plain-text table."""
    columns = list(rows[0])
    cells = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])
