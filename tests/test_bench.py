"""The benchmark's baseline pipeline and FLOP count are correct (its speeds are reported, never asserted)."""

from __future__ import annotations

import torch
from bench import NaiveJpegDataset, flops_of

from handgen.data import list_image_files, load_folder, to_float


def test_naive_pipeline_gives_the_same_batches_as_the_decoded_once_path(hands_folder):
    decoded = load_folder("real_hands", hands_folder)
    files = list_image_files(hands_folder)
    labels = torch.arange(len(files)) % 3
    naive = NaiveJpegDataset(files, labels)
    loader = torch.utils.data.DataLoader(naive, batch_size=32, shuffle=False)
    images, batch_labels = next(iter(loader))
    assert torch.equal(images, to_float(decoded.images[:32]))
    assert torch.equal(batch_labels, labels[:32])


def test_flop_count_follows_the_layer_shapes():
    layer, inputs = torch.nn.Linear(10, 20, bias=False), torch.randn(8, 10)
    assert flops_of(lambda: layer(inputs)) == 2 * 8 * 10 * 20
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    image = torch.randn(2, 3, 16, 16, requires_grad=True)
    forward = 2 * 2 * 3 * 4 * 9 * 16 * 16
    assert flops_of(lambda: conv(image)) == forward
    assert flops_of(lambda: conv(image).sum().backward()) == 3 * forward  # backward: input and weight gradients
