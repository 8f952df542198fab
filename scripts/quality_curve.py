"""Sample quality against training time for one generator (appends to results/quality_curve.jsonl).

Every `--every` epochs: KID and FID (pixel-PCA space) of 500 samples against all 500 held-out real hands, with the
cumulative training seconds, so the epoch budget of a config can be chosen from quality per CPU-minute.

    python scripts/quality_curve.py gan --epochs 40 --every 4 [--tuned]
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import torch

from handgen import VAE, generator_split, load_folder
from handgen.data import REAL_HANDS
from handgen.detection import FAMILIES
from handgen.evaluation import PixelStatistics
from handgen.sample import generate
from handgen.tuning import best_config, open_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--tuned", action="store_true", help="the study's best config instead of the default")
    parser.add_argument("--storage", default="results/tuning.db")
    parser.add_argument("--out", default="results/quality_curve.jsonl")
    args = parser.parse_args()
    np.seterr(all="ignore")
    model_class, config_class, _, train = FAMILIES[args.family]
    config = best_config(open_study(args.family, args.storage), args.family) if args.tuned else config_class()
    config = dataclasses.replace(config, epochs=args.epochs)
    train_set, holdout = generator_split(load_folder(REAL_HANDS))
    judge = PixelStatistics(train_set.images.numpy(), holdout.images.numpy(), with_floor=False)
    model, seconds = model_class(config), [0.0]

    def score(epoch: int, logs: dict[str, float]) -> None:
        seconds[0] += logs["seconds"]
        if (epoch + 1) % args.every and epoch + 1 != config.epochs:
            return
        if isinstance(model, VAE) and epoch + 1 < config.epochs:  # the last epoch fits it during training
            model.fit_prior(train_set.images, seed=config.seed)
        scores = judge.distances(generate(model, judge.size, seed=1).numpy())
        row = {"family": args.family, "tuned": args.tuned, "epoch": epoch + 1, "train_minutes": seconds[0] / 60,
               "threads": torch.get_num_threads(), **scores, "config": dataclasses.asdict(config)}
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as handle:
            handle.write(json.dumps(row) + "\n")

    train(model, train_set.images, config, callbacks=[score], progress=False)


if __name__ == "__main__":
    main()
