"""WGAN-GP training with real batches drawn by diversity weights (Berns et al. 2023, sec. 4).

Real batches are drawn *with replacement* with probabilities p (uniform p = the baseline); the
rest is Gulrajani et al.'s WGAN-GP with the paper's hyper-parameters (appendix table 4). The
loop is device-resident: the dataset is one uint8 tensor on the device, indices are sampled on
the device, and losses stay tensors (the caller decides when to pay for `.item()`).

Files, processes and checkpoints live in core/runs.py; this module is only maths and state.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Callable

import numpy as np
import torch

from ..data.sampler import draw_indices, index_table
from ..devices import resolve_device
from .config import TrainConfig
from .networks import build_networks
from .runs import sampling_probabilities


LOSS_NAMES = ("loss_d", "loss_g", "wdist", "gp")


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) uint8 tensor (kept as bytes; batches become float)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W, C) uint8, got {images.dtype} {images.shape}")
    return torch.tensor(images).permute(0, 3, 1, 2).contiguous()  # a copy: input may be read-only


def gradient_penalty(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor) -> torch.Tensor:
    """Gulrajani et al. eq. 3: E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat on real-fake lines.

    eps (B, 1, 1, 1) uniform in [0, 1]; the graph is kept so the penalty trains the critic.
    """
    x_hat = torch.lerp(fake, real, eps).requires_grad_(True)  # eps * real + (1 - eps) * fake
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = torch.linalg.vector_norm(grad.float().flatten(1), dim=1)
    return (norms - 1).square().mean()


class Trainer:
    """Networks, optimisers, random generators and the device-resident dataset of one run."""

    def __init__(self, config: TrainConfig, images: np.ndarray, p: np.ndarray | None = None):
        self.config = config.validate()
        self.device = torch.device(resolve_device(config.device))
        data = images_to_tensor(images)  # (N, C, H, W) uint8
        self.p = sampling_probabilities(p, len(data))
        self.image_shape = tuple(data.shape[1:])
        self.step = 0
        self._setup_backends()
        with torch.random.fork_rng(devices=[]):  # same init on every device, global RNG untouched
            torch.manual_seed(config.seed)
            self.generator, self.critic = build_networks(self.image_shape, config.z_dim, config.width)
        self._memory_format = torch.channels_last if self._on_cuda and config.channels_last else torch.contiguous_format
        self.generator.to(self.device, memory_format=self._memory_format)
        self.critic.to(self.device, memory_format=self._memory_format)
        self.data = data.to(self.device)
        self.draw_table = index_table(self.p, self.device)  # float64 inverse CDF: any n, exact small masses
        self.opt_g, self.opt_d = self._optimiser(self.generator), self._optimiser(self.critic)
        self.rng_data = torch.Generator(self.device).manual_seed(config.seed + 1)
        self.rng_noise = torch.Generator(self.device).manual_seed(config.seed + 2)
        self._g_fast, self._d_fast = self._maybe_compile()

    @property
    def _on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _setup_backends(self) -> None:
        if self._on_cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = self.config.tf32
            torch.backends.cudnn.allow_tf32 = self.config.tf32

    def _optimiser(self, module: torch.nn.Module) -> torch.optim.Adam:
        c = self.config
        # fused Adam computes the same update in one kernel on CUDA
        return torch.optim.Adam(module.parameters(), lr=c.lr, betas=(c.beta1, c.beta2),
                                fused=self._on_cuda or None)

    def _maybe_compile(self):
        if not (self.config.compile and self._on_cuda):
            return self.generator, self.critic
        # The gradient-penalty pass needs double backward, which compiled graphs do not support:
        # it keeps the eager critic; all first-order passes use the compiled modules.
        return torch.compile(self.generator), torch.compile(self.critic)

    def _autocast(self):
        if self.config.bf16 and self._on_cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def real_indices(self, n: int) -> torch.Tensor:
        """n dataset indices drawn with replacement by p (on the device, no host sync); the same draw
        as `core.DiversityWeightedSampler`, which users' own training loops get in the export."""
        return draw_indices(self.draw_table, n, self.rng_data)

    def _real_batch(self) -> torch.Tensor:
        batch = self.data[self.real_indices(self.config.batch_size)]
        return batch.float().div_(255).contiguous(memory_format=self._memory_format)

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.z_dim, generator=self.rng_noise, device=self.device)

    def _critic_step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        real = self._real_batch()
        with torch.no_grad(), self._autocast():
            fake = self._g_fast(self._noise(c.batch_size)).float()
        eps = torch.rand(c.batch_size, 1, 1, 1, generator=self.rng_noise, device=self.device)
        with self._autocast():
            scores = self._d_fast(torch.cat([real, fake])).float()  # one pass for real and fake
            gp = gradient_penalty(self.critic, real, fake, eps)
        wdist = scores[: c.batch_size].mean() - scores[c.batch_size:].mean()
        loss = -wdist + c.gp_weight * gp
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return loss.detach(), wdist.detach(), gp.detach()

    def _generator_step(self) -> torch.Tensor:
        self.critic.requires_grad_(False)  # no critic weight gradients in the generator step
        with self._autocast():
            loss = -self._d_fast(self._g_fast(self._noise(self.config.batch_size))).float().mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.critic.requires_grad_(True)
        return loss.detach()

    def train_step(self) -> dict[str, torch.Tensor]:
        """`critic_steps` critic updates then one generator update; losses as 0-d device tensors."""
        for _ in range(self.config.critic_steps):
            loss_d, wdist, gp = self._critic_step()
        loss_g = self._generator_step()
        self.step += 1
        return {"loss_d": loss_d, "loss_g": loss_g, "wdist": wdist, "gp": gp}

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Generated images (B, C, H, W) float in [0, 1] on the CPU for latents z (B, z_dim)."""
        return self.generator(z.to(self.device)).float().cpu()

    def fixed_latents(self) -> torch.Tensor:
        """The grid's latent batch: same `sample_seed` -> same latents in every run."""
        rng = torch.Generator().manual_seed(self.config.sample_seed)
        return torch.randn(self.config.n_samples, self.config.z_dim, generator=rng)

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything needed to continue bit-for-bit: tensors (CPU) plus JSON-able metadata."""
        tensors = {f"generator.{k}": v for k, v in self.generator.state_dict().items()}
        tensors |= {f"critic.{k}": v for k, v in self.critic.state_dict().items()}
        tensors["rng.data"] = self.rng_data.get_state()
        tensors["rng.noise"] = self.rng_noise.get_state()
        meta = {"step": self.step}
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            opt_tensors, meta[name] = flatten_optimizer_state(opt.state_dict(), name)
            tensors |= opt_tensors
        return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, meta

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Inverse of `state_tensors`."""
        self.generator.load_state_dict(_with_prefix(tensors, "generator."))
        self.critic.load_state_dict(_with_prefix(tensors, "critic."))
        self.rng_data.set_state(tensors["rng.data"])
        self.rng_noise.set_state(tensors["rng.noise"])
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            opt.load_state_dict(unflatten_optimizer_state(tensors, meta[name], name))
        self.step = int(meta["step"])


