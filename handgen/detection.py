"""The detector's data and its use: labelled sources, the data recipe, labelling a folder, the CSV.

The detector must label fakes from generators it never saw, so its data is organised by *source* (a folder, or one
of our generator snapshots) and by *model* (one trained generator, a student's or ours): validation holds whole
sources or a fold of each model's images out, not just random images. The generated fakes come from `zoo`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, load_model
from .classifier import Detector, predict_labels
from .data import (
    GAN_LABEL,
    IMAGE_SIZE,
    REAL,
    VAE_LABEL,
    ImageSet,
    LabelledSet,
    image_hashes,
    jpeg_round_trip,
    list_image_files,
    load_folder,
    real_hands_split,
)
from .files import OutputError, replace_atomically
from .runtime import CHECKPOINTS, ZOO_CACHE, check_config, pick_device
from .zoo import DEFAULT_ZOO, cached_zoo_samples, own_generator_samples

PROVIDED_FOLDERS = {"classifier/real_hands": REAL, "classifier/VAE_hands": VAE_LABEL,
                    "classifier/GAN_hands": GAN_LABEL}
PROVIDED_FOLDS = 4  # the provided fakes' folds: validating on one holds out a quarter of each model's images
HELD_OUT_REALS = "real_hands held out"  # the source name of the generators' held-out real hands
OWN_GENERATORS = (CHECKPOINTS / "vae.pt", CHECKPOINTS / "gan.pt")


@dataclass
class DataRecipe:
    """What the detector learns from, stored in its checkpoint beside its `DetectorConfig` (a resume with another
    recipe is refused). Values from the Optuna study of `Hypertuning.ipynb` and cross-validation (`crossval`)."""

    provided_repeats: int = 8   # how often the students' labelled fakes appear in training
    generated_fakes: bool = True  # our generator zoo's and final generators' fakes train too
    validation_fold: int = -1   # the fold of provided fakes held out (`PROVIDED_FOLDS`); -1: all of them train
    whole_models: bool = False  # folds hold whole student models out instead of a share of each one's images

    def __post_init__(self) -> None:
        check_config(self, positive=("provided_repeats",), signed=("validation_fold",))
        if not -1 <= self.validation_fold < PROVIDED_FOLDS:
            raise ValueError(f"DataRecipe.validation_fold must be -1 (none) or 0 to {PROVIDED_FOLDS - 1}, "
                             f"got {self.validation_fold}")


def provided_examples(warn: bool = True) -> LabelledSet:
    """The labelled folders handed out with the coursework; unreadable files are skipped with a warning."""
    parts = []
    for folder, label in PROVIDED_FOLDERS.items():
        data = load_folder(folder, warn=warn)
        source = f"provided {folder.split('/')[-1]}"
        parts.append(LabelledSet.from_images(data.images, label, source,
                                             [f"{source} {model}" for model in models_of(data)]))
    return LabelledSet.concat(parts)


def models_of(data: ImageSet) -> list[str]:
    """Which student's model made each image of a provided folder, or the file name where that is unknown.

    A folder may ship a listing of the files' original names: a text file in place of an image whose i-th line
    names the folder's i-th file, as `GAN_hands_<student>_<student>_GAN297.jpeg.jpeg`. Each student made one
    model, so the student field identifies it; only a short hash of it is kept.
    """
    files = [path.name for path in list_image_files(data.folder)] if data.folder else []
    for name, reason in data.skipped.items():
        lines = [line.strip() for line in (data.folder / name).read_text(errors="replace").splitlines()
                 if line.strip()] if reason.startswith("not an image (text") else []
        if len(lines) == len(files) and sum(line.count("_") >= 3 for line in lines) > len(lines) / 2:
            student = {file: line.split("_")[2].lower() for file, line in zip(files, lines) if line.count("_") >= 3}
            return [f"model {hashlib.blake2b(student[n].encode(), digest_size=3).hexdigest()}" if n in student
                    else n for n in data.names]
    return list(data.names)


def model_folds(models: list[str], folds: int, seed: int = 0, *, whole: bool = False) -> torch.Tensor:
    """A fold (0 .. folds-1) for each image, drawn at random (seeded), from the model that made it.

    By default each model's images are dealt over the folds, one per fold in turn from a random start: validating on
    one fold then shows new images of models the others trained on, which is how the fakes of `test_hands/` relate
    to the provided ones. `whole` keeps each model in one fold instead: models unseen.
    """
    rng = np.random.default_rng(seed)
    next_fold, assigned = {}, np.empty(len(models), dtype=np.int64)
    for index in rng.permutation(len(models)):
        model = models[index]
        if model not in next_fold:
            next_fold[model] = int(rng.integers(folds))
        assigned[index] = next_fold[model] % folds
        next_fold[model] += 0 if whole else 1
    return torch.from_numpy(assigned)


def without_images_of(data: LabelledSet, excluded: torch.Tensor) -> LabelledSet:
    """`data` minus every image identical to one of `excluded` (e.g. held-out real hands)."""
    banned = set(image_hashes(excluded))
    keep = [i for i, digest in enumerate(image_hashes(data.images)) if digest not in banned]
    return data.subset(keep)


@dataclass
class DetectorData:
    """Training and validation sets; validation holds out whole zoo generators and a share of provided fakes."""

    train: LabelledSet
    validation: LabelledSet


def build_detector_data(real_train: torch.Tensor, real_holdout: torch.Tensor, provided: LabelledSet,
                        generated: LabelledSet, recipe: DataRecipe,
                        held_out_zoo: tuple[str, ...] = ("vae blurry", "gan wide"), seed: int = 0) -> DetectorData:
    """Assemble the detector's sets from uint8 images, as `recipe` says: real hands split as for the generators (the
    generators' held-out hands validate), the zoo members `held_out_zoo` held out whole, and the provided fakes' fold
    `recipe.validation_fold` of `PROVIDED_FOLDS` (see `model_folds`; -1: every provided fake trains), models dealt
    over the folds or (`recipe.whole_models`) kept whole.

    The provided training fakes appear `recipe.provided_repeats` times: they are the only examples of the students'
    generators, the population the detector is for, and are outnumbered by our own generated fakes, which join
    only with `recipe.generated_fakes`.
    """
    provided = without_images_of(provided, torch.cat([real_train, real_holdout]))  # its reals are in real_hands
    folds = model_folds(provided.models, PROVIDED_FOLDS, seed, whole=recipe.whole_models)
    to_validation = (provided.labels != REAL) & (folds == recipe.validation_fold)
    generated = generated if recipe.generated_fakes else LabelledSet.concat([])
    zoo_out = torch.tensor([any(f"zoo {name} " in source for name in held_out_zoo) for source in generated.sources],
                           dtype=torch.bool)
    train = LabelledSet.concat([LabelledSet.from_images(real_train, REAL, "real_hands"),
                                *[provided.subset(~to_validation)] * recipe.provided_repeats,
                                generated.subset(~zoo_out)])
    validation = LabelledSet.concat([LabelledSet.from_images(real_holdout, REAL, HELD_OUT_REALS),
                                     provided.subset(to_validation), generated.subset(zoo_out)])
    return DetectorData(train, validation)


@dataclass
class DetectorSources:
    """Everything the detector may learn from, before the split: `assemble` makes the sets of a recipe."""

    real_train: torch.Tensor    # the generators' 7500 training hands
    real_holdout: torch.Tensor  # the generators' 500 held-out hands
    provided: LabelledSet       # the coursework's labelled folders
    generated: LabelledSet      # the zoo's and our own final generators' samples, stored as JPEG

    def assemble(self, recipe: DataRecipe) -> DetectorData:
        """The training and validation sets of `recipe`."""
        return build_detector_data(self.real_train, self.real_holdout, self.provided, self.generated, recipe)


def detector_sources(zoo_cache: str | os.PathLike | None = ZOO_CACHE,
                     own_checkpoints: tuple[str | os.PathLike, ...] = OWN_GENERATORS,
                     quick: bool = False) -> DetectorSources:
    """Real hands, provided fakes, the zoo (trained, or read from `zoo_cache`) and our own generators' samples
    (missing checkpoints are skipped), every generated image stored as a quality-75 JPEG, as every real and provided
    hand is. Quick mode: 1024 real hands and a one-epoch zoo, for a smoke run."""
    train, holdout = real_hands_split()
    real = train.images[:1024] if quick else train.images
    zoo = generator_zoo(real, zoo_cache, quick)
    own = own_generator_samples([p for p in own_checkpoints if Path(p).is_file()], n=200 if quick else 1000)
    generated = LabelledSet.concat([zoo, own])
    generated = LabelledSet(jpeg_round_trip(generated.images), generated.labels, generated.sources, generated.models)
    return DetectorSources(real, holdout.images, provided_examples(), generated)


def generator_zoo(real: torch.Tensor, zoo_cache: str | os.PathLike | None = ZOO_CACHE, quick: bool = False,
                  progress: bool = False) -> LabelledSet:
    """The zoo's samples, trained on `real` hands or read from `zoo_cache` (quick mode: one epoch, not cached).
    `python -m handgen zoo` fills the cache ahead of the detector, beside a generator's training."""
    members = tuple(member.quick() for member in DEFAULT_ZOO) if quick else DEFAULT_ZOO
    return cached_zoo_samples(real, None if quick else zoo_cache, members, 100 if quick else 300, progress=progress)


