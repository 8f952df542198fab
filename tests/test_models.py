import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from handgen import runtime
from handgen.gan import (
    GAN,
    Discriminator,
    GANConfig,
    Generator,
    augment,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from handgen.runtime import fast_bfloat16, mixed_precision
from handgen.vae import VAE, LatentMixture, VAEConfig, vae_loss
from handgen.vqvae import CodePrior, VQVAEConfig

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
    assert model.decode(torch.randn(3, 8)).shape == (3, 1, 32, 32)


@pytest.mark.parametrize("length", [10, 64])
def test_the_code_prior_is_causal_and_samples_as_its_forward_pass_predicts(length):
    """Greedy sampling through the key-value cache must pick each position's argmax of the full forward pass, and
    a code changed at one position may move only the predictions after it."""
    config = VQVAEConfig(codebook_size=16, prior_width=16, prior_layers=2, prior_heads=2, prior_dropout=0.0)
    prior = CodePrior(config, length=length).eval()
    codes = prior.sample(4, torch.Generator().manual_seed(0), temperature=1e-4)
    assert codes.shape == (4, length)
    with torch.no_grad():
        logits = prior(codes)
        assert torch.equal(logits.argmax(-1), codes)
        changed = codes.clone()
        changed[:, 6] = (changed[:, 6] + 1) % 16
        moved = prior(changed)
    assert torch.allclose(moved[:, :7], logits[:, :7], atol=1e-5)  # position 6 is predicted from codes before it
    assert not torch.allclose(moved[:, 7:], logits[:, 7:], atol=1e-3)


def test_gan_shapes():
    gan = GAN(SMALL_GAN)
    fake = gan.generator(torch.randn(4, 16))
    assert fake.shape == (4, 1, 32, 32) and fake.abs().max() <= 1.0
    assert gan.discriminator(fake).shape == (4,)
    assert gan.decode(torch.randn(2, 16)).shape == (2, 1, 32, 32)


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 32, 32\), got \(2, 3, 32, 32\)"):
        Discriminator(SMALL_GAN)(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="expected images"):
        VAE(SMALL_VAE).encode(torch.zeros(2, 1, 28, 28))


@pytest.mark.parametrize("loss", ["hinge", "nonsaturating", "relativistic"])
def test_gan_losses_prefer_the_right_answer(loss):
    high, low = torch.full((8,), 3.0), torch.full((8,), -3.0)
    assert discriminator_loss(high, low, loss) < discriminator_loss(low, high, loss)
    assert generator_loss(high, low, loss) < generator_loss(low, high, loss)  # G wants its fakes scored high


def test_unknown_gan_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown GAN loss 'wasserstein'"):
        generator_loss(torch.zeros(2), torch.zeros(2), "wasserstein")
    for field, value in (("loss", "wasserstein"), ("discriminator", "huge"), ("augment", "translation,blur")):
        with pytest.raises(ValueError, match=f"GANConfig.{field}"):
            GANConfig(**{field: value})


def test_diffaugment_keeps_shape_and_range_and_passes_gradients():
    images = (torch.rand(6, 1, 32, 32) * 2 - 1).requires_grad_(True)
    torch.manual_seed(0)
    shifted = augment(images, "translation,cutout")
    assert shifted.shape == images.shape and shifted.min() >= -1 and shifted.max() <= 1
    assert ((shifted == 0).flatten(1).sum(1) >= 16 * 16).all()      # a 16x16 square cut out of each
    shifted.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert torch.equal(augment(images, "none"), images)


def test_gradient_penalty_is_the_squared_gradient_norm():
    images = torch.randn(4, 1, 32, 32, requires_grad=True)
    scores = 3.0 * images.flatten(1).sum(1)                          # gradient 3 at every pixel
    assert torch.isclose(gradient_penalty(scores, images), torch.tensor(9.0 * 32 * 32))


@pytest.mark.parametrize("kind", ["dcgan", "deep"])
def test_both_discriminators_score_each_image_and_pass_gradients(kind):
    discriminator = Discriminator(GANConfig(discriminator=kind, width=8, discriminator_width=8))
    x = torch.rand(6, 1, 32, 32, requires_grad=True)
    scores = discriminator(x)
    assert scores.shape == (6,) and scores.dtype == torch.float32
    scores.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def flops_of_one_image(model: torch.nn.Module) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, 32, 32))
    return counter.get_total_flops()


