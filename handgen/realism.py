"""Realism figures our generators cannot game: an independent judge's fool rate and a two-sample test.

Pixel FID, KID and precision/recall sit at the real floor for every generator we made, yet a CNN calls
almost all of our samples fake: pixel statistics cannot see fine detail. Two figures that can:

* **The judge.** The detector's network and recipe, trained from scratch on the generators' training hands
  against the students' provided fakes only: never on an image of ours, never on the held-out real hands.
  Fool rate = the share of a set it calls real, with a 95% Wilson interval. Its floor is the rate of the
  held-out real hands, which it never saw.
* **The two-sample test** (C2ST, Lopez-Paz & Oquab 2017). A fresh network learns to tell a set from as many
  real training hands; its k-fold accuracy, with a 95% interval, is the figure: 0.5 means indistinguishable.
  Its floor is real training hands against other real training hands. A generator that copied training
  hands would reach that floor and no lower, as a perfect one would: the copy share tells the two apart.

Both see the images as JPEG files, as the real hands and the committed samples are stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from .checkpoint import load_model, read_checkpoint, strip_optimizer_state
from .classifier import ClassifierConfig, HandClassifier, predict_proba
from .detection import LabelledSet, build_detector_data
from .families import REAL
from .metrics import wilson_interval
from .runtime import preserved_random_state
from .train import train_classifier

# the detector's network and training recipe without any generated fakes, deciding by plain argmax
JUDGE_CONFIG = ClassifierConfig(decision_offsets=(0.0, 0.0, 0.0), generated_fakes=False)
# a lighter recipe for the two-sample test, trained once per fold
TWO_SAMPLE_CONFIG = ClassifierConfig(epochs=8, decision_offsets=(0.0, 0.0, 0.0))
TWO_SAMPLE_FOLDS = 5
TWO_SAMPLE_SIZE = 2000  # samples (and as many real hands) per test
SAMPLE = 1              # the two-sample test's label for the set under test (real hands are REAL = 0)


def judge_training_set(real_train: torch.Tensor, real_holdout: torch.Tensor, provided: LabelledSet,
                       config: ClassifierConfig = JUDGE_CONFIG) -> LabelledSet:
    """Real training hands (N, 1, 32, 32) against the provided students' fakes, as the detector's data recipe
    assembles them without generated fakes: the provided real hands (which are among the real hands, held-out ones
    included) and any fake identical to a real hand are left out."""
    if config.generated_fakes or config.validation_fold != -1:
        raise ValueError("the judge learns from real hands and every provided fake only (generated_fakes=False, "
                         "validation_fold=-1)")
    return build_detector_data(real_train, real_holdout, provided, LabelledSet.concat([]), config).train


def judge_key(training: LabelledSet, config: ClassifierConfig = JUDGE_CONFIG) -> str:
    """A short hash of the judge's images, labels and config: the cache key of its checkpoint."""
    digest = hashlib.blake2b(repr(sorted(dataclasses.asdict(config).items())).encode(), digest_size=6)
    digest.update(training.images.numpy().tobytes())
    digest.update(training.labels.numpy().tobytes())
    return digest.hexdigest()


def train_judge(real_train: torch.Tensor, real_holdout: torch.Tensor, provided: LabelledSet,
                folder: str | os.PathLike = "checkpoints", config: ClassifierConfig = JUDGE_CONFIG,
                progress: bool = True) -> tuple[HandClassifier, Path]:
    """The judge (see `judge_training_set`) from `folder/judge-<key>.pt`, trained (resumably) only if it is not
    there yet; the key hashes its training images, labels and config."""
    training = judge_training_set(real_train, real_holdout, provided, config)
    path = Path(folder) / f"judge-{judge_key(training, config)}.pt"
    if path.is_file() and read_checkpoint(path)["epoch"] >= config.epochs:
        model, _ = load_model(path)
        return model, path
    model = HandClassifier(config)
    train_classifier(model, training.images, training.labels, config, checkpoint=path, progress=progress)
    strip_optimizer_state(path)  # weights, config and history: small enough to commit
    return model.cpu().eval(), path


def fool_rate(judge: HandClassifier, images: torch.Tensor) -> dict[str, float]:
    """Share of uint8 images (N, 1, 32, 32) the judge calls real, with its 95% interval."""
    called_real = int((predict_proba(judge, images).argmax(dim=1) == REAL).sum())
    low, high = wilson_interval(called_real, len(images))
    return {"fool_rate": called_real / len(images), "fool_rate_low": low, "fool_rate_high": high,
            "fool_rate_n": len(images)}


def two_sample_test(images: torch.Tensor, real: torch.Tensor, config: ClassifierConfig = TWO_SAMPLE_CONFIG,
                    folds: int = TWO_SAMPLE_FOLDS, seed: int = 0) -> dict[str, float]:
    """k-fold accuracy (with its 95% interval) of fresh networks telling uint8 `images` from `real` hands.

    Both sets are cut to the smaller size, so 0.5 is chance; each fold's network is trained on the other folds.
    The caller's random state is left as it was.
    """
    with preserved_random_state():
        return _two_sample_test(images, real, config, folds, seed)


def _two_sample_test(images: torch.Tensor, real: torch.Tensor, config: ClassifierConfig, folds: int,
                     seed: int) -> dict[str, float]:
    n = min(len(images), len(real))
    if n < 2 * folds:
        raise ValueError(f"a {folds}-fold two-sample test needs at least {2 * folds} images a side, got {n}")
    data = torch.cat([real[:n], images[:n]])
    labels = torch.cat([torch.full((n,), REAL), torch.full((n,), SAMPLE)])
    fold_of = torch.randperm(2 * n, generator=torch.Generator().manual_seed(seed)) % folds
    correct = 0
    for fold in range(folds):
        held_out = fold_of == fold
        network = HandClassifier(dataclasses.replace(config, seed=config.seed + fold))
        train_classifier(network, data[~held_out], labels[~held_out], network.config, progress=False)
        probabilities = predict_proba(network.cpu(), data[held_out])
        predicted = torch.where(probabilities[:, SAMPLE] > probabilities[:, REAL], SAMPLE, REAL)
        correct += int((predicted == labels[held_out]).sum())
    low, high = wilson_interval(correct, 2 * n)
    return {"two_sample_accuracy": correct / (2 * n), "two_sample_low": low, "two_sample_high": high,
            "two_sample_n": 2 * n}


def blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """uint8 images (N, 1, 32, 32) under a Gaussian blur of `sigma` pixels: a visibly worse set for checks."""
    smooth = gaussian_filter(images.numpy().astype(np.float64), sigma=(0, 0, sigma, sigma), mode="nearest")
    return torch.from_numpy(np.clip(np.round(smooth), 0, 255).astype(np.uint8))
