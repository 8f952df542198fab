import dataclasses

import pytest
import torch
from conftest import synthetic_hands

from handgen.checkpoint import CheckpointError, load_model, read_checkpoint, strip_optimizer_state
from handgen.data import to_float
from handgen.gan import GAN, GANConfig
from handgen.sample import generate
from handgen.train import TrainingDiverged, fit, train_gan, train_prior, train_vae, train_vqvae, vae_task
from handgen.vae import VAE, VAEConfig
from handgen.vqvae import VQVAE, VQVAEConfig

IMAGES = torch.from_numpy(synthetic_hands(64)).unsqueeze(1)
VAE_CONFIG = VAEConfig(latent_dim=8, width=8, batch_size=16, epochs=2, lr=2e-3)
GAN_CONFIG = GANConfig(latent_dim=16, width=8, batch_size=16, epochs=2)


def test_vae_loss_falls_when_memorising_a_small_batch():
    config = dataclasses.replace(VAE_CONFIG, epochs=25)
    history = train_vae(VAE(config), IMAGES[:16], config, progress=False)
    assert history[-1]["mse"] < 0.5 * history[0]["mse"]
    assert history[-1]["loss"] < history[0]["loss"]


def test_gan_trains_with_finite_losses_and_logs_each_epoch():
    seen = []
    history = train_gan(GAN(GAN_CONFIG), IMAGES, GAN_CONFIG, progress=False,
                        callbacks=[lambda epoch, logs: seen.append(epoch)])
    assert seen == [0, 1] and len(history) == 2
    assert {"loss_discriminator", "loss_generator"} <= set(history[0])


def test_held_out_monitoring_leaves_the_gan_trajectory_alone():
    watched, unwatched = GAN(GAN_CONFIG), GAN(GAN_CONFIG)
    history = train_gan(watched, IMAGES[16:], GAN_CONFIG, validation=IMAGES[:16], progress=False)
    train_gan(unwatched, IMAGES[16:], GAN_CONFIG, progress=False)
    assert "score_held_out_hands" in history[-1]
    for (name, mine), theirs in zip(watched.state_dict().items(), unwatched.state_dict().values()):
        assert torch.equal(mine, theirs), name


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_resume_continues_exactly(tmp_path, family):
    make, config, train = {
        "vae": (VAE, dataclasses.replace(VAE_CONFIG, epochs=3), train_vae),
        "gan": (GAN, dataclasses.replace(GAN_CONFIG, epochs=3), train_gan),
    }[family]
    straight = make(config)
    straight_history = train(straight, IMAGES, config, progress=False)

    interrupted = make(config)
    checkpoint = tmp_path / "run.pt"
    train(interrupted, IMAGES, dataclasses.replace(config, epochs=1), checkpoint=checkpoint, progress=False)
    resumed = make(config)  # fresh weights: everything must come from the checkpoint
    resumed_history = train(resumed, IMAGES, config, checkpoint=checkpoint, progress=False)

    without_time = lambda history: [{k: v for k, v in logs.items() if k != "seconds"} for logs in history]  # noqa: E731
    assert without_time(resumed_history) == without_time(straight_history)
    assert all(logs["seconds"] > 0 for logs in resumed_history)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert read_checkpoint(checkpoint)["epoch"] == 3


def test_same_seed_same_samples_and_different_seed_differs():
    first, second = VAE(VAE_CONFIG), VAE(VAE_CONFIG)
    train_vae(first, IMAGES, VAE_CONFIG, progress=False)
    train_vae(second, IMAGES, VAE_CONFIG, progress=False)
    assert torch.equal(generate(first, 10, seed=5), generate(second, 10, seed=5))
    assert not torch.equal(generate(first, 10, seed=5), generate(first, 10, seed=6))


def test_checkpoint_of_another_run_is_refused(tmp_path):
    checkpoint = tmp_path / "vae.pt"
    train_vae(VAE(VAE_CONFIG), IMAGES, VAE_CONFIG, checkpoint=checkpoint, progress=False)
    other = dataclasses.replace(VAE_CONFIG, latent_dim=4)
    with pytest.raises(CheckpointError, match="latent_dim: 8 -> 4"):
        train_vae(VAE(other), IMAGES, other, checkpoint=checkpoint, progress=False)
    with pytest.raises(CheckpointError, match="holds a vae model"):
        train_gan(GAN(GAN_CONFIG), IMAGES, GAN_CONFIG, checkpoint=checkpoint, progress=False)


def test_checkpoint_from_before_a_config_field_existed_resumes_at_its_default(tmp_path):
    checkpoint = tmp_path / "vae.pt"
    train_vae(VAE(VAE_CONFIG), IMAGES, dataclasses.replace(VAE_CONFIG, epochs=1), checkpoint=checkpoint,
              progress=False)
    state = read_checkpoint(checkpoint)
    del state["config"]["kl_weight"]  # as written by a version without the field
    torch.save(state, checkpoint)
    history = train_vae(VAE(VAE_CONFIG), IMAGES, VAE_CONFIG, checkpoint=checkpoint, progress=False)
    assert len(history) == VAE_CONFIG.epochs and read_checkpoint(checkpoint)["epoch"] == VAE_CONFIG.epochs
    other = dataclasses.replace(VAE_CONFIG, kl_weight=VAEConfig.kl_weight * 2)
    with pytest.raises(CheckpointError, match="kl_weight"):
        train_vae(VAE(other), IMAGES, other, checkpoint=checkpoint, progress=False)


