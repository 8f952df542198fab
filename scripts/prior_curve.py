"""Realism of a VQ-VAE's samples against epochs of its prior, on one trained autoencoder (appends to
results/realism_curves.jsonl, the schema of `scripts/realism_curve.py`).

The autoencoder's weights come from a VQ-VAE checkpoint and stay fixed; a new prior of the given settings trains on
its codes and is scored every `--every` epochs: the judge's fool rate of 1000 samples at each temperature, their
copy share, and the prior's held-out negative log-likelihood per code.

    python scripts/prior_curve.py runs/curves/vqvae-base.pt --name "prior 4x128" --set prior_layers=4 --epochs 40
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch
from realism_curve import parse_changes

from handgen import (
    VQVAE,
    append_rows,
    copy_share,
    fool_rate,
    generate,
    jpeg_round_trip,
    load_model,
    provided_examples,
    real_hands_split,
    train_judge,
    train_prior,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("autoencoder", help="a VQ-VAE checkpoint whose autoencoder is trained")
    parser.add_argument("--name", required=True)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="the prior's settings")
    parser.add_argument("--epochs", type=int, required=True, help="epochs of the prior")
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.85, 1.0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--runs", default="runs/curves")
    parser.add_argument("--out", default="results/realism_curves.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trained, config = load_model(args.autoencoder)
    config = dataclasses.replace(config, **parse_changes(type(config), args.set), prior_epochs=args.epochs)
    model = VQVAE(config)
    model.load_state_dict({k: v for k, v in trained.state_dict().items() if not k.startswith("prior.")}, strict=False)
    train, holdout = real_hands_split()
    judge, _ = train_judge(train.images, holdout.images, provided_examples(warn=False), progress=False)
    seconds = [0.0]

    def score(epoch: int, logs: dict[str, float]) -> None:
        seconds[0] += logs["seconds"]
        if (epoch + 1) % args.every and epoch + 1 != args.epochs:
            return
        for temperature in args.temperatures:
            model.config.prior_temperature = temperature
            samples = jpeg_round_trip(generate(model, 1000, seed=1))
            row = {"family": "vqvae", "recipe": f"{args.name}, temperature {temperature}", "epoch": epoch + 1,
                   "stage": "prior", "train_minutes": seconds[0] / 60, "threads": args.threads,
                   "val_prior_nll": logs.get("val_prior_nll"), "prior_nll": logs.get("prior_nll"),
                   **fool_rate(judge, samples),
                   "copy_share": copy_share(samples[:250].numpy(), train.images.numpy(), holdout.images[:250].numpy()),
                   "config": dataclasses.asdict(config), "autoencoder": args.autoencoder}
            print(json.dumps(row), flush=True)
            append_rows([row], args.out)
        model.train()

    checkpoint = f"{args.runs}/vqvae-prior-{args.name.replace(' ', '_')}.pt"
    train_prior(model, train.images, config, validation=holdout.images, checkpoint=checkpoint, callbacks=[score],
                progress=False)


if __name__ == "__main__":
    main()