def _with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def flatten_optimizer_state(state: dict, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """optimizer.state_dict() -> flat tensors "{prefix}.{param}.{name}" + JSON metadata."""
    tensors, scalars = {}, {}
    for index, per_param in state["state"].items():
        for name, value in per_param.items():
            key = f"{prefix}.{index}.{name}"
            if torch.is_tensor(value):
                tensors[key] = value
            else:
                scalars[key] = value
    meta = {"param_groups": json.loads(json.dumps(state["param_groups"])), "scalars": scalars}
    return tensors, meta


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict, prefix: str) -> dict:
    state: dict[int, dict] = {}
    for key, value in [*_with_prefix(tensors, prefix + ".").items(), *meta["scalars"].items()]:
        index, name = key.removeprefix(prefix + ".").split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def train(
    config: TrainConfig,
    images: np.ndarray,
    p: np.ndarray | None = None,
    on_step: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    trainer: Trainer | None = None,
) -> Trainer:
    """Train until `config.steps` generator steps (or `should_stop()`); returns the Trainer.

    images (N, H, W, C) uint8; p (N,) sampling probabilities, None = uniform (baseline).
    on_step(step, losses) after each generator step: losses are 0-d device tensors, so call
    `.item()` only when you log. Pass a `trainer` restored from a checkpoint to continue it.
    """
    trainer = trainer or Trainer(config, images, p)
    while trainer.step < config.steps:
        if should_stop is not None and should_stop():
            break
        losses = trainer.train_step()
        if on_step is not None:
            on_step(trainer.step, losses)
    return trainer


class LossMeter:
    """Averages the losses over a logging window on the device; one host sync per `read()`."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.started = time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
        self.count += 1

    def read(self) -> dict[str, float]:
        """Mean losses since the last read, plus ms per generator step over the window."""
        names = list(self.sums)  # LOSS_NAMES for the GAN, core.training.flow_trainer's for the flow model
        values = torch.stack([self.sums[n] for n in names]).double().div(self.count).tolist()
        elapsed = time.perf_counter() - self.started  # after the sync above: device time included
        result = dict(zip(names, values)) | {"ms_per_step": 1000 * elapsed / self.count}
        self.__init__()
        return result



# --- checkpoints: safetensors only (tensors) + JSON metadata; never pickle -----------------------

