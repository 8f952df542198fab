"""Command line: `python -m handgen {train-vae,train-gan,sample,train-detector,crossval,classify,evaluate,tune} ...`.

Model flags are generated from the config dataclasses, so a flag, a config field and a JSON key
share one name (`--latent-dim` <-> `latent_dim`) and the defaults are the tuned ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence

import torch

from .checkpoint import FAMILIES, GENERATOR_FAMILIES, CheckpointError, load_model
from .classifier import DetectorConfig, predict_labels
from .crossval import FOLD_FIELDS, SCHEMES, is_provided_fake, run_fold
from .data import LABELS, REAL_HANDS, DataError, load_folder, real_hands_split
from .detection import (
    OWN_GENERATORS,
    PROVIDED_FOLDS,
    DataRecipe,
    detector_sources,
    load_detector,
    write_predictions_csv,
)
from .realism import build_yardstick, images_of
from .results import append_rows, format_table
from .runtime import CHECKPOINTS, PREDICTIONS_CSV, RESULTS, RUNS, ZOO_CACHE, OutputError, pick_device
from .sample import is_sampler, sample_to_folder
from .train import TrainingDiverged, fit_detector, train_generator


def add_config_flags(parser: argparse.ArgumentParser, config_class: type, skip: tuple[str, ...] = ()) -> None:
    """One `--field-name` flag per dataclass field (but `skip`), typed and defaulted from the dataclass."""
    group = parser.add_argument_group(f"{config_class.__name__} fields")
    for field in dataclasses.fields(config_class):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=field.default)
        elif str(field.type).startswith("tuple[float"):
            group.add_argument(flag, dest=field.name, type=float, nargs=len(field.default), default=field.default,
                               metavar="X", help=f"default {' '.join(map(str, field.default))}")
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(field.type), str)
            group.add_argument(flag, dest=field.name, type=kind, default=field.default,
                               help=f"default {field.default}")


class UsageError(Exception):
    """Bad arguments found after parsing (a config value out of range, a device this machine lacks): exit 2."""


def config_from_args(config_class: type, args: argparse.Namespace):
    """The config of the parsed flags; fields without a flag keep their defaults."""
    try:
        return config_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)
                               if hasattr(args, f.name)})
    except ValueError as error:
        raise UsageError(error) from None


def add_detector_data_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """The detector's data recipe (`DataRecipe` fields) and where its generated fakes come from."""
    parser.add_argument("--zoo-cache", default=str(ZOO_CACHE), help="samples of the generator zoo, reused if valid")
    parser.add_argument("--own-generators", nargs="*", default=[str(path) for path in OWN_GENERATORS],
                        help="checkpoints of our own generators whose samples join the fakes (missing ones skipped)")
    add_config_flags(parser, DataRecipe, skip)


