"""The yardstick: realism figures our generators cannot game, and pixel statistics beside them.

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

Both see the images as JPEG files, as the real hands and the committed samples are stored. The pixel figures (FID,
KID, precision and recall in the space of principal components of pixels, the copy share, the share of black
pixels) cannot be fooled by any network, but cannot see fine detail either.
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
from .classifier import Detector, DetectorConfig, predict_proba
from .data import REAL, LabelledSet, jpeg_round_trip, load_folder, real_hands_split
from .detection import DataRecipe, build_detector_data, provided_examples
from .metrics import PixelPCA, copy_share, frechet_distance, kernel_distance, precision_recall, wilson_interval
from .runtime import CHECKPOINTS, preserved_random_state
from .sample import generate, is_sampler
from .train import train_detector

# the detector's network and training recipe without any generated fakes, deciding by plain argmax
JUDGE_CONFIG = DetectorConfig(decision_offsets=(0.0, 0.0, 0.0), copy_threshold=0.0, reencode=0.0, views=(),
                              as_given=True)
JUDGE_RECIPE = DataRecipe(generated_fakes=False)
# the confirmation judge: same data rules, another architecture and seed; it is never used to choose anything
CONFIRMATION_CONFIG = DetectorConfig(architecture="residual", seed=1, decision_offsets=(0.0, 0.0, 0.0),
                                     copy_threshold=0.0, reencode=0.0, views=(), as_given=True)
# fields added to the configs after the first judge was keyed: at these values they leave its key as it was
KEYED_SINCE = {"architecture": "plain", "copy_threshold": 0.0, "reencode": 0.0, "views": (), "as_given": True}
# a lighter recipe for the two-sample test, trained once per fold
TWO_SAMPLE_CONFIG = DetectorConfig(epochs=8, decision_offsets=(0.0, 0.0, 0.0), copy_threshold=0.0, reencode=0.0,
                                   views=(), as_given=True)
TWO_SAMPLE_FOLDS = 5
TWO_SAMPLE_SIZE = 2000  # samples (and as many real hands) per test
SAMPLE = 1              # the two-sample test's label for the set under test (real hands are REAL = 0)
BLACK_LEVEL = 10        # a pixel below this grey level counts as background


def judge_training_set(real_train: torch.Tensor, real_holdout: torch.Tensor, provided: LabelledSet,
                       recipe: DataRecipe = JUDGE_RECIPE) -> LabelledSet:
    """Real training hands (N, 1, 32, 32) against the provided students' fakes, as the detector's data recipe
    assembles them without generated fakes: the provided real hands (which are among the real hands, held-out ones
    included) and any fake identical to a real hand are left out."""
    if recipe.generated_fakes or recipe.validation_fold != -1:
        raise ValueError("the judge learns from real hands and every provided fake only (generated_fakes=False, "
                         "validation_fold=-1)")
    return build_detector_data(real_train, real_holdout, provided, LabelledSet.concat([]), recipe).train


def judge_key(training: LabelledSet, config: DetectorConfig = JUDGE_CONFIG, recipe: DataRecipe = JUDGE_RECIPE) -> str:
    """A short hash of the judge's images, labels, config and recipe: the cache key of its checkpoint."""
    settings = {**dataclasses.asdict(config), **dataclasses.asdict(recipe)}
    settings = {key: value for key, value in settings.items() if key not in KEYED_SINCE or value != KEYED_SINCE[key]}
    digest = hashlib.blake2b(repr(sorted(settings.items())).encode(), digest_size=6)
    digest.update(training.images.numpy().tobytes())
    digest.update(training.labels.numpy().tobytes())
    return digest.hexdigest()


def train_judge(real_train: torch.Tensor, real_holdout: torch.Tensor, provided: LabelledSet,
                folder: str | os.PathLike = CHECKPOINTS, config: DetectorConfig = JUDGE_CONFIG,
                recipe: DataRecipe = JUDGE_RECIPE, progress: bool = True) -> tuple[Detector, Path]:
    """The judge (see `judge_training_set`) from `folder/judge-<key>.pt`, trained (resumably) only if it is not
    there yet; the key hashes its training images, labels, config and recipe."""
    training = judge_training_set(real_train, real_holdout, provided, recipe)
    path = Path(folder) / f"judge-{judge_key(training, config, recipe)}.pt"
    if path.is_file() and read_checkpoint(path)["epoch"] >= config.epochs:
        model, _ = load_model(path)
        return model, path
    model = Detector(config)
    train_detector(model, training.images, training.labels, config, recipe=recipe, checkpoint=path,
                   progress=progress)
    strip_optimizer_state(path)  # weights, config and history: small enough to commit
    return model.cpu().eval(), path


def fool_rate(judge: Detector, images: torch.Tensor) -> dict[str, float]:
    """Share of uint8 images (N, 1, 32, 32) the judge calls real, with its 95% interval."""
    called_real = int((predict_proba(judge, images).argmax(dim=1) == REAL).sum())
    low, high = wilson_interval(called_real, len(images))
    return {"fool_rate": called_real / len(images), "fool_rate_low": low, "fool_rate_high": high,
            "fool_rate_n": len(images)}


