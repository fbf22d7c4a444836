"""A small U-Net velocity field v(x_t, t) for flow matching, for any image size the GAN takes.

  28x28x1   levels 28 -> 14 -> 7      channels w, 2w, 2w   (w = unet_width)
  32x32x3   levels 32 -> 16 -> 8 -> 4 channels w, 2w, 2w, 2w
  64x64x3   levels 64 -> 32 -> 16 -> 8
  8x8x1     levels 8 -> 4             (the bundled digits)
The side is halved while it is even and at least 8, at most three times. Each level is one residual
block (GroupNorm, SiLU, 3x3 convolution, twice) told the time by a sinusoidal embedding; the decoder
mirrors the encoder with skip connections. No attention: it keeps a CPU step cheap, and at these
sizes the receptive field of three levels already covers the image. The last convolution starts at
zero, so the initial velocity is 0 (a standard choice that makes early training stable).
Images in and velocities out are (B, C, H, W) float, pixels scaled to [-1, 1].
"""

from __future__ import annotations

import math

import torch
from torch import nn

MAX_HALVINGS = 3


def unet_sides(height: int, width: int) -> list[tuple[int, int]]:
    """Spatial sides of the levels: [(28, 28), (14, 14), (7, 7)] for 28x28."""
    if height < 2 or width < 2:
        raise ValueError(f"images must be at least 2x2 pixels, got {height}x{width}")
    sides = [(height, width)]
    while len(sides) <= MAX_HALVINGS and all(s % 2 == 0 and s >= 8 for s in sides[-1]):
        sides.append((sides[-1][0] // 2, sides[-1][1] // 2))
    return sides


def level_channels(n_levels: int, width: int) -> list[int]:
    """Channels per level: width, then 2*width for every deeper level."""
    return [width] + [2 * width] * (n_levels - 1)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) times in [0, 1] -> (B, dim) sinusoids (Vaswani et al.), t scaled by 1000 as in DDPM code."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """x (B, c_in, H, W), time features (B, t_dim) -> (B, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.conv1 = nn.Sequential(_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.time = nn.Linear(t_dim, c_out)
        self.conv2 = nn.Sequential(_norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_features: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x) + self.time(t_features)[:, :, None, None]
        return self.conv2(h) + self.skip(x)


class UNet(nn.Module):
    """v(x_t, t): x (B, C, H, W), t (B,) in [0, 1] -> velocity (B, C, H, W)."""

    def __init__(self, image_shape: tuple[int, int, int], width: int = 32):
        super().__init__()
        channels, height, image_width = image_shape
        self.image_shape = tuple(image_shape)
        self.sides = unet_sides(height, image_width)
        widths = level_channels(len(self.sides), width)
        self.t_dim = 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, self.t_dim), nn.SiLU(), nn.Linear(self.t_dim, self.t_dim))
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.down = nn.ModuleList(ResBlock(c_in, c_out, self.t_dim) for c_in, c_out in zip([width, *widths], widths))
        self.pool = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in widths[:-1])
        self.middle = ResBlock(widths[-1], widths[-1], self.t_dim)
        self.up = nn.ModuleList(ResBlock(2 * c, c_next, self.t_dim)
                                for c, c_next in zip(widths[::-1], [*widths[::-1][1:], width]))
        self.unpool = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1))
                                    for c in widths[::-1][1:])
        self.head = nn.Sequential(_norm(width), nn.SiLU(), nn.Conv2d(width, channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.embed_dim = width

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t_features = self.time_mlp(time_embedding(t, self.embed_dim))
        h, skips = self.stem(x), []
        for level, block in enumerate(self.down):
            h = block(h, t_features)
            skips.append(h)
            if level < len(self.pool):
                h = self.pool[level](h)
        h = self.middle(h, t_features)
        for level, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), t_features)
            if level < len(self.unpool):
                h = self.unpool[level](h)
        return self.head(h)
