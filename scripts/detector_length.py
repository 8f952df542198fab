"""Does the detector need its 20 epochs? Its cross-validation at fewer epochs, beside the same folds at 20 trained in
the same run, and beside the adopted recipe's committed folds (another machine's trajectory: how far two trainings
of one recipe differ).

A shorter detector is `make run`'s cheapest untested cut on a plain CPU (about 52 s an epoch there). The folds run
through the CLI, one thread each, two side by side, and write to their own file so that the committed table keeps
its recipe:

    python -m handgen crossval --fold F --scheme S --epochs E --threads 1 \
        --json results/detector_epochs.jsonl --checkpoint runs/detector-epochs/foldF-eE.pt
    python scripts/detector_length.py --folds 0 1 2
    python scripts/detector_length.py --folds 0 1 2 --scheme "seen models"    # with the expected test accuracy
"""

from __future__ import annotations

import argparse
from pathlib import Path

from handgen import DetectorConfig, format_table, read_out_of_fold, read_rows

ADOPTED_FOLDS = "results/detector_cv.jsonl"
PREDICTIONS = "Classification Result.csv"
LENGTH_FOLDS = "results/detector_epochs.jsonl"


def real_share() -> float:
    """The share of `test_hands/` the committed detector calls real: the mix its expected accuracy is taken at."""
    labels = [line.rsplit(",", 1)[1].strip() for line in Path(PREDICTIONS).read_text().splitlines()]
    return labels.count("0") / len(labels)


def figures(path: str, scheme: str, recipe: str, folds: list[int], source: str) -> dict:
    """The README's detector figures of one recipe's folds, at the adopted decision offsets; with a quarter of each
    student model held out, also the accuracy to expect on `test_hands/`, as the README's."""
    result = read_out_of_fold(path, scheme, recipe=recipe).on_folds(folds)
    offsets = DetectorConfig().decision_offsets
    real, vae, gan = result.recalls(offsets, by_model=True)
    expected = {}
    if scheme == "seen models":
        estimate = result.expected_accuracy(offsets, real_share())
        expected = {"expected on test_hands/ (95%)": f"{estimate['expected_accuracy']:.3f} "
                                                     f"({estimate['expected_low']:.3f}-{estimate['expected_high']:.3f})"}
    return {"run": source, "recipe": recipe, "folds": " ".join(map(str, result.folds)),
            "fakes": len(result.held_out.labels), "real hands right": round(real, 3), "VAE, by model": round(vae, 3),
            "GAN, by model": round(gan, 3), "balanced, by image": round(result.balanced_accuracy(offsets), 3),
            "balanced, by model": round(result.balanced_accuracy(offsets, by_model=True), 3),
            "minutes a fold": minutes_a_fold(path, scheme, recipe, folds), **expected}


def minutes_a_fold(path: str, scheme: str, recipe: str, folds: list[int]) -> float:
    """The mean training minutes of the folds of `recipe` that `path` has (each fold's latest run)."""
    latest = {row["fold"]: row["minutes"] for row in read_rows(path, scheme=scheme) if row["recipe"] == recipe
              and row["fold"] in folds}
    return round(sum(latest.values()) / len(latest), 1)


def recipes(path: str, scheme: str) -> list[str]:
    """The recipes of `path`'s rows of `scheme`, in the order they first appear."""
    return list(dict.fromkeys(row["recipe"] for row in read_rows(path, scheme=scheme)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scheme", default="unseen models")
    parser.add_argument("--adopted", default="defaults; generated fakes 2703ab",
                        help="the committed table's recipe in results/detector_cv.jsonl")
    args = parser.parse_args()
    rows = [figures(ADOPTED_FOLDS, args.scheme, args.adopted, args.folds, "committed folds")]
    rows += [figures(LENGTH_FOLDS, args.scheme, recipe, args.folds, "this study")
             for recipe in recipes(LENGTH_FOLDS, args.scheme)]
    print(format_table(rows))


if __name__ == "__main__":
    main()
