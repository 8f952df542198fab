"""Transductive check: does averaging a hand's decision with those of its nearest `test_hands/` images help?

The fakes of `test_hands/` come from the students' models, about 30 images each; if images of one model could be
found together, a vote among them would correct scattered mistakes (cross-validation puts about half of the
detector's errors in models whose other images it gets right). For each fold of the seen-models scheme, with that
fold's detector (e.g. `scripts/cross_validate_detector.py --checkpoint`), every held-out fake and held-out real
hand is decided on `log p(image) + beta * mean log p(k nearest test images)`, neighbours found in one of two spaces:

* `detector`: the detector's penultimate features;
* `identity`: a network trained, on the other folds' provided fakes, to tell which student model made an image
  (the provided folders name the models; see `detection.models_of`).

    python scripts/neighbour_smoothing.py --checkpoints F0.pt F1.pt F2.pt F3.pt [--pool test_hands] [--out FILE]

Prints and appends the balanced accuracy (real, VAE, GAN recall) for each space, k and beta (beta 0 is the
detector alone), and how often a held-out fake's nearest training fake in that space was made by the same model.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from handgen.checkpoint import load_model
from handgen.classifier import MemberNetwork, predict_proba
from handgen.data import REAL_HANDS, generator_split, load_folder, random_translate, to_float
from handgen.detection import PROVIDED_FOLDS, REAL, generator_folds, provided_examples
from handgen.metrics import confusion_matrix, per_class_recall
from handgen.runtime import seeded

NEIGHBOURS = (5, 10, 20)
BETAS = (0.0, 0.25, 0.5, 1.0, 2.0)


def identity_network(images: torch.Tensor, models: list[str], epochs: int = 60, seed: int = 0) -> nn.Module:
    """A detector-shaped CNN trained to name the model of each image (shift and mirror augmented); seeded."""
    names = sorted(set(models))
    targets = torch.tensor([names.index(model) for model in models])
    with seeded(seed):
        network = MemberNetwork(width=32, dropout=0.3)
        network.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(network.head[1].in_features, len(names)))
        optimiser = torch.optim.AdamW(network.parameters(), 2e-3, weight_decay=1e-4)
        steps = epochs * -(-len(images) // 64)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=steps)
        inputs = to_float(images)
        network.train()
        for _ in range(epochs):
            for batch in torch.randperm(len(images)).split(64):
                views = random_translate(inputs[batch], 2)
                views = torch.where(torch.rand(len(batch), 1, 1, 1) < 0.5, views.flip(-1), views)
                loss = F.cross_entropy(network(views), targets[batch], label_smoothing=0.1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
    return network.eval()


@torch.inference_mode()
def embedding(features, images: torch.Tensor) -> np.ndarray:
    """Unit-length features of images and their mirrors (summed), in batches."""
    chunks = [features(to_float(chunk)) + features(to_float(chunk).flip(-1)) for chunk in images.split(256)]
    return F.normalize(torch.cat(chunks), dim=1).numpy()


def smoothed_decisions(queries: np.ndarray, pool: np.ndarray, query_proba: np.ndarray, pool_proba: np.ndarray,
                       k: int, beta: float) -> np.ndarray:
    """Labels from each query's log-probabilities plus beta times the mean of its k nearest pool images'."""
    nearest = np.argpartition(-(queries @ pool.T), k, axis=1)[:, :k]
    log_query, log_pool = np.log(np.clip(query_proba, 1e-4, 1)), np.log(np.clip(pool_proba, 1e-4, 1))
    return (log_query + beta * log_pool[nearest].mean(axis=1)).argmax(axis=1)


def same_model_share(queries: np.ndarray, references: np.ndarray, query_models: list[str],
                     reference_models: list[str]) -> float:
    """How often a query's nearest reference was made by the same student model: how well a space finds a model."""
    nearest = (queries @ references.T).argmax(axis=1)
    return float(np.mean([reference_models[j] == model for j, model in zip(nearest, query_models)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", nargs=PROVIDED_FOLDS, required=True, help="fold 0, 1, 2, 3 detectors")
    parser.add_argument("--pool", default="test_hands", help="unlabelled folder the neighbours come from")
    parser.add_argument("--out", default="results/neighbour_smoothing.jsonl")
    args = parser.parse_args()
    provided = provided_examples(warn=False)
    fakes = provided.subset(provided.labels != REAL)
    folds = generator_folds(fakes.generators, PROVIDED_FOLDS).numpy()
    _, holdout = generator_split(load_folder(REAL_HANDS, warn=False))
    pool = load_folder(args.pool, warn=False).images
    per_fold, recipes = [], set()
    for fold, path in enumerate(args.checkpoints):
        detector, config = load_model(path)
        recipes.add(f"width {config.width}, {config.epochs} epochs, seed {config.seed}, mirror {config.mirror}")
        queries = torch.cat([fakes.images[torch.from_numpy(folds == fold)], holdout.images])
        labels = np.concatenate([fakes.labels.numpy()[folds == fold], np.full(len(holdout), REAL)])
        training = np.flatnonzero(folds != fold)
        identity = identity_network(fakes.images[training], [fakes.generators[i] for i in training], seed=fold)
        spaces = {"detector": detector.eval().embed, "identity": identity.features}
        per_fold.append({"labels": labels, "query_proba": predict_proba(detector, queries).numpy(),
                         "pool_proba": predict_proba(detector, pool).numpy(),
                         **{name: (embedding(f, queries), embedding(f, pool)) for name, f in spaces.items()}})
        held_out = np.flatnonzero(folds == fold)
        per_fold[-1]["same_model"] = {
            name: same_model_share(per_fold[-1][name][0][:len(held_out)], embedding(f, fakes.images[training]),
                                   [fakes.generators[i] for i in held_out], [fakes.generators[i] for i in training])
            for name, f in spaces.items()}
        print(f"fold {fold}: {len(queries)} held-out images, {len(pool)} in the pool; nearest training fake made by "
              f"the same model: {per_fold[-1]['same_model']}", flush=True)
    rows = []
    for space in ("detector", "identity"):
        for k in NEIGHBOURS:
            for beta in BETAS:
                decided = [smoothed_decisions(*f[space], f["query_proba"], f["pool_proba"], k, beta) for f in per_fold]
                recalls = per_class_recall(confusion_matrix(np.concatenate([f["labels"] for f in per_fold]),
                                                            np.concatenate(decided))).tolist()
                score = float(np.mean(recalls))
                same_model = float(np.mean([f["same_model"][space] for f in per_fold]))
                rows.append({"space": space, "same_model": round(same_model, 4), "k": k, "beta": beta,
                             "balanced_accuracy": round(score, 4),
                             "recall": [round(r, 4) for r in recalls], "detectors": sorted(recipes)})
                print(f"{space:9s} k={k:2d} beta={beta:4.2f}: balanced {score:.4f}, recall real/VAE/GAN "
                      + " / ".join(f"{r:.3f}" for r in recalls))
    with open(args.out, "a") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)


if __name__ == "__main__":
    main()
