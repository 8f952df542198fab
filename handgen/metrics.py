"""Sample-quality metrics as pure functions on feature arrays (N, D); no pretrained network.

Features come from a space the project builds itself; `PixelPCA` (principal components of pixels,
fitted on real training hands) is the one that cannot be fooled by a learned feature network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PixelPCA:
    """Projection of flattened images onto the top principal components of a reference set."""

    mean: np.ndarray        # (D,)
    components: np.ndarray  # (k, D)

    @classmethod
    def fit(cls, images: np.ndarray, n_components: int = 64) -> PixelPCA:
        """Fit on uint8 or float images (N, ...) flattened to (N, D)."""
        flat = _flatten(images)
        mean = flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
        return cls(mean, vt[:n_components])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return (_flatten(images) - self.mean) @ self.components.T


def _flatten(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float64).reshape(len(images), -1) / 255.0


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID-style distance between Gaussians fitted to two feature sets; 0 for identical sets.

    Biased upwards at small N (300 samples): compare only figures computed at the same N.
    """
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    # tr sqrt(A B) is the sum of the square roots of the eigenvalues of A B, real and >= 0 for PSD A, B
    eigenvalues = np.linalg.eigvals(cov_a @ cov_b).real
    trace_root = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    value = float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)
    return max(value, 0.0)


def kernel_distance(features_a: np.ndarray, features_b: np.ndarray, subsets: int = 50,
                    subset_size: int = 200, seed: int = 0) -> float:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets."""
    rng = np.random.default_rng(seed)
    dim = features_a.shape[1]
    size = min(subset_size, len(features_a), len(features_b))
    kernel = lambda x, y: (x @ y.T / dim + 1.0) ** 3  # noqa: E731
    estimates = []
    for _ in range(subsets):
        x = features_a[rng.choice(len(features_a), size, replace=False)]
        y = features_b[rng.choice(len(features_b), size, replace=False)]
        k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
        off_diagonal = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        estimates.append(off_diagonal - 2.0 * k_xy.mean())
    return float(np.mean(estimates))


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) between the rows of two feature sets."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    squared = (a ** 2).sum(axis=1)[:, None] + (b ** 2).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def _knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row of the same set."""
    distances = pairwise_distances(features, features)
    np.fill_diagonal(distances, np.inf)
    return np.sort(distances, axis=1)[:, k - 1]


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (k-nearest-neighbour manifolds, Kynkaanniemi et al. 2019).

    Precision: share of fakes inside the real manifold (a ball of each real row's k-NN radius): realism.
    Recall: share of reals inside the fake manifold: variety. A collapsed generator keeps its precision
    and loses its recall; a blurry one tends the other way.
    """
    cross = pairwise_distances(fake, real)                     # (fakes, reals)
    precision = (cross <= _knn_radii(real, k)[None, :]).any(axis=1).mean()
    recall = (cross.T <= _knn_radii(fake, k)[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


def nearest_distances(queries: np.ndarray, references: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each query row to its nearest reference row, and that row's index."""
    queries, references = np.asarray(queries, np.float64), np.asarray(references, np.float64)
    squared_refs = (references ** 2).sum(axis=1)
    distances, indices = [], []
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk]
        squared = (block ** 2).sum(axis=1)[:, None] + squared_refs[None, :] - 2.0 * block @ references.T
        nearest = squared.argmin(axis=1)
        indices.append(nearest)
        distances.append(np.sqrt(np.maximum(squared[np.arange(len(block)), nearest], 0.0)))
    return np.concatenate(distances), np.concatenate(indices)


def copy_share(samples: np.ndarray, train: np.ndarray, holdout: np.ndarray, quantile: float = 0.01) -> float:
    """Share of samples closer to a training image than all but `quantile` of held-out real hands are.

    Held-out real hands are never copies, so about `quantile` of a perfect generator's samples fall
    below the threshold; a memorising generator scores far above it.
    """
    flat = lambda images: np.asarray(images, np.float64).reshape(len(images), -1)  # noqa: E731
    threshold = np.quantile(nearest_distances(flat(holdout), flat(train))[0], quantile)
    return float((nearest_distances(flat(samples), flat(train))[0] < threshold).mean())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = 3) -> np.ndarray:
    """(classes, classes) counts: row = true label, column = predicted label."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def per_class_recall(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix; NaN for a class with no examples."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(matrix) / totals


def accuracy_by_group(labels: np.ndarray, predictions: np.ndarray, groups: list[str]) -> dict[str, float]:
    """Accuracy within each group (e.g. each generator a validation set holds out), sorted by group name."""
    hits, groups = np.asarray(labels) == np.asarray(predictions), np.asarray(groups)
    return {group: float(hits[groups == group].mean()) for group in sorted(set(groups.tolist()))}


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% (z = 1.96) Wilson score interval of a binomial proportion; sound at 0 and 1, unlike the normal one."""
    if trials <= 0:
        raise ValueError(f"need at least one trial, got {trials}")
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(max(0.0, min(share, centre - half))), float(min(1.0, max(share, centre + half)))  # rounding-safe
