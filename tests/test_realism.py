"""The realism yardstick can fail: worse sets score badly, real hands against real hands score at the floor."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch
from conftest import synthetic_hands

from handgen.classifier import DetectorConfig
from handgen.data import GAN_LABEL, REAL, VAE_LABEL, LabelledSet
from handgen.detection import DataRecipe
from handgen.metrics import wilson_interval
from handgen.realism import (
    CONFIRMATION_CONFIG,
    JUDGE_CONFIG,
    JUDGE_RECIPE,
    Yardstick,
    blurred,
    fool_rate,
    judge_key,
    judge_training_set,
    train_judge,
    two_sample_test,
)
from handgen.results import with_cpu_minutes

TINY = DetectorConfig(width=8, batch_size=32, epochs=6, lr=3e-3, decision_offsets=(0.0, 0.0, 0.0))
TINY_RECIPE = DataRecipe(generated_fakes=False, provided_repeats=2)


def hands(n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(synthetic_hands(n, seed)).unsqueeze(1)


def provided(n: int = 48) -> LabelledSet:
    """Blurred fakes (a crude 'VAE') and noisy fakes (a crude 'GAN'), plus one real hand to be left out."""
    noisy = (hands(n, 5).int() + torch.randint(-60, 60, (n, 1, 32, 32), generator=torch.Generator().manual_seed(0)))
    return LabelledSet.concat([LabelledSet.from_images(blurred(hands(n, 4), 1.5), VAE_LABEL, "vae"),
                               LabelledSet.from_images(noisy.clamp(0, 255).to(torch.uint8), GAN_LABEL, "gan"),
                               LabelledSet.from_images(hands(1, 9), REAL, "provided real")])


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    torch.set_num_threads(1)
    model, _ = train_judge(hands(192, 1), hands(8, 13), provided(), tmp_path_factory.mktemp("judge"), TINY,
                           TINY_RECIPE, progress=False)
    return model


def test_wilson_interval_matches_known_values_and_stays_in_range():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(1 - high) and low < 0.5 < high
    assert wilson_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_judge_trains_on_real_training_hands_and_provided_fakes_only():
    real, held_out = hands(20, 1), hands(5, 2)
    fakes = provided(6)
    fakes.images[0] = real[3]      # a 'fake' identical to a real hand is dropped
    fakes.images[-1] = held_out[0]  # so is a provided real hand that is a held-out one
    training = judge_training_set(real, held_out, fakes, dataclasses.replace(TINY_RECIPE, provided_repeats=3))
    assert training.counts() == {"real": 20, "VAE": 3 * 5, "GAN": 3 * 6}
    assert not any(torch.equal(image, held_out[0]) for image in training.images)
    with pytest.raises(ValueError, match="generated_fakes=False"):
        judge_training_set(real, held_out, fakes, dataclasses.replace(TINY_RECIPE, generated_fakes=True))


def test_judge_is_cached_by_its_data_and_config(tmp_path, monkeypatch):
    config, recipe = dataclasses.replace(TINY, epochs=1), dataclasses.replace(TINY_RECIPE, provided_repeats=1)
    sources = (hands(64, 1), hands(8, 2), provided(16))
    training = judge_training_set(*sources, recipe)
    _, path = train_judge(*sources, tmp_path, config, recipe, progress=False)
    assert path.name == f"judge-{judge_key(training, config, recipe)}.pt"
    monkeypatch.setattr("handgen.realism.train_detector", lambda *a, **k: pytest.fail("retrained a cached judge"))
    _, again = train_judge(*sources, tmp_path, config, recipe, progress=False)
    assert again == path
    other = dataclasses.replace(config, seed=1)
    assert judge_key(training, other, recipe) != judge_key(training, config, recipe)
    assert judge_key(training, config, dataclasses.replace(recipe, provided_repeats=2)) != path.stem[6:]


def test_the_judge_key_reads_as_it_did_when_config_and_recipe_were_one():
    """The committed judge was keyed by one flat config; splitting it in two must not change the key."""
    training = LabelledSet.from_images(hands(4, 1), REAL, "real_hands")
    flat = {**dataclasses.asdict(JUDGE_CONFIG), **dataclasses.asdict(JUDGE_RECIPE)}
    for added_later in ("architecture", "copy_threshold", "reencode", "views", "as_given"):  # judge values: key stays
        del flat[added_later]
    digest = hashlib.blake2b(repr(sorted(flat.items())).encode(), digest_size=6)
    digest.update(training.images.numpy().tobytes())
    digest.update(training.labels.numpy().tobytes())
    assert judge_key(training) == digest.hexdigest()
    assert set(flat) == {"width", "dropout", "lr", "weight_decay", "batch_size", "epochs", "seed", "max_shift",
                         "label_smoothing", "mirror", "decision_offsets", "provided_repeats", "generated_fakes",
                         "validation_fold", "whole_models"}
    assert judge_key(training, CONFIRMATION_CONFIG) != judge_key(training)


def test_fool_rate_is_high_for_unseen_real_hands_and_low_for_blurred_ones(judge):
    unseen = hands(100, 7)
    real_rate = fool_rate(judge, unseen)
    assert real_rate["fool_rate"] > 0.9
    assert real_rate["fool_rate_low"] <= real_rate["fool_rate"] <= real_rate["fool_rate_high"]
    assert fool_rate(judge, blurred(unseen, 1.5))["fool_rate"] < 0.2


def test_fool_rate_is_low_for_a_collapsed_generator(judge):
    noisy = hands(1, 8).int() + torch.randint(-60, 60, (1, 1, 32, 32), generator=torch.Generator().manual_seed(1))
    collapsed = noisy.clamp(0, 255).to(torch.uint8).repeat(50, 1, 1, 1)
    assert fool_rate(judge, collapsed)["fool_rate"] < 0.1


def test_two_sample_test_tells_blurred_hands_and_not_real_ones():
    config = dataclasses.replace(TINY, epochs=15)  # fewer steps leave batch-norm statistics unsettled
    real, other_real = hands(120, 11), hands(120, 12)
    worse = two_sample_test(blurred(other_real, 1.5), real, config, folds=3)
    same = two_sample_test(other_real, real, config, folds=3)
    assert worse["two_sample_accuracy"] > 0.9
    assert worse["two_sample_n"] == 240
    assert same["two_sample_low"] < 0.5 < same["two_sample_high"] or abs(same["two_sample_accuracy"] - 0.5) < 0.1
    assert same["two_sample_accuracy"] < worse["two_sample_low"]


def test_two_sample_test_leaves_the_callers_random_state_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    two_sample_test(hands(20, 1), hands(20, 2), dataclasses.replace(TINY, epochs=1, batch_size=8), folds=2)
    assert torch.equal(torch.rand(3), expected)


def test_two_sample_test_refuses_too_few_images():
    with pytest.raises(ValueError, match="at least"):
        two_sample_test(hands(3, 1), hands(3, 2), TINY, folds=5)


def test_blur_keeps_shape_and_type_and_smooths():
    images = hands(4, 1)
    smooth = blurred(images, 1.0)
    assert smooth.shape == images.shape and smooth.dtype == torch.uint8
    assert np.abs(np.diff(smooth.numpy().astype(int), axis=-1)).mean() < np.abs(np.diff(images.numpy().astype(int),
                                                                                         axis=-1)).mean()



def test_yardstick_rows_put_worse_sets_above_the_real_floor(judge):
    train, holdout = hands(400, 21), hands(120, 22)
    yardstick = Yardstick(train, holdout, judge, size=100, two_sample_config=dataclasses.replace(TINY, epochs=15))
    rows = yardstick.table({"blurred": blurred(hands(100, 23), 1.5), "fresh": hands(100, 24)})
    blurred_row, fresh_row, floor = rows
    assert floor["set"] == "real hands (floor)" and floor["two_sample_n"] == 200
    assert blurred_row["fool_rate"] < fresh_row["fool_rate"]
    assert blurred_row["two_sample_accuracy"] > max(fresh_row["two_sample_accuracy"], floor["two_sample_accuracy"])
    assert {"fid_pix", "kid_pix_x1000", "copy_share", "black_share"} <= set(fresh_row)


def test_sets_too_small_for_the_two_sample_test_get_the_judge_only(judge):
    yardstick = Yardstick(hands(400, 21), hands(120, 22), judge, size=100,
                          two_sample_config=dataclasses.replace(TINY, epochs=1))
    small_row, floor = yardstick.table({"small": hands(99, 24)})
    assert "fool_rate" in small_row and "two_sample_accuracy" not in small_row
    assert "fool_rate" in floor and "two_sample_accuracy" not in floor


def test_curve_rows_cost_their_wall_minutes_times_their_threads():
    curves = [{"recipe": "side by side", "train_minutes": 3.0, "threads": 1},
              {"recipe": "alone", "train_minutes": 2.0, "threads": 2}]
    assert [row["cpu_minutes"] for row in with_cpu_minutes(curves)] == [3.0, 4.0]
    assert with_cpu_minutes(curves)[0]["recipe"] == "side by side"
