"""Cross-validation of the detector on the students' fakes: an out-of-fold prediction for each of them.

The final detector trains on every provided fake, so its own validation can only speak for real hands and our
held-out zoo generators. How it does on students' fakes is measured here: fold k trains the same recipe with
fold k of the provided fakes held out (`detection.model_folds`). Two schemes:

* "seen models": a quarter of each student model's images is held out; new images of models the detector has
  seen examples of, which is how the fakes of `test_hands/` relate to the provided ones;
* "unseen models": whole models are held out; generators the detector never saw.

Folds are independent (`python -m handgen crossval --fold K` runs one per process) and append JSON lines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from .classifier import DetectorConfig, predict_proba
from .data import LABELS, REAL, LabelledSet, image_hashes
from .detection import HELD_OUT_REALS, DataRecipe, DetectorSources, provided_examples
from .metrics import accuracy_by_group, confusion_matrix, per_class_recall
from .results import read_rows
from .train import fit_detector

SCHEMES = {"seen models": False, "unseen models": True}  # scheme -> whole models held out
FOLD_FIELDS = ("validation_fold", "whole_models")          # what differs between the folds of one recipe


def recipe_name(config: DetectorConfig, recipe: DataRecipe, sources: DetectorSources) -> str:
    """A recipe as the config and data-recipe fields that differ from the defaults, plus a hash of the generated
    fakes it saw; decision offsets are no part of it (rows are read back before them)."""
    default = {**dataclasses.asdict(DetectorConfig()), **dataclasses.asdict(DataRecipe())}
    settings = {**dataclasses.asdict(config), **dataclasses.asdict(recipe)}
    changed = [f"{key} {value}" for key, value in settings.items()
               if key not in (*FOLD_FIELDS, "decision_offsets") and value != default[key]]
    generated = hashlib.blake2b(sources.generated.images.numpy().tobytes(), digest_size=3).hexdigest()
    return ", ".join(changed or ["defaults"]) + f"; generated fakes {generated}"


def run_fold(sources: DetectorSources, fold: int, scheme: str = "seen models",
             config: DetectorConfig | None = None, recipe: DataRecipe | None = None,
             checkpoint: str | os.PathLike | None = None, progress: bool = False) -> list[dict]:
    """Train the detector without fold `fold` of the provided fakes; one JSON-ready row per held-out fake and per
    held-out real hand (those tell what a change of decision rule costs the real class). A `checkpoint` keeps the
    fold's model (and resumes it)."""
    config = config or DetectorConfig()
    recipe = dataclasses.replace(recipe or DataRecipe(), validation_fold=fold, whole_models=SCHEMES[scheme])
    data = sources.assemble(recipe)
    started = time.perf_counter()
    model, _ = fit_detector(data.train, config, recipe, checkpoint=checkpoint, progress=progress)
    minutes = round((time.perf_counter() - started) / 60, 1)
    held_out = data.validation.subset([i for i, source in enumerate(data.validation.sources)
                                       if is_provided_fake(source, data.validation.labels[i])
                                       or source == HELD_OUT_REALS])
    name = recipe_name(config, recipe, sources)
    return [{"scheme": scheme, "fold": fold, "recipe": name, "offsets": list(config.decision_offsets),
             "minutes": minutes, "source": source, "model": model_name, "image": digest, "label": int(label),
             "proba": [round(p, 4) for p in row.tolist()]}
            for source, model_name, digest, label, row in zip(held_out.sources, held_out.models,
                                                              image_hashes(held_out.images), held_out.labels,
                                                              predict_proba(model, held_out.images))]


def is_provided_fake(source: str, label: int) -> bool:
    return source.startswith("provided") and label != REAL


