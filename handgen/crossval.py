"""Cross-validation of the detector on the students' fakes: an out-of-fold prediction for each of them.

The final detector trains on every provided fake, so its own validation can only speak for real hands and our
held-out zoo generators. How it does on students' fakes is measured here: fold k trains the same recipe with
fold k of the provided fakes held out (`detection.generator_folds`). Two schemes:

* "seen models": a quarter of each student model's images is held out; new images of models the detector has
  seen examples of, which is how the fakes of `test_hands/` relate to the provided ones;
* "unseen models": whole models are held out; generators the detector never saw.

Folds are independent (`scripts/cross_validate_detector.py` runs one per process) and append JSON lines.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .classifier import ClassifierConfig, predict_proba
from .detection import (
    PROVIDED_REPEATS,
    REAL,
    DetectorSources,
    LabelledSet,
    fit_detector,
    image_hashes,
    provided_examples,
)
from .metrics import accuracy_by_group, confusion_matrix, per_class_recall

SCHEMES = {"seen models": False, "unseen models": True}  # scheme -> whole models held out


def run_fold(sources: DetectorSources, fold: int, scheme: str = "seen models",
             config: ClassifierConfig | None = None, provided_repeats: int = PROVIDED_REPEATS,
             progress: bool = False) -> list[dict]:
    """Train the detector without fold `fold` of the provided fakes; one JSON-ready row per held-out fake."""
    config = config or ClassifierConfig()
    data = sources.assemble(provided_repeats, validation_fold=fold, whole_models=SCHEMES[scheme])
    started = time.perf_counter()
    model, _ = fit_detector(data.train, config, progress=progress)
    minutes = round((time.perf_counter() - started) / 60, 1)
    held_out = data.validation.subset([i for i, source in enumerate(data.validation.sources)
                                       if source.startswith("provided") and data.validation.labels[i] != REAL])
    probabilities = predict_proba(model, held_out.images)
    return [{"scheme": scheme, "fold": fold, "epochs": config.epochs, "repeats": provided_repeats,
             "minutes": minutes, "source": source,
             "generator": generator, "image": digest, "label": int(label),
             "proba": [round(p, 4) for p in row.tolist()]}
            for source, generator, digest, label, row in zip(held_out.sources, held_out.generators,
                                                             image_hashes(held_out.images), held_out.labels,
                                                             probabilities)]


def append_rows(rows: list[dict], path: str | os.PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("a") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)


@dataclass
class OutOfFold:
    """The out-of-fold predictions of one scheme, with the images they were made on."""

    scheme: str
    folds: list[int]
    held_out: LabelledSet
    probabilities: torch.Tensor  # (N, 3)

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(1).numpy()

    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.held_out.labels.numpy(), self.predicted)

    def summary(self) -> dict:
        """Accuracy, per-source accuracy and per-class recall; how concentrated the errors are by model."""
        truth, predicted = self.held_out.labels.numpy(), self.predicted
        wrong_by_model = accuracy_by_group(truth, predicted, self.held_out.generators)
        return {"scheme": self.scheme, "folds": self.folds, "images": len(truth),
                "accuracy": float(np.mean(truth == predicted)),
                "by_source": accuracy_by_group(truth, predicted, self.held_out.sources),
                "recall": dict(zip(["VAE", "GAN"], per_class_recall(self.confusion())[1:].tolist())),
                "models": len(wrong_by_model),
                "models_with_errors": sum(accuracy < 1 for accuracy in wrong_by_model.values()),
                "models_all_wrong": sum(accuracy == 0 for accuracy in wrong_by_model.values())}


def read_out_of_fold(path: str | os.PathLike, scheme: str = "seen models",
                     provided: LabelledSet | None = None) -> OutOfFold:
    """The rows of `scheme` in `path` (latest run of each fold), joined to the provided images by content hash."""
    rows = {}
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        if row["scheme"] == scheme:
            rows[(row["fold"], row["image"], row["generator"])] = row  # a rerun of a fold replaces it
    rows = list(rows.values())
    if not rows:
        raise ValueError(f"{path} holds no cross-validation rows of scheme {scheme!r}")
    provided = provided if provided is not None else provided_examples(warn=False)
    index = {digest: i for i, digest in enumerate(image_hashes(provided.images))}
    missing = [row["image"] for row in rows if row["image"] not in index]
    if missing:
        raise ValueError(f"{path}: {len(missing)} held-out image(s) not among the provided fakes; rerun the folds")
    held_out = provided.subset([index[row["image"]] for row in rows])
    held_out = dataclasses.replace(held_out, labels=torch.tensor([row["label"] for row in rows]))
    return OutOfFold(scheme, sorted({row["fold"] for row in rows}), held_out,
                     torch.tensor([row["proba"] for row in rows]))
