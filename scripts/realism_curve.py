"""Realism of one generator recipe against CPU-minutes of training (appends to results/realism_curves.jsonl).

Every `--every` epochs: the judge's fool rate on 1000 samples (for a GAN, of the EMA generator and of the raw one),
pixel FID/KID of 500 samples, the cumulative training seconds and images seen; at the epochs of `--two-sample-at`,
the two-sample test on 2000 samples too; at those of `--keep-at`, a copy of the checkpoint (`<name>-epoch<N>.pt`) for
`python -m handgen evaluate`. The run checkpoints every epoch and resumes.

    python scripts/realism_curve.py gan --name "deep D" --set discriminator=deep --epochs 60 --every 5 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from handgen import (
    FAMILIES,
    GAN,
    GENERATOR_FAMILIES,
    VAE,
    VQVAE,
    PixelStatistics,
    append_rows,
    copy_share,
    fool_rate,
    generate,
    jpeg_round_trip,
    provided_examples,
    read_checkpoint,
    real_hands_split,
    to_float,
    to_uint8,
    train_generator,
    train_judge,
    two_sample_test,
)


def parse_changes(config_class: type, pairs: list[str]) -> dict:
    """`field=value` strings -> typed config changes."""
    types = {field.name: field.type for field in dataclasses.fields(config_class)}
    changes = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        kind = str(types[name])
        changes[name] = (text.lower() in ("1", "true", "yes")) if kind == "bool" else \
            {"int": int, "float": float}.get(kind, str)(text)
    return changes


@torch.no_grad()
def reconstruct(model: VAE | VQVAE, images: torch.Tensor) -> torch.Tensor:
    """uint8 images decoded from their codes (a VAE's posterior means, a VQ-VAE's code grid), in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    encode = (lambda x: model.encode(x)[0]) if isinstance(model, VAE) else model.encode  # noqa: E731
    return torch.cat([to_uint8(model.decode(encode(to_float(chunk.to(device))))).cpu() for chunk in images.split(500)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=GENERATOR_FAMILIES)
    parser.add_argument("--name", required=True, help="the recipe's name in the rows")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="changes to the default config")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--two-sample-at", type=int, nargs="*", default=[], help="epochs that get the two-sample test")
    parser.add_argument("--keep-at", type=int, nargs="*", default=[], help="epochs whose checkpoint is kept")
    parser.add_argument("--train-size", type=int, help="train on this many of the training hands (a seeded draw)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--runs", default="runs/curves")
    parser.add_argument("--out", default="results/realism_curves.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    family = FAMILIES[args.family]
    config = dataclasses.replace(family.config(), **parse_changes(family.config, args.set), epochs=args.epochs)
    train_set, holdout = real_hands_split()
    judge, _ = train_judge(train_set.images, holdout.images, provided_examples(warn=False), progress=False)
    pixels = PixelStatistics(train_set.images.numpy(), holdout.images.numpy(), with_floor=False)
    real_draw = train_set.images[torch.randperm(len(train_set), generator=torch.Generator().manual_seed(1))]
    training = train_set.images
    if args.train_size:  # the judge, the two-sample test and the copy check still see every training hand
        training = training[torch.randperm(len(training), generator=torch.Generator().manual_seed(2))[:args.train_size]]
    checkpoint = Path(args.runs) / f"{args.family}-{args.name.replace(' ', '_')}.pt"
    model = family.model(config)
    past = read_checkpoint(checkpoint)["history"] if checkpoint.is_file() else []
    seconds = [sum(row["seconds"] for row in past)]

    total = config.epochs + getattr(config, "prior_epochs", 0)  # a VQ-VAE trains its prior after its autoencoder

    def score(epoch: int, logs: dict[str, float]) -> None:
        seconds[0] += logs["seconds"]
        if epoch + 1 in args.keep_at:  # `fit` has written this epoch's checkpoint before its callbacks
            shutil.copyfile(checkpoint, checkpoint.with_name(f"{checkpoint.stem}-epoch{epoch + 1}.pt"))
        last = epoch + 1 == total
        if (epoch + 1) % args.every and not last:
            return
        started = time.perf_counter()
        row = {"family": args.family, "recipe": args.name, "epoch": epoch + 1, "train_size": len(training),
               "images_seen": (epoch + 1) * (len(training) // config.batch_size) * config.batch_size,
               "train_minutes": seconds[0] / 60, "threads": args.threads}
        if not isinstance(model, GAN):  # the ceiling of any code sampler: held-out hands decoded from their codes
            row["fool_rate_reconstruction"] = fool_rate(judge, jpeg_round_trip(reconstruct(model, holdout.images)))[
                "fool_rate"]
        if isinstance(model, VAE) and not last:  # the last epoch fits the mixture during training
            model.fit_prior(training, seed=config.seed)
        prior_trained = not isinstance(model, VQVAE) or epoch + 1 > config.epochs
        samples = jpeg_round_trip(generate(model, 2000, seed=1)) if prior_trained else None
        if samples is not None:
            row.update({**fool_rate(judge, samples[:1000]), **pixels.distances(samples[:500].numpy()),
                        "copy_share": copy_share(samples[:250].numpy(), training.numpy(),
                                                 holdout.images[:250].numpy())})
        if hasattr(model, "ema") and config.ema_decay > 0:
            raw = jpeg_round_trip(generate(model, 1000, seed=1, decoder=model.generator))
            row["fool_rate_raw"] = fool_rate(judge, raw)["fool_rate"]
        if samples is not None and (epoch + 1 in args.two_sample_at or (last and args.two_sample_at)):
            row.update(two_sample_test(samples, real_draw))
        row.update({"eval_seconds": time.perf_counter() - started, "config": dataclasses.asdict(config)})
        print(json.dumps(row), flush=True)
        append_rows([row], args.out)
        model.train()

    train_generator(model, training, config, checkpoint=checkpoint, callbacks=[score], progress=False)


if __name__ == "__main__":
    main()
