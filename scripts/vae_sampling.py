"""How a trained VAE should draw its codes: the fitted mixture's size and its sampling temperature (for a VQ-VAE,
the temperature of its learned prior).

The decoder is left as trained; for each variant the mixture is refitted to the training hands' codes and 1000
samples are scored by the judge (fool rate) and against memorisation (copy share of 250). Also the ceiling of any
code sampler: the decoded posterior means of the held-out hands. Appends to results/vae_sampling.jsonl.

    python scripts/vae_sampling.py runs/curves/vae-baseline_bf16.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools

import torch

from handgen import (
    VAE,
    VQVAE,
    append_rows,
    copy_share,
    fool_rate,
    format_table,
    generate,
    jpeg_round_trip,
    load_model,
    provided_examples,
    real_hands_split,
    to_float,
    to_uint8,
    train_judge,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--components", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 1.2, 1.4])
    parser.add_argument("--out", default="results/vae_sampling.jsonl")
    args = parser.parse_args()
    trained, config = load_model(args.checkpoint)
    train, holdout = real_hands_split()
    judge, _ = train_judge(train.images, holdout.images, provided_examples(warn=False), progress=False)
    with torch.no_grad():
        codes = trained.encode(to_float(holdout.images))
        ceiling = to_uint8(trained.decode(codes if isinstance(trained, VQVAE) else codes[0]))
    rows = [{"variant": "held-out hands decoded from their codes (the ceiling)",
             **fool_rate(judge, jpeg_round_trip(ceiling))}]
    if isinstance(trained, VQVAE):  # the learned prior stays; only how sharply it is sampled changes
        for temperature in args.temperatures:
            trained.config.prior_temperature = temperature
            samples = jpeg_round_trip(generate(trained, 1000, seed=1))
            rows.append({"variant": f"prior at temperature {temperature}", **fool_rate(judge, samples),
                         "copy_share": copy_share(samples[:250].numpy(), train.images.numpy(),
                                                  holdout.images[:250].numpy())})
        args.components = []
    weights = {key: value for key, value in trained.state_dict().items() if not key.startswith("prior.")}
    for components, temperature in itertools.product(args.components, args.temperatures):
        variant = dataclasses.replace(config, prior_components=components, prior_temperature=temperature)
        vae = VAE(variant)
        vae.load_state_dict(weights, strict=False)
        vae.fit_prior(train.images, seed=variant.seed)
        samples = jpeg_round_trip(generate(vae, 1000, seed=1))
        rows.append({"variant": f"{components} components, temperature {temperature}",
                     **fool_rate(judge, samples),
                     "copy_share": copy_share(samples[:250].numpy(), train.images.numpy(),
                                              holdout.images[:250].numpy())})
    for row in rows:
        row.update({"checkpoint": args.checkpoint, "epochs": config.epochs})
    print(format_table([{key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()}
                        for row in rows]))
    append_rows(rows, args.out)


if __name__ == "__main__":
    main()
