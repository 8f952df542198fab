"""Labelled data for the detector: real hands, the provided fakes, and a zoo of our own generators.

The detector must label fakes from generators it never saw, so the data is organised by *source*
(a folder, or one of our generator snapshots): validation holds whole sources out, not just images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoint import atomic_torch_save, load_model
from .classifier import ClassifierConfig, HandClassifier, predict_proba
from .data import REAL_HANDS, ImageSet, generator_split, list_image_files, load_folder
from .gan import GAN, GANConfig
from .sample import as_jpeg_files, generate
from .train import History, train_classifier, train_gan, train_vae
from .vae import VAE, VAEConfig

REAL, VAE_LABEL, GAN_LABEL = 0, 1, 2
PROVIDED_REPEATS = 8  # tuned; on held-out provided GAN fakes (12 epochs): 79% correct with 1 repeat, 85% with 4
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


def fit_detector(training: LabelledSet, config: ClassifierConfig, **fit_options) -> tuple[HandClassifier, History]:
    """Build the detector and train it on `training` (options as for `train_classifier`)."""
    model = HandClassifier(config)
    history = train_classifier(model, training.images, training.labels, config, **fit_options)
    return model, history


PSEUDO_THRESHOLD = 0.8  # the teacher's probability (after its decision offsets) for a pseudo-label
PSEUDO_SOURCE = "pseudo-labelled"


def pseudo_labelled(teacher: HandClassifier, images: torch.Tensor, threshold: float = PSEUDO_THRESHOLD) -> LabelledSet:
    """The images `teacher` labels with probability >= `threshold`, under that label (self-training).

    The provided fakes are four or five per student model, while an unlabelled folder such as `test_hands/` holds
    dozens of new images of the same models: a student network trained with the teacher's confident labels on
    them learns each model's look from many images instead of a handful. No true label of them is used.
    """
    confidence, labels = predict_proba(teacher, images).max(dim=1)
    keep = confidence >= threshold
    return LabelledSet(images[keep], labels[keep], [PSEUDO_SOURCE] * int(keep.sum()))


def without_images_of(data: LabelledSet, excluded: torch.Tensor) -> LabelledSet:
    """`data` minus every image identical to one of `excluded` (e.g. held-out real hands)."""
    banned = set(image_hashes(excluded))
    keep = [i for i, digest in enumerate(image_hashes(data.images)) if digest not in banned]
    return data.subset(keep)


@dataclass
class ZooMember:
    """One of our own generator variants: a family, config changes, epochs at which to sample."""

    name: str
    family: str                          # "vae" or "gan"
    changes: dict = field(default_factory=dict)
    snapshots: tuple[int, ...] = (1,)    # epochs after which samples are drawn (each is one source)

    def config(self, seed: int):
        """The member's full config: the family's defaults with `changes`, trained up to the last snapshot."""
        config_class = FAMILIES[self.family][1]
        return dataclasses.replace(config_class(), **self.changes, seed=seed, epochs=max(self.snapshots))


# The GAN choices the zoo was built on (before tuning moved GANConfig's defaults): pinned, so that tuning
# our own GAN does not change the zoo, its cache or the detector's validation set
_ZOO_GAN_BASE = {"latent_dim": 128, "loss": "hinge", "lr_generator": 2e-4, "lr_discriminator": 2e-4, "beta2": 0.9}

# Deliberately varied, mostly weak generators: students' models were blurry, noisy, early or collapsed
DEFAULT_ZOO = (
    ZooMember("vae tiny latent", "vae", {"latent_dim": 2, "width": 16, "prior_components": 0}, (2, 6)),
    ZooMember("vae blurry", "vae", {"latent_dim": 16, "width": 16, "kl_weight": 4.0, "prior_components": 0}, (3,)),
    ZooMember("vae sharp", "vae", {"latent_dim": 64, "width": 32}, (2, 8)),
    ZooMember("gan hinge sn", "gan", {**_ZOO_GAN_BASE, "width": 16}, (1, 3, 8)),
    ZooMember("gan classic dcgan", "gan", {**_ZOO_GAN_BASE, "width": 16, "loss": "nonsaturating",
                                           "spectral_norm": False, "beta1": 0.5, "beta2": 0.999, "ema_decay": 0.0},
              (1, 3, 8)),
    ZooMember("gan wide", "gan", {**_ZOO_GAN_BASE, "width": 32, "lr_generator": 5e-4, "lr_discriminator": 5e-4},
              (2, 6)),
)


# Aimed at the confusion cross-validation finds most (students' VAE hands called GAN): a VAE with a weak KL term,
# sharper than any default member. Tried as an ablation (`with_extra_zoo`), not part of the default zoo.
TARGETED_ZOO = (
    ZooMember("vae sharp low kl", "vae", {"latent_dim": 64, "width": 32, "kl_weight": 0.1}, (4, 12)),
)


# the generator families: (model class, config class, detector label, training function)
FAMILIES = {"vae": (VAE, VAEConfig, VAE_LABEL, train_vae), "gan": (GAN, GANConfig, GAN_LABEL, train_gan)}


def zoo_fakes(train_images: torch.Tensor, members=DEFAULT_ZOO, samples_per_snapshot: int = 300,
              seed: int = 0, progress: bool = False) -> LabelledSet:
    """Train each zoo member on real hands and sample it at its snapshot epochs; one source per snapshot."""
    parts = []
    for index, member in enumerate(tqdm(members, desc="generator zoo", unit="generator")):
        model, _, label, train = FAMILIES[member.family]
        config = member.config(seed + index)
        network = model(config)

        def snapshot(epoch: int, _logs, network=network, member=member, label=label) -> None:
            if epoch + 1 in member.snapshots:
                source = f"zoo {member.name} epoch {epoch + 1}"
                samples = generate(network, samples_per_snapshot, seed=epoch)
                parts.append(LabelledSet.from_images(samples, label, source))

        train(network, train_images, config, callbacks=[snapshot], progress=progress)
    return LabelledSet.concat(parts)


@dataclass
class DetectorData:
    """Training and validation sets; validation holds out whole zoo generators and a share of provided fakes."""

    train: LabelledSet
    validation: LabelledSet


HELD_OUT_REALS = "real_hands held out"  # the source name of the generators' held-out real hands
PROVIDED_FOLDS = 4  # the provided fakes' folds: validating on one holds out a quarter of each model's images


def build_detector_data(real_train: torch.Tensor, real_holdout: torch.Tensor, provided: LabelledSet,
                        zoo: LabelledSet, *, held_out_zoo: tuple[str, ...] = ("vae blurry", "gan wide"),
                        validation_fold: int | None = 0, whole_models: bool = False, provided_repeats: int = 1,
                        unused_folds: tuple[int, ...] = (), seed: int = 0) -> DetectorData:
    """Assemble the detector's sets from uint8 images: real hands split as for the generators (the
    generators' held-out hands validate), zoo members held out whole, and the provided fakes' fold
    `validation_fold` of `PROVIDED_FOLDS` (see `generator_folds`; None: every provided fake trains).

    `provided_repeats` > 1 repeats the provided training fakes: they are the only examples of the students'
    generators, the population the detector is for, and are outnumbered by our own zoo. The fakes of
    `unused_folds` neither train nor validate: how much each model's number of examples matters.
    """
    provided = without_images_of(provided, torch.cat([real_train, real_holdout]))  # its reals are in real_hands
    folds = generator_folds(provided.generators, PROVIDED_FOLDS, seed, whole=whole_models)
    to_validation = (provided.labels != REAL) & (folds == (-1 if validation_fold is None else validation_fold))
    unused = (provided.labels != REAL) & torch.isin(folds, torch.tensor(unused_folds, dtype=folds.dtype))
    if (to_validation & unused).any():
        raise ValueError(f"fold {validation_fold} cannot both validate and be unused")
    zoo_out = torch.tensor([any(f"zoo {name} " in source for name in held_out_zoo) for source in zoo.sources],
                           dtype=torch.bool)
    train = LabelledSet.concat([LabelledSet.from_images(real_train, REAL, "real_hands"),
                                *[provided.subset(~to_validation & ~unused)] * provided_repeats, zoo.subset(~zoo_out)])
    validation = LabelledSet.concat([LabelledSet.from_images(real_holdout, REAL, HELD_OUT_REALS),
                                     provided.subset(to_validation), zoo.subset(zoo_out)])
    return DetectorData(train, validation)


def own_generator_fakes(checkpoints: list[str | os.PathLike], n: int = 1000, seed: int = 12345) -> LabelledSet:
    """Samples of our own trained generators (their final checkpoints), labelled by family."""
    parts = []
    for path in checkpoints:
        model, _ = load_model(path)
        label = VAE_LABEL if isinstance(model, VAE) else GAN_LABEL
        parts.append(LabelledSet.from_images(generate(model, n, seed=seed), label, f"own {Path(path).stem} final"))
    return LabelledSet.concat(parts)


def zoo_cache_key(train_images: torch.Tensor, members=DEFAULT_ZOO, samples_per_snapshot: int = 300,
                  seed: int = 0) -> str:
    configs = [member.config(seed + index) for index, member in enumerate(members)]
    return hashlib.blake2b(repr((members, configs, samples_per_snapshot)).encode() + train_images.numpy().tobytes(),
                           digest_size=16).hexdigest()


def cached_zoo_fakes(train_images: torch.Tensor, cache: str | os.PathLike | None, members=DEFAULT_ZOO,
                     samples_per_snapshot: int = 300, progress: bool = False) -> LabelledSet:
    """`zoo_fakes`, stored in `cache` and reused while the members' full configs, the sample count and the
    training images are unchanged (a change of a family's defaults invalidates it too)."""
    key = zoo_cache_key(train_images, members, samples_per_snapshot)
    if cache is not None and Path(cache).is_file():
        stored = torch.load(cache, map_location="cpu", weights_only=True)
        if stored.get("key") == key:
            return LabelledSet(stored["images"], stored["labels"], stored["sources"])
    zoo = zoo_fakes(train_images, members, samples_per_snapshot, progress=progress)
    if cache is not None:
        atomic_torch_save({"key": key, "images": zoo.images, "labels": zoo.labels, "sources": zoo.sources}, cache)
    return zoo


@dataclass
class DetectorSources:
    """Everything the detector may learn from, before the split: `build_detector_data` assembles the sets."""

    real_train: torch.Tensor    # the generators' 7500 training hands
    real_holdout: torch.Tensor  # the generators' 500 held-out hands
    provided: LabelledSet       # the coursework's labelled folders
    generated: LabelledSet      # the zoo and our own final generators

    def assemble(self, provided_repeats: int = PROVIDED_REPEATS, validation_fold: int | None = 0,
                 whole_models: bool = False, unused_folds: tuple[int, ...] = ()) -> DetectorData:
        return build_detector_data(self.real_train, self.real_holdout, self.provided, self.generated,
                                   provided_repeats=provided_repeats, validation_fold=validation_fold,
                                   whole_models=whole_models, unused_folds=unused_folds)


def detector_sources(zoo_cache: str | os.PathLike | None = "runs/zoo.pt",
                     own_checkpoints: tuple[str, ...] = ("checkpoints/vae.pt", "checkpoints/gan.pt"),
                     quick: bool = False) -> DetectorSources:
    """Real hands, provided fakes, the zoo (trained, or read from `zoo_cache`) and our own generators' samples,
    the generated ones compressed as quality-75 JPEGs like all the data (`sample.as_jpeg_files`)."""
    train, holdout = generator_split(load_folder(REAL_HANDS))
    real = train.images[:1024] if quick else train.images  # quick mode: a smoke run for CI
    members = tuple(dataclasses.replace(m, snapshots=(1,)) for m in DEFAULT_ZOO) if quick else DEFAULT_ZOO
    zoo = cached_zoo_fakes(real, None if quick else zoo_cache, members, 100 if quick else 300)
    own = own_generator_fakes([p for p in own_checkpoints if Path(p).is_file()], n=200 if quick else 1000)
    return DetectorSources(real, holdout.images, provided_examples(), stored_like_the_data(zoo, own))


def stored_like_the_data(*generated: LabelledSet) -> LabelledSet:
    """Generated fakes through a quality-75 JPEG round trip, as every real and provided hand is stored."""
    together = LabelledSet.concat(list(generated))
    return dataclasses.replace(together, images=as_jpeg_files(together.images))


def with_extra_zoo(sources: DetectorSources, members, cache: str | os.PathLike | None) -> DetectorSources:
    """`sources` with the fakes of more zoo members (e.g. `TARGETED_ZOO`), cached apart from the default zoo's."""
    extra = stored_like_the_data(cached_zoo_fakes(sources.real_train, cache, members))
    return dataclasses.replace(sources, generated=LabelledSet.concat([sources.generated, extra]))


def with_pseudo_labels(sources: DetectorSources, teacher: HandClassifier, unlabelled: torch.Tensor,
                       threshold: float = PSEUDO_THRESHOLD) -> DetectorSources:
    """`sources` with the teacher's confident labels on `unlabelled` images (`pseudo_labelled`) among the
    generated fakes; images identical to a provided one are left out (their label is known)."""
    pool = without_images_of(LabelledSet.from_images(unlabelled, REAL, "unlabelled"), sources.provided.images)
    pseudo = pseudo_labelled(teacher, pool.images, threshold)
    return dataclasses.replace(sources, generated=LabelledSet.concat([sources.generated, pseudo]))


def prepare_detector_data(zoo_cache: str | os.PathLike | None = "runs/zoo.pt",
                          own_checkpoints: tuple[str, ...] = ("checkpoints/vae.pt", "checkpoints/gan.pt"),
                          quick: bool = False, provided_repeats: int = PROVIDED_REPEATS,
                          validation_fold: int | None = None) -> DetectorData:
    """Training and validation sets from `detector_sources`. By default every provided fake trains (the final
    fit): validation then holds the held-out real hands and zoo generators, and `crossval` measures the rest."""
    return detector_sources(zoo_cache, own_checkpoints, quick).assemble(provided_repeats, validation_fold)
