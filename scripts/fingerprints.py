"""Can the detector decide per student model? A fingerprint embedding trained to tell generator *models* apart,
measured before any use (appends to results/fingerprints.jsonl).

For each of the detector's four seen-models folds (`python -m handgen crossval`), an embedding is trained from
scratch with a supervised contrastive loss on the model identities of the provided fakes outside the fold, our zoo's
snapshots (each one more "model") and real hands (one class), with shifts and flips only. Then, on the fold's
held-out fakes and the 500 held-out real hands:

- retrieval: how often an image's nearest labelled neighbour (the fakes outside the fold) comes from its own model,
  against raw pixels;
- the vote: the detector's out-of-fold probabilities combined with the labels of the k nearest labelled neighbours,
  `log p + weight * log q`, scored by balanced accuracy (real hands included) for each weight.

Then (`--unseen`) a quarter of the student models is held out whole, the embedding trained on the rest, and the
held-out models' images grouped: same-model nearest neighbour, clustering purity and adjusted Rand index, in the
embedding, in raw pixels, in hand-made image statistics and in the embedding joined to them; then the group vote.

`--variants N` adds N cheap generator variants of our own (random widths, losses, latent sizes, learning rates and
epochs; two snapshots each, each snapshot one more "model"), cached in runs/variants-N.pt. A sixth of them is held
out of training and grouped at 30 images a model, as test_hands/ would be.

    python scripts/fingerprints.py [--folds 0 1 2 3] [--steps 800] [--residual] [--unseen] [--variants 48]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score
from torch import nn

from handgen.classifier import ClassifierConfig, HandClassifier
from handgen.crossval import OutOfFold, read_out_of_fold
from handgen.data import random_translate, to_float
from handgen.detection import HELD_OUT_REALS, LabelledSet, image_hashes
from handgen.evaluation import format_table
from handgen.families import GAN_LABEL, REAL, VAE_LABEL
from handgen.results import append_rows, read_rows
from handgen.zoo import ZooMember, cached_zoo_fakes, detector_sources, stored_like_the_data

CV_FILE = "results/detector_cv.jsonl"
# the one recipe whose folds held whole student models out (earlier generators, decided with a GAN offset of 1.0)
UNSEEN_CV_FILE, UNSEEN_OFFSETS = "results/archive/detector_cv.jsonl", torch.tensor([0.0, 0.0, 1.0])
GROUP_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
OFFSETS = torch.tensor(ClassifierConfig().decision_offsets)
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


class Fingerprint(nn.Module):
    """The detector's convolutional trunk, then a projection onto the unit sphere (64 dimensions). With `residual`
    it sees the image minus its 3x3 local mean: the high-frequency residue where generator artefacts live, with the
    hand's shape, which every model shares, mostly removed."""

    def __init__(self, seed: int, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.trunk = HandClassifier(ClassifierConfig(seed=seed)).features
        self.project = nn.Sequential(nn.Linear(128, 128), nn.ReLU(inplace=True), nn.Linear(128, 64))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.residual:
            images = 4 * (images - F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False))
        return F.normalize(self.project(self.trunk(images)), dim=1)


def supervised_contrastive(embeddings: torch.Tensor, classes: torch.Tensor, temperature: float = 0.1):
    """Khosla et al. (2020): each image pulled towards the others of its class, pushed from the rest."""
    similarity = embeddings @ embeddings.T / temperature
    self_mask = torch.eye(len(classes), dtype=torch.bool)
    similarity = similarity.masked_fill(self_mask, -1e9)
    positives = (classes[:, None] == classes[None, :]) & ~self_mask
    log_prob = similarity - similarity.logsumexp(dim=1, keepdim=True)
    has_positive = positives.any(dim=1)
    per_anchor = (log_prob * positives).sum(1)[has_positive] / positives.sum(1)[has_positive]
    return -per_anchor.mean()


