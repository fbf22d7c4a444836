"""The flow-matching trainer: the same interface as the GAN's `Trainer`, so run folders, checkpoints,
sample grids, evaluation and the study treat both alike (core.training.execution.make_trainer picks).

Diversity weights enter exactly as for the GAN: real indices drawn *with replacement by p* through
`real_indices(n)` (uniform p = the baseline). `loss_weighting="importance"` is the alternative of the
importance-sampling literature: uniform draws, each image's loss scaled by n·p_i (same expected
loss; `loss_var`, the batch variance of the per-image terms, shows which is noisier).
Maths is in core.training.flow, the network in core.training.unet; this module is state.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..data.sampler import draw_indices, index_table
from ..devices import resolve_device
from .config import TrainConfig
from .flow import EMA, FlowSampler, ot_pairing, per_sample_loss, weighted_mean
from .runs import sampling_probabilities
from .trainer import (_with_prefix, flatten_optimizer_state, images_to_tensor,
                                   unflatten_optimizer_state)
from .unet import UNet

FLOW_LOSS_NAMES = ("loss", "loss_var")


class FlowTrainer:
    """U-Net, its EMA, the optimiser, random generators and the device-resident dataset of one run."""

    def __init__(self, config: TrainConfig, images: np.ndarray, p: np.ndarray | None = None):
        self.config = config.validate()
        if config.model != "flow":
            raise ValueError(f"FlowTrainer trains model='flow', not {config.model!r}")
        self.device = torch.device(resolve_device(config.device))
        data = images_to_tensor(images)  # (N, C, H, W) uint8
        self.p = sampling_probabilities(p, len(data))
        self.image_shape = tuple(data.shape[1:])
        self.step = 0
        if self._on_cuda:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = config.tf32
        with torch.random.fork_rng(devices=[]):  # same init on every device, global RNG untouched
            torch.manual_seed(config.seed)
            self.net = UNet(self.image_shape, config.unet_width)
        self._memory_format = torch.channels_last if self._on_cuda and config.channels_last else torch.contiguous_format
        self.net.to(self.device, memory_format=self._memory_format)
        self.ema = EMA(self.net, config.ema_decay)
        self.data = data.to(self.device)
        importance = config.loss_weighting == "importance"
        draw = np.full(len(data), 1.0 / len(data)) if importance else self.p  # uniform draws, weighted loss
        self.draw_table = index_table(draw, self.device)  # the GAN's draw (core.data.sampler)
        self.loss_weights = torch.as_tensor(len(data) * self.p, dtype=torch.float32, device=self.device) if importance else None
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2),
                                    fused=self._on_cuda or None)
        self.rng_data = torch.Generator(self.device).manual_seed(config.seed + 1)
        self.rng_noise = torch.Generator(self.device).manual_seed(config.seed + 2)
        self._net_fast = torch.compile(self.net) if config.compile and self._on_cuda else self.net

    @property
    def _on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _autocast(self):
        if self.config.bf16 and self._on_cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def real_indices(self, n: int) -> torch.Tensor:
        """n dataset indices drawn with replacement by p (uniform under importance weighting); on the
        device, no host sync."""
        return draw_indices(self.draw_table, n, self.rng_data)

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices (B,), images (B, C, H, W) in [-1, 1])."""
        indices = self.real_indices(self.config.batch_size)
        batch = self.data[indices].float().div_(127.5).sub_(1)
        return indices, batch.contiguous(memory_format=self._memory_format)

    def train_step(self) -> dict[str, torch.Tensor]:
        """One optimiser step on one batch; {"loss", "loss_var"} as 0-d device tensors."""
        indices, x1 = self._real_batch()
        x0 = torch.randn(x1.shape, generator=self.rng_noise, device=self.device).contiguous(memory_format=self._memory_format)
        t = torch.rand(len(x1), generator=self.rng_noise, device=self.device)
        if self.config.coupling == "ot":
            x0 = x0[ot_pairing(x0, x1)]
        with self._autocast():
            losses = per_sample_loss(self._net_fast, x0, x1, t)  # (B,)
        weights = None if self.loss_weights is None else self.loss_weights[indices]
        terms = losses if weights is None else weights * losses
        loss = weighted_mean(losses, weights)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.ema.update(self.net)
        self.step += 1
        return {"loss": loss.detach(), "loss_var": terms.detach().var()}

    def sampler(self) -> FlowSampler:
        """The EMA network as a generator z (B, C·H·W) -> images in [0, 1] (evaluation's interface)."""
        return FlowSampler(self.ema.module, self.image_shape, self.config.ode_steps, self.config.ode_solver)

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Generated images (B, C, H, W) float in [0, 1] on the CPU from starting noise z (B, C·H·W)."""
        return self.sampler()(z.to(self.device)).float().cpu()

    def fixed_latents(self) -> torch.Tensor:
        """The grid's starting noise: same `sample_seed` and image size -> same noise in every run."""
        rng = torch.Generator().manual_seed(self.config.sample_seed)
        return torch.randn(self.config.n_samples, int(np.prod(self.image_shape)), generator=rng)

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything needed to continue bit-for-bit: tensors (CPU) plus JSON-able metadata."""
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        tensors |= {f"ema.{k}": v for k, v in self.ema.module.state_dict().items()}
        tensors["rng.data"] = self.rng_data.get_state()
        tensors["rng.noise"] = self.rng_noise.get_state()
        opt_tensors, opt_meta = flatten_optimizer_state(self.opt.state_dict(), "opt")
        meta = {"step": self.step, "model": "flow", "ema_updates": self.ema.updates, "opt": opt_meta}
        return {k: v.detach().cpu().contiguous() for k, v in (tensors | opt_tensors).items()}, meta

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Inverse of `state_tensors`; a GAN checkpoint is refused (KeyError names what is missing)."""
        if meta.get("model") != "flow":
            raise KeyError("not a flow-matching checkpoint")
        self.net.load_state_dict(_with_prefix(tensors, "net."))
        self.ema.module.load_state_dict(_with_prefix(tensors, "ema."))
        self.ema.updates = int(meta["ema_updates"])
        self.rng_data.set_state(tensors["rng.data"])
        self.rng_noise.set_state(tensors["rng.noise"])
        self.opt.load_state_dict(unflatten_optimizer_state(tensors, meta["opt"], "opt"))
        self.step = int(meta["step"])


def load_flow_sampler(tensors: dict[str, torch.Tensor], config: TrainConfig, image_shape: tuple[int, int, int]) -> FlowSampler:
    """The EMA network of a flow checkpoint's tensors as a generator (for evaluation)."""
    net = UNet(image_shape, config.unet_width)
    net.load_state_dict(_with_prefix(tensors, "ema."))
    return FlowSampler(net.requires_grad_(False), image_shape, config.ode_steps, config.ode_solver)
