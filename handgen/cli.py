"""Command line: `python -m handgen COMMAND ...`, one command per step of the job.

Commands: train-vqvae, train-vae, train-gan, sample, zoo, train-detector, crossval, classify, evaluate, tune.

Model flags are generated from the config dataclasses, so a flag, a config field and a JSON key share one name
(`--latent-dim` <-> `latent_dim`) and the defaults are the tuned ones. Every command checks its arguments (exit 2)
and its output paths (exit 1) before it reads data or trains; every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .checkpoint import FAMILIES, GENERATOR_FAMILIES, CheckpointError, load_model, read_checkpoint
from .classifier import DetectorConfig
from .crossval import FOLD_FIELDS, SCHEMES, is_provided_fake, run_fold
from .data import LABELS, REAL_HANDS, DataError, load_folder, real_hands_split
from .detection import (
    OWN_GENERATORS,
    PROVIDED_FOLDS,
    CopyCheck,
    DataRecipe,
    classify_images,
    detector_sources,
    generator_zoo,
    load_detector,
    write_predictions_csv,
)
from .files import OutputError, check_output, check_output_folder
from .realism import build_yardstick, images_of
from .results import append_rows, format_table
from .runtime import CHECKPOINTS, PREDICTIONS_CSV, RESULTS, RUNS, SEED_LIMIT, ZOO_CACHE, pick_device
from .sample import MAX_SAMPLES, is_sampler, sample_to_folder
from .train import TrainingDiverged, fit_detector, train_generator


class UsageError(Exception):
    """Bad arguments found after parsing (a config value out of range, a device this machine lacks): exit 2."""


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
        elif str(field.type).startswith("tuple[int"):  # any number of values, none included
            group.add_argument(flag, dest=field.name, type=int, nargs="*", default=field.default, metavar="N",
                               help=f"default {' '.join(map(str, field.default)) or 'none'}")
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(field.type), str)
            group.add_argument(flag, dest=field.name, type=kind, default=field.default,
                               help=f"default {field.default}")


def config_from_args(config_class: type, args: argparse.Namespace):
    """The config of the parsed flags; fields without a flag keep their defaults. A bad value is a usage error."""
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


def check_generators(paths: Sequence[str]) -> list[str]:
    """The given generator checkpoints that exist, each checked to hold a VAE or GAN before any work starts."""
    present = [path for path in paths if Path(path).is_file()]
    for path in present:
        kind = read_checkpoint(path)["kind"]
        if kind not in GENERATOR_FAMILIES:
            raise CheckpointError(f"{path} holds a {kind}, not a generator (train-vae or train-gan makes one)")
    return present


def check_detector_outputs(args: argparse.Namespace, checkpoint: str | None) -> None:
    """The checkpoint and the zoo cache must be files of their kinds (or absent), and none of the generators."""
    generators = check_generators(args.own_generators)
    if checkpoint:
        check_output(checkpoint, "checkpoint", inputs=generators)
    check_output(args.zoo_cache, "zoo cache", inputs=[*generators, checkpoint])


def run_train_generator(args: argparse.Namespace) -> None:
    family = FAMILIES[args.family]
    config = config_from_args(family.config, args)
    device = device_from_args(args)
    torch.set_num_threads(args.threads)
    check_output(args.checkpoint, "checkpoint")
    train, holdout = real_hands_split(args.data)
    print(f"{train.folder}: {len(train) + len(holdout)} images, {len(train)} for training, {len(holdout)} held out "
          "for evaluation")
    history = train_generator(family.model(config), train.images, config, validation=holdout.images,
                              checkpoint=args.checkpoint, device=device)
    print(f"{family.model.__name__} trained for {len(history)} epochs; checkpoint {args.checkpoint}")


def run_sample(args: argparse.Namespace) -> None:
    device = device_from_args(args)
    check_output_folder(args.out, inputs=[args.checkpoint])
    model, _ = load_model(args.checkpoint, device)
    if not is_sampler(model):
        raise CheckpointError(f"{args.checkpoint} holds a {type(model).__name__}, not a generator "
                              "(train-vae or train-gan makes one)")
    paths = sample_to_folder(model, args.out, n=args.n, seed=args.seed, checkpoint=args.checkpoint)
    print(f"wrote {len(paths)} images to {args.out}")


def run_train_detector(args: argparse.Namespace) -> None:
    config, recipe = config_from_args(DetectorConfig, args), config_from_args(DataRecipe, args)
    device = device_from_args(args)
    check_detector_outputs(args, args.checkpoint)
    data = detector_sources(args.zoo_cache, tuple(args.own_generators)).assemble(recipe)
    print(f"detector data: train {data.train.counts()}, validation {data.validation.counts()}")
    _, history = fit_detector(data.train, config, recipe, validation=(data.validation.images, data.validation.labels),
                              checkpoint=args.checkpoint, device=device)
    final = history[-1]
    print(f"detector trained for {len(history)} epochs; validation accuracy {final['val_accuracy']:.4f}, recall "
          + ", ".join(f"{name} {final[f'val_recall_{name}']:.3f}" for name in LABELS.values())
          + f"; checkpoint {args.checkpoint}")


def run_zoo(args: argparse.Namespace) -> None:
    check_output(args.zoo_cache, "zoo cache")
    torch.set_num_threads(args.threads)
    train, _ = real_hands_split()
    zoo = generator_zoo(train.images, args.zoo_cache, progress=True)
    print(f"generator zoo: {len(zoo)} samples of {len(set(zoo.sources))} snapshots; cache {args.zoo_cache}")


def run_crossval(args: argparse.Namespace) -> None:
    config, recipe = config_from_args(DetectorConfig, args), config_from_args(DataRecipe, args)
    check_detector_outputs(args, args.checkpoint)
    check_output(args.json, "rows", inputs=[args.checkpoint, args.zoo_cache])
    torch.set_num_threads(args.threads)
    rows = run_fold(detector_sources(args.zoo_cache, tuple(args.own_generators)), args.fold, args.scheme, config,
                    recipe, checkpoint=args.checkpoint)
    append_rows(rows, args.json)
    fakes = [row for row in rows if is_provided_fake(row["source"], row["label"])]
    correct = sum(max(range(3), key=row["proba"].__getitem__) == row["label"] for row in fakes) / len(fakes)
    print(f"{args.scheme}, fold {args.fold}: {len(fakes)} provided fakes held out, accuracy {correct:.4f} "
          f"(decision offsets {config.decision_offsets}), {rows[0]['minutes']} min; rows appended to {args.json}")


def run_classify(args: argparse.Namespace) -> None:
    device = device_from_args(args)
    check_output(args.out, "predictions", inputs=[args.checkpoint, args.input])
    model = load_detector(args.checkpoint, device)
    copies = CopyCheck(load_folder(REAL_HANDS, args.real, warn=False).images) if model.config.copy_threshold else None
    data = load_folder(args.input)
    labels, flagged = classify_images(model, data.images, copies)
    rows = list(zip(data.names, labels))
    path = write_predictions_csv(rows, args.out)
    counts = Counter(labels)
    print(f"labelled {len(rows)} images of {data.folder} -> {path}: "
          + ", ".join(f"{counts.get(label, 0)} {name} ({label})" for label, name in LABELS.items())
          + f"; {flagged} copied a real training hand (labelled VAE); skipped {len(data.skipped)} unreadable file(s)")


def run_evaluate(args: argparse.Namespace) -> None:
    if args.json:
        check_output(args.json, "rows", inputs=args.sets)
    sets = {source: images_of(source) for source in args.sets}  # bad sets fail before the judge is built
    rows = build_yardstick(args.real, args.judge_folder, two_sample=args.two_sample).table(sets)
    print(format_table(rows))
    if args.json:
        print(f"appended {append_rows(rows, args.json)} rows to {args.json}")


def run_tune(args: argparse.Namespace) -> None:
    from .tuning import BUDGETS, run_study, storage_url, study_objective, trial_table  # optuna: a second to import

    budget = dataclasses.replace(BUDGETS[args.family], **{k: v for k, v in (("trials", args.trials),
                                                                             ("epochs", args.epochs)) if v})
    storage_url(args.storage)  # a storage that cannot hold the study fails before the objective is built
    torch.set_num_threads(args.threads)
    study = run_study(args.family, lambda: study_objective(args.family, budget, zoo_cache=args.zoo_cache,
                                                           autoencoder=args.autoencoder),
                      budget, args.storage, seed=args.worker)
    print(format_table(trial_table(study)))
    print(f"best trial {study.best_trial.number}: value {study.best_value:.4f}, params {study.best_params}")


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}, got {text}")
        return value
    return parse


positive_int = bounded_int(1, 2**31 - 1)


def add_threads_flag(parser: argparse.ArgumentParser, use: str) -> None:
    """`--threads`: the CPU threads torch uses (default: all it found)."""
    parser.add_argument("--threads", type=bounded_int(1, 256), default=torch.get_num_threads(),
                        help=f"CPU threads ({use})")


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
        add_threads_flag(sub, "1 trains the VAE and the GAN side by side on 2 cores, as `make run` does")
        add_config_flags(sub, FAMILIES[family].config)
        sub.set_defaults(run=run_train_generator, family=family)
    sub = commands.add_parser("sample", help="write n generated JPEGs from a checkpoint into a folder")
    sub.add_argument("--checkpoint", required=True, help="a VAE or GAN checkpoint")
    sub.add_argument("--out", required=True, help="target folder, e.g. VAE_hands")
    sub.add_argument("--n", type=bounded_int(1, MAX_SAMPLES), default=300)
    sub.add_argument("--seed", type=bounded_int(0, SEED_LIMIT), default=0)
    sub.add_argument("--device", choices=["cpu", "cuda"])
    sub.set_defaults(run=run_sample)

    sub = commands.add_parser("train-detector", aliases=["train-classifier"],
                              help="train the real/VAE/GAN detector (resumes from --checkpoint)")
    sub.add_argument("--checkpoint", default=str(RUNS / "detector.pt"), help="saved every epoch; resumed if present")
    add_detector_data_flags(sub)
    sub.add_argument("--device", choices=["cpu", "cuda"])
    add_config_flags(sub, DetectorConfig)
    sub.set_defaults(run=run_train_detector)

    sub = commands.add_parser("zoo", help="train the detector's generator zoo into its cache (train-detector uses it)")
    sub.add_argument("--zoo-cache", default=str(ZOO_CACHE), help="where its samples are kept")
    add_threads_flag(sub, "1 builds it beside a generator's training on 2 cores, as `make run` does")
    sub.set_defaults(run=run_zoo)

    sub = commands.add_parser("crossval", help="one fold of the detector's cross-validation on the students' fakes")
    sub.add_argument("--fold", type=int, required=True, choices=range(PROVIDED_FOLDS))
    sub.add_argument("--scheme", choices=SCHEMES, default="seen models",
                     help="'seen models': a share of each student model held out; 'unseen models': whole models")
    sub.add_argument("--checkpoint", help="keep the fold's model here (resumed if present)")
    sub.add_argument("--json", default=str(RESULTS / "detector_cv.jsonl"), help="out-of-fold rows are appended here")
    add_threads_flag(sub, "1 runs two folds side by side on 2 cores")
    add_detector_data_flags(sub, skip=FOLD_FIELDS)
    add_config_flags(sub, DetectorConfig)
    sub.set_defaults(run=run_crossval)

    sub = commands.add_parser("classify", help="label every image of a folder 0 real, 1 VAE, 2 GAN into a CSV")
    sub.add_argument("--input", default="test_hands", help="folder name or path (default: look up 'test_hands')")
    sub.add_argument("--out", default=str(PREDICTIONS_CSV))
    sub.add_argument("--checkpoint", default=str(CHECKPOINTS / "detector.pt"))
    sub.add_argument("--real", help=f"the real training hands copies are looked for in (default: '{REAL_HANDS}')")
    sub.add_argument("--device", choices=["cpu", "cuda"])
    sub.set_defaults(run=run_classify)

    sub = commands.add_parser("evaluate", help="score generated hands: the judges' fool rates, two-sample test, pixels")
    sub.add_argument("sets", nargs="+", metavar="SET",
                     help="folders of generated JPEGs (e.g. VAE_hands) or generator checkpoints (2000 fresh samples)")
    sub.add_argument("--real", help=f"folder of real hands (default: look up '{REAL_HANDS}')")
    sub.add_argument("--judge-folder", default=str(CHECKPOINTS),
                     help="where the judges are cached (judge-<hash of data and config>.pt); trained there if absent")
    sub.add_argument("--two-sample", action=argparse.BooleanOptionalAction, default=True,
                     help="run the two-sample test (a few minutes on a CPU)")
    sub.add_argument("--json", help="append the rows to this JSON-lines file")
    sub.set_defaults(run=run_evaluate)

    sub = commands.add_parser("tune", help="Optuna search for one model family (resumes from --storage)")
    sub.add_argument("family", choices=["vae", "gan", "detector"])
    sub.add_argument("--trials", type=positive_int, help="total trials of the study (default: per family)")
    sub.add_argument("--epochs", type=positive_int, help="full length of a trial (default: per family)")
    sub.add_argument("--storage", default=str(RESULTS / "tuning.db"),
                     help="a SQLite file or a database URL; several workers may share one study")
    sub.add_argument("--worker", type=bounded_int(0, 1000), default=0,
                     help="seeds this worker's sampler (give each its own)")
    add_threads_flag(sub, "1 runs two workers side by side on 2 cores")
    sub.add_argument("--zoo-cache", default=str(ZOO_CACHE), help="detector: samples of the generator zoo")
    sub.add_argument("--autoencoder", help="vae: the VQ-VAE whose prior is searched (default: checkpoints/vae.pt)")
    sub.set_defaults(run=run_tune)
    return parser


def _exit_on_terminate(signum: int, _frame) -> None:
    sys.exit(128 + signum)


EXPECTED = (DataError, CheckpointError, OutputError, TrainingDiverged, ValueError)  # one line each, exit 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns 0 on success, 1 on a data, checkpoint, output, storage or memory error, 2 on bad
    arguments, 130 when interrupted. An unexpected error is one line too, its traceback written to a file."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    signal.signal(signal.SIGTERM, _exit_on_terminate)  # a plain kill runs the clean-ups of partial outputs
    try:
        run(args)
    except UsageError as error:
        return _fail(error, 2)
    except EXPECTED as error:
        return _fail(error, 1)
    except MemoryError:
        return _fail("out of memory; lower --batch-size or the network's width, or free memory", 1)
    except KeyboardInterrupt:
        return _fail("interrupted; checkpoints and outputs written so far are whole and kept", 130)
    except Exception as error:  # noqa: BLE001 - the last resort: one line, the traceback kept for a bug report
        kind = type(error).__module__.split(".")[0]
        if kind in ("sqlalchemy", "optuna"):
            return _fail(f"study storage: {str(error).splitlines()[0]}", 1)
        return _fail(f"unexpected {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}; "
                     f"the full traceback is in {_write_traceback()}", 1)
    return 0


def _fail(message: object, code: int) -> int:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)  # one line, whatever the message held
    return code


def _write_traceback() -> str:
    with tempfile.NamedTemporaryFile("w", prefix="handgen-error-", suffix=".txt", delete=False) as handle:
        traceback.print_exc(file=handle)
    return handle.name


if __name__ == "__main__":
    sys.exit(main())