@dataclass
class OutOfFold:
    """The out-of-fold predictions of one scheme and recipe, with the images they were made on; probabilities
    are before decision offsets, which `decide` applies."""

    scheme: str
    recipe: str
    folds: list[int]
    held_out: LabelledSet            # the provided fakes held out
    probabilities: torch.Tensor      # (N, 3)
    fake_folds: np.ndarray           # (N,) the fold of each
    real_probabilities: torch.Tensor  # (M, 3) the generators' held-out real hands, as each fold's model saw them
    real_folds: np.ndarray           # (M,)
    real_images: list[str] | None = None  # (M,) the content hash of each, the same hand under every fold

    def decide(self, offsets=(0.0, 0.0, 0.0), real: bool = False) -> np.ndarray:
        """Labels of the held-out fakes (or real hands) with `offsets` added to the log-probabilities."""
        probabilities = self.real_probabilities if real else self.probabilities
        return _decide(probabilities, offsets)

    def confusion(self, offsets=(0.0, 0.0, 0.0), once: bool = False) -> np.ndarray:
        """Confusion matrix (3, 3) over the held-out fakes and real hands; every fold's model sees the 500 held-out
        real hands, and `once` counts each of them once, its probabilities averaged over the folds."""
        reals = self.real_probabilities
        if once and self.real_images is not None:
            by_hand: dict[str, list[torch.Tensor]] = {}
            for digest, row in zip(self.real_images, reals):
                by_hand.setdefault(digest, []).append(row)
            reals = torch.stack([torch.stack(rows).mean(0) for rows in by_hand.values()]).reshape(-1, 3)
        truth = np.concatenate([self.held_out.labels.numpy(), np.full(len(reals), REAL)])
        predicted = np.concatenate([self.decide(offsets), _decide(reals, offsets)])
        return confusion_matrix(truth, predicted)

    def summary(self, offsets=(0.0, 0.0, 0.0)) -> dict:
        """Accuracy on the fakes, per source and per class (real hands too); how concentrated the errors are."""
        truth, predicted = self.held_out.labels.numpy(), self.decide(offsets)
        wrong_by_model = accuracy_by_group(truth, predicted, self.held_out.models)
        return {"scheme": self.scheme, "recipe": self.recipe, "folds": self.folds, "images": len(truth),
                "accuracy": float(np.mean(truth == predicted)),
                "by_source": accuracy_by_group(truth, predicted, self.held_out.sources),
                "recall": dict(zip(LABELS.values(), per_class_recall(self.confusion(offsets)).tolist())),
                "models": len(wrong_by_model),
                "models_with_errors": sum(accuracy < 1 for accuracy in wrong_by_model.values()),
                "models_all_wrong": sum(accuracy == 0 for accuracy in wrong_by_model.values())}

    def on_folds(self, folds) -> OutOfFold:
        """The predictions of `folds` only: recipes run on different folds compare on the folds they share."""
        fakes, reals = np.isin(self.fake_folds, folds), np.isin(self.real_folds, folds)
        images = [d for d, keep in zip(self.real_images, reals) if keep] if self.real_images is not None else None
        return OutOfFold(self.scheme, self.recipe, [f for f in self.folds if f in folds],
                         self.held_out.subset(torch.from_numpy(fakes)), self.probabilities[fakes],
                         self.fake_folds[fakes], self.real_probabilities[reals], self.real_folds[reals], images)

    def model_weights(self) -> np.ndarray:
        """A weight for each held-out fake: 1 over the number of its model's held-out images, so every student
        model counts once, as in `test_hands/` (about 30 images of each)."""
        counts = Counter(self.held_out.models)
        return np.array([1.0 / counts[model] for model in self.held_out.models])

    def recalls(self, offsets=(0.0, 0.0, 0.0), by_model: bool = False) -> list[float]:
        """Recall of real, VAE and GAN; the fakes' averaged over models (`by_model`) or over images."""
        truth, right = self.held_out.labels.numpy(), self.decide(offsets) == self.held_out.labels.numpy()
        weights = self.model_weights() if by_model else np.ones(len(truth))
        fakes = [float(np.average(right[truth == label], weights=weights[truth == label])) for label in (1, 2)]
        return [float(np.mean(self.decide(offsets, real=True) == REAL)), *fakes]

    def balanced_accuracy(self, offsets=(0.0, 0.0, 0.0), folds=None, by_model: bool = False) -> float:
        """Mean recall of real, VAE and GAN (optionally on some folds only, the fakes optionally weighted by
        model): what decision offsets maximise."""
        if folds is not None:
            return self.on_folds(folds).balanced_accuracy(offsets, by_model=by_model)
        return float(np.mean(self.recalls(offsets, by_model)))

    def expected_accuracy(self, offsets, real_share: float, draws: int = 2000, seed: int = 0) -> dict[str, float]:
        """The accuracy to expect on a folder where `real_share` of the images are real hands and every fake model
        has as many images (`test_hands/`), with a 95% interval from a bootstrap over the held-out models and real
        hands: the spread of the models is the uncertainty."""
        rng = np.random.default_rng(seed)
        right = self.decide(offsets) == self.held_out.labels.numpy()
        by_model = {}
        for model, hit in zip(self.held_out.models, right):
            by_model.setdefault(model, []).append(hit)
        accuracies = np.array([np.mean(hits) for hits in by_model.values()])
        real_right = self.decide(offsets, real=True) == REAL
        point = real_share * real_right.mean() + (1 - real_share) * accuracies.mean()
        boot = [real_share * rng.choice(real_right, len(real_right)).mean()
                + (1 - real_share) * rng.choice(accuracies, len(accuracies)).mean() for _ in range(draws)]
        low, high = np.percentile(boot, [2.5, 97.5])
        return {"expected_accuracy": float(point), "expected_low": float(low), "expected_high": float(high),
                "models": len(accuracies)}


