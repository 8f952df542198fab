"""Cross-validation of the detector's recipe on the students' fakes (`handgen.crossval`), one fold per process.

Each fold trains the detector as `python -m handgen train-classifier` does, with one fold of the provided fakes
held out, and appends its out-of-fold predictions to results/detector_cv.jsonl. Two folds can run side by side
on two cores (`--threads 1` each). `Classifier.ipynb` reads the file.

    python scripts/cross_validate_detector.py --fold 0 [--scheme "unseen models"] [--epochs N] [--seed S]
        [--width W] [--members M] [--[no-]mirror] [--provided-repeats R] [--no-generated] [--threads 1]
        [--out FILE] [--checkpoint FILE] [--teacher FOLD_CHECKPOINT [--unlabelled test_hands] [--threshold P]]
        [--targeted-zoo] [--unused-fold K ...] [--patch-mix P]

With --teacher (a model trained without the same fold, e.g. another run's --checkpoint), the fold is
self-trained: the teacher's confident labels on the unlabelled folder join the training set
(`detection.pseudo_labelled`); images identical to a provided one are left out of that pool.
With --targeted-zoo, the members of `detection.TARGETED_ZOO` add their fakes (cached in runs/zoo_targeted.pt).
With --unused-fold, the provided fakes of that fold do not train either: fewer examples of each model.
With --patch-mix, that share of the training fakes gets a patch of another fake of their class
(`data.paste_same_class_patches`).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from handgen.checkpoint import load_model
from handgen.classifier import ClassifierConfig
from handgen.crossval import SCHEMES, append_rows, is_provided_fake, run_fold
from handgen.data import load_folder
from handgen.detection import (
    PROVIDED_FOLDS,
    PROVIDED_REPEATS,
    PSEUDO_SOURCE,
    PSEUDO_THRESHOLD,
    TARGETED_ZOO,
    LabelledSet,
    detector_sources,
    with_extra_zoo,
    with_pseudo_labels,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, required=True, choices=range(PROVIDED_FOLDS))
    parser.add_argument("--scheme", choices=SCHEMES, default="seen models")
    parser.add_argument("--epochs", type=int, default=ClassifierConfig.epochs)
    parser.add_argument("--seed", type=int, default=ClassifierConfig.seed)
    parser.add_argument("--width", type=int, default=ClassifierConfig.width)
    parser.add_argument("--members", type=int, default=ClassifierConfig.members)
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=ClassifierConfig.mirror)
    parser.add_argument("--provided-repeats", type=int, default=PROVIDED_REPEATS)
    parser.add_argument("--generated", action=argparse.BooleanOptionalAction, default=True,
                        help="train with our zoo's and final generators' fakes (--no-generated: an ablation)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="results/detector_cv.jsonl")
    parser.add_argument("--checkpoint", help="keep the fold's model here (resumed if present)")
    parser.add_argument("--teacher", help="self-train: checkpoint of a model trained without this fold")
    parser.add_argument("--unlabelled", default="test_hands", help="self-training: folder of unlabelled hands")
    parser.add_argument("--threshold", type=float, default=PSEUDO_THRESHOLD, help="self-training: confidence")
    parser.add_argument("--targeted-zoo", action="store_true",
                        help="add the fakes of detection.TARGETED_ZOO to the generated ones (an ablation)")
    parser.add_argument("--unused-fold", type=int, action="append", default=[], choices=range(PROVIDED_FOLDS),
                        help="a fold of provided fakes left out of training too (repeatable)")
    parser.add_argument("--patch-mix", type=float, default=ClassifierConfig.patch_mix,
                        help="share of training fakes given a patch of another fake of their class (an ablation)")
    args = parser.parse_args()
    if args.targeted_zoo and not args.generated:
        parser.error("--targeted-zoo adds to the generated fakes that --no-generated leaves out; use one of them")
    torch.set_num_threads(args.threads)
    config = dataclasses.replace(ClassifierConfig(), epochs=args.epochs, seed=args.seed, width=args.width,
                                 members=args.members, mirror=args.mirror, patch_mix=args.patch_mix)
    sources = detector_sources("runs/zoo.pt")
    if not args.generated:
        sources = dataclasses.replace(sources, generated=LabelledSet.concat([]))
    if args.targeted_zoo:
        sources = with_extra_zoo(sources, TARGETED_ZOO, "runs/zoo_targeted.pt")
    self_training = None
    if args.teacher:
        teacher, teacher_config = load_model(args.teacher)
        unlabelled = load_folder(args.unlabelled, warn=False).images
        sources = with_pseudo_labels(sources, teacher, unlabelled, args.threshold)
        pseudo = sources.generated.subset([s == PSEUDO_SOURCE for s in sources.generated.sources])
        self_training = {"threshold": args.threshold, "images": len(pseudo), "teacher_width": teacher_config.width}
        print(f"self-training on {len(pseudo)} of {len(unlabelled)} unlabelled images: {pseudo.counts()}")
    rows = run_fold(sources, args.fold, args.scheme, config, args.provided_repeats,
                    checkpoint=args.checkpoint, unused_folds=tuple(args.unused_fold))
    for row in rows:
        row["self_training"] = self_training
        row["extra_zoo"] = [member.name for member in TARGETED_ZOO] if args.targeted_zoo else []
    append_rows(rows, args.out)
    fakes = [row for row in rows if is_provided_fake(row["source"], row["label"])]
    correct = np.mean([np.argmax(row["proba"]) == row["label"] for row in fakes])
    print(f"{args.scheme}, fold {args.fold}: {len(fakes)} provided fakes held out, accuracy {correct:.4f}, "
          f"{rows[0]['minutes']} min")


if __name__ == "__main__":
    main()
