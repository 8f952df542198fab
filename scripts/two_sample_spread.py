"""How far does the two-sample test move between repeats? One generator checkpoint, fresh samples and test
networks drawn from several seeds (appends to results/two_sample_spread.jsonl, the schema of `evaluate`).

The committed GAN's 2000 samples of seed 1 score 0.78 (`results/quality.jsonl`), while the 250-epoch curve run of
the same recipe scored 0.70 to 0.73 from 150 epochs on: this says whether that gap is a difference of models or the
spread of the test itself.

    python scripts/two_sample_spread.py checkpoints/gan.pt --seeds 2 3
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from handgen import (
    TWO_SAMPLE_CONFIG,
    TWO_SAMPLE_SIZE,
    append_rows,
    format_table,
    generate,
    jpeg_round_trip,
    load_model,
    real_hands_split,
    two_sample_test,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--out", default="results/two_sample_spread.jsonl")
    args = parser.parse_args()
    train, _ = real_hands_split()
    model, _ = load_model(args.checkpoint)
    rows = []
    for seed in args.seeds:
        samples = jpeg_round_trip(generate(model, TWO_SAMPLE_SIZE, seed=seed))
        real = train.images[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))]
        networks = dataclasses.replace(TWO_SAMPLE_CONFIG, seed=100 * seed)
        row = {"set": f"{args.checkpoint}, samples, real draw and networks of seed {seed}",
               "checkpoint": args.checkpoint, "seed": seed,
               **two_sample_test(samples, real[:TWO_SAMPLE_SIZE], networks, seed=seed)}
        rows.append({key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()})
        print(format_table(rows[-1:]))
    append_rows(rows, args.out)


if __name__ == "__main__":
    main()
