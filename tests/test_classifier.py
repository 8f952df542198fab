import copy
import dataclasses

import numpy as np
import pytest
import torch
from conftest import synthetic_hands, write_jpegs

from handgen.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from handgen.classifier import Detector, DetectorConfig, fold_batch_norms, predict_proba
from handgen.cli import main
from handgen.data import LabelledSet, SkippedFileWarning, jpeg_round_trip, to_float
from handgen.detection import DataRecipe, build_detector_data, classify_folder, write_predictions_csv
from handgen.metrics import confusion_matrix, per_class_recall
from handgen.train import train_detector

SMALL = DetectorConfig(width=8, batch_size=16, epochs=6, lr=3e-3, views=(), as_given=True)  # the network as it is
RAW = dataclasses.replace(SMALL, mirror=False, decision_offsets=(0.0, 0.0, 0.0))  # one network, as it outputs


def two_easy_classes(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: smooth blobs; class 2: the same blobs with strong pixel noise (a crude 'GAN')."""
    clean = synthetic_hands(n)
    noisy = np.clip(synthetic_hands(n, seed=1).astype(int) + np.random.default_rng(2).integers(-60, 60, clean.shape),
                    0, 255).astype(np.uint8)
    images = torch.from_numpy(np.concatenate([clean, noisy])).unsqueeze(1)
    labels = torch.tensor([0] * n + [2] * n)
    return images, labels


def spread_batch_norms(model: Detector) -> Detector:
    """Batch norms with statistics far from the identity: an untrained network whose outputs vary with the image."""
    with torch.no_grad():
        for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2), norm.weight.uniform_(0.5, 2)
    return model


def test_output_shapes_and_probabilities():
    model = Detector(SMALL)
    probabilities = predict_proba(model, torch.zeros(5, 1, 32, 32, dtype=torch.uint8))
    assert probabilities.shape == (5, 3)
    assert torch.allclose(probabilities.sum(1), torch.ones(5))


@pytest.mark.parametrize("architecture", ["plain", "residual"])
def test_tiny_training_separates_two_easy_classes(architecture):
    images, labels = two_easy_classes()
    config = dataclasses.replace(SMALL, architecture=architecture)
    model = Detector(config)
    history = train_detector(model, images, labels, config, validation=(images, labels), progress=False)
    assert history[-1]["val_accuracy"] > 0.95
    assert history[-1]["loss"] < history[0]["loss"]


def test_prediction_is_deterministic():
    images, labels = two_easy_classes(32)
    model = Detector(SMALL)
    train_detector(model, images, labels, dataclasses.replace(SMALL, epochs=1), progress=False)
    assert torch.equal(predict_proba(model, images), predict_proba(model, images))
    assert not model.training


def test_csv_format_sorted_and_atomic(tmp_path):
    path = write_predictions_csv([("test_hand_0002.jpeg", 1), ("test_hand_0001.jpeg", 2)], tmp_path / "out.csv")
    assert path.read_text() == "test_hand_0001.jpeg, 2\ntest_hand_0002.jpeg, 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_interrupted_csv_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_predictions_csv([("a.jpeg", 0)], tmp_path / "out.csv")
    import os
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_predictions_csv([("b.jpeg", 1)], path)
    assert path.read_text() == "a.jpeg, 0\n"


def test_classify_folder_handles_every_irregular_file(messy_folder):
    model = Detector(SMALL)
    with pytest.warns(SkippedFileWarning) as caught:
        rows = classify_folder(model, messy_folder)
    names = [name for name, _ in rows]
    assert names == sorted(names) and len(rows) == 7
    assert {"rgb.jpeg", "short_32x24.jpeg", "narrow_10x32.jpeg"} <= set(names)
    assert all(label in (0, 1, 2) for _, label in rows)
    messages = " ".join(str(w.message) for w in caught)
    for bad in ("list.jpeg", "archive.jpeg", "truncated.jpeg", "empty.jpeg"):
        assert bad in messages


def test_classify_cli_on_a_small_folder(tmp_path, capsys):
    images, labels = two_easy_classes(32)
    checkpoint = tmp_path / "classifier.pt"
    config = dataclasses.replace(SMALL, epochs=1)
    train_detector(Detector(config), images, labels, config, checkpoint=checkpoint, progress=False)
    assert load_model(checkpoint)[1] == config
    folder = tmp_path / "test_hands"
    write_jpegs(folder, synthetic_hands(5), prefix="test_hand")
    (folder / "junk.jpeg").write_text("no image")
    out, real = tmp_path / "result.csv", tmp_path / "real_hands"  # the copy check's real hands
    write_jpegs(real, synthetic_hands(8, seed=5))
    with pytest.warns(SkippedFileWarning):
        assert main(["classify", "--input", str(folder), "--out", str(out), "--checkpoint", str(checkpoint),
                     "--real", str(real)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("test_hand_0000.jpeg, ")
    assert all(line.split(", ")[1] in {"0", "1", "2"} for line in lines)
    assert "skipped 1 unreadable" in capsys.readouterr().out
    missing = tmp_path / "nope"
    assert main(["classify", "--input", str(missing), "--out", str(out), "--checkpoint", str(checkpoint)]) == 1


def test_confusion_matrix_and_recall():
    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 2, 1, 2, 0]))
    assert matrix.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    assert per_class_recall(matrix).tolist() == [0.5, 1.0, 0.5]


def test_detector_split_holds_out_whole_zoo_generators():
    real = torch.zeros(20, 1, 32, 32, dtype=torch.uint8)
    holdout = torch.ones(6, 1, 32, 32, dtype=torch.uint8)
    fakes = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 32, 32).clone() + 10
    provided = LabelledSet(fakes[:20], torch.tensor([1, 2] * 10), ["provided"] * 20)
    zoo = LabelledSet(fakes[20:], torch.tensor([1] * 10 + [2] * 10),
                      ["zoo vae blurry epoch 3"] * 10 + ["zoo gan hinge sn epoch 1"] * 10)
    data = build_detector_data(real, holdout, provided, zoo, DataRecipe(provided_repeats=1),
                               held_out_zoo=("vae blurry",))
    assert "zoo vae blurry epoch 3" not in data.train.sources
    assert data.validation.sources.count("zoo vae blurry epoch 3") == 10
    assert data.train.sources.count("zoo gan hinge sn epoch 1") == 10
    assert len(data.train) + len(data.validation) == 20 + 6 + 40


def test_mirror_averaging_makes_predictions_mirror_invariant():
    images = torch.randint(0, 256, (6, 1, 32, 32), dtype=torch.uint8)
    plain = Detector(RAW)
    mirrored = Detector(dataclasses.replace(RAW, mirror=True))
    assert not torch.allclose(predict_proba(plain, images), predict_proba(plain, images.flip(-1)), atol=1e-4)
    assert torch.allclose(predict_proba(mirrored, images), predict_proba(mirrored, images.flip(-1)), atol=1e-5)


def test_decision_offsets_shift_the_prior_only():
    images = torch.randint(0, 256, (6, 1, 32, 32), dtype=torch.uint8)
    plain = predict_proba(Detector(RAW), images)
    shifted = predict_proba(Detector(dataclasses.replace(RAW, decision_offsets=(0.0, 0.0, 1.0))), images)
    expected = plain * torch.tensor([1.0, 1.0, np.e])
    assert torch.allclose(shifted, expected / expected.sum(1, keepdim=True), atol=1e-5)
    always_gan = Detector(dataclasses.replace(RAW, decision_offsets=(0.0, 0.0, 50.0)))
    assert predict_proba(always_gan, images).argmax(1).tolist() == [2] * 6


def test_a_detector_resumes_and_reloads_from_its_checkpoint_with_its_data_recipe(tmp_path):
    images, labels = two_easy_classes(32)
    config = dataclasses.replace(SMALL, mirror=True, decision_offsets=(0.0, 0.0, 0.5), epochs=1)
    recipe = DataRecipe(provided_repeats=3)
    model = Detector(config)
    train_detector(model, images, labels, config, recipe=recipe, checkpoint=tmp_path / "detector.pt", progress=False)
    longer = dataclasses.replace(config, epochs=2)                  # resumes: the offsets tuple reads back equal
    history = train_detector(Detector(longer), images, labels, longer, recipe=recipe,
                             checkpoint=tmp_path / "detector.pt", progress=False)
    assert len(history) == 2
    restored, restored_config = load_model(tmp_path / "detector.pt")
    assert read_checkpoint(tmp_path / "detector.pt")["recipe"]["provided_repeats"] == 3
    assert tuple(restored_config.decision_offsets) == (0.0, 0.0, 0.5)
    assert predict_proba(restored, images).shape == (64, 3)
    with pytest.raises(CheckpointError, match="provided_repeats"):  # another data recipe is refused
        train_detector(Detector(longer), images, labels, longer, recipe=DataRecipe(provided_repeats=8),
                       checkpoint=tmp_path / "detector.pt", progress=False)


def test_a_format_1_detector_checkpoint_reads_with_its_recipe_split_out(tmp_path):
    """Checkpoints written before the data recipe had its own config (format 1) still load and resume."""
    model = Detector(SMALL)
    legacy = {"version": 1, "kind": "classifier", "epoch": 6, "history": [], "optimizers": {},
              "config": {**dataclasses.asdict(SMALL), "provided_repeats": 8, "generated_fakes": False,
                         "validation_fold": -1, "whole_models": False},
              "model": model.state_dict(), "rng_state": torch.get_rng_state()}
    torch.save(legacy, tmp_path / "old.pt")
    state = read_checkpoint(tmp_path / "old.pt")
    assert state["kind"] == "detector" and state["recipe"]["generated_fakes"] is False
    restored, config = load_model(tmp_path / "old.pt")
    assert config == SMALL and isinstance(restored, Detector)


@pytest.mark.parametrize("architecture", ["plain", "residual"])
def test_folding_batch_norms_and_batching_the_mirror_keep_the_scores(architecture):
    model = spread_batch_norms(Detector(dataclasses.replace(SMALL, architecture=architecture)))
    images = torch.from_numpy(synthetic_hands(20)).unsqueeze(1)
    x = to_float(images)
    model.eval()
    with torch.no_grad():
        by_view = torch.stack([model.logits(x).softmax(1), model.logits(x.flip(-1)).softmax(1)]).mean(0)
        expected = by_view.log() + torch.tensor(SMALL.decision_offsets)
        assert torch.allclose(model(x), expected, atol=1e-5)
        folded = fold_batch_norms(copy.deepcopy(model))
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert torch.allclose(folded(x), expected, atol=1e-5)
    assert torch.allclose(predict_proba(model, images), expected.softmax(1), atol=1e-5)


@pytest.mark.parametrize("as_given", [True, False])
def test_views_average_the_resaves_before_the_offsets(as_given):
    images, labels = two_easy_classes(32)  # noise against smooth blobs: a re-save as JPEG moves the scores
    config = dataclasses.replace(RAW, decision_offsets=(0.0, 0.0, 0.7))
    one_view = Detector(config)
    train_detector(one_view, images, labels, config, progress=False)
    with_views = Detector(dataclasses.replace(config, views=(75, 90), as_given=as_given))
    plain = Detector(RAW)
    with_views.load_state_dict(one_view.state_dict()), plain.load_state_dict(one_view.state_dict())
    undecided = [predict_proba(plain, view) for view in
                 ([images] if as_given else []) + [jpeg_round_trip(images, 75), jpeg_round_trip(images, 90)]]
    expected = (torch.stack(undecided).mean(0).log() + torch.tensor(config.decision_offsets)).softmax(1)
    assert torch.allclose(predict_proba(with_views, images), expected, atol=1e-5)
    assert not torch.allclose(predict_proba(one_view, images), expected, atol=1e-3)


def test_a_detector_saved_before_the_view_fields_existed_predicts_on_the_image_alone(tmp_path):
    config = dataclasses.replace(SMALL, views=(75, 90), as_given=False)
    model = Detector(config)
    save_checkpoint(tmp_path / "old.pt", model, config, epoch=6, history=[], optimizers={}, recipe=DataRecipe())
    state = torch.load(tmp_path / "old.pt", weights_only=False)
    del state["config"]["views"], state["config"]["as_given"]  # as written before the fields existed
    torch.save(state, tmp_path / "old.pt")
    _, restored = load_model(tmp_path / "old.pt")
    assert (restored.views, restored.as_given) == ((), True)
    assert (DetectorConfig().views, DetectorConfig().as_given) == ((75,), False)


def test_a_detector_saved_before_as_given_existed_keeps_the_image_among_its_views(tmp_path):
    config = dataclasses.replace(SMALL, views=(75, 90), as_given=False)
    save_checkpoint(tmp_path / "old.pt", Detector(config), config, epoch=6, history=[], optimizers={},
                    recipe=DataRecipe())
    state = torch.load(tmp_path / "old.pt", weights_only=False)
    del state["config"]["as_given"]  # the views of the earlier recipe: the image, and its re-saves at 75 and 90
    torch.save(state, tmp_path / "old.pt")
    _, restored = load_model(tmp_path / "old.pt")
    assert (restored.views, restored.as_given) == ((75, 90), True)


def test_a_detector_needs_a_view():
    with pytest.raises(ValueError, match="needs a view to predict on"):
        DetectorConfig(views=(), as_given=False)


def test_a_finished_detector_is_read_again_with_another_decision_rule(tmp_path):
    images, labels = two_easy_classes(32)
    checkpoint = tmp_path / "fold.pt"
    first = Detector(SMALL)
    train_detector(first, images, labels, SMALL, checkpoint=checkpoint, progress=False)
    rule = dataclasses.replace(SMALL, views=(75,), as_given=False, decision_offsets=(0.0, 0.0, 0.5))
    again = Detector(rule)
    history = train_detector(again, images, labels, rule, checkpoint=checkpoint, progress=False)
    assert len(history) == SMALL.epochs  # nothing trained again
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    with pytest.raises(CheckpointError, match="another config"):  # a training field still refuses
        train_detector(Detector(dataclasses.replace(SMALL, lr=1e-3)), images, labels,
                       dataclasses.replace(SMALL, lr=1e-3), checkpoint=checkpoint, progress=False)


@pytest.mark.parametrize("views, reason", [((75.5,), "whole number"), ((0,), "above 0"), ((101,), "at most 100")])
def test_views_must_be_jpeg_qualities(views, reason):
    with pytest.raises(ValueError, match=f"views must be (a )?{reason}"):
        DetectorConfig(views=views)


def test_a_run_is_not_resumed_on_other_images(tmp_path):
    images, labels = two_easy_classes(32)
    checkpoint = tmp_path / "run.pt"
    train_detector(Detector(SMALL), images, labels, SMALL, checkpoint=checkpoint, progress=False)
    with pytest.raises(CheckpointError, match="other images"):  # e.g. a generator's samples changed since
        train_detector(Detector(SMALL), images.flip(-1), labels, SMALL, checkpoint=checkpoint, progress=False)
    state = torch.load(checkpoint, weights_only=False)
    state["data"] = None  # as written before the digest existed: not checked
    torch.save(state, checkpoint)
    history = train_detector(Detector(SMALL), images.flip(-1), labels, SMALL, checkpoint=checkpoint, progress=False)
    assert len(history) == SMALL.epochs
