"""Full-length check of the detector study's winner against the former defaults (appends to
results/tuned_check.jsonl).

The detector study scores 6-epoch trials, which favour configurations that start fast, so its winner replaced the
defaults only after it also won at the full 20 epochs: both are trained with the same data and scored by their
source-balanced accuracy on the same validation set. (The generator studies need no such check: successive halving
trains their survivors to the full length.)

    python scripts/check_tuned.py [--storage results/tuning.db]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from handgen import (
    CHECKPOINTS,
    RUNS,
    DataRecipe,
    Detector,
    DetectorConfig,
    detector_sources,
    load_model,
    train_detector,
)
from handgen.tuning import open_study, source_balanced_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="results/tuning.db")
    parser.add_argument("--out", default="results/tuned_check.jsonl")
    args = parser.parse_args()
    best = open_study("detector", args.storage).best_trial.params
    recipe = DataRecipe(provided_repeats=best.pop("provided_repeats"))
    config = dataclasses.replace(DetectorConfig(), **{k: float(f"{v:.2g}") if isinstance(v, float) else v
                                                      for k, v in best.items()})
    data = detector_sources().assemble(recipe)
    tuned, path = Detector(config), RUNS / "tuned" / "detector.pt"
    history = train_detector(tuned, data.train.images, data.train.labels, config, recipe=recipe, checkpoint=path)
    default, _ = load_model(CHECKPOINTS / "detector.pt")
    with open(args.out, "a") as handle:
        for name, model, minutes in [("default", default, None), ("tuned", tuned, sum(h["seconds"] for h in history))]:
            balanced, per_source = source_balanced_accuracy(model, data.validation)
            row = {"family": "detector", "model": name, "config": dataclasses.asdict(model.config),
                   "minutes": round(minutes / 60, 1) if minutes else None, "balanced_accuracy": round(balanced, 4),
                   "per_source": {k: round(v, 4) for k, v in per_source.items()}}
            print(json.dumps(row))
            handle.write(json.dumps(row) + "\n")
    Path(path).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
