import pytest
import torch

from handgen.gan import GAN, Discriminator, GANConfig, Generator, diff_augment, discriminator_loss, generator_loss
from handgen.vae import VAE, VAEConfig, vae_loss

SMALL_VAE = VAEConfig(latent_dim=8, width=8, batch_size=16, epochs=1)
SMALL_GAN = GANConfig(latent_dim=16, width=8, batch_size=16, epochs=1)


def test_vae_shapes_and_finite_loss():
    model = VAE(SMALL_VAE)
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    reconstruction, mean, logvar = model(x)
    assert reconstruction.shape == (5, 1, 32, 32) and mean.shape == logvar.shape == (5, 8)
    assert reconstruction.abs().max() <= 1.0
    losses = vae_loss(x, reconstruction, mean, logvar)
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.generate(torch.randn(3, 8)).shape == (3, 1, 32, 32)


def test_gan_shapes():
    gan = GAN(SMALL_GAN)
    fake = gan.generator(torch.randn(4, 16))
    assert fake.shape == (4, 1, 32, 32) and fake.abs().max() <= 1.0
    assert gan.discriminator(fake).shape == (4,)
    assert gan.generate(torch.randn(2, 16)).shape == (2, 1, 32, 32)


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 32, 32\), got \(2, 3, 32, 32\)"):
        Discriminator(SMALL_GAN)(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="expected images"):
        VAE(SMALL_VAE).encode(torch.zeros(2, 1, 28, 28))


@pytest.mark.parametrize("loss", ["hinge", "nonsaturating"])
def test_gan_losses_prefer_the_right_answer(loss):
    confident = discriminator_loss(torch.full((8,), 3.0), torch.full((8,), -3.0), loss)
    fooled = discriminator_loss(torch.full((8,), -3.0), torch.full((8,), 3.0), loss)
    assert confident < fooled
    assert generator_loss(torch.full((8,), 3.0), loss) < generator_loss(torch.full((8,), -3.0), loss)


def test_unknown_gan_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown GAN loss 'wasserstein'"):
        generator_loss(torch.zeros(2), "wasserstein")


def test_diff_augment_keeps_shape_and_gradient():
    x = torch.rand(6, 1, 32, 32, requires_grad=True)
    out = diff_augment(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_generator_sizes_follow_config():
    small, large = Generator(GANConfig(width=8)), Generator(GANConfig(width=16))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(large) > 2 * count(small)
