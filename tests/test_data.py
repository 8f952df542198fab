import numpy as np
import pytest
import torch

from handgen.data import (
    DataError,
    SkippedFileWarning,
    find_folder,
    holdout_split,
    load_folder,
    to_float,
    to_uint8,
)


def test_load_folder_shapes_and_names(hands_folder):
    data = load_folder("ignored", hands_folder)
    assert data.images.shape == (96, 1, 32, 32) and data.images.dtype == torch.uint8
    assert data.names == sorted(data.names) and len(data.names) == 96
    assert data.skipped == {}


def test_messy_folder_keeps_images_and_names_each_skipped_file(messy_folder):
    with pytest.warns(SkippedFileWarning) as caught:
        data = load_folder("messy", messy_folder)
    messages = "\n".join(str(w.message) for w in caught)
    assert len(data) == 7  # 4 clean + RGB + 32x24 + 10x32
    assert {"rgb.jpeg", "short_32x24.jpeg", "narrow_10x32.jpeg"} <= set(data.names)
    assert data.images.shape == (7, 1, 32, 32)
    assert set(data.skipped) == {"list.jpeg", "archive.jpeg", "truncated.jpeg", "empty.jpeg"}
    assert "text" in data.skipped["list.jpeg"]
    assert "zip archive" in data.skipped["archive.jpeg"]
    assert "empty file" in data.skipped["empty.jpeg"]
    assert "corrupt" in data.skipped["truncated.jpeg"] or "truncated" in data.skipped["truncated.jpeg"]
    for name in data.skipped:
        assert name in messages
    assert "skipped 4 of 11 files" in messages


def test_rgb_becomes_luma_and_odd_sizes_are_resized(messy_folder):
    with pytest.warns(SkippedFileWarning):
        data = load_folder("messy", messy_folder)
    rgb = data.images[data.names.index("rgb.jpeg"), 0].float()
    assert rgb.max() > 100  # the blob survived conversion
    narrow = data.images[data.names.index("narrow_10x32.jpeg"), 0]
    assert narrow.shape == (32, 32)


def test_missing_folder_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDGEN_DATA", str(tmp_path / "data_root"))
    with pytest.raises(DataError) as error:
        find_folder("no_such_hands")
    text = str(error.value)
    assert "no_such_hands" in text and str(tmp_path / "data_root" / "no_such_hands") in text
    with pytest.raises(DataError, match="not found"):
        load_folder("x", tmp_path / "absent")


def test_lookup_order_prefers_explicit_path_then_env(tmp_path, monkeypatch, hands_folder):
    monkeypatch.chdir(tmp_path)  # tmp_path/real_hands exists: the project-root rule
    assert find_folder("real_hands").resolve() == hands_folder.resolve()
    other = tmp_path / "env" / "VAE_like"
    other.mkdir(parents=True)
    monkeypatch.setenv("HANDGEN_DATA", str(tmp_path / "env"))
    assert find_folder("VAE_like").resolve() == other.resolve()
    assert find_folder("whatever", hands_folder) == hands_folder


def test_empty_folder_and_folder_of_junk_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        load_folder("empty", tmp_path / "empty")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpeg").write_text("not an image")
    with pytest.warns(SkippedFileWarning), pytest.raises(DataError, match="none of its 1 files"):
        load_folder("junk", junk)


def test_float_round_trip_is_exact():
    images = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    scaled = to_float(images)
    assert scaled.min() == -1.0 and scaled.max() == 1.0
    assert torch.equal(to_uint8(scaled), images)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def test_holdout_split_is_fixed_and_disjoint():
    train, holdout = holdout_split(100, 10, seed=3)
    again, _ = holdout_split(100, 10, seed=3)
    assert torch.equal(train, again) and len(holdout) == 10
    assert set(train.tolist()).isdisjoint(holdout.tolist())
    assert sorted(train.tolist() + holdout.tolist()) == list(range(100))
    with pytest.raises(ValueError):
        holdout_split(10, 10)


def test_decoding_matches_pillow(hands_folder):
    from PIL import Image
    data = load_folder("x", hands_folder)
    first = np.asarray(Image.open(hands_folder / data.names[0]))
    assert np.array_equal(data.images[0, 0].numpy(), first)
