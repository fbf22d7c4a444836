import math

import pytest
import torch
from torch import nn

from core.training.networks import Crop, build_networks, layer_sides


pytestmark = pytest.mark.usefixtures("one_thread")


def _layers(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


def test_paper_networks_match_the_appendix_layout():
    generator, critic = build_networks((1, 28, 28))
    linear, *convs = [m for m in generator.modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d))]
    assert (linear.in_features, linear.out_features) == (64, 2048)
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (128, 64, (4, 4), (2, 2), (1, 1)), (64, 32, (4, 4), (2, 2), (1, 1)), (32, 1, (4, 4), (2, 2), (1, 1))]
    assert [(c.height, c.width) for c in _layers(generator, Crop)] == [(7, 7)]  # 8x8 cut to 7x7
    assert isinstance(list(generator.modules())[-1], nn.Sigmoid)
    convs = _layers(critic, nn.Conv2d)
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (32, (5, 5), (2, 2), (2, 2)), (64, (5, 5), (2, 2), (2, 2)), (128, (5, 5), (2, 2), (2, 2))]
    assert [m.negative_slope for m in _layers(critic, nn.LeakyReLU)] == [0.2] * 3
    assert critic.head.in_features == 2048 and critic.head.out_features == 1
    # parameter counts worked out by hand from the appendix tables
    assert sum(p.numel() for p in generator.parameters()) == 133_120 + 131_136 + 32_800 + 513
    assert sum(p.numel() for p in critic.parameters()) == 832 + 51_264 + 204_928 + 2_049


def test_paper_feature_map_sides():
    assert layer_sides(28, 28) == [(28, 28), (14, 14), (7, 7), (4, 4)]
    x = torch.rand(2, 1, 28, 28)
    _, critic = build_networks((1, 28, 28))
    sides = []
    for layer in critic.body:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            sides.append(tuple(x.shape[1:]))
    assert sides == [(32, 14, 14), (64, 7, 7), (128, 4, 4)]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 8, 8), (3, 48, 40)])
def test_shapes_and_ranges(shape):
    generator, critic = build_networks(shape)
    images = generator(torch.randn(3, 64))
    assert images.shape == (3, *shape)
    assert images.min() >= 0 and images.max() <= 1  # sigmoid output: images in [0, 1]
    assert critic(images).shape == (3,)


def test_no_normalisation_or_dropout_and_paper_initialisation():
    for module in build_networks((3, 32, 32)):
        assert not [m for m in module.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout,
                                                                    nn.MaxPool2d, nn.AvgPool2d))]
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                # fan_in = weight.size(1) * k * k: input channels of a conv, output channels of a
                # transposed conv (as Keras' he_uniform computes it for Conv2DTranspose)
                fan_in = layer.weight[0].numel()
                bound = math.sqrt(6 / fan_in)  # He uniform
                assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.8 * bound
            elif isinstance(layer, nn.Linear):
                bound = math.sqrt(6 / (layer.in_features + layer.out_features))  # Xavier uniform
                assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.8 * bound
            else:
                continue
            assert torch.count_nonzero(layer.bias) == 0


def test_tiny_images_refused():
    with pytest.raises(ValueError, match="at least 2x2"):
        build_networks((1, 1, 8))