def load_detector(path: str | os.PathLike, device: torch.device | str | None = None) -> Detector:
    """The detector saved at `path`; a clear error if it holds another kind of model."""
    model, _ = load_model(path, pick_device(device))
    if not isinstance(model, Detector):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not a detector (train-detector makes one)")
    return model


class CopyCheck:
    """Finds memorised copies: images closer than a threshold (pixel L2 on a 0-1 scale) to a real training hand,
    after mirroring or shifting by a pixel. No real hand of a folder to label is among the training hands, so such an
    image was made by a generator that returned its training data.

    A coarse pass compares 4x4-pooled images, whose distance times 4 bounds the full one from below; only the few
    images it cannot clear get the exact distance, so a folder of thousands takes seconds.
    """

    def __init__(self, real: torch.Tensor, batch: int = 512):
        self.real = real.float().div(255).flatten(1)              # (M, 1024)
        self.pooled = _pooled(self.real)                           # (M, 64)
        self.batch = batch

    def distances(self, images: torch.Tensor) -> torch.Tensor:
        """Exact nearest distance (N,) of uint8 images (N, 1, 32, 32) to the real hands, over mirrors and shifts."""
        return torch.cat([_nearest(_variants(chunk), self.real).view(-1, len(chunk)).min(0).values
                          for chunk in images.split(self.batch)]) if len(images) else torch.empty(0)

    def flags(self, images: torch.Tensor, threshold: float) -> torch.Tensor:
        """Which of uint8 images (N, 1, 32, 32) copy a real hand, closer than `threshold` (bool, (N,))."""
        flagged = torch.zeros(len(images), dtype=torch.bool)
        if threshold <= 0 or not len(images):
            return flagged
        bound = torch.cat([4 * _nearest(_pooled(_variants(chunk)), self.pooled).view(-1, len(chunk)).min(0).values
                           for chunk in images.split(self.batch)])
        candidates = (bound < threshold).nonzero().squeeze(1)
        if len(candidates):
            flagged[candidates] = self.distances(images[candidates]) < threshold
        return flagged