def _decide(probabilities: torch.Tensor, offsets) -> np.ndarray:
    return (probabilities.clamp_min(1e-4).log() + torch.tensor(offsets)).argmax(1).numpy()


OFFSET_GRID = np.arange(0.0, 2.01, 0.25)


def offsets_for(gan_offset: float) -> tuple[float, float, float]:
    return (0.0, 0.0, float(gan_offset))


def fit_decision_offsets(out_of_fold: OutOfFold, folds=None, by_model: bool = False) -> tuple[float, float, float]:
    """The GAN offset on a grid that maximises the balanced accuracy of `out_of_fold` (on `folds`, fakes weighted
    by model if `by_model`); the smallest among equals. Training balances the classes by weight, yet errs towards
    VAE and real on the students' GAN hands; a prior shift fitted on held-out predictions corrects that (one
    parameter: a second, for real, only added noise in cross-fitting)."""
    return max((offsets_for(g) for g in OFFSET_GRID),
               key=lambda offsets: (out_of_fold.balanced_accuracy(offsets, folds, by_model), -offsets[2]))


def cross_fitted_balanced_accuracy(out_of_fold: OutOfFold, by_model: bool = False) -> float:
    """Each fold decided with the offset fitted on the other folds: an honest figure for a fitted offset."""
    scores = []
    for fold in out_of_fold.folds:
        others = [f for f in out_of_fold.folds if f != fold]
        offsets = fit_decision_offsets(out_of_fold, others, by_model)
        scores.append(out_of_fold.balanced_accuracy(offsets, [fold], by_model))
    return float(np.mean(scores))


def offset_table(out_of_fold: OutOfFold) -> list[dict]:
    """Balanced accuracy (by image and by model) and recall of each class at each GAN offset of the grid."""
    rows = []
    for gan_offset in OFFSET_GRID:
        offsets = offsets_for(gan_offset)
        recall = out_of_fold.summary(offsets)["recall"]
        rows.append({"GAN offset": round(float(gan_offset), 2),
                     "balanced, by image": round(out_of_fold.balanced_accuracy(offsets), 4),
                     "balanced, by model": round(out_of_fold.balanced_accuracy(offsets, by_model=True), 4),
                     **{f"recall {name}": round(value, 3) for name, value in recall.items()}})
    return rows


def schemes_in(path: str | os.PathLike) -> list[str]:
    """The schemes of `SCHEMES` that a file has rows of, in `SCHEMES` order."""
    present = {row["scheme"] for row in read_rows(path)}
    return [scheme for scheme in SCHEMES if scheme in present]


def read_out_of_fold(path: str | os.PathLike, scheme: str = "seen models",
                     provided: LabelledSet | None = None, recipe: str | None = None) -> OutOfFold:
    """The rows of `scheme` and `recipe` (default: that of the scheme's latest row) in `path`, the latest run of
    each fold; fakes joined to the provided images by content hash."""
    rows = read_rows(path, scheme=scheme)
    if not rows:
        raise ValueError(f"{path} holds no cross-validation rows of scheme {scheme!r}")
    recipe = recipe or rows[-1]["recipe"]
    latest = {}
    for row in rows:
        if row["recipe"] == recipe:
            latest[(row["fold"], row["image"], row["model"], row["source"])] = row  # a rerun replaces it
    fakes = [row for row in latest.values() if is_provided_fake(row["source"], row["label"])]
    reals = [row for row in latest.values() if row["source"] == HELD_OUT_REALS]
    provided = provided if provided is not None else provided_examples(warn=False)
    index = {digest: i for i, digest in enumerate(image_hashes(provided.images))}
    missing = [row["image"] for row in fakes if row["image"] not in index]
    if missing:
        raise ValueError(f"{path}: {len(missing)} held-out image(s) not among the provided fakes; rerun the folds")
    held_out = provided.subset([index[row["image"]] for row in fakes])
    held_out = dataclasses.replace(held_out, labels=torch.tensor([row["label"] for row in fakes]))

    def undecided(row: dict) -> list[float]:
        """The row's probabilities before the offsets its model decided with."""
        scores = torch.tensor(row["proba"]).clamp_min(1e-4).log() - torch.tensor(row.get("offsets", [0.0] * 3))
        return scores.softmax(0).tolist()

    return OutOfFold(scheme, recipe, sorted({row["fold"] for row in fakes}), held_out,
                     torch.tensor([undecided(row) for row in fakes]), np.array([row["fold"] for row in fakes]),
                     torch.tensor([undecided(row) for row in reals]).reshape(-1, 3),
                     np.array([row["fold"] for row in reals], dtype=int), [row["image"] for row in reals])

