"""Full-length check of a study's winner against the committed default model (appends to results/tuned_check.jsonl).

Short trials favour configurations that start fast, so a winner replaces a default only if it also wins at full
length. The winner is trained with the default's epochs (resuming from runs/tuned/<family>.pt if interrupted),
then both are scored the same way: generators by KID and FID (pixel-PCA space) of 3 x 500 samples against all 500
held-out real hands; the detector by its source-balanced accuracy on the generator-held-out validation set.

    python scripts/check_tuned.py vae|gan|classifier [--storage results/tuning.db]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from handgen import (
    FAMILIES,
    Detector,
    PixelStatistics,
    detector_sources,
    generate,
    load_model,
    read_checkpoint,
    real_hands_split,
    train_detector,
    train_generator,
)
from handgen.tuning import best_config, open_study, source_balanced_accuracy


def training_minutes(checkpoint: Path) -> float:
    return sum(logs.get("seconds", 0.0) for logs in read_checkpoint(checkpoint)["history"]) / 60


def generator_scores(model, judge: PixelStatistics) -> dict[str, float]:
    draws = [judge.distances(generate(model, judge.size, seed=seed).numpy()) for seed in (1, 2, 3)]
    return {key: round(float(np.mean([d[key] for d in draws])), 3) for key in draws[0]}


def check_generator(family: str, config, tuned_path: Path) -> list[dict]:
    train_set, holdout = real_hands_split()
    tuned = FAMILIES[family].model(config)
    train_generator(tuned, train_set.images, config, checkpoint=tuned_path)
    default, _ = load_model(f"checkpoints/{family}.pt")
    judge = PixelStatistics(train_set.images.numpy(), holdout.images.numpy(), with_floor=False)
    return [{"family": family, "model": name, "config": dataclasses.asdict(model.config),
             "minutes": round(training_minutes(path), 1), **generator_scores(model, judge)}
            for name, model, path in [("default", default, Path(f"checkpoints/{family}.pt")),
                                      ("tuned", tuned, tuned_path)]]


def check_classifier(config, tuned_path: Path) -> list[dict]:
    sources = detector_sources("runs/zoo.pt")
    data = sources.assemble(config)
    tuned = Detector(config)
    train_detector(tuned, data.train.images, data.train.labels, config, checkpoint=tuned_path)
    default, _ = load_model("checkpoints/detector.pt")
    rows = []
    for name, model, path in [("default", default, Path("checkpoints/detector.pt")), ("tuned", tuned, tuned_path)]:
        balanced, per_source = source_balanced_accuracy(model, data.validation)
        rows.append({"family": "classifier", "model": name, "config": dataclasses.asdict(model.config),
                     "minutes": round(training_minutes(path), 1),
                     "balanced_accuracy": round(balanced, 4),
                     "per_source": {k: round(v, 4) for k, v in per_source.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=["vae", "gan", "classifier"])
    parser.add_argument("--storage", default="results/tuning.db")
    parser.add_argument("--out", default="results/tuned_check.jsonl")
    args = parser.parse_args()
    np.seterr(all="ignore")
    study = open_study(args.family, args.storage)
    tuned_path = Path("runs/tuned") / f"{args.family}.pt"
    tuned_path.parent.mkdir(parents=True, exist_ok=True)
    if args.family == "classifier":
        rows = check_classifier(best_config(study, "classifier"), tuned_path)
    else:
        rows = check_generator(args.family, best_config(study, args.family), tuned_path)
    with open(args.out, "a") as handle:
        for row in rows:
            print(json.dumps(row))
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