def device_from_args(args: argparse.Namespace):
    """The device asked for, refusing CUDA on a machine without it."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: this machine has no CUDA device; leave --device out to use the CPU")
    return pick_device(args.device)


def generator_training_images(args: argparse.Namespace):
    """Real hands minus the fixed evaluation hold-out, as uint8 (N, 1, 32, 32)."""
    train, holdout = real_hands_split(args.data)
    print(f"{train.folder}: {len(train) + len(holdout)} images, {len(train)} for training, {len(holdout)} held out "
          "for evaluation")
    return train.images


def run_train_generator(args: argparse.Namespace) -> None:
    family = FAMILIES[args.family]
    config = config_from_args(family.config, args)
    device = device_from_args(args)
    history = train_generator(family.model(config), generator_training_images(args), config,
                              checkpoint=args.checkpoint, device=device)
    print(f"{family.model.__name__} trained for {len(history)} epochs; checkpoint {args.checkpoint}")


def run_sample(args: argparse.Namespace) -> None:
    model, _ = load_model(args.checkpoint, device_from_args(args))
    if not is_sampler(model):
        raise CheckpointError(f"{args.checkpoint} holds a {type(model).__name__}, not a generator "
                              "(train-vae or train-gan makes one)")
    paths = sample_to_folder(model, args.out, n=args.n, seed=args.seed, checkpoint=args.checkpoint)
    print(f"wrote {len(paths)} images to {args.out}")


def run_train_detector(args: argparse.Namespace) -> None:
    config, recipe = config_from_args(DetectorConfig, args), config_from_args(DataRecipe, args)
    device = device_from_args(args)
    data = detector_sources(args.zoo_cache, tuple(args.own_generators)).assemble(recipe)
    print(f"detector data: train {data.train.counts()}, validation {data.validation.counts()}")
    _, history = fit_detector(data.train, config, recipe, validation=(data.validation.images, data.validation.labels),
                              checkpoint=args.checkpoint, device=device)
    final = history[-1]
    print(f"detector trained for {len(history)} epochs; validation accuracy {final['val_accuracy']:.4f}, recall "
          + ", ".join(f"{name} {final[f'val_recall_{name}']:.3f}" for name in LABELS.values())
          + f"; checkpoint {args.checkpoint}")


def run_crossval(args: argparse.Namespace) -> None:
    config, recipe = config_from_args(DetectorConfig, args), config_from_args(DataRecipe, args)
    torch.set_num_threads(args.threads)
    rows = run_fold(detector_sources(args.zoo_cache, tuple(args.own_generators)), args.fold, args.scheme, config,
                    recipe, checkpoint=args.checkpoint)
    append_rows(rows, args.json)
    fakes = [row for row in rows if is_provided_fake(row["source"], row["label"])]
    correct = sum(max(range(3), key=row["proba"].__getitem__) == row["label"] for row in fakes) / len(fakes)
    print(f"{args.scheme}, fold {args.fold}: {len(fakes)} provided fakes held out, accuracy {correct:.4f} "
          f"(decision offsets {config.decision_offsets}), {rows[0]['minutes']} min; rows appended to {args.json}")


def run_classify(args: argparse.Namespace) -> None:
    model = load_detector(args.checkpoint, device_from_args(args))
    data = load_folder(args.input)
    data_rows = list(zip(data.names, predict_labels(model, data.images)))
    path = write_predictions_csv(data_rows, args.out)
    counts = Counter(label for _, label in data_rows)
    print(f"labelled {len(data_rows)} images of {data.folder} -> {path}: "
          + ", ".join(f"{counts.get(label, 0)} {name} ({label})" for label, name in LABELS.items())
          + f"; skipped {len(data.skipped)} unreadable file(s)")


def run_evaluate(args: argparse.Namespace) -> None:
    sets = {source: images_of(source) for source in args.sets}  # bad sets fail before the judge is built
    rows = build_yardstick(args.real, args.judge_folder, two_sample=args.two_sample).table(sets)
    print(format_table(rows))
    if args.json:
        print(f"appended {append_rows(rows, args.json)} rows to {args.json}")


def run_tune(args: argparse.Namespace) -> None:
    from .tuning import BUDGETS, run_study, study_objective, trial_table  # optuna takes a second to import

    budget = dataclasses.replace(BUDGETS[args.family], **{k: v for k, v in (("trials", args.trials),
                                                                             ("epochs", args.epochs)) if v})
    torch.set_num_threads(args.threads)
    objective = study_objective(args.family, budget, zoo_cache=args.zoo_cache)
    study = run_study(args.family, objective, budget, args.storage, seed=args.worker)
    print(format_table(trial_table(study)))
    print(f"best trial {study.best_trial.number}: value {study.best_value:.4f}, params {study.best_params}")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m handgen", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in GENERATOR_FAMILIES:
        sub = commands.add_parser(f"train-{family}", help=f"train the {family.upper()} on real hands "
                                                          "(resumes from --checkpoint)")
        sub.add_argument("--data", help=f"folder of real hands (default: look up '{REAL_HANDS}')")
        sub.add_argument("--checkpoint", default=str(RUNS / f"{family}.pt"),
                         help="saved every epoch; resumed if present")
        sub.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
        add_config_flags(sub, FAMILIES[family].config)
        sub.set_defaults(run=run_train_generator, family=family)
    sub = commands.add_parser("sample", help="write n generated JPEGs from a checkpoint into a folder")
    sub.add_argument("--checkpoint", required=True, help="a VAE or GAN checkpoint")
    sub.add_argument("--out", required=True, help="target folder, e.g. VAE_hands")
    sub.add_argument("--n", type=positive_int, default=300)
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--device", choices=["cpu", "cuda"])
    sub.set_defaults(run=run_sample)

    sub = commands.add_parser("train-detector", aliases=["train-classifier"],
                              help="train the real/VAE/GAN detector (resumes from --checkpoint)")
    sub.add_argument("--checkpoint", default=str(RUNS / "detector.pt"), help="saved every epoch; resumed if present")
    add_detector_data_flags(sub)
    sub.add_argument("--device", choices=["cpu", "cuda"])
    add_config_flags(sub, DetectorConfig)
    sub.set_defaults(run=run_train_detector)

    sub = commands.add_parser("crossval", help="one fold of the detector's cross-validation on the students' fakes")
    sub.add_argument("--fold", type=int, required=True, choices=range(PROVIDED_FOLDS))
    sub.add_argument("--scheme", choices=SCHEMES, default="seen models",
                     help="'seen models': a share of each student model held out; 'unseen models': whole models")
    sub.add_argument("--checkpoint", help="keep the fold's model here (resumed if present)")
    sub.add_argument("--json", default=str(RESULTS / "detector_cv.jsonl"), help="out-of-fold rows are appended here")
    sub.add_argument("--threads", type=positive_int, default=torch.get_num_threads(),
                     help="CPU threads (1 runs two folds side by side on 2 cores)")
    add_detector_data_flags(sub, skip=FOLD_FIELDS)
    add_config_flags(sub, DetectorConfig)
    sub.set_defaults(run=run_crossval)

    sub = commands.add_parser("classify", help="label every image of a folder 0 real, 1 VAE, 2 GAN into a CSV")
    sub.add_argument("--input", default="test_hands", help="folder name or path (default: look up 'test_hands')")
    sub.add_argument("--out", default=str(PREDICTIONS_CSV))
    sub.add_argument("--checkpoint", default=str(CHECKPOINTS / "detector.pt"))
    sub.add_argument("--device", choices=["cpu", "cuda"])
    sub.set_defaults(run=run_classify)

    sub = commands.add_parser("evaluate", help="score generated hands: judge's fool rate, two-sample test, pixels")
    sub.add_argument("sets", nargs="+", metavar="SET",
                     help="folders of generated JPEGs (e.g. VAE_hands) or generator checkpoints (2000 fresh samples)")
    sub.add_argument("--real", help=f"folder of real hands (default: look up '{REAL_HANDS}')")
    sub.add_argument("--judge-folder", default=str(CHECKPOINTS),
                     help="where the judge is cached (judge-<hash of its data and config>.pt); trained there if absent")
    sub.add_argument("--two-sample", action=argparse.BooleanOptionalAction, default=True,
                     help="run the two-sample test (a few minutes on a CPU)")
    sub.add_argument("--json", help="append the rows to this JSON-lines file")
    sub.set_defaults(run=run_evaluate)

    sub = commands.add_parser("tune", help="Optuna search for one model family (resumes from --storage)")
    sub.add_argument("family", choices=["vae", "gan", "detector"])
    sub.add_argument("--trials", type=positive_int, help="total trials of the study (default: per family)")
    sub.add_argument("--epochs", type=positive_int, help="epochs per trial (default: per family)")
    sub.add_argument("--storage", default=str(RESULTS / "tuning.db"),
                     help="a SQLite file or a database URL; several workers may share one study")
    sub.add_argument("--worker", type=int, default=0, help="seeds this worker's sampler (give each its own)")
    sub.add_argument("--threads", type=positive_int, default=torch.get_num_threads(),
                     help="CPU threads (1 runs two workers side by side on 2 cores)")
    sub.add_argument("--zoo-cache", default=str(ZOO_CACHE), help="detector: samples of the generator zoo")
    sub.set_defaults(run=run_tune)
    return parser


def _exit_on_terminate(signum: int, _frame) -> None:
    sys.exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns 0 on success, 1 on a data/checkpoint/output error, 2 on bad arguments."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    signal.signal(signal.SIGTERM, _exit_on_terminate)  # a plain kill runs the clean-ups of partial outputs
    try:
        run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (DataError, CheckpointError, OutputError, TrainingDiverged, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
