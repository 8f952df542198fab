"""Sample-quality metrics on constructed feature sets whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from handgen.metrics import (
    PixelPCA,
    accuracy_by_group,
    copy_share,
    frechet_distance,
    kernel_distance,
    pairwise_distances,
    precision_recall,
)
from handgen.realism import PixelStatistics
from tests.conftest import synthetic_hands


def gaussian(n: int, seed: int, shift: float = 0.0, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)) + shift


def test_fid_of_a_set_with_itself_is_zero():
    features = gaussian(300, 0)
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_shifted_set_scores_worse_than_a_fresh_sample_of_the_same_distribution():
    reference, same, shifted = gaussian(300, 0), gaussian(300, 1), gaussian(300, 2, shift=0.5)
    assert frechet_distance(reference, shifted) > 5 * frechet_distance(reference, same)
    assert kernel_distance(reference, shifted) > 0.5 > abs(kernel_distance(reference, same))


def test_kid_is_unbiased_on_two_samples_of_one_distribution():
    """Averaged over independent pairs of small samples, KID is 0 within its standard error,
    while FID at the same n is far above 0 (its bias)."""
    kids = [kernel_distance(gaussian(60, 2 * i), gaussian(60, 2 * i + 1), subsets=10, seed=i) for i in range(30)]
    fids = [frechet_distance(gaussian(60, 2 * i), gaussian(60, 2 * i + 1)) for i in range(30)]
    standard_error = np.std(kids) / np.sqrt(len(kids))
    assert abs(np.mean(kids)) < 3 * standard_error
    assert np.mean(fids) > 10 * standard_error


def test_precision_and_recall_separate_realism_from_variety():
    real = gaussian(300, 0)
    good_precision, good_recall = precision_recall(real, gaussian(300, 1))
    collapsed = real[:1] + 0.05 * gaussian(300, 2)        # realistic, but one image over and over
    collapsed_precision, collapsed_recall = precision_recall(real, collapsed)
    off_manifold = precision_recall(real, gaussian(300, 3, shift=10.0))
    assert good_precision > 0.6 and good_recall > 0.6
    assert collapsed_precision > 0.9 and collapsed_recall < 0.05
    assert off_manifold == (0.0, 0.0)


def test_pairwise_distances_match_the_definition():
    a, b = gaussian(5, 0), gaussian(7, 1)
    expected = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(pairwise_distances(a, b), expected, atol=1e-9)


def test_copy_check_flags_exact_copies_and_passes_fresh_images():
    train, holdout, fresh = synthetic_hands(300, seed=0), synthetic_hands(100, seed=1), synthetic_hands(100, seed=2)
    assert copy_share(train[:50], train, holdout) == 1.0
    assert copy_share(fresh, train, holdout) < 0.1


def test_pixel_pca_keeps_the_requested_components():
    images = synthetic_hands(80)
    pca = PixelPCA.fit(images, n_components=10)
    features = pca(images)
    assert features.shape == (80, 10)
    assert np.allclose(features.mean(axis=0), 0.0, atol=1e-9)


def test_accuracy_by_group():
    result = accuracy_by_group(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "a", "b", "b", "c"])
    assert result == {"a": 0.5, "b": 1.0, "c": 0.0}


def test_pixel_statistics_read_sets_against_the_real_floor():
    train, holdout = synthetic_hands(300, seed=0), synthetic_hands(120, seed=1)[:, None]
    pixels = PixelStatistics(train[:, None], holdout)
    good, bad, floor = (pixels.row(images) for images in (synthetic_hands(80, seed=2)[:, None],
                                                          np.zeros_like(holdout), pixels.floor))
    assert floor["n_pix"] == good["n_pix"] == 60  # cut to half the hold-out
    assert bad["fid_pix"] > 10 * max(good["fid_pix"], floor["fid_pix"])
    assert bad["black_share"] == 1.0 and good["black_share"] < 0.9


def test_a_table_shows_every_column_of_any_row():
    from handgen.results import format_table

    folder = {"set": "GAN_hands", "fool_rate": 0.8}  # a folder gets no two-sample test; a checkpoint does
    checkpoint = {"set": "gan.pt", "fool_rate": 0.81, "two_sample_accuracy": 0.75}
    header, _, first, second = format_table([folder, checkpoint]).splitlines()
    assert header.split() == ["set", "fool_rate", "two_sample_accuracy"]
    assert first.split() == ["GAN_hands", "0.8"] and second.split() == ["gan.pt", "0.81", "0.75"]
