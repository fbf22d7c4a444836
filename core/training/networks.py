"""The paper's WGAN-GP generator and critic (Berns et al. 2023, appendix tables 2-3), scaled
to any image size and channel count.

For 28x28x1 the layout is exactly the paper's:
  generator  z(64) -> Linear 2048 ReLU -> 4x4x128 -> ConvT 8x8x64 ReLU -> crop 7x7x64
             -> ConvT 14x14x32 ReLU -> ConvT 28x28x1 Sigmoid
  critic     Conv5x5/2 14x14x32 -> 7x7x64 -> 4x4x128 (LeakyReLU 0.2 each) -> 2048 -> Linear 1
The same rule builds the other sizes: the critic halves the side (ceil) with stride-2 5x5
convolutions until it is at most 4 (at least twice), doubling the channels from `width` each layer; the generator
mirrors it with 4x4 stride-2 transposed convolutions, cropping whenever doubling overshoots the
critic's side at that depth (8 -> 7 for 28x28). 32x32 and 64x64 RGB thus get 3 and 4 layers.
No pooling, batch norm or dropout. Images are float in [0, 1], NCHW.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import WIDTH, Z_DIM  # noqa: E402  (defaults shared with TrainConfig)


def layer_sides(height: int, width: int) -> list[tuple[int, int]]:
    """Spatial sides from the image down to the critic's last feature map (<= 4 each side).

    [(28, 28), (14, 14), (7, 7), (4, 4)] for 28x28; at least two halvings for any size so
    tiny images (8x8 digits) still get a two-layer critic.
    """
    if height < 2 or width < 2:
        raise ValueError(f"images must be at least 2x2 pixels, got {height}x{width}")
    sides = [(height, width)]
    while len(sides) < 3 or max(sides[-1]) > 4:
        h, w = sides[-1]
        sides.append((math.ceil(h / 2), math.ceil(w / 2)))
    return sides


def layer_channels(n_layers: int, width: int = WIDTH) -> list[int]:
    """Critic channels per layer: width, 2*width, ... (the paper: 32, 64, 128)."""
    return [width * 2**i for i in range(n_layers)]


class Crop(nn.Module):
    """Keep the top-left `height` x `width` pixels (the paper's "cut to 7x7")."""

    def __init__(self, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : self.height, : self.width]

    def extra_repr(self) -> str:
        return f"{self.height}x{self.width}"


class Generator(nn.Module):
    """z (B, z_dim) -> images (B, C, H, W) in [0, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], z_dim: int = Z_DIM, width: int = WIDTH):
        super().__init__()
        channels, height, image_width = image_shape
        sides = layer_sides(height, image_width)
        widths = layer_channels(len(sides) - 1, width)
        self.z_dim = z_dim
        self.start_shape = (widths[-1], *sides[-1])  # (128, 4, 4) for 28x28
        self.project = nn.Sequential(nn.Linear(z_dim, math.prod(self.start_shape)), nn.ReLU())
        self.body = nn.Sequential(*_generator_layers(sides, widths, channels))
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(len(z), *self.start_shape)
        return self.body(x)


def _generator_layers(sides: list[tuple[int, int]], widths: list[int], channels: int) -> list[nn.Module]:
    """Transposed convolutions from the smallest side back up to the image, mirroring the critic."""
    layers: list[nn.Module] = []
    outs = [channels, *widths[:-1]]  # output channels per depth; depth 0 is the image
    for depth in range(len(widths), 0, -1):
        (h_in, w_in), (h_out, w_out) = sides[depth], sides[depth - 1]
        layers.append(nn.ConvTranspose2d(widths[depth - 1], outs[depth - 1], 4, stride=2, padding=1))
        if (2 * h_in, 2 * w_in) != (h_out, w_out):
            layers.append(Crop(h_out, w_out))
        layers.append(nn.Sigmoid() if depth == 1 else nn.ReLU())
    return layers


class Critic(nn.Module):
    """images (B, C, H, W) in [0, 1] -> scores (B,), unbounded (Wasserstein critic)."""

    def __init__(self, image_shape: tuple[int, int, int], width: int = WIDTH):
        super().__init__()
        channels, height, image_width = image_shape
        sides = layer_sides(height, image_width)
        widths = layer_channels(len(sides) - 1, width)
        layers: list[nn.Module] = []
        for c_in, c_out in zip([channels, *widths[:-1]], widths):
            layers += [nn.Conv2d(c_in, c_out, 5, stride=2, padding=2), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(widths[-1] * math.prod(sides[-1]), 1)
        init_weights(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images)).squeeze(1)


def init_weights(module: nn.Module) -> None:
    """Kaiming-uniform (He, ReLU gain) for convolutions, Xavier-uniform for linear layers,
    zero biases: the paper's (Keras-default-like) initialisation."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        elif isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
        else:
            continue
        nn.init.zeros_(layer.bias)


def build_networks(
    image_shape: tuple[int, int, int], z_dim: int = Z_DIM, width: int = WIDTH
) -> tuple[Generator, Critic]:
    """Generator and critic for images of shape (C, H, W); the paper's nets for (1, 28, 28)."""
    return Generator(image_shape, z_dim, width), Critic(image_shape, width)
