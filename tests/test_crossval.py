"""The detector's data split by generator, the JPEG round trip of generated fakes, and cross-validation."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from handgen.classifier import ClassifierConfig, HandClassifier
from handgen.crossval import (
    OutOfFold,
    append_rows,
    cross_fitted_balanced_accuracy,
    fit_decision_offsets,
    read_out_of_fold,
    recipe_of,
    recipe_table,
    recipes_in,
    run_fold,
)
from handgen.data import load_folder
from handgen.detection import (
    GAN_LABEL,
    PROVIDED_FOLDS,
    PSEUDO_SOURCE,
    REAL,
    VAE_LABEL,
    DetectorSources,
    LabelledSet,
    ZooMember,
    build_detector_data,
    generator_folds,
    models_of,
    with_extra_zoo,
    with_pseudo_labels,
)
from handgen.sample import as_jpeg_files
from tests.conftest import synthetic_hands, write_jpegs


def test_folds_deal_each_models_images_over_the_folds():
    generators = [f"model {m}" for m in range(30) for _ in range(4)] + [f"big {i // 6}" for i in range(12)]
    folds = generator_folds(generators, 4, seed=0)
    by_model = {}
    for generator, fold in zip(generators, folds.tolist()):
        by_model.setdefault(generator, []).append(fold)
    assert all(sorted(f) == [0, 1, 2, 3] for g, f in by_model.items() if g.startswith("model"))
    assert all(max(Counter(f).values()) == 2 for g, f in by_model.items() if g.startswith("big"))
    assert torch.equal(folds, generator_folds(generators, 4, seed=0))
    assert not torch.equal(folds, generator_folds(generators, 4, seed=1))


def test_whole_model_folds_keep_each_model_in_one_fold():
    generators = [f"model {m}" for m in range(40) for _ in range(5)]
    folds = generator_folds(generators, 4, seed=0, whole=True)
    assert all(len(set(folds[i:i + 5].tolist())) == 1 for i in range(0, 200, 5))
    assert len(set(folds.tolist())) == 4


def test_models_are_read_from_a_listing_of_original_names(tmp_path):
    folder = tmp_path / "GAN_hands"
    write_jpegs(folder, synthetic_hands(5), prefix="GAN_hand")          # GAN_hand_0000 ... 0004
    listing = ["GAN_hands_abc-x1_abc-x1_GAN1.jpeg.jpeg", "GAN_hands_abc-x1_abc-x1_GAN2.jpeg.jpeg",
               "GAN_hands_zz-9_zz-9_0001.jpeg.jpeg", "filename2.txt", "GAN_hands_zz-9_zz-9_0002.jpeg.jpeg",
               "GAN_hands_Abc-X1_abc_GAN3.jpeg.jpeg"]
    (folder / "GAN_hand_0005.jpeg").write_text("\n".join(listing) + "\n")  # the listing takes the 6th name
    data = load_folder(folder, warn=False)
    models = models_of(data)
    assert len(models) == 5
    assert models[0] == models[1] != models[2] == models[4]
    assert models[3] == "GAN_hand_0003.jpeg"                      # its line names no model: its own
    assert "abc" not in "".join(models)                           # only a hash of the student field is kept


def test_without_a_listing_each_image_is_its_own_model(hands_folder):
    data = load_folder(hands_folder, warn=False)
    assert models_of(data) == data.names


def test_jpeg_round_trip_compresses_like_the_data():
    images = torch.from_numpy(synthetic_hands(8)[:, None])
    smooth = (images.float() * 0 + torch.linspace(0, 255, 32)).to(torch.uint8)
    noisy = torch.randint(0, 256, (8, 1, 32, 32), dtype=torch.uint8)
    for batch in (images, smooth, noisy):
        compressed = as_jpeg_files(batch)
        assert compressed.shape == batch.shape and compressed.dtype == torch.uint8
    assert (as_jpeg_files(smooth).int() - smooth.int()).abs().float().mean() < 2      # smooth: nearly kept
    assert (as_jpeg_files(noisy).int() - noisy.int()).abs().float().mean() > 4       # noise: not kept
    assert as_jpeg_files(images[:0]).shape == (0, 1, 32, 32)


def _synthetic_sources(models: int = 24, per_model: int = 4) -> DetectorSources:
    """Real blobs; 'VAE' fakes dimmed, 'GAN' fakes noisy, each made by one of `models` models per family."""
    real = torch.from_numpy(synthetic_hands(240, seed=0)[:, None])
    n = models * per_model
    base = torch.from_numpy(synthetic_hands(2 * n, seed=1)[:, None])
    blurry = (base[:n].float() * 0.5).to(torch.uint8)
    noisy = (base[n:].float() + torch.randint(0, 60, base[n:].shape)).clamp(0, 255).to(torch.uint8)
    names = [f"model {m}" for m in range(models) for _ in range(per_model)]
    provided = LabelledSet.concat([
        LabelledSet.from_images(blurry, VAE_LABEL, "provided VAE_hands", [f"vae {g}" for g in names]),
        LabelledSet.from_images(noisy, GAN_LABEL, "provided GAN_hands", [f"gan {g}" for g in names])])
    generated = LabelledSet.from_images(blurry[:20], VAE_LABEL, "zoo vae blurry epoch 3")
    return DetectorSources(real[:200], real[200:], provided, generated)


def test_final_fit_trains_on_every_provided_fake():
    sources = _synthetic_sources()
    final = sources.assemble(provided_repeats=1, validation_fold=None)
    assert not any(source.startswith("provided") for source in final.validation.sources)
    folds = [sources.assemble(provided_repeats=1, validation_fold=k) for k in range(PROVIDED_FOLDS)]
    held_out = [sum(s.startswith("provided") for s in data.validation.sources) for data in folds]
    assert sum(held_out) == len(sources.provided)                 # every fake is held out exactly once
    assert all(h == len(sources.provided) // PROVIDED_FOLDS for h in held_out)


def test_unused_folds_neither_train_nor_validate():
    sources = _synthetic_sources()
    full = sources.assemble(provided_repeats=1, validation_fold=0)
    fewer = sources.assemble(provided_repeats=1, validation_fold=0, unused_folds=(1,))
    def count(data) -> int:
        return sum(source.startswith("provided") for source in data.sources)

    assert count(fewer.validation) == count(full.validation) == len(sources.provided) // PROVIDED_FOLDS
    assert torch.equal(fewer.validation.images, full.validation.images)         # the same held-out fold
    assert count(fewer.train) == count(full.train) - len(sources.provided) // PROVIDED_FOLDS
    with pytest.raises(ValueError, match="both validate and be unused"):
        sources.assemble(validation_fold=1, unused_folds=(1,))


def test_pseudo_labelled_images_join_the_training_set_but_never_a_provided_one():
    sources = _synthetic_sources()
    unlabelled = torch.cat([sources.real_holdout, sources.provided.images[:3]])   # three already labelled
    teacher = HandClassifier(ClassifierConfig(width=8))
    extended = with_pseudo_labels(sources, teacher, unlabelled, threshold=0.0)
    pseudo = extended.generated.subset([source == PSEUDO_SOURCE for source in extended.generated.sources])
    assert len(pseudo) == len(sources.real_holdout) and len(extended.generated) == len(sources.generated) + len(pseudo)
    assert all(source == PSEUDO_SOURCE for source in extended.assemble(validation_fold=0).train.sources[-len(pseudo):])
    assert extended.provided is sources.provided and extended.real_train is sources.real_train


def test_extra_zoo_members_add_cached_fakes_of_their_family(tmp_path, monkeypatch):
    sources = _synthetic_sources()
    member = ZooMember("vae tiny test", "vae", {"latent_dim": 2, "width": 8, "batch_size": 64}, (1,))
    extended = with_extra_zoo(sources, (member,), tmp_path / "extra.pt")
    added = extended.generated.subset(list(range(len(sources.generated), len(extended.generated))))
    assert set(added.sources) == {"zoo vae tiny test epoch 1"} and set(added.labels.tolist()) == {VAE_LABEL}
    assert len(added) == 300 and extended.provided is sources.provided
    def no_training(*_args, **_kwargs):
        raise AssertionError("the cached fakes should have been reused")

    monkeypatch.setattr("handgen.detection.zoo_fakes", no_training)
    again = with_extra_zoo(sources, (member,), tmp_path / "extra.pt")
    assert torch.equal(again.generated.images, extended.generated.images)


def test_provided_reals_never_validate():
    sources = _synthetic_sources()
    provided = LabelledSet.concat([sources.provided,
                                   LabelledSet.from_images(sources.real_holdout[:5], REAL, "provided real_hands")])
    data = build_detector_data(sources.real_train, sources.real_holdout, provided, sources.generated)
    assert "provided real_hands" not in data.validation.sources + data.train.sources  # duplicates of real_hands


def test_cross_validation_rows_read_back_with_their_images(tmp_path):
    sources = _synthetic_sources()
    config = ClassifierConfig(width=8, epochs=2, batch_size=32)
    for fold in (0, 1):
        append_rows(run_fold(sources, fold, "seen models", config), tmp_path / "cv.jsonl")
    append_rows(run_fold(sources, 1, "seen models", config), tmp_path / "cv.jsonl")   # a rerun replaces fold 1
    out_of_fold = read_out_of_fold(tmp_path / "cv.jsonl", "seen models", sources.provided)
    assert out_of_fold.folds == [0, 1]
    assert len(out_of_fold.held_out) == len(sources.provided) // 2
    summary = out_of_fold.summary()
    assert summary["models"] == 48 and 0 <= summary["accuracy"] <= 1
    matrix = out_of_fold.confusion()                              # fakes and the held-out real hands
    assert matrix.sum() == summary["images"] + 2 * len(sources.real_holdout)
    assert summary["accuracy"] == pytest.approx((np.trace(matrix) - matrix[0, 0]) / summary["images"])
    # the joined images are the held-out ones: each belongs to the model its row names
    provided_by_image = {bytes(image.numpy()): g for image, g in zip(sources.provided.images,
                                                                      sources.provided.generators)}
    assert all(provided_by_image[bytes(image.numpy())] == generator
               for image, generator in zip(out_of_fold.held_out.images, out_of_fold.held_out.generators))


def test_confusion_figure_writes_every_count():
    import matplotlib
    matplotlib.use("Agg")
    from handgen.plots import plot_confusions

    matrix = np.array([[5, 0, 1], [2, 7, 0], [3, 0, 9]])
    figure = plot_confusions({"seen": matrix, "unseen": matrix.T})
    assert len(figure.axes) == 2
    written = [int(text.get_text()) for text in figure.axes[0].texts]
    assert written == matrix.ravel().tolist()


def _biased_out_of_fold(n: int = 120) -> OutOfFold:
    """Two folds of out-of-fold predictions whose GAN hands lean towards VAE, as the detector's do."""
    rng = np.random.default_rng(0)
    labels = np.array([VAE_LABEL, GAN_LABEL] * (n // 2))
    scores = rng.normal(0, 0.5, (n, 3))
    scores[np.arange(n), labels] += 2.0
    scores[labels == GAN_LABEL, VAE_LABEL] += 2.5                  # the bias a prior shift can undo
    real_scores = rng.normal(0, 0.5, (n, 3)) + np.array([3.0, 0, 0])
    held_out = LabelledSet.from_images(torch.zeros(n, 1, 32, 32, dtype=torch.uint8), VAE_LABEL, "provided VAE_hands")
    held_out.labels = torch.from_numpy(labels)
    folds = (np.arange(n) // 2) % 2
    return OutOfFold("seen models", "synthetic", [0, 1], held_out, torch.from_numpy(scores).float().softmax(1),
                     folds, torch.from_numpy(real_scores).float().softmax(1), folds)


def test_fitted_decision_offsets_undo_a_bias_towards_vae():
    out_of_fold = _biased_out_of_fold()
    offsets = fit_decision_offsets(out_of_fold)
    assert offsets[2] > 0 and offsets[1] == 0
    assert out_of_fold.balanced_accuracy(offsets) > out_of_fold.balanced_accuracy() + 0.05
    honest = cross_fitted_balanced_accuracy(out_of_fold)
    assert out_of_fold.balanced_accuracy() < honest <= out_of_fold.balanced_accuracy(offsets) + 1e-9
    matrix = out_of_fold.confusion(offsets)
    assert matrix.sum() == 240 and matrix[0].sum() == 120           # the real hands count as a class


def test_recipes_compare_on_the_folds_they_share():
    out_of_fold = _biased_out_of_fold()
    fold_0 = out_of_fold.on_folds([0])
    assert fold_0.folds == [0] and len(fold_0.held_out) == len(fold_0.probabilities) == 60
    assert set(fold_0.fake_folds) == set(fold_0.real_folds) == {0}
    assert fold_0.balanced_accuracy() == out_of_fold.balanced_accuracy(folds=[0])
    offsets = fit_decision_offsets(out_of_fold)
    [row] = recipe_table([out_of_fold, fold_0], [0, 1], offsets)     # fold_0 lacks fold 1: left out
    assert row["recipe"] == "synthetic" and row["balanced accuracy"] == round(out_of_fold.balanced_accuracy(offsets), 4)
    assert row["GAN called real"] == out_of_fold.confusion(offsets)[GAN_LABEL, REAL]
    assert len(recipe_table([out_of_fold], [0, 2])) == 0


def _first_row(path) -> dict:
    return json.loads(Path(path).read_text().splitlines()[0])


def test_rows_carry_their_recipe_and_read_back_without_offsets(tmp_path):
    sources = _synthetic_sources()
    plain = ClassifierConfig(width=8, epochs=1, batch_size=32)
    shifted = dataclasses.replace(plain, decision_offsets=(0.0, 0.0, 2.0))
    append_rows(run_fold(sources, 0, "seen models", plain), tmp_path / "plain.jsonl")
    append_rows(run_fold(sources, 0, "seen models", shifted), tmp_path / "shifted.jsonl")
    before = read_out_of_fold(tmp_path / "plain.jsonl", "seen models", sources.provided)
    after = read_out_of_fold(tmp_path / "shifted.jsonl", "seen models", sources.provided)
    assert before.recipe == after.recipe and "width 8," in before.recipe and "1 member(s), mirror True" in before.recipe
    assert "no generated fakes" not in before.recipe and "self-trained" not in before.recipe
    self_trained = {**_first_row(tmp_path / "plain.jsonl"), "self_training": {"threshold": 0.8, "teacher_width": 48}}
    assert recipe_of(self_trained) == before.recipe + ", self-trained (teacher width 48, p >= 0.8)"
    extra_zoo = {**_first_row(tmp_path / "plain.jsonl"), "extra_zoo": ["vae sharp low kl"]}
    assert recipe_of(extra_zoo) == before.recipe + ", extra zoo (vae sharp low kl)"
    fewer = {**_first_row(tmp_path / "plain.jsonl"), "unused_folds": [1]}
    assert recipe_of(fewer) == before.recipe + ", 1 fold(s) fewer of provided fakes"
    patched = {**_first_row(tmp_path / "plain.jsonl"), "patch_mix": 0.5}
    assert recipe_of(patched) == before.recipe + ", patch mix 0.5"
    assert recipes_in(tmp_path / "plain.jsonl") == [before.recipe] and recipes_in(tmp_path / "plain.jsonl", "x") == []
    provided_fakes_only = dataclasses.replace(sources, generated=LabelledSet.concat([]))
    append_rows(run_fold(provided_fakes_only, 0, "seen models", plain), tmp_path / "ablation.jsonl")
    assert read_out_of_fold(tmp_path / "ablation.jsonl", "seen models", sources.provided).recipe.endswith(
        ", no generated fakes")
    assert len(before.real_folds) == len(sources.real_holdout)     # the held-out real hands are kept too
    # the offsets a model decided with are taken off again (up to the rows' rounding)
    assert torch.allclose(before.probabilities, after.probabilities, atol=2e-3)
