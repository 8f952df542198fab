"""Can the realism yardstick fail? Sets that are visibly worse than real hands, scored beside the real floor.

Writes one row per set to results/yardstick.jsonl (the schema of `python -m handgen evaluate`): real hands blurred by
0.6 and 1 pixel, a collapsed generator (one sample repeated), a GAN after one epoch of the default recipe, and any
generator checkpoints given (for instance the ones the project shipped before the realism work).

    python scripts/yardstick_checks.py [--checkpoint "previous GAN=old_gan.pt" ...] [--judges-only]

`--judges-only` leaves the two-sample test out (minutes a set): rows with the judges' figures only, which readers
merge with the set's earlier rows.
"""

from __future__ import annotations

import argparse
import dataclasses

from handgen import (
    GAN,
    TWO_SAMPLE_SIZE,
    GANConfig,
    append_rows,
    blurred,
    build_yardstick,
    format_table,
    generate,
    images_of,
    jpeg_round_trip,
    train_gan,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                        help="a generator checkpoint to score too (repeatable)")
    parser.add_argument("--out", default="results/yardstick.jsonl")
    parser.add_argument("--judges-only", action="store_true", help="leave the two-sample test out")
    args = parser.parse_args()
    yardstick = build_yardstick(two_sample=not args.judges_only)
    unseen_real = yardstick.other_real_draw
    early_config = dataclasses.replace(GANConfig(), epochs=1)
    early = GAN(early_config)
    train_gan(early, yardstick.real_draw, early_config, progress=False)
    early_samples = jpeg_round_trip(generate(early, TWO_SAMPLE_SIZE, seed=1))
    sets = {"real hands, 0.6-pixel blur": jpeg_round_trip(blurred(unseen_real, 0.6)),
            "real hands, 1-pixel blur": jpeg_round_trip(blurred(unseen_real, 1.0)),
            "collapsed: one GAN sample repeated": early_samples[:1].repeat(TWO_SAMPLE_SIZE, 1, 1, 1),
            "GAN after 1 epoch (default recipe, 2000 real hands)": early_samples}
    for pair in args.checkpoint:
        name, _, path = pair.partition("=")
        sets[name] = images_of(path)
    rows = yardstick.table(sets)
    print(format_table(rows))
    append_rows(rows, args.out)


if __name__ == "__main__":
    main()
