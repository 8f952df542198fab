"""Which re-saves should a label average over? Every small view set on one detector (appends to results/resave.jsonl)

A view is the image as given or the image re-saved as JPEG at one quality; a detector's label averages its
probabilities over a set of views (`DetectorConfig.views`, `as_given`). Each view's probabilities are computed
once, for `test_hands/` as given and re-saved (`RESAVES`) and for the 500 held-out real hands, so every set of
at most two views (and the earlier recipe's three) is scored at the cost of one. Rows as `resave_check.py`'s.
Run it on a cross-validation fold's checkpoint, so that the final detector's figure chooses nothing:

    python -m handgen crossval --fold 0 --checkpoint runs/cv-seen0.pt
    python scripts/views_check.py runs/cv-seen0.pt --name "seen models fold 0"

How the sets do on the fold's held-out fakes is `crossval` again, resumed on the same checkpoint with
`--views ... --as-given/--no-as-given` (the views are no part of training).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

import torch

from handgen import (
    RESAVES,
    VAE_LABEL,
    CopyCheck,
    append_rows,
    format_table,
    jpeg_round_trip,
    load_folder,
    load_model,
    predict_proba,
    real_hands_split,
)

QUALITIES = (70, 75, 80, 85, 90, 95)
AS_GIVEN = None  # the view that is the image itself
EARLIER = (AS_GIVEN, 75, 90)  # the recipe before this check


def view_probabilities(model, images: torch.Tensor) -> dict:
    """Each single view's probabilities (N, 3), before the model's decision offsets."""
    single = type(model)(dataclasses.replace(model.config, views=(), as_given=True, decision_offsets=(0.0,) * 3))
    single.load_state_dict(model.state_dict())
    single.eval()
    return {view: predict_proba(single, images if view is AS_GIVEN else jpeg_round_trip(images, view))
            for view in (AS_GIVEN, *QUALITIES)}


def labels(probabilities: dict, views: tuple, offsets: torch.Tensor, flagged: torch.Tensor) -> torch.Tensor:
    """The labels a detector with `views` gives: the views' mean, the offsets, then the copy check's flags."""
    mean = sum(probabilities[view] for view in views) / len(views)
    decided = (mean.clamp_min(1e-12).log() + offsets).argmax(1)
    return torch.where(flagged, torch.full_like(decided, VAE_LABEL), decided)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a detector checkpoint")
    parser.add_argument("--name", required=True, help="the detector's name in the rows")
    parser.add_argument("--gan-offsets", type=float, nargs="+", help="GAN decision offsets to score at "
                        "(default: the checkpoint's)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="results/resave.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, config = load_model(args.checkpoint)
    started = time.perf_counter()
    test = load_folder("test_hands", warn=False).images
    copies = CopyCheck(load_folder("real_hands", warn=False).images)
    held_out = real_hands_split()[1].images
    versions = {"as given": test, **{name: test.clone() if quality is None else jpeg_round_trip(test, quality)
                                     for name, quality in RESAVES.items()}}
    tests = {name: view_probabilities(model, images) for name, images in versions.items()}
    flags = {name: copies.flags(images, config.copy_threshold) for name, images in versions.items()}
    reals = {name: view_probabilities(model, held_out if quality is None else jpeg_round_trip(held_out, quality))
             for name, quality in {"as given": None, **RESAVES}.items()}
    no_flags = torch.zeros(len(held_out), dtype=torch.bool)
    candidates = [views for size in (1, 2) for views in itertools.combinations((AS_GIVEN, *QUALITIES), size)]
    rows = []
    for gan, views in itertools.product(args.gan_offsets or [float(model.offsets[-1])], [*candidates, EARLIER]):
        offsets = torch.tensor([*model.offsets[:-1].tolist(), gan])
        before = labels(tests["as given"], views, offsets, flags["as given"])
        changes = {name: float((labels(tests[name], views, offsets, flags[name]) != before).float().mean())
                   for name in RESAVES}
        recall = {name: float((labels(probabilities, views, offsets, no_flags) == 0).float().mean())
                  for name, probabilities in reals.items()}
        rows.append({"recipe": f"views sweep, {args.name}", "checkpoint": args.checkpoint,
                     "views": [view for view in views if view is not AS_GIVEN], "as_given": AS_GIVEN in views,
                     "offsets": offsets.tolist(), "labels_changed": changes, "real_recall": recall,
                     "seconds": round(time.perf_counter() - started, 1), "threads": args.threads})
    append_rows(rows, args.out)
    rows.sort(key=lambda row: max(row["labels_changed"].values()))
    print(format_table([{"GAN offset": row["offsets"][-1],
                         "views": ("as given " if row["as_given"] else "") + " ".join(map(str, row["views"])),
                         **{name: f"{share:.2%}" for name, share in row["labels_changed"].items()},
                         "real recall": f"{row['real_recall']['as given']:.3f}",
                         "after JPEG 90": f"{row['real_recall']['JPEG quality 90']:.3f}"} for row in rows]))


if __name__ == "__main__":
    main()
