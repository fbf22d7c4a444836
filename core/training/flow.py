"""Flow matching: the loss, the fixed-step ODE sampler and the EMA of the weights.

Rectified flow / conditional flow matching (Lipman et al. 2023, Liu et al. 2023; Tong et al. 2024):
noise x0 ~ N(0, I) at t = 0, data x1 at t = 1, the straight path x_t = (1 - t) x0 + t x1 and its
velocity u = x1 - x0 (Lipman's OT path with σ_min = 0). The network v(x_t, t) regresses u:
  per-sample loss l_i = mean over pixels of (v(x_t, t) - u)²,
  loss = mean_i(l_i) for batches drawn by p, or mean_i(n p_i l_i) for uniform batches (importance
  weighting: the same expected loss, another variance).
Minibatch OT-CFM pairs the batch's noise to its images by an optimal assignment first.
Sampling integrates dx/dt = v(x, t) from t = 0 to 1 with a fixed-step solver (torchdiffeq), so its
cost is `steps` (Euler) or 2·`steps` (midpoint) network passes, whatever the model learned.
"""

from __future__ import annotations

import torch
from torch import nn


def straight_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, u): the point at time t (B,) on the line from noise x0 to data x1 (B, C, H, W), and its velocity."""
    t_ = t.view(-1, *([1] * (x1.dim() - 1)))
    return (1 - t_) * x0 + t_ * x1, x1 - x0


def per_sample_loss(velocity: nn.Module, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(B,) mean squared error between predicted and target velocity at (x_t, t), per image."""
    x_t, target = straight_path(x0, x1, t)
    return (velocity(x_t, t).float() - target.float()).square().flatten(1).mean(dim=1)


def weighted_mean(losses: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """mean_i(w_i l_i); weights None = 1 (batches drawn by p). Importance weights are n p_i of uniform draws."""
    return losses.mean() if weights is None else (weights * losses).mean()


def ot_pairing(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Permutation of the noise x0 that minimises Σ |x0_π(i) - x1_i|² (minibatch OT, Tong et al. 2024).

    Exact assignment by scipy (Hungarian method, O(B³) on the CPU: fine for batches of hundreds).
    """
    from scipy.optimize import linear_sum_assignment

    cost = torch.cdist(x1.flatten(1).double(), x0.flatten(1).double()).square().cpu().numpy()  # (B, B)
    _, columns = linear_sum_assignment(cost)  # rows come back as 0..B-1
    return torch.as_tensor(columns, device=x0.device)


@torch.no_grad()
def integrate(velocity: nn.Module, x0: torch.Tensor, steps: int = 50, method: str = "midpoint") -> torch.Tensor:
    """x(1) of dx/dt = v(x, t) from x(0) = x0 (B, C, H, W) with `steps` fixed steps of `method`
    ("euler" or "midpoint"), by torchdiffeq.odeint on the grid 0, 1/steps, ..., 1."""
    from torchdiffeq import odeint

    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    grid = torch.linspace(0.0, 1.0, steps + 1, device=x0.device)
    field = lambda t, x: velocity(x, t.expand(len(x))).to(x.dtype)  # noqa: E731  (odeint's f(t, y))
    return odeint(field, x0, grid, method=method)[-1]


class EMA:
    """Exponential moving average of a module's parameters and buffers, in a copy used for sampling.

    decay at update t is min(decay, (1 + t) / (10 + t)): early on the average follows the weights
    closely instead of remembering the random initialisation for thousands of steps.
    """

    def __init__(self, module: nn.Module, decay: float):
        import copy

        self.decay = decay
        self.module = copy.deepcopy(module).requires_grad_(False).eval()
        self.updates = 0

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.module.parameters(), module.parameters()):
            average.lerp_(current.detach(), 1.0 - decay)
        for average, current in zip(self.module.buffers(), module.buffers()):
            average.copy_(current)


class FlowSampler(nn.Module):
    """The generator interface of evaluation (z (B, z_dim) -> images (B, C, H, W) in [0, 1]) for a
    velocity network: z is the flattened starting noise, integrated to t = 1 and mapped from [-1, 1]."""

    def __init__(self, velocity: nn.Module, image_shape: tuple[int, int, int], steps: int = 50,
                 method: str = "midpoint"):
        super().__init__()
        self.velocity, self.image_shape, self.steps, self.method = velocity, tuple(image_shape), steps, method
        self.z_dim = int(torch.Size(image_shape).numel())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x0 = z.reshape(len(z), *self.image_shape)
        x1 = integrate(self.velocity, x0, self.steps, self.method)
        return x1.float().add(1).div(2).clamp(0, 1)