def balanced_batch(by_class: list[torch.Tensor], classes_per_batch: int, per_class: int,
                   rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and class ids: `classes_per_batch` classes, `per_class` images each (with replacement if few)."""
    chosen = rng.choice(len(by_class), size=classes_per_batch, replace=False)
    indices = [rng.choice(by_class[c].numpy(), size=per_class, replace=len(by_class[c]) < per_class) for c in chosen]
    return torch.from_numpy(np.concatenate(indices)), torch.from_numpy(np.repeat(chosen, per_class))


def train_fingerprint(images: torch.Tensor, classes: torch.Tensor, steps: int, seed: int,
                      residual: bool = False) -> Fingerprint:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Fingerprint(seed, residual)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    by_class = [(classes == c).nonzero().squeeze(1) for c in range(int(classes.max()) + 1)]
    model.train()
    for _ in range(steps):
        indices, batch_classes = balanced_batch(by_class, 48, 4, rng)
        batch = random_translate(to_float(images[indices]), 2)
        flip = torch.rand(len(batch)) < 0.5
        batch[flip] = batch[flip].flip(-1)
        loss = supervised_contrastive(model(batch), batch_classes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


@torch.inference_mode()
def embed(model: Fingerprint, images: torch.Tensor) -> torch.Tensor:
    """Mean of the image's and its mirror's embedding, renormalised."""
    parts = []
    for start in range(0, len(images), 512):
        batch = to_float(images[start:start + 512])
        parts.append(F.normalize(model(batch) + model(batch.flip(-1)), dim=1))
    return torch.cat(parts)


def pixel_vectors(images: torch.Tensor) -> torch.Tensor:
    """Centred pixels on the unit sphere; a uniform image (centred to zero) gets a tiny constant, not a zero vector,
    which cosine clustering refuses."""
    flat = to_float(images).flatten(1)
    return F.normalize(flat - flat.mean(1, keepdim=True) + 1e-6, dim=1)


def image_statistics(images: torch.Tensor) -> torch.Tensor:
    """Hand-made style statistics, standardised over the set and put on the unit sphere: the intensity histogram
    (16 bins), the radially averaged log power spectrum, gradient and brightness statistics, and the size and
    2x2-grid phase of the high-frequency residue (transposed-convolution checkerboards)."""
    x = to_float(images)[:, 0] * 0.5 + 0.5
    histogram = torch.stack([torch.histc(image, bins=16, min=0, max=1) for image in x]) / x[0].numel()
    power = torch.fft.fftshift(torch.fft.fft2(x - x.mean((1, 2), keepdim=True)).abs() ** 2, dim=(1, 2))
    rows, columns = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    radius = torch.hypot(rows - 16.0, columns - 16.0).long().flatten()
    counts = torch.bincount(radius)[:17]
    radial = torch.stack([torch.bincount(radius, weights=spectrum.flatten())[:17] for spectrum in power]) / counts
    dx, dy = (x[:, :, 1:] - x[:, :, :-1]).abs(), (x[:, 1:] - x[:, :-1]).abs()
    residue = x - (x.roll(1, 1) + x.roll(-1, 1) + x.roll(1, 2) + x.roll(-1, 2)) / 4
    shape = torch.stack([dx.mean((1, 2)), dy.mean((1, 2)), (dx > 0.1).float().mean((1, 2)), x.mean((1, 2)),
                         x.std((1, 2)), residue.abs().mean((1, 2)), residue.std((1, 2)),
                         residue[:, ::2, ::2].abs().mean((1, 2)) - residue[:, 1::2, 1::2].abs().mean((1, 2))], 1)
    features = torch.cat([histogram, (radial + 1e-6).log(), shape], 1)
    return F.normalize((features - features.mean(0)) / (features.std(0) + 1e-6), dim=1)


def nearest_shares_model(similarity: torch.Tensor, query_models: list[str], gallery_models: list[str]) -> float:
    """Share of queries (rows) whose most similar gallery image (column) comes from the same model."""
    nearest = similarity.argmax(1).tolist()
    return float(np.mean([query_models[i] == gallery_models[j] for i, j in enumerate(nearest)]))


def neighbour_votes(queries: torch.Tensor, gallery: torch.Tensor, gallery_labels: torch.Tensor, k: int):
    """Share of each class among the k nearest labelled neighbours, smoothed so that no class gets zero."""
    nearest = (queries @ gallery.T).topk(k, dim=1).indices
    counts = F.one_hot(gallery_labels[nearest], 3).sum(1).float()
    return (counts + 0.5) / (k + 1.5)


def balanced_accuracy(scores_fake, truth_fake, scores_real) -> tuple[float, dict]:
    decided, decided_real = scores_fake.argmax(1), scores_real.argmax(1)
    recall = {"real": float((decided_real == REAL).float().mean())}
    recall |= {name: float((decided[truth_fake == label] == label).float().mean())
               for label, name in ((1, "VAE"), (2, "GAN"))}
    return float(np.mean(list(recall.values()))), recall


def variant_members(count: int, seed: int = 0) -> list[ZooMember]:
    """`count` small generators drawn at random, half VAEs and half GANs, in the ranges students' models span;
    sampled after two different epochs."""
    rng = np.random.default_rng(seed)
    members = []
    for index in range(count):
        last = int(rng.integers(3, 9))
        snapshots = (int(rng.integers(1, last)), last)
        if index % 2:
            settings = {"latent_dim": int(rng.choice([32, 64, 100, 128])), "width": int(rng.choice([8, 16, 24])),
                        "discriminator": str(rng.choice(["dcgan", "deep"])),
                        "discriminator_width": int(rng.choice([8, 16, 32])),
                        "loss": str(rng.choice(["hinge", "nonsaturating"])), "spectral_norm": bool(rng.random() < 0.5),
                        "ema_decay": float(rng.choice([0.0, 0.999])), "lr_generator": float(rng.uniform(1e-4, 6e-4)),
                        "lr_discriminator": float(rng.uniform(1e-4, 4e-4)), "beta1": float(rng.choice([0.0, 0.5])),
                        "beta2": 0.999, "batch_size": int(rng.choice([32, 64, 128])), "mixed_precision": False}
            members.append(ZooMember(f"variant {index} gan", "gan", settings, snapshots))
        else:
            settings = {"latent_dim": int(rng.choice([4, 16, 32, 64, 128])), "width": int(rng.choice([8, 16, 32])),
                        "kl_weight": float(rng.choice([0.25, 0.5, 1.0, 2.0, 4.0])),
                        "lr": float(rng.uniform(3e-4, 2e-3)), "batch_size": int(rng.choice([32, 64, 128])),
                        "prior_components": int(rng.choice([0, 10])), "prior_temperature": 1.0,
                        "mixed_precision": False}
            members.append(ZooMember(f"variant {index} vae", "vae", settings, snapshots))
    return members


def variant_fakes(count: int, real_train: torch.Tensor) -> LabelledSet:
    """The variants' samples (JPEG round trip, as all data), 64 a snapshot, trained on 3000 real hands."""
    members = variant_members(count)
    generated = cached_zoo_fakes(real_train[:3000], f"runs/variants-{count}.pt", members, samples_per_snapshot=64,
                                 progress=True)
    return stored_like_the_data(generated)


def split_variants(variants: LabelledSet, held_out_share: float = 1 / 6) -> tuple[LabelledSet, LabelledSet]:
    """Variants for training, and held-out variants' first 30 images a snapshot (whole members held out)."""
    member = [" ".join(source.split()[:3]) for source in variants.sources]    # "zoo variant 7 ..." -> member
    names = list(dict.fromkeys(member))
    held_out = set(names[:round(held_out_share * len(names))])
    is_held_out = torch.tensor([m in held_out for m in member])
    seen_per_source: dict[str, int] = {}
    keep = []
    for index, source in enumerate(variants.sources):
        seen_per_source[source] = seen_per_source.get(source, 0) + 1
        keep.append(bool(is_held_out[index]) and seen_per_source[source] <= 30)
    return variants.subset(~is_held_out), variants.subset(torch.tensor(keep))


def fit_on_models(students: LabelledSet, zoo: LabelledSet, real_train: torch.Tensor, steps: int, seed: int,
                  residual: bool) -> tuple[Fingerprint, float]:
    """The embedding trained with one class per student model, one per zoo source and one for 2000 real hands;
    with its training minutes."""
    names = sorted(set(students.generators)) + sorted(set(zoo.sources))
    class_of = {name: i for i, name in enumerate(names)}
    images = torch.cat([students.images, zoo.images, real_train[:2000]])
    classes = torch.tensor([class_of[g] for g in students.generators] + [class_of[s] for s in zoo.sources]
                           + [len(names)] * 2000)
    start = time.perf_counter()
    model = train_fingerprint(images, classes, steps, seed, residual)
    return model, (time.perf_counter() - start) / 60


def run_fold(fold: int, out_of_fold: OutOfFold, real_train, real_holdout, zoo, steps: int, seed: int,
             residual: bool) -> list[dict]:
    in_fold = torch.from_numpy(out_of_fold.fake_folds == fold)
    queries, gallery = out_of_fold.held_out.subset(in_fold), out_of_fold.held_out.subset(~in_fold)
    model, minutes = fit_on_models(gallery, zoo, real_train, steps, seed + fold, residual)
    reals_in_fold = torch.from_numpy(out_of_fold.real_folds == fold)
    real_probabilities = out_of_fold.real_probabilities[reals_in_fold]
    fake_probabilities = out_of_fold.probabilities[in_fold]
    labelled = torch.cat([gallery.images, real_train[-2000:]])    # real hands the embedding did not train on
    labels = torch.cat([gallery.labels, torch.full((2000,), REAL)])
    every = torch.cat([queries.images, labelled, real_holdout])
    spaces = {"fingerprint, residual" if residual else "fingerprint": embed(model, every),
              "pixels": pixel_vectors(every)}
    rows = []
    for space, vectors in spaces.items():
        query_vectors, gallery_vectors = vectors[:len(queries)], vectors[len(queries):len(queries) + len(labelled)]
        real_vectors = vectors[len(queries) + len(labelled):]
        rate = nearest_shares_model(query_vectors @ gallery_vectors[:len(gallery)].T, queries.generators,
                                    gallery.generators)
        for k in (1, 5):
            vote_fake = neighbour_votes(query_vectors, gallery_vectors, labels, k).log()
            vote_real = neighbour_votes(real_vectors, gallery_vectors, labels, k).log()
            for weight in WEIGHTS:
                score_fake = fake_probabilities.clamp_min(1e-4).log() + OFFSETS + weight * vote_fake
                score_real = real_probabilities.clamp_min(1e-4).log() + OFFSETS + weight * vote_real
                accuracy, recall = balanced_accuracy(score_fake, queries.labels, score_real)
                rows.append({"experiment": "fingerprint vote", "fold": fold, "space": space, "k": k,
                             "weight": weight, "same_model_nearest": round(rate, 4),
                             "balanced_accuracy": round(accuracy, 4), **{f"recall_{c}": round(v, 4)
                                                                          for c, v in recall.items()},
                             "steps": steps, "train_minutes": round(minutes, 2), "queries": len(queries)})
    return rows


def cluster_scores(vectors: torch.Tensor, models: list[str], labels: torch.Tensor) -> dict:
    """Agglomerative clustering (cosine, average linkage) into as many groups as there are models: purity and
    adjusted Rand index by model, and the share of images whose group's majority class is their own."""
    groups = AgglomerativeClustering(n_clusters=len(set(models)), metric="cosine",
                                     linkage="average").fit_predict(vectors.numpy())
    model_ids = np.unique(models, return_inverse=True)[1]
    purity = sum(np.bincount(model_ids[groups == g]).max() for g in np.unique(groups)) / len(groups)
    class_right = [np.bincount(labels.numpy()[groups == groups[i]]).argmax() == labels[i] for i in range(len(groups))]
    return {"purity": round(float(purity), 4), "adjusted_rand": round(adjusted_rand_score(model_ids, groups), 4),
            "group_majority_class_right": round(float(np.mean(class_right)), 4)}


def leave_one_out_same_model(vectors: torch.Tensor, models: list[str]) -> float:
    return nearest_shares_model((vectors @ vectors.T).fill_diagonal_(-2.0), models, models)


def grouping_scores(vectors: torch.Tensor, images: LabelledSet) -> dict:
    """How well `vectors` group `images` by the model that made them."""
    return {"models": len(set(images.generators)), "images": len(images),
            "same_model_nearest": round(leave_one_out_same_model(vectors, images.generators), 4),
            **cluster_scores(vectors, images.generators, images.labels)}


def group_vote(groups: np.ndarray, scores: torch.Tensor, weight: float) -> torch.Tensor:
    """Labels where each image decided fake by itself takes `weight` of its group's mean VAE-against-GAN margin;
    what it decided real stays real, so a group never drags a real hand along."""
    decided = scores.argmax(1)
    margin = scores[:, VAE_LABEL] - scores[:, GAN_LABEL]
    group_mean = torch.zeros(groups.max() + 1).index_add_(0, torch.from_numpy(groups), margin)
    group_mean /= torch.from_numpy(np.bincount(groups, minlength=len(group_mean))).clamp_min(1)
    mixed = (1 - weight) * margin + weight * group_mean[torch.from_numpy(groups)]
    return torch.where(decided == REAL, REAL, torch.where(mixed > 0, VAE_LABEL, GAN_LABEL))


def unseen_out_of_fold() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Out-of-fold probabilities (before offsets) of the unseen-models folds, by image hash for the provided fakes,
    stacked for the held-out real hands: the rows of the run decided with `UNSEEN_OFFSETS` (rows written before
    the recipe carried its name, so `crossval.read_out_of_fold` cannot select them)."""
    rows = [row for row in read_rows(UNSEEN_CV_FILE, scheme="unseen models")
            if row.get("offsets") == UNSEEN_OFFSETS.tolist()]
    undecided = {id(row): (torch.tensor(row["proba"]).clamp_min(1e-4).log() - UNSEEN_OFFSETS).softmax(0)
                 for row in rows}
    fakes = {row["image"]: undecided[id(row)] for row in rows if row["source"].startswith("provided")}
    reals = torch.stack([undecided[id(row)] for row in rows if row["source"] == HELD_OUT_REALS])
    return fakes, reals


def clusters_of_fakes(vectors: torch.Tensor, decided_fake: torch.Tensor, n_groups: int) -> np.ndarray:
    """Agglomerative groups (cosine, average linkage) of the images decided fake; each other image alone."""
    found = AgglomerativeClustering(n_clusters=n_groups, metric="cosine",
                                    linkage="average").fit_predict(vectors[decided_fake].numpy())
    groups = np.full(len(vectors), -1)
    groups[decided_fake.numpy()] = found
    groups[~decided_fake.numpy()] = found.max() + 1 + np.arange(int((~decided_fake).sum()))
    return groups


def vote_on_unseen(spaces: dict[str, torch.Tensor], test, scores: torch.Tensor,
                   real_scores: torch.Tensor) -> list[dict]:
    """The group vote on held-out models' fakes, mixed with held-out real hands; groups found in each space (as
    many as there are models) or the true models (the ceiling of a perfect grouping)."""
    decided_fake = scores.argmax(1) != REAL
    groupings = {f"{space} clusters": clusters_of_fakes(vectors, decided_fake, len(set(test.generators)))
                 for space, vectors in spaces.items()}
    groupings["true models (ceiling)"] = np.unique(test.generators, return_inverse=True)[1]
    rows = []
    for grouping, groups in groupings.items():
        for weight in GROUP_WEIGHTS:
            decided = group_vote(groups, scores, weight)
            recall = {name: round(float((decided[test.labels == label] == label).float().mean()), 4)
                      for label, name in ((VAE_LABEL, "VAE"), (GAN_LABEL, "GAN"))}
            recall["real"] = round(float((real_scores.argmax(1) == REAL).float().mean()), 4)
            rows.append({"experiment": "group vote, unseen models", "grouping": grouping, "weight": weight,
                         "fakes_right": round(float((decided == test.labels).float().mean()), 4),
                         **{f"recall_{name}": value for name, value in recall.items()},
                         "balanced_accuracy": round(float(np.mean(list(recall.values()))), 4),
                         "images": len(test)})
    return rows


def run_unseen(provided_fakes, real_train, zoo, steps: int, seed: int, residual: bool,
               held_out_variants: LabelledSet | None = None, held_out_share: float = 0.25) -> list[dict]:
    """Hold a quarter of the student models out whole; train on the rest; group the held-out models' images."""
    models = sorted(set(provided_fakes.generators))
    rng = np.random.default_rng(seed)
    held_out = set(rng.choice(models, size=round(held_out_share * len(models)), replace=False).tolist())
    is_held_out = torch.tensor([g in held_out for g in provided_fakes.generators])
    train, test = provided_fakes.subset(~is_held_out), provided_fakes.subset(is_held_out)
    model, minutes = fit_on_models(train, zoo, real_train, steps, seed, residual)
    fingerprint, statistics = embed(model, test.images), image_statistics(test.images)
    spaces = {"fingerprint, residual" if residual else "fingerprint": fingerprint,
              "pixels": pixel_vectors(test.images), "image statistics": statistics,
              "fingerprint + image statistics": F.normalize(torch.cat([fingerprint, statistics], 1), dim=1)}
    run = {"steps": steps, "seed": seed, "train_minutes": round(minutes, 2)}
    rows = [{"experiment": "fingerprint grouping, unseen models", "space": space, **grouping_scores(vectors, test),
             **run} for space, vectors in spaces.items()]
    if held_out_variants is not None and len(held_out_variants):
        rows.append({"experiment": "fingerprint grouping, held-out variants", "space": next(iter(spaces)),
                     **grouping_scores(embed(model, held_out_variants.images), held_out_variants), **run})
    probability_of, real_probabilities = unseen_out_of_fold()
    scores = torch.stack([probability_of[digest] for digest in image_hashes(test.images)]).clamp_min(1e-4).log()
    real_scores = real_probabilities.clamp_min(1e-4).log() + UNSEEN_OFFSETS
    voting_spaces = {name: spaces[name] for name in list(spaces)[:1] + ["fingerprint + image statistics"]}
    votes = vote_on_unseen(voting_spaces, test, scores + UNSEEN_OFFSETS, real_scores)
    return rows + [{**row, "seed": seed, "steps": steps} for row in votes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--residual", action="store_true", help="embed the high-frequency residue of each image")
    parser.add_argument("--unseen", action="store_true", help="group held-out student models instead of folds")
    parser.add_argument("--variants", type=int, default=0, help="cheap generator variants of our own to add")
    parser.add_argument("--train-on-variants", action=argparse.BooleanOptionalAction, default=True,
                        help="train on the variants not held out (off: they only measure the grouping)")
    parser.add_argument("--out", default="results/fingerprints.jsonl")
    args = parser.parse_args()
    sources = detector_sources()    # real hands split as for the generators, provided fakes, zoo and own samples
    provided, zoo, held_out_variants = sources.provided, sources.generated, None
    if args.variants:
        train_variants, held_out_variants = split_variants(variant_fakes(args.variants, sources.real_train))
        zoo = LabelledSet.concat([zoo, train_variants]) if args.train_on_variants else zoo
    if args.unseen:
        fakes = provided.subset(provided.labels != REAL)
        rows = run_unseen(fakes, sources.real_train, zoo, args.steps, args.seed, args.residual, held_out_variants)
        rows = [{**row, "variants": args.variants if args.train_on_variants else 0} for row in rows]
        append_rows(rows, args.out)
        for experiment in dict.fromkeys(row["experiment"] for row in rows):
            print(format_table([row for row in rows if row["experiment"] == experiment]))
        return
    out_of_fold = read_out_of_fold(CV_FILE, "seen models", provided)
    for fold in args.folds:
        rows = run_fold(fold, out_of_fold, sources.real_train, sources.real_holdout, zoo, args.steps, args.seed,
                        args.residual)
        append_rows(rows, args.out)
        best = max(rows, key=lambda row: row["balanced_accuracy"])
        print(format_table([row for row in rows if row["weight"] in (0.0, best["weight"]) and row["k"] == best["k"]]))


if __name__ == "__main__":
    main()