def test_a_finished_prior_trained_on_ends_where_a_longer_run_does(tmp_path):
    config = VQVAEConfig(width=8, codebook_size=16, code_dim=8, batch_size=16, epochs=1, prior_epochs=2,
                         prior_width=16, prior_layers=1, prior_heads=2)
    autoencoder = VQVAE(config)
    train_vqvae(autoencoder, IMAGES, dataclasses.replace(config, prior_epochs=0), progress=False)
    weights = autoencoder.state_dict()
    straight, stepwise = VQVAE(config), VQVAE(config)
    straight.load_state_dict(weights), stepwise.load_state_dict(weights)
    train_prior(straight, IMAGES, config, checkpoint=tmp_path / "straight.pt", progress=False)
    train_prior(stepwise, IMAGES, dataclasses.replace(config, prior_epochs=1), checkpoint=tmp_path / "step.pt",
                progress=False)
    history = train_prior(VQVAE(config), IMAGES, config, checkpoint=tmp_path / "step.pt", progress=False)
    assert len(history) == 2
    resumed = read_checkpoint(tmp_path / "step.pt")["model"]
    assert all(torch.equal(value, straight.state_dict()[key]) for key, value in resumed.items())
    with pytest.raises(CheckpointError, match="prior_lr"):
        train_prior(VQVAE(config), IMAGES, dataclasses.replace(config, prior_lr=1e-2),
                    checkpoint=tmp_path / "step.pt", progress=False)


def test_load_model_rebuilds_from_checkpoint(tmp_path):
    checkpoint = tmp_path / "gan.pt"
    gan = GAN(GAN_CONFIG)
    train_gan(gan, IMAGES, GAN_CONFIG, checkpoint=checkpoint, progress=False)
    loaded, config = load_model(checkpoint)
    assert config == GAN_CONFIG
    assert torch.equal(generate(gan, 4, seed=1), generate(loaded, 4, seed=1))


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("garbage")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_model(bad)


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path):
    checkpoint = tmp_path / "vae.pt"
    config = dataclasses.replace(VAE_CONFIG, epochs=1)
    train_vae(VAE(config), IMAGES, config, checkpoint=checkpoint, progress=False)
    good = read_checkpoint(checkpoint)

    longer = dataclasses.replace(config, epochs=3)
    task = vae_task(VAE(longer), longer)
    task.step = lambda images, labels, step: {"loss": torch.tensor(float("nan"))}
    with pytest.raises(TrainingDiverged, match="loss is not finite.*last good checkpoint"):
        fit(task, IMAGES, checkpoint=checkpoint, progress=False)
    kept = read_checkpoint(checkpoint)
    assert kept["epoch"] == good["epoch"] == 1
    assert all(torch.equal(kept["model"][k], good["model"][k]) for k in good["model"])


def test_too_few_images_is_a_clear_error():
    with pytest.raises(ValueError, match="need at least batch_size=16 images, got 4"):
        train_vae(VAE(VAE_CONFIG), IMAGES[:4], VAE_CONFIG, progress=False)


def test_vae_fits_its_sampling_mixture_at_the_end():
    model = VAE(VAE_CONFIG)
    assert not bool(model.prior.fitted)
    train_vae(model, IMAGES, VAE_CONFIG, progress=False)
    assert bool(model.prior.fitted)
    latents = model.sample_latent(2000, torch.Generator().manual_seed(0))
    with torch.no_grad():
        encoded = model.encode(to_float(IMAGES))[0]
    # codes follow the encoded data, not N(0, I)
    assert torch.allclose(latents.mean(0), encoded.mean(0), atol=0.25)
    standard = generate(model, 4, seed=0, standard_normal=True)
    assert not torch.equal(standard, generate(model, 4, seed=0))


def test_final_export_loads_but_refuses_further_training(tmp_path):
    checkpoint = tmp_path / "vae.pt"
    model = VAE(VAE_CONFIG)
    history = train_vae(model, IMAGES, VAE_CONFIG, checkpoint=checkpoint, progress=False)
    size_before = checkpoint.stat().st_size
    strip_optimizer_state(checkpoint)
    assert checkpoint.stat().st_size < 0.6 * size_before
    again = VAE(dataclasses.replace(VAE_CONFIG, seed=VAE_CONFIG.seed))
    assert train_vae(again, IMAGES, VAE_CONFIG, checkpoint=checkpoint, progress=False) == history
    assert torch.equal(generate(again, 3, seed=2), generate(model, 3, seed=2))
    longer = dataclasses.replace(VAE_CONFIG, epochs=5)
    with pytest.raises(CheckpointError, match="final export without optimizer state"):
        train_vae(VAE(longer), IMAGES, longer, checkpoint=checkpoint, progress=False)
