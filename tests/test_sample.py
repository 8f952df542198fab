import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from handgen.checkpoint import load_model, save_checkpoint
from handgen.data import load_folder
from handgen.files import OutputError
from handgen.gan import GAN, GANConfig
from handgen.sample import PROVENANCE_FILE, file_names, generate, image_grid, sample_to_folder, write_images
from handgen.vae import VAE, VAEConfig

SMALL_VAE = VAE(VAEConfig(latent_dim=8, width=8))
SMALL_GAN = GAN(GANConfig(latent_dim=16, width=8))


@pytest.mark.parametrize("model, prefix", [(SMALL_VAE, "VAE"), (SMALL_GAN, "GAN")])
def test_sample_to_folder_writes_exactly_n_grayscale_32x32_jpegs(tmp_path, model, prefix):
    folder = tmp_path / f"{prefix}_hands"
    paths = sample_to_folder(model, folder, n=12, seed=3)
    files = sorted(folder.glob("*.jpeg"))
    assert [p.name for p in files] == [f"{prefix}_hand_{i:03d}.jpeg" for i in range(1, 13)] == [p.name for p in paths]
    assert sorted(p.name for p in folder.iterdir()) == sorted([p.name for p in files] + [PROVENANCE_FILE])
    for path in files:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "L" and image.size == (32, 32)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_jpeg_settings_match_the_real_data(tmp_path):
    """Real hands are Pillow-default (quality 75) grayscale JPEGs; ours must carry the same tables."""
    real = tmp_path / "real.jpeg"
    Image.fromarray(np.full((32, 32), 80, np.uint8), mode="L").save(real)  # Pillow defaults
    ours = sample_to_folder(SMALL_VAE, tmp_path / "out", n=1)[0]
    with Image.open(real) as a, Image.open(ours) as b:
        assert a.quantization == b.quantization
        assert a.info.get("progressive") == b.info.get("progressive")


def test_pixels_are_rescaled_not_clipped_to_black(tmp_path):
    images = torch.tensor([0, 64, 128, 255], dtype=torch.uint8).repeat_interleave(256).view(1, 1, 32, 32)
    path = write_images(images, tmp_path / "x", "GAN")[0]
    decoded = np.asarray(Image.open(path)).astype(int)
    assert abs(decoded[2:6].mean() - 0) < 4 and abs(decoded[-6:-2].mean() - 255) < 4
    generated = generate(SMALL_GAN, 8, seed=0)
    assert generated.dtype == torch.uint8 and generated.float().std() > 0


def test_rewriting_our_own_folder_replaces_it(tmp_path):
    folder = tmp_path / "VAE_hands"
    sample_to_folder(SMALL_VAE, folder, n=5)
    sample_to_folder(SMALL_VAE, folder, n=3)
    assert sorted(p.name for p in folder.iterdir()) == sorted(file_names("VAE", 3) + [PROVENANCE_FILE])


def test_foreign_files_are_never_deleted(tmp_path):
    folder = tmp_path / "VAE_hands"
    sample_to_folder(SMALL_VAE, folder, n=2)
    (folder / "my_notes.txt").write_text("precious")
    with pytest.raises(OutputError, match="my_notes.txt"):
        sample_to_folder(SMALL_VAE, folder, n=4)
    assert (folder / "my_notes.txt").read_text() == "precious"
    assert sorted(p.name for p in folder.iterdir()) == ["VAE_hand_001.jpeg", "VAE_hand_002.jpeg", "my_notes.txt",
                                                        PROVENANCE_FILE]


def test_interrupted_write_leaves_old_set_intact(tmp_path, monkeypatch):
    folder = tmp_path / "GAN_hands"
    sample_to_folder(SMALL_GAN, folder, n=3)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    import handgen.sample as sample_module
    calls = {"n": 0}
    real_save = sample_module.save_jpeg

    def failing_save(image, path):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real_save(image, path)

    monkeypatch.setattr(sample_module, "save_jpeg", failing_save)
    with pytest.raises(KeyboardInterrupt):
        sample_to_folder(SMALL_GAN, folder, n=3, seed=9)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GAN_hands"]


def test_file_names_widen_past_999():
    assert file_names("GAN", 2) == ["GAN_hand_001.jpeg", "GAN_hand_002.jpeg"]
    assert file_names("GAN", 1000)[-1] == "GAN_hand_1000.jpeg"


def test_image_grid_layout():
    grid = image_grid(torch.zeros(5, 1, 32, 32, dtype=torch.uint8), columns=3, padding=2)
    assert grid.shape == (2 * 34 + 2, 3 * 34 + 2)
    assert grid[2, 2] == 0 and grid[0, 0] == 255


def test_a_written_set_names_its_checkpoint_seed_and_command(tmp_path):
    checkpoint = tmp_path / "gan.pt"
    save_checkpoint(checkpoint, SMALL_GAN, SMALL_GAN.config, epoch=1, history=[], optimizers={})
    model, _ = load_model(checkpoint)
    folder = tmp_path / "GAN_hands"
    paths = sample_to_folder(model, folder, n=4, seed=7, checkpoint=checkpoint)
    note = (folder / PROVENANCE_FILE).read_text()
    assert f"checkpoint sha256: {hashlib.sha256(checkpoint.read_bytes()).hexdigest()}" in note
    assert "seed: 7" in note and f"--checkpoint {checkpoint} --out {folder} --n 4 --seed 7" in note
    assert len(load_folder("GAN_hands", folder)) == len(paths) == 4  # the note is no image
    assert sorted(p.name for p in folder.iterdir()) == sorted([p.name for p in paths] + [PROVENANCE_FILE])
    sample_to_folder(model, folder, n=2, seed=8)  # a rewrite replaces the note with its own
    assert "seed: 8" in (folder / PROVENANCE_FILE).read_text() and len(list(folder.glob("*.jpeg"))) == 2
