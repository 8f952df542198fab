"""Do hand-made image statistics add to the detector on the students' VAE hands against their GAN hands?

Cross-validation puts most of the detector's errors between VAE and GAN (see `Classifier.ipynb`). GAN forensics
often looks at the frequency spectrum (up-sampling leaves peaks, blur removes high frequencies), so here is the
cheapest test of whether the CNN misses such a cue: a logistic regression stacked on the detector's out-of-fold
log-probabilities (seen-models folds, `results/detector_cv.jsonl`), with and without these statistics of each
held-out fake: its radial power spectrum (22 rings), mean absolute gradients and Laplacian, the share of black
and of white pixels, the standard deviation and the mean. Each fold is scored by a regression fitted on the
other three, so nothing is scored by what it was fitted on.

    python scripts/spectral_stacking.py [--rows results/detector_cv.jsonl] [--out results/spectral_stacking.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from handgen.crossval import read_out_of_fold
from handgen.detection import GAN_LABEL, VAE_LABEL, provided_examples

RINGS = 22  # radial frequency bins of a 32x32 spectrum, the DC term left out


def image_statistics(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32) in [0, 1] -> (N, 29): log radial spectrum, gradient and Laplacian energy, intensity summary."""
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(centred), axes=(1, 2)))
    yy, xx = np.mgrid[-16:16, -16:16]
    ring = np.sqrt(yy**2 + xx**2).astype(int).clip(0, RINGS)
    radial = np.stack([np.log1p(spectrum[:, ring == r].mean(axis=1)) for r in range(1, RINGS + 1)], axis=1)
    laplacian = (4 * images[:, 1:-1, 1:-1] - images[:, :-2, 1:-1] - images[:, 2:, 1:-1]
                 - images[:, 1:-1, :-2] - images[:, 1:-1, 2:])
    texture = [np.abs(np.diff(images, axis=2)).mean(axis=(1, 2)), np.abs(np.diff(images, axis=1)).mean(axis=(1, 2)),
               np.abs(laplacian).mean(axis=(1, 2))]
    intensity = [(images < 0.02).mean(axis=(1, 2)), (images > 0.98).mean(axis=(1, 2)), images.std(axis=(1, 2)),
                 images.mean(axis=(1, 2))]
    return np.concatenate([radial, np.stack(texture + intensity, axis=1)], axis=1)


def stacked_predictions(features: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold's labels from a logistic regression fitted on the other folds."""
    predicted = np.empty_like(labels)
    for fold in np.unique(folds):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(features[folds != fold], labels[folds != fold])
        predicted[folds == fold] = model.predict(features[folds == fold])
    return predicted


def scores(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {"accuracy": round(float(np.mean(predicted == labels)), 4),
            "VAE recall": round(float(np.mean(predicted[labels == VAE_LABEL] == VAE_LABEL)), 4),
            "GAN recall": round(float(np.mean(predicted[labels == GAN_LABEL] == GAN_LABEL)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="results/detector_cv.jsonl")
    parser.add_argument("--out", default="results/spectral_stacking.json")
    parser.add_argument("--gan-offset", type=float, default=1.0, help="the detector's own decision, for reference")
    args = parser.parse_args()
    out_of_fold = read_out_of_fold(args.rows, "seen models", provided_examples(warn=False))
    labels, folds = out_of_fold.held_out.labels.numpy(), out_of_fold.fake_folds
    log_vae_gan = out_of_fold.probabilities.clamp_min(1e-4).log().numpy()[:, [VAE_LABEL, GAN_LABEL]]
    statistics = image_statistics(out_of_fold.held_out.images[:, 0].numpy() / 255.0)
    detector = np.where(log_vae_gan[:, 1] + args.gan_offset > log_vae_gan[:, 0], GAN_LABEL, VAE_LABEL)
    results = {
        "recipe": out_of_fold.recipe, "fakes": len(labels),
        f"detector, GAN offset {args.gan_offset}": scores(detector, labels),
        "stacked on the detector's log-probabilities": scores(stacked_predictions(log_vae_gan, labels, folds), labels),
        "statistics alone": scores(stacked_predictions(statistics, labels, folds), labels),
        "stacked on log-probabilities and statistics": scores(
            stacked_predictions(np.concatenate([log_vae_gan, statistics], axis=1), labels, folds), labels),
    }
    print(json.dumps(results, indent=1))
    with open(args.out, "w") as out:
        json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
