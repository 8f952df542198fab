"""Does a GAN's discriminator over-fit its training hands? Its mean score on training hands, on held-out real hands
and on fresh samples (appends to results/discriminator_gap.jsonl).

A discriminator that over-fits a small data set scores its training hands well above held-out ones; that is what
differentiable augmentation (DiffAugment) is for. Equal scores mean there is nothing for it to cure.

    python scripts/discriminator_gap.py checkpoints/gan.pt runs/curves/gan-baseline.pt
"""

from __future__ import annotations

import argparse

from handgen import append_rows, format_table, generate, jpeg_round_trip, load_model, mean_score, real_hands_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--out", default="results/discriminator_gap.jsonl")
    args = parser.parse_args()
    train, holdout = real_hands_split()
    rows = []
    for path in args.checkpoints:
        gan, config = load_model(path)
        fakes = jpeg_round_trip(generate(gan, len(holdout), seed=2, decoder=gan.generator))
        rows.append({"checkpoint": path, "discriminator": config.discriminator, "epochs": config.epochs,
                     "score_training_hands": mean_score(gan, train.images[:len(holdout)]),
                     "score_held_out_hands": mean_score(gan, holdout.images), "score_samples": mean_score(gan, fakes)})
    print(format_table([{key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()}
                        for row in rows]))
    append_rows(rows, args.out)


if __name__ == "__main__":
    main()