def two_sample_test(images: torch.Tensor, real: torch.Tensor, config: DetectorConfig = TWO_SAMPLE_CONFIG,
                    folds: int = TWO_SAMPLE_FOLDS, seed: int = 0) -> dict[str, float]:
    """k-fold accuracy (with its 95% interval) of fresh networks telling uint8 `images` from `real` hands.

    Both sets are cut to the smaller size, so 0.5 is chance; each fold's network is trained on the other folds.
    The caller's random state is left as it was.
    """
    with preserved_random_state():
        return _two_sample_test(images, real, config, folds, seed)


def _two_sample_test(images: torch.Tensor, real: torch.Tensor, config: DetectorConfig, folds: int,
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
        network = Detector(dataclasses.replace(config, seed=config.seed + fold))
        train_detector(network, data[~held_out], labels[~held_out], network.config, progress=False)
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
    pixel figures only. `judge=None` or `two_sample=False` leaves those figures out. The `confirmation` judge's
    fool rate (keys `confirmation_fool_rate...`) stands beside the judge's: it decided nothing, so selection on the
    judge cannot have biased it.
    """

    def __init__(self, train: torch.Tensor, holdout: torch.Tensor, judge: Detector | None = None,
                 two_sample: bool = True, size: int = TWO_SAMPLE_SIZE,
                 two_sample_config: DetectorConfig = TWO_SAMPLE_CONFIG, seed: int = 0,
                 confirmation: Detector | None = None):
        """`size`: most images a side of a two-sample test (a quick mode may shrink it and `two_sample_config`)."""
        self.holdout, self.judge, self.two_sample, self.size = holdout, judge, two_sample, size
        self.confirmation = confirmation
        self.two_sample_config = two_sample_config
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
        half = min(size, len(train) // 2)
        self.real_draw, self.other_real_draw = train[order[:half]], train[order[half:2 * half]]
        self.pixels = PixelStatistics(train.numpy(), holdout.numpy())

    def row(self, name: str, images: torch.Tensor) -> dict[str, float | str]:
        """The figures of one set, rounded to three decimals."""
        row: dict[str, float | str] = {"set": name, "n": len(images)}
        row.update(self._fool_rates(images))
        if self.two_sample and len(images) >= self.size:
            row.update(two_sample_test(images[:self.size], self.real_draw, self.two_sample_config))
        row.update(self.pixels.row(images.numpy()))
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()}

    def floor(self, two_sample: bool = True) -> dict[str, float | str]:
        """What real hands score: the judge on held-out hands, two draws of training hands against each other."""
        row: dict[str, float | str] = {"set": REAL_FLOOR, "n": len(self.holdout)}
        row.update(self._fool_rates(self.holdout))
        if self.two_sample and two_sample:
            row.update(two_sample_test(self.other_real_draw, self.real_draw, self.two_sample_config))
        row.update(self.pixels.row(self.pixels.floor))
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()}

    def _fool_rates(self, images: torch.Tensor) -> dict[str, float]:
        rates = fool_rate(self.judge, images) if self.judge is not None else {}
        if self.confirmation is not None:
            rates.update({f"confirmation_{key}": value for key, value in fool_rate(self.confirmation, images).items()})
        return rates

    def table(self, sets: dict[str, torch.Tensor]) -> list[dict[str, float | str]]:
        """One row per set, then the real floor (with a two-sample test if any set had one)."""
        rows = [self.row(name, images) for name, images in sets.items()]
        return rows + [self.floor(two_sample=any("two_sample_accuracy" in row for row in rows))]


REAL_FLOOR = "real hands (floor)"


def build_yardstick(real: str | os.PathLike | None = None, judge_folder: str | os.PathLike = CHECKPOINTS,
                    two_sample: bool = True, quick: bool = False, progress: bool = True) -> Yardstick:
    """The yardstick on the generators' split of the real hands, with the judge and the confirmation judge from
    `judge_folder` (trained there first if their data or config changed). Quick mode (a smoke run): two-sample tests
    of 100 images, one epoch."""
    train, holdout = real_hands_split(real)
    provided = provided_examples(warn=False)
    judge, _ = train_judge(train.images, holdout.images, provided, judge_folder, progress=progress)
    confirmation, _ = train_judge(train.images, holdout.images, provided, judge_folder, CONFIRMATION_CONFIG,
                                  progress=progress)
    if quick:
        return Yardstick(train.images, holdout.images, judge, two_sample, size=100, confirmation=confirmation,
                         two_sample_config=dataclasses.replace(TWO_SAMPLE_CONFIG, epochs=1, batch_size=32))
    return Yardstick(train.images, holdout.images, judge, two_sample, confirmation=confirmation)


SAMPLES_PER_CHECKPOINT = TWO_SAMPLE_SIZE


def images_of(source: str | os.PathLike, n: int = SAMPLES_PER_CHECKPOINT) -> torch.Tensor:
    """uint8 images of a folder of JPEGs, or `n` fresh samples of a generator checkpoint stored as JPEGs would be."""
    if Path(source).is_file():
        model, _ = load_model(source)
        if not is_sampler(model):
            raise ValueError(f"{source} holds a {type(model).__name__}, not a generator")
        return jpeg_round_trip(generate(model, n, seed=1))
    return load_folder(source).images
