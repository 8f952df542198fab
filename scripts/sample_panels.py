"""Real hands beside the samples of several generator checkpoints, for reading variety by eye (writes a PNG).

A judge scores one hand at a time and cannot see a recipe that narrows the set; a panel of the same seeded draw
from each checkpoint, beside as many held-out real hands, can:

    python scripts/sample_panels.py runs/curves/gan-a.pt runs/curves/gan-b.pt --names adopted game \\
        --out results/gan_game_seed2.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")  # a file, not a window

from handgen import generate, load_model, real_hands_split, show_grids  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="generator checkpoints")
    parser.add_argument("--names", nargs="+", help="a panel title per checkpoint (default: the paths)")
    parser.add_argument("--n", type=int, default=80, help="images per panel")
    parser.add_argument("--seed", type=int, default=5, help="the samples' seed, the same for every checkpoint")
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args()
    names = args.names or args.checkpoints
    if len(names) != len(args.checkpoints):
        parser.error(f"--names gives {len(names)} titles for {len(args.checkpoints)} checkpoints")
    panels = {"held-out real hands": real_hands_split()[1].images[:args.n]}
    for name, checkpoint in zip(names, args.checkpoints):
        panels[name] = generate(load_model(checkpoint)[0], args.n, seed=args.seed)
    show_grids(panels, columns=10, scale=0.3, upscale=2).savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