def _variants(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 1, 32, 32) -> (18 N, 1024) on a 0-1 scale: each and its mirror, shifted by up to a pixel."""
    x = images.float().div(255)
    padded = [torch.nn.functional.pad(view, (1, 1, 1, 1)) for view in (x, x.flip(-1))]
    shifted = [view[:, :, dy:dy + IMAGE_SIZE, dx:dx + IMAGE_SIZE] for view in padded for dy in range(3)
               for dx in range(3)]
    return torch.cat(shifted).flatten(1)


def _pooled(flat: torch.Tensor) -> torch.Tensor:
    """(N, 1024) images -> (N, 64), each 4x4 block averaged."""
    return torch.nn.functional.avg_pool2d(flat.view(-1, 1, IMAGE_SIZE, IMAGE_SIZE), 4).flatten(1)


def _nearest(queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each query row to its nearest reference row (one matrix product and one minimum
    over the (queries, references) matrix: the pass over memory is the cost)."""
    closest = torch.addmm(references.pow(2).sum(1), queries, references.t(), alpha=-2).min(1).values
    return (closest + queries.pow(2).sum(1)).clamp_min(0).sqrt()


def classify_images(model: Detector, images: torch.Tensor, copies: CopyCheck | None = None) -> tuple[list[int], int]:
    """Labels 0 real, 1 VAE, 2 GAN for uint8 images (N, 1, 32, 32), and how many were flagged as copies: with
    `copies`, an image that copies a real training hand is a generated one, labelled VAE (every such copy among the
    labelled fakes is a VAE hand: a VAE that memorised its data; a GAN does not store its training images)."""
    labels = predict_labels(model, images)
    if copies is None:
        return labels, 0
    flagged = copies.flags(images, model.config.copy_threshold)
    for index in flagged.nonzero().squeeze(1).tolist():
        labels[index] = VAE_LABEL
    return labels, int(flagged.sum())


RESAVES = {"JPEG quality 75": 75, "JPEG quality 90": 90, "JPEG quality 95": 95, "PNG": None}


def resave_changes(model: Detector, images: torch.Tensor, copies: CopyCheck | None = None,
                   resaves: dict[str, int | None] = RESAVES) -> dict[str, float]:
    """The share of labels that change when every image is saved again (as JPEG at a quality, or losslessly as
    PNG) and labelled anew: a detector of generated images should not decide on how a file was last saved."""
    before = torch.tensor(classify_images(model, images, copies)[0])
    changes = {}
    for name, quality in resaves.items():
        again = images.clone() if quality is None else jpeg_round_trip(images, quality)  # PNG keeps every pixel
        after = torch.tensor(classify_images(model, again, copies)[0])
        changes[name] = float((after != before).float().mean())
    return changes


def classify_folder(model: Detector, folder: str | os.PathLike, copies: CopyCheck | None = None, *,
                    warn: bool = True) -> list[tuple[str, int]]:
    """(file name, label) for every readable image of `folder`, sorted by name; unreadable files are skipped."""
    data = load_folder(folder, Path(folder), warn=warn)
    return list(zip(data.names, classify_images(model, data.images, copies)[0]))


def write_predictions_csv(rows: list[tuple[str, int]], path: str | os.PathLike) -> Path:
    """Write `name, label` lines (no header, UTF-8), sorted by name, whole or not at all."""
    path = Path(path)
    unfit = [name for name, _ in rows if any(character in name for character in ",\n\r")]
    if unfit:
        raise ValueError(f"cannot write {path}: the file name {unfit[0]!r} holds a comma or a line break, which a "
                         "'name, label' line cannot carry; rename it")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; name a file, e.g. {path / 'predictions.csv'}")
    text = "".join(f"{name}, {label}\n" for name, label in sorted(rows))
    return replace_atomically(path, lambda handle: handle.write(text.encode("utf-8")))
