"""Scoring sets of generated images against held-out real hands (a thin layer over `metrics`)."""

from __future__ import annotations

import numpy as np

from .metrics import PixelPCA, copy_share, frechet_distance, kernel_distance

BLACK_LEVEL = 10  # a pixel below this grey level counts as background


def quality_row(name: str, images: np.ndarray, holdout: np.ndarray, train: np.ndarray,
                pca: PixelPCA) -> dict[str, float | str]:
    """FID, KID (x1000) in pixel-PCA space against `holdout`, copy share against `train`, black share."""
    features, holdout_features = pca(images), pca(holdout)
    return {
        "set": name,
        "n": len(images),
        "fid_pixels": round(frechet_distance(features, holdout_features), 3),
        "kid_pixels_x1000": round(1000 * kernel_distance(features, holdout_features), 2),
        "copy_share": round(copy_share(images, train, holdout), 3),
        "black_share": round(float((np.asarray(images) < BLACK_LEVEL).mean()), 3),
    }


def quality_table(sets: dict[str, np.ndarray], train_images: np.ndarray,
                  holdout_images: np.ndarray) -> list[dict[str, float | str]]:
    """One row per set of uint8 images, plus the floor that a perfect generator would get.

    The held-out real hands (never seen by a generator) are split in halves: the second half is the
    reference every set is compared with, and the first half, scored the same way, is the floor.
    Each set is cut to the size of a half, so FID (biased at small n) compares like with like.
    """
    half = len(holdout_images) // 2
    floor, reference = holdout_images[:half], holdout_images[half:2 * half]
    pca = PixelPCA.fit(train_images)
    rows = [quality_row(name, images[:half], reference, train_images, pca) for name, images in sets.items()]
    rows.append(quality_row("real held-out (floor)", floor, reference, train_images, pca))
    return rows


def format_table(rows: list[dict]) -> str:
    """Rows of equal keys as an aligned plain-text table."""
    columns = list(rows[0])
    cells = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])
