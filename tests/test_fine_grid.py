"""The fine-grid VQ-VAE experiment (`scripts/fine_grid.py`): its shapes and its moved dropout."""

import torch

from handgen import VQVAE, VQVAEConfig

SMALL = VQVAEConfig(width=8, codebook_size=16, code_dim=8, prior_width=16, prior_layers=1, prior_heads=2,
                    prior_dropout=0.5)


def test_the_fine_grid_keeps_a_16x16_grid_of_codes_and_decodes_it_back_to_32x32():
    from fine_grid import FineGridVQVAE

    model = FineGridVQVAE(SMALL).eval()
    images = torch.rand(3, 1, 32, 32) * 2 - 1
    codes = model.encode(images)
    assert codes.shape == (3, 256)
    assert model.decode(codes).shape == (3, 1, 32, 32)
    assert model.sample_latent(2, torch.Generator().manual_seed(0)).shape == (2, 256)


def test_moving_the_dropout_changes_training_only():
    from fine_grid import output_dropout

    adopted = VQVAE(SMALL).prior
    moved = VQVAE(SMALL).prior  # same seed, same weights
    output_dropout(moved, SMALL.prior_dropout)
    codes = torch.randint(16, (4, 64))
    adopted.eval(), moved.eval()
    assert torch.allclose(adopted(codes), moved(codes), atol=1e-6)  # no dropout at sampling: the same prior
    moved.train()
    assert moved.blocks[0].attention.dropout == 0.0
    torch.manual_seed(0)
    assert not torch.allclose(moved(codes), adopted.eval()(codes), atol=1e-3)  # training draws it on the output
