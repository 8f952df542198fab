"""The detector's data split by model, the JPEG round trip of generated fakes, and cross-validation."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
import torch

from handgen.checkpoint import FAMILIES
from handgen.classifier import DetectorConfig
from handgen.crossval import (
    OutOfFold,
    cross_fitted_balanced_accuracy,
    fit_decision_offsets,
    read_out_of_fold,
    run_fold,
    schemes_in,
)
from handgen.data import GAN_LABEL, REAL, VAE_LABEL, LabelledSet, jpeg_round_trip, load_folder
from handgen.detection import (
    PROVIDED_FOLDS,
    DataRecipe,
    DetectorSources,
    build_detector_data,
    model_folds,
    models_of,
)
from handgen.results import append_rows
from handgen.zoo import DEFAULT_ZOO, ZooMember, cached_zoo_samples
from tests.conftest import synthetic_hands, write_jpegs


def test_folds_deal_each_models_images_over_the_folds():
    models = [f"model {m}" for m in range(30) for _ in range(4)] + [f"big {i // 6}" for i in range(12)]
    folds = model_folds(models, 4, seed=0)
    by_model = {}
    for model, fold in zip(models, folds.tolist()):
        by_model.setdefault(model, []).append(fold)
    assert all(sorted(f) == [0, 1, 2, 3] for m, f in by_model.items() if m.startswith("model"))
    assert all(max(Counter(f).values()) == 2 for m, f in by_model.items() if m.startswith("big"))
    assert torch.equal(folds, model_folds(models, 4, seed=0))
    assert not torch.equal(folds, model_folds(models, 4, seed=1))


def test_whole_model_folds_keep_each_model_in_one_fold():
    models = [f"model {m}" for m in range(40) for _ in range(5)]
    folds = model_folds(models, 4, seed=0, whole=True)
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
        compressed = jpeg_round_trip(batch)
        assert compressed.shape == batch.shape and compressed.dtype == torch.uint8
    assert (jpeg_round_trip(smooth).int() - smooth.int()).abs().float().mean() < 2      # smooth: nearly kept
    assert (jpeg_round_trip(noisy).int() - noisy.int()).abs().float().mean() > 4       # noise: not kept
    assert jpeg_round_trip(images[:0]).shape == (0, 1, 32, 32)


@pytest.mark.parametrize("size", [(32, 32), (20, 32), (32, 12)])
def test_jpeg_round_trip_of_a_batch_is_each_image_saved_alone(size):
    """The batch is saved as strips of images side by side; the pixels must be those of one file per image
    (heights off the 8x8 grid included; a width off it falls back to one file each)."""
    images = torch.cat([torch.from_numpy(synthetic_hands(6)[:, None]),
                        torch.randint(0, 256, (6, 1, 32, 32), dtype=torch.uint8)])[..., :size[0], :size[1]]
    qualities = [60, 75, 100, 75, 90, 60] * 2
    alone = torch.cat([jpeg_round_trip(image[None], quality) for image, quality in zip(images, qualities)])
    assert torch.equal(jpeg_round_trip(images, qualities), alone)
    assert torch.equal(jpeg_round_trip(images, 75), torch.cat([jpeg_round_trip(image[None], 75) for image in images]))
    with pytest.raises(ValueError, match="qualities"):
        jpeg_round_trip(images, qualities[:3])


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


ONE_REPEAT = DataRecipe(provided_repeats=1)


def test_final_fit_trains_on_every_provided_fake():
    sources = _synthetic_sources()
    final = sources.assemble(ONE_REPEAT)
    assert not any(source.startswith("provided") for source in final.validation.sources)
    folds = [sources.assemble(dataclasses.replace(ONE_REPEAT, validation_fold=k)) for k in range(PROVIDED_FOLDS)]
    held_out = [sum(s.startswith("provided") for s in data.validation.sources) for data in folds]
    assert sum(held_out) == len(sources.provided)                 # every fake is held out exactly once
    assert all(h == len(sources.provided) // PROVIDED_FOLDS for h in held_out)


def test_the_recipe_repeats_provided_fakes_and_can_leave_generated_ones_out():
    sources = _synthetic_sources()
    count = lambda data, prefix: sum(source.startswith(prefix) for source in data.sources)  # noqa: E731
    once, thrice = sources.assemble(ONE_REPEAT), sources.assemble(dataclasses.replace(ONE_REPEAT, provided_repeats=3))
    assert count(thrice.train, "provided") == 3 * count(once.train, "provided") == 3 * len(sources.provided)
    without = sources.assemble(dataclasses.replace(ONE_REPEAT, generated_fakes=False))
    assert count(once.train, "zoo") + count(once.validation, "zoo") == len(sources.generated)
    assert count(without.train, "zoo") == count(without.validation, "zoo") == 0


def test_zoo_samples_are_cached_by_what_makes_them(tmp_path, monkeypatch):
    real = torch.from_numpy(synthetic_hands(96, seed=0)[:, None])
    member = ZooMember("vae tiny test", "vae", {"latent_dim": 2, "width": 8, "batch_size": 32}, (1,))
    fakes = cached_zoo_samples(real, tmp_path / "zoo.pt", (member,), samples_per_snapshot=20)
    assert set(fakes.sources) == {"zoo vae tiny test epoch 1"} and set(fakes.labels.tolist()) == {VAE_LABEL}
    assert len(fakes) == 20

    def no_training(*_args, **_kwargs):
        raise AssertionError("the cached fakes should have been reused")

    monkeypatch.setattr("handgen.zoo.zoo_samples", no_training)
    again = cached_zoo_samples(real, tmp_path / "zoo.pt", (member,), samples_per_snapshot=20)
    assert torch.equal(again.images, fakes.images)
    with pytest.raises(AssertionError, match="reused"):  # another member config is another cache key
        cached_zoo_samples(real, tmp_path / "zoo.pt", (dataclasses.replace(member, snapshots=(2,)),), 20)


def test_provided_reals_never_validate():
    sources = _synthetic_sources()
    provided = LabelledSet.concat([sources.provided,
                                   LabelledSet.from_images(sources.real_holdout[:5], REAL, "provided real_hands")])
    data = build_detector_data(sources.real_train, sources.real_holdout, provided, sources.generated,
                               dataclasses.replace(ONE_REPEAT, validation_fold=0))
    assert "provided real_hands" not in data.validation.sources + data.train.sources  # duplicates of real_hands


def test_cross_validation_rows_read_back_with_their_images(tmp_path):
    sources = _synthetic_sources()
    config = DetectorConfig(width=8, epochs=2, batch_size=32)
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
    provided_by_image = {bytes(image.numpy()): m for image, m in zip(sources.provided.images,
                                                                      sources.provided.models)}
    assert all(provided_by_image[bytes(image.numpy())] == model
               for image, model in zip(out_of_fold.held_out.images, out_of_fold.held_out.models))


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


def test_the_predictions_of_some_folds_score_alone():
    out_of_fold = _biased_out_of_fold()
    fold_0 = out_of_fold.on_folds([0])
    assert fold_0.folds == [0] and len(fold_0.held_out) == len(fold_0.probabilities) == 60
    assert set(fold_0.fake_folds) == set(fold_0.real_folds) == {0}
    assert fold_0.balanced_accuracy() == out_of_fold.balanced_accuracy(folds=[0])


def test_rows_carry_their_recipe_and_read_back_without_offsets(tmp_path):
    sources = _synthetic_sources()
    plain = DetectorConfig(width=8, epochs=1, batch_size=32)
    shifted = dataclasses.replace(plain, decision_offsets=(0.0, 0.0, 2.0))
    append_rows(run_fold(sources, 0, "seen models", plain), tmp_path / "plain.jsonl")
    append_rows(run_fold(sources, 0, "seen models", shifted), tmp_path / "shifted.jsonl")
    before = read_out_of_fold(tmp_path / "plain.jsonl", "seen models", sources.provided)
    after = read_out_of_fold(tmp_path / "shifted.jsonl", "seen models", sources.provided)
    assert before.recipe.startswith("width 8, batch_size 32, epochs 1; generated fakes ")
    assert after.recipe == before.recipe
    assert schemes_in(tmp_path / "plain.jsonl") == ["seen models"]
    append_rows(run_fold(sources, 0, "seen models", plain, DataRecipe(generated_fakes=False)),
                tmp_path / "ablation.jsonl")
    assert "generated_fakes False" in read_out_of_fold(tmp_path / "ablation.jsonl", "seen models",
                                                        sources.provided).recipe
    assert len(before.real_folds) == len(sources.real_holdout)     # the held-out real hands are kept too
    # the offsets a model decided with are taken off again (up to the rows' rounding)
    assert torch.allclose(before.probabilities, after.probabilities, atol=2e-3)


def test_zoo_members_pin_every_setting_so_new_defaults_leave_the_zoo_alone():
    for member in DEFAULT_ZOO:
        fields = {field.name for field in dataclasses.fields(FAMILIES[member.family].config)}
        assert fields - {"seed", "epochs"} <= set(member.settings), member.name
