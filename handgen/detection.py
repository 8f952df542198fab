"""Labelled data for the detector: real hands, the provided students' fakes, our generated fakes, by source.

The detector must label fakes from generators it never saw, so the data is organised by *source* (a folder, or
one of our generator snapshots) and by *model* (one trained generator): validation holds whole sources or a fold
of each model's images out, not just random images. Nothing here trains; the generated fakes come from `zoo`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from .classifier import PROVIDED_FOLDS, ClassifierConfig
from .data import ImageSet, list_image_files, load_folder
from .families import GAN_LABEL, REAL, VAE_LABEL

PROVIDED_FOLDERS = {"classifier/real_hands": REAL, "classifier/VAE_hands": VAE_LABEL,
                    "classifier/GAN_hands": GAN_LABEL}


@dataclass
class LabelledSet:
    """uint8 images (N, 1, 32, 32), labels (N,) in {0, 1, 2}, the source of each image and the generator (one
    trained model) that made it; `generators` defaults to the sources."""

    images: torch.Tensor
    labels: torch.Tensor
    sources: list[str]
    generators: list[str] | None = None

    def __post_init__(self) -> None:
        if self.generators is None:
            self.generators = list(self.sources)

    def __len__(self) -> int:
        return len(self.sources)

    @classmethod
    def from_images(cls, images: torch.Tensor, label: int, source: str,
                    generators: list[str] | None = None) -> LabelledSet:
        return cls(images, torch.full((len(images),), label, dtype=torch.long), [source] * len(images), generators)

    @classmethod
    def concat(cls, parts: list[LabelledSet]) -> LabelledSet:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(torch.empty(0, 1, 32, 32, dtype=torch.uint8), torch.empty(0, dtype=torch.long), [])
        return cls(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
                   [s for p in parts for s in p.sources], [g for p in parts for g in p.generators])

    def subset(self, mask_or_indices) -> LabelledSet:
        indices = torch.as_tensor(mask_or_indices)
        if indices.dtype == torch.bool:
            indices = indices.nonzero().squeeze(1)
        indices = indices.tolist()
        return LabelledSet(self.images[indices], self.labels[indices], [self.sources[i] for i in indices],
                           [self.generators[i] for i in indices])

    def examples(self, label: int, n: int, seed: int = 0) -> torch.Tensor:
        """Up to n images of one class, drawn at random (seeded) for display."""
        indices = (self.labels == label).nonzero().squeeze(1)
        return self.images[indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:n]]]

    def counts(self) -> dict[str, int]:
        """Images per class name."""
        names = {REAL: "real", VAE_LABEL: "VAE", GAN_LABEL: "GAN"}
        tally = Counter(self.labels.tolist())
        return {names[label]: tally.get(label, 0) for label in names}


def image_hashes(images: torch.Tensor) -> list[str]:
    """One content hash per uint8 image: finds the same hand under two file names."""
    return [hashlib.blake2b(image.numpy().tobytes(), digest_size=12).hexdigest() for image in images]


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
    """Which model made each image of a provided folder, or the file name where that is unknown.

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


def generator_folds(generators: list[str], folds: int, seed: int = 0, *, whole: bool = False) -> torch.Tensor:
    """A fold (0 .. folds-1) for each image, drawn at random (seeded).

    By default each generator's images are dealt over the folds, one per fold in turn from a random start:
    validating on one fold then shows new images of models the others trained on, which is how the fakes of
    `test_hands/` relate to the provided ones. `whole` keeps each generator in one fold instead: models unseen.
    """
    rng = np.random.default_rng(seed)
    next_fold, assigned = {}, np.empty(len(generators), dtype=np.int64)
    for index in rng.permutation(len(generators)):
        generator = generators[index]
        if generator not in next_fold:
            next_fold[generator] = int(rng.integers(folds))
        assigned[index] = next_fold[generator] % folds
        next_fold[generator] += 0 if whole else 1
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


HELD_OUT_REALS = "real_hands held out"  # the source name of the generators' held-out real hands


def build_detector_data(real_train: torch.Tensor, real_holdout: torch.Tensor, provided: LabelledSet,
                        generated: LabelledSet, config: ClassifierConfig,
                        held_out_zoo: tuple[str, ...] = ("vae blurry", "gan wide"), seed: int = 0) -> DetectorData:
    """Assemble the detector's sets from uint8 images, as `config`'s data recipe says: real hands split as for the
    generators (the generators' held-out hands validate), the zoo members `held_out_zoo` held out whole, and the
    provided fakes' fold `config.validation_fold` of `PROVIDED_FOLDS` (see `generator_folds`; -1: every provided
    fake trains), models dealt over the folds or (`config.whole_models`) kept whole.

    The provided training fakes appear `config.provided_repeats` times: they are the only examples of the students'
    generators, the population the detector is for, and are outnumbered by our own generated fakes, which join
    only with `config.generated_fakes`.
    """
    provided = without_images_of(provided, torch.cat([real_train, real_holdout]))  # its reals are in real_hands
    folds = generator_folds(provided.generators, PROVIDED_FOLDS, seed, whole=config.whole_models)
    to_validation = (provided.labels != REAL) & (folds == config.validation_fold)
    generated = generated if config.generated_fakes else LabelledSet.concat([])
    zoo_out = torch.tensor([any(f"zoo {name} " in source for name in held_out_zoo) for source in generated.sources],
                           dtype=torch.bool)
    train = LabelledSet.concat([LabelledSet.from_images(real_train, REAL, "real_hands"),
                                *[provided.subset(~to_validation)] * config.provided_repeats,
                                generated.subset(~zoo_out)])
    validation = LabelledSet.concat([LabelledSet.from_images(real_holdout, REAL, HELD_OUT_REALS),
                                     provided.subset(to_validation), generated.subset(zoo_out)])
    return DetectorData(train, validation)


@dataclass
class DetectorSources:
    """Everything the detector may learn from, before the split: `build_detector_data` assembles the sets."""

    real_train: torch.Tensor    # the generators' 7500 training hands
    real_holdout: torch.Tensor  # the generators' 500 held-out hands
    provided: LabelledSet       # the coursework's labelled folders
    generated: LabelledSet      # the zoo and our own final generators (`zoo.generated_fakes`)

    def assemble(self, config: ClassifierConfig) -> DetectorData:
        """The training and validation sets of `config`'s data recipe."""
        return build_detector_data(self.real_train, self.real_holdout, self.provided, self.generated, config)
