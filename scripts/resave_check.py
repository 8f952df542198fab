"""How much do a detector's labels depend on how the files were last saved? (appends to results/resave.jsonl)

Every image of `test_hands/` is saved again (JPEG at quality 75, 90 and 95, and PNG) and labelled anew, copy check
included, as `Classifier.ipynb` does for the final detector; the 500 held-out real hands' recall is read after the
same re-saves. Run on a cross-validation fold's checkpoint, it compares recipes before one is adopted:

    python -m handgen crossval --fold 0 --reencode 1.0 --checkpoint runs/cv.pt ...
    python scripts/resave_check.py runs/cv.pt --name "reencode 1.0" [--views 75 90] [--as-given]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from handgen import (
    RESAVES,
    CopyCheck,
    append_rows,
    format_table,
    jpeg_round_trip,
    load_folder,
    load_model,
    predict_proba,
    real_hands_split,
    resave_changes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a detector checkpoint")
    parser.add_argument("--name", required=True, help="the recipe's name in the rows")
    parser.add_argument("--views", type=int, nargs="*", help="override the checkpoint's prediction views")
    parser.add_argument("--as-given", action=argparse.BooleanOptionalAction, help="override whether the image as "
                        "given is one of the views")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="results/resave.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, config = load_model(args.checkpoint)
    overrides = {"views": None if args.views is None else tuple(args.views), "as_given": args.as_given}
    model.config = dataclasses.replace(config, **{key: value for key, value in overrides.items() if value is not None})
    test = load_folder("test_hands", warn=False).images
    copies = CopyCheck(load_folder("real_hands", warn=False).images)
    started = time.perf_counter()
    changes = resave_changes(model, test, copies)
    held_out = real_hands_split()[1].images
    recall = {name: float((predict_proba(model, held_out if quality is None else jpeg_round_trip(held_out, quality))
                           .argmax(1) == 0).float().mean()) for name, quality in {"as given": None, **RESAVES}.items()}
    row = {"recipe": args.name, "checkpoint": args.checkpoint, "views": list(model.config.views),
           "as_given": model.config.as_given,
           "labels_changed": changes, "real_recall": recall, "seconds": round(time.perf_counter() - started, 1),
           "threads": args.threads}
    append_rows([row], args.out)
    print(format_table([{"re-saved as": name, "test labels changed": f"{changes.get(name, 0):.2%}",
                         "held-out real recall": f"{value:.3f}"} for name, value in recall.items()]))


if __name__ == "__main__":
    main()
