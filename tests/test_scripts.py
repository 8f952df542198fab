import importlib.util
from pathlib import Path

import numpy as np


def load_script(name: str):
    path = Path(__file__).parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spectral_statistics_tell_blur_from_noise_and_stacking_scores_each_fold_out_of_sample():
    stacking = load_script("spectral_stacking")
    rng = np.random.default_rng(0)
    noisy = rng.random((40, 32, 32))
    blurred = (noisy + np.roll(noisy, 1, 1) + np.roll(noisy, 1, 2) + np.roll(noisy, (1, 1), (1, 2))) / 4
    statistics = stacking.image_statistics(np.concatenate([noisy, blurred]))
    assert statistics.shape == (80, stacking.RINGS + 7)
    highest_ring = statistics[:, stacking.RINGS - 1]
    assert highest_ring[:40].min() > highest_ring[40:].max()         # blur removes the high frequencies
    labels = np.array([2] * 40 + [1] * 40)
    folds = np.tile(np.arange(4), 20)
    assert np.mean(stacking.stacked_predictions(statistics, labels, folds) == labels) > 0.95
    # noise labels: near chance out of sample, where fitting in sample (60 features, 60 images) would be ~100%
    shuffled = rng.permutation(labels)
    assert np.mean(stacking.stacked_predictions(rng.random((80, 60)), shuffled, folds) == shuffled) < 0.75
