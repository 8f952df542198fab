"""Where does a VQ-VAE's two-sample accuracy come from: its decoder or its prior?

The prior can at best draw code grids as real hands have them, so real training hands decoded from their own codes
are the ceiling of every prior: if the two-sample test tells those from real hands, no prior can bring the samples
below it. Scored beside the prior's samples, and beside both drawn from the full likelihood (the decoded mean plus
the Gaussian noise of the decoder's fitted variance, which is what the model says an image is). The decoded hands are
a draw of training hands disjoint from the two-sample test's real draw. Appends rows in the schema of `evaluate`.

With `--train`, an autoencoder of the adopted recipe (or with `--grid 16`, one downsampling fewer: a 16x16 grid of
codes, four times the prior's sequence) is trained first, resumably, and its ceiling scored at `--score-at` epochs:
the ceiling against CPU-minutes and grid, which says what a sharper decoder would cost before any prior is trained.

    python scripts/vae_ceiling.py checkpoints/vae.pt
    python scripts/vae_ceiling.py runs/ceiling/grid16.pt --train --grid 16 --score-at 20 40 --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from fine_grid import FineGridVQVAE

from handgen import (
    TWO_SAMPLE_SIZE,
    VQVAE,
    VQVAEConfig,
    Yardstick,
    append_rows,
    build_yardstick,
    format_table,
    jpeg_round_trip,
    load_model,
    real_hands_split,
    to_float,
    to_uint8,
    train_vqvae,
)

NAMES = {"decoded": "training hands decoded from their codes (the prior's ceiling)", "samples": "prior samples",
         "decoded+noise": "decoded training hands plus the likelihood's noise",
         "samples+noise": "prior samples plus the likelihood's noise"}


def decoded(model: VQVAE, images: torch.Tensor) -> torch.Tensor:
    """Decoded means (float, [-1, 1]) of uint8 images (N, 1, 32, 32) from their own codes."""
    model.eval()
    with torch.no_grad():
        means = torch.cat([model.decode(model.encode(to_float(batch))) for batch in images.split(500)])
    model.train()
    return means


def with_noise(means: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """uint8 JPEG-stored images drawn from N(means, sigma^2) per pixel."""
    noise = torch.randn(means.shape, generator=torch.Generator().manual_seed(seed))
    return jpeg_round_trip(to_uint8((means + sigma * noise).clamp(-1, 1)))


def score(model: VQVAE, yardstick: Yardstick, keys: list[str], extra: dict) -> list[dict]:
    """Rows of the chosen sets; the decoded hands are a draw disjoint from the two-sample test's real draw."""
    real = yardstick.other_real_draw
    means = decoded(model, real)
    sigma = float((means - to_float(real)).pow(2).mean().sqrt())  # the likelihood's fitted standard deviation
    print(f"decoder's standard deviation on training hands: {sigma:.4f} ([-1, 1] units), {sigma * 127.5:.1f} grey "
          "levels", flush=True)
    sampled = None
    if any(key.startswith("samples") for key in keys):
        model.eval()
        with torch.no_grad():  # the codes `generate(model, n, seed=1)` draws
            codes = model.sample_latent(TWO_SAMPLE_SIZE, torch.Generator().manual_seed(1))
            sampled = torch.cat([model.decode(part) for part in codes.split(500)])
    sets = {"decoded": lambda: jpeg_round_trip(to_uint8(means)),
            "samples": lambda: jpeg_round_trip(to_uint8(sampled)),
            "decoded+noise": lambda: with_noise(means, sigma, seed=2),
            "samples+noise": lambda: with_noise(sampled, sigma, seed=3)}
    rows = []
    for key in keys:
        rows.append({**yardstick.row(NAMES[key], sets[key]()), **extra, "likelihood_sigma": round(sigma, 4)})
        print(format_table(rows[-1:]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--out", default="results/vae_ceiling.jsonl")
    parser.add_argument("--sets", nargs="+", choices=list(NAMES),
                        default=["decoded", "samples", "decoded+noise", "samples+noise"])
    parser.add_argument("--train", action="store_true", help="train the autoencoder into CHECKPOINT first")
    parser.add_argument("--grid", type=int, choices=[8, 16], default=8)
    parser.add_argument("--score-at", type=int, nargs="+", default=[40], help="autoencoder epochs to score")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    yardstick = build_yardstick(progress=False)
    if not args.train:
        model, config = load_model(args.checkpoint)
        if not isinstance(model, VQVAE):
            raise SystemExit(f"{args.checkpoint} holds a {type(model).__name__}, not a VQ-VAE")
        append_rows(score(model, yardstick, args.sets, {"checkpoint": args.checkpoint, "epochs": config.epochs,
                                                         "prior_epochs": config.prior_epochs}), args.out)
        return
    config = dataclasses.replace(VQVAEConfig(), epochs=max(args.score_at), prior_epochs=0)
    model = (FineGridVQVAE if args.grid == 16 else VQVAE)(config)
    train, holdout = real_hands_split()
    minutes = [0.0]

    def scored(epoch: int, logs: dict[str, float]) -> None:
        minutes[0] += logs["seconds"] / 60
        if epoch + 1 in args.score_at:
            extra = {"checkpoint": args.checkpoint, "grid": args.grid, "epochs": epoch + 1,
                     "train_minutes": round(minutes[0], 2), "threads": args.threads}
            append_rows(score(model, yardstick, [key for key in args.sets if key.startswith("decoded")], extra),
                        args.out)

    Path(args.checkpoint).parent.mkdir(parents=True, exist_ok=True)
    train_vqvae(model, train.images, config, validation=holdout.images, checkpoint=args.checkpoint,
                callbacks=[scored], progress=False)


if __name__ == "__main__":
    main()
