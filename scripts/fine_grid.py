"""A VQ-VAE with a 16x16 grid of codes, and the realism of its samples against epochs of its prior.

The adopted 8x8 grid's decoder is the VAE's ceiling: training hands decoded from their own codes are told from real
hands as often as its samples are (`scripts/vae_ceiling.py`). One stride-2 step fewer each way gives the decoder
four times as many codes, and the prior four times as long a sequence. This trains a new prior on a trained
fine-grid autoencoder (`scripts/vae_ceiling.py ... --train --grid 16`) and scores it every `--every` epochs: both
judges' fool rates of 1000 samples, their copy share and the prior's held-out NLL; at `--two-sample-at`, the
two-sample test of 2000 (appends to results/realism_curves.jsonl, the schema of `scripts/prior_curve.py`).

    python scripts/fine_grid.py runs/ceiling/grid16.pt --name "grid 16, prior 4x64" --set prior_width=64 \\
        --epochs 30 --every 10 --two-sample-at 30 --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
from realism_curve import parse_changes
from torch import nn

from handgen import (
    CHANNELS,
    TWO_SAMPLE_SIZE,
    VQVAE,
    VQVAEConfig,
    append_rows,
    build_yardstick,
    copy_share,
    fool_rate,
    generate,
    jpeg_round_trip,
    read_checkpoint,
    real_hands_split,
    train_prior,
    two_sample_test,
)


class FineGridVQVAE(VQVAE):
    """The adopted VQ-VAE with one stride-2 step fewer each way: a 16x16 grid of codes, a prior over 256.

    Only the strided layers are swapped (the encoder's second convolution and the decoder's last): the blocks, widths
    and everything else are the adopted model's own."""

    grid = 16

    def __init__(self, config: VQVAEConfig, move_dropout: bool = True):
        """`move_dropout=False` keeps the adopted attention's dropout on its weights (for timing it)."""
        super().__init__(config)
        w = config.width
        torch.manual_seed(config.seed)
        self.encoder[2] = nn.Conv2d(w, 2 * w, 3, 1, 1)         # was 4x4 stride 2: stays at 16x16
        self.decoder[6] = nn.Conv2d(w, CHANNELS, 3, 1, 1)      # was a transposed 4x4 stride 2 from 16x16
        self.latent_dim = self.grid * self.grid
        self.prior = type(self.prior)(config, length=self.latent_dim)
        if move_dropout:
            output_dropout(self.prior, config.prior_dropout)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.lookup(codes.view(-1, self.grid, self.grid)))


def output_dropout(prior: nn.Module, rate: float) -> None:
    """Move the dropout of every attention layer of a code prior from its weights to its output. With dropout on the
    weights, a CPU's scaled-dot-product attention takes its slow path, which at 256 positions makes the prior's step
    several times slower (`python scripts/bench.py --only prior`)."""
    for block in prior.blocks:
        block.attention.dropout = 0.0
        block.attention.out = nn.Sequential(block.attention.out, nn.Dropout(rate))


def load_fine_grid(path: str, changes: dict) -> FineGridVQVAE:
    """A fine-grid VQ-VAE with the autoencoder of checkpoint `path` and a fresh prior of the config's `changes`."""
    state = read_checkpoint(path)
    config = dataclasses.replace(VQVAEConfig(**state["config"]), **changes)
    model = FineGridVQVAE(config)
    weights = {key: value for key, value in state["model"].items() if not key.startswith("prior.")}
    try:
        result = model.load_state_dict(weights, strict=False)
    except RuntimeError as error:  # weights of other shapes: an 8x8 grid's
        raise SystemExit(f"{path} is not a fine-grid autoencoder: {error}") from None
    missing = [key for key in result.missing_keys if not key.startswith("prior.")]
    if missing or result.unexpected_keys:
        raise SystemExit(f"{path} is not a fine-grid autoencoder: missing {missing}, unexpected "
                         f"{result.unexpected_keys}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("autoencoder", help="a fine-grid VQ-VAE checkpoint whose autoencoder is trained")
    parser.add_argument("--name", required=True)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="the prior's settings")
    parser.add_argument("--epochs", type=int, required=True, help="epochs of the prior")
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--two-sample-at", type=int, nargs="*", default=[])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--runs", default="runs/curves")
    parser.add_argument("--out", default="results/realism_curves.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_fine_grid(args.autoencoder, {**parse_changes(VQVAEConfig, args.set), "prior_epochs": args.epochs})
    train, holdout = real_hands_split()
    yardstick = build_yardstick(progress=False)
    checkpoint = f"{args.runs}/vqvae-prior-{args.name.replace(' ', '_')}.pt"
    past = read_checkpoint(checkpoint)["history"] if Path(checkpoint).is_file() else []
    seconds = [sum(row["seconds"] for row in past)]  # a resumed run counts its earlier epochs' time

    def score(epoch: int, logs: dict[str, float]) -> None:
        seconds[0] += logs["seconds"]
        if (epoch + 1) % args.every and epoch + 1 != args.epochs:
            return
        samples = jpeg_round_trip(generate(model, TWO_SAMPLE_SIZE, seed=1))
        row = {"family": "vqvae", "recipe": args.name, "grid": model.grid, "epoch": epoch + 1, "stage": "prior",
               "train_minutes": seconds[0] / 60, "threads": args.threads,
               "val_prior_nll": logs.get("val_prior_nll"), "prior_nll": logs.get("prior_nll"),
               **fool_rate(yardstick.judge, samples[:1000]),
               "confirmation_fool_rate": fool_rate(yardstick.confirmation, samples[:1000])["fool_rate"],
               "copy_share": copy_share(samples[:250].numpy(), train.images.numpy(), holdout.images[:250].numpy()),
               "config": dataclasses.asdict(model.config), "autoencoder": args.autoencoder}
        if epoch + 1 in args.two_sample_at:
            row.update(two_sample_test(samples, yardstick.real_draw))
        print(json.dumps(row), flush=True)
        append_rows([row], args.out)
        model.train()

    train_prior(model, train.images, model.config, validation=holdout.images, checkpoint=checkpoint,
                callbacks=[score], progress=False)


if __name__ == "__main__":
    main()
