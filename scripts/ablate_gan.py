"""Short GAN ablations at a small width: which of spectral norm, hinge loss, DiffAugment, EMA help.

Usage: python scripts/ablate_gan.py [--epochs 15] [--width 32] [--[no-]augment] [--out results/gan_ablation.jsonl]
Each variant is trained from the same seed on the same 7500 real hands; its samples (EMA and raw
generator) are scored against the 500 held-out hands. One JSON line per variant is appended.
"""

import argparse
import dataclasses
import json
import time

import numpy as np

from handgen.data import REAL_HANDS, generator_split, load_folder
from handgen.evaluation import quality_table
from handgen.gan import GAN, GANConfig
from handgen.sample import generate
from handgen.train import train_gan


def variants(augment: bool) -> dict[str, dict]:
    """The base configuration and one change at a time (plus the classic DCGAN recipe)."""
    augmentation = "DiffAugment" if augment else "no DiffAugment"
    return {
        f"base: hinge + SN + {augmentation} + EMA": {},
        "no DiffAugment" if augment else "with DiffAugment": {"augment": not augment},
        "no spectral norm": {"spectral_norm": False},
        "non-saturating loss": {"loss": "nonsaturating"},
        f"classic DCGAN (NS loss, no SN, {augmentation}, betas 0.5/0.999)": {
            "loss": "nonsaturating", "spectral_norm": False, "beta1": 0.5, "beta2": 0.999},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=GANConfig.augment,
                        help="DiffAugment in the base configuration (results/ holds a run with --augment)")
    parser.add_argument("--out", default="results/gan_ablation.jsonl", help="appended to; delete it to start afresh")
    args = parser.parse_args()
    train_set, holdout_set = generator_split(load_folder(REAL_HANDS))
    train, holdout = train_set.images, holdout_set.images.numpy()
    base = GANConfig(width=args.width, epochs=args.epochs, augment=args.augment)
    for name, changes in variants(args.augment).items():
        config = dataclasses.replace(base, **changes)
        gan, start = GAN(config), time.perf_counter()
        train_gan(gan, train, config, progress=False)
        minutes = (time.perf_counter() - start) / 60
        ema = generate(gan, 500, seed=1).numpy()
        raw = generate(gan, 500, seed=1, decoder=gan.generator).numpy()
        rows = quality_table({"ema": ema, "raw": raw}, train.numpy(), holdout)
        record = {"variant": name, "config": dataclasses.asdict(config), "train_minutes": round(minutes, 2),
                  "ema": rows[0], "raw": rows[1], "floor": rows[2]}
        print(json.dumps(record), flush=True)
        with open(args.out, "a") as handle:
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