def test_the_deep_discriminator_does_more_work_per_image_than_dcgans():
    deep, dcgan = Discriminator(GANConfig(discriminator_width=16)), Discriminator(GANConfig(discriminator="dcgan"))
    assert flops_of_one_image(deep) > 2 * flops_of_one_image(dcgan)


def test_generator_sizes_follow_config():
    small, large = Generator(GANConfig(width=8)), Generator(GANConfig(width=16))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(large) > 2 * count(small)


def test_mixture_temperature_scales_the_spread_around_the_components():
    mixture = LatentMixture(components=2, latent_dim=3)
    codes = torch.cat([torch.randn(300, 3) * 0.5 + 4, torch.randn(300, 3) * 0.5 - 4])
    mixture.fit(codes, seed=0)
    at_means = mixture.sample(50, torch.Generator().manual_seed(0), temperature=0.0)
    assert all(any(torch.allclose(code, mean) for mean in mixture.means) for code in at_means)
    spread = lambda t: float((mixture.sample(4000, torch.Generator().manual_seed(1), t).abs() - 4).std())  # noqa: E731
    assert spread(2.0) == pytest.approx(2 * spread(1.0), rel=0.15)


def test_mixed_precision_is_off_unless_asked_and_supported():
    with mixed_precision(torch.device("cpu"), enabled=False):
        assert not torch.is_autocast_enabled("cpu")
    with mixed_precision(torch.device("cpu"), enabled=True):
        assert torch.is_autocast_enabled("cpu") == fast_bfloat16(torch.device("cpu"))


@pytest.mark.parametrize("capability, native", [((7, 5), False), ((7, 0), False), ((8, 0), True), ((9, 0), True)])
def test_bfloat16_on_cuda_only_from_ampere_on(monkeypatch, capability, native):
    # a T4 (7.5) says bfloat16 is supported, but emulates it: slower than float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert fast_bfloat16(torch.device("cuda")) is native


@pytest.mark.parametrize("flags, capability, native", [
    ("fpu avx2 avx512f amx_bf16 amx_tile", "AVX512", True),
    ("fpu avx2 avx512f avx512_bf16", "AVX512", True),
    ("fpu avx2 avx512f", "AVX512", False),            # AVX-512 without its bfloat16 extension
    ("fpu avx2 fma", "AVX2", False),                   # a plain laptop CPU
    ("fpu avx2 avx512f amx_bf16", "AVX2", False),      # AMX present but torch capped at AVX2
])
def test_bfloat16_on_cpu_only_with_native_units(monkeypatch, tmp_path, flags, capability, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor : 0\nflags : {flags}\n")
    real_path = runtime.Path
    monkeypatch.setattr(runtime, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    runtime.cpu_facts.cache_clear()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    try:
        assert fast_bfloat16(torch.device("cpu")) is native
    finally:
        runtime.cpu_facts.cache_clear()


@pytest.mark.parametrize("flags, vector_units", [
    ("fpu avx2 avx512f avx512_bf16", {"avx512": True, "amx": False, "avx512_bf16": True}),
    ("fpu avx2 avx512f amx_bf16 avx512_bf16", {"avx512": True, "amx": True, "avx512_bf16": True}),
    ("fpu avx2", {"avx512": False, "amx": False, "avx512_bf16": False}),   # a plain CPU
])
def test_cpu_facts_name_the_model_and_its_vector_units(monkeypatch, tmp_path, flags, vector_units):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor : 0\nmodel name : Some CPU 9000\nflags : {flags}\n")
    real_path = runtime.Path
    monkeypatch.setattr(runtime, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    runtime.cpu_facts.cache_clear()
    try:
        assert runtime.cpu_facts() == {"cpu": "Some CPU 9000", **vector_units}
        with pytest.raises(TypeError):
            runtime.cpu_facts()["amx"] = True     # the cached facts are shared by every caller
        assert runtime.cpu_facts()["amx"] is vector_units["amx"]
    finally:
        runtime.cpu_facts.cache_clear()


def test_bfloat16_never_on_other_devices():
    assert not fast_bfloat16(torch.device("meta"))
