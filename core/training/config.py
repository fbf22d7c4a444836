"""The training settings of one run (`TrainConfig`) and its presets. No torch: reading runs,
listing them and the studio's Train tab import this without loading the trainer."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

Z_DIM = 64  # latent size of the paper
WIDTH = 32  # channels of the critic's first convolution (the paper's 32, 64, 128)


@dataclass
class TrainConfig:
    steps: int = 6000  # generator steps (each after `critic_steps` critic steps)
    batch_size: int = 6000  # real and fake images per critic / generator step
    critic_steps: int = 5  # critic updates per generator update
    gp_weight: float = 10.0  # gradient-penalty weight lambda
    lr: float = 1e-4  # Adam learning rate, generator and critic
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.9  # Adam beta2
    z_dim: int = Z_DIM  # latent size
    width: int = WIDTH  # critic channels of the first layer, doubled each layer
    seed: int = 0  # seeds network init, batch sampling and noise
    device: str = "auto"  # "auto" (cuda when present), "cpu" or "cuda[:i]"
    bf16: bool = False  # bf16 autocast for the networks on CUDA (ignored on CPU)
    compile: bool = False  # torch.compile the generator and first-order critic passes (CUDA)
    tf32: bool = True  # allow TF32 matmuls/convolutions on CUDA
    channels_last: bool = True  # channels-last memory format on CUDA
    log_every: int = 10  # write losses to metrics.jsonl every N generator steps
    sample_every: int = 100  # write a sample grid every N generator steps
    checkpoint_every: int = 100  # checkpoint every N generator steps
    n_samples: int = 64  # images in a sample grid (8 per row)
    sample_seed: int = 1234  # seed of the fixed latent batch of the grids (same in every run)
    model: str = "wgan-gp"  # model family: "wgan-gp" (the paper's GAN) or "flow" (rectified flow, a U-Net)
    # --- flow matching only (model="flow"; batch_size, steps, lr, betas and seed are shared) ---
    unet_width: int = 32  # channels of the U-Net's first level (levels: x1, x2, x2, x2)
    ema_decay: float = 0.999  # EMA of the weights used for sampling (warmed up: min(decay, (1+t)/(10+t)))
    ode_solver: str = "midpoint"  # fixed-step sampler: "euler" or "midpoint" (torchdiffeq)
    ode_steps: int = 50  # solver steps from noise (t=0) to data (t=1): predictable sampling cost
    coupling: str = "independent"  # "independent" (rectified flow / I-CFM) or "ot" (minibatch OT-CFM)
    loss_weighting: str = "sample"  # "sample": batches drawn by p; "importance": uniform batches, loss n*p_i*l_i

    @classmethod
    def preset(cls, name: str, **overrides) -> "TrainConfig":
        """A named preset ("paper" or "quick") of the model family `overrides["model"]` (default the
        GAN), with some fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(sorted(unknown))}")
        model = overrides.get("model", "wgan-gp")
        if model not in MODEL_PRESETS:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        return replace(MODEL_PRESETS[model][name], **overrides)

    def validate(self) -> "TrainConfig":
        for name in ("steps", "batch_size", "critic_steps", "z_dim", "width", "log_every",
                     "sample_every", "checkpoint_every", "n_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1) or self.gp_weight < 0:
            raise ValueError("lr must be > 0, betas in [0, 1) and gp_weight >= 0")
        return self._validate_flow()

    def _validate_flow(self) -> "TrainConfig":
        choices = {"model": MODELS, "ode_solver": ("euler", "midpoint"), "coupling": ("independent", "ot"),
                   "loss_weighting": ("sample", "importance")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if self.unet_width < 1 or self.ode_steps < 1 or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("unet_width and ode_steps must be at least 1 and ema_decay in [0, 1)")
        return self


PRESETS = {
    # Appendix table 4: batch 6,000, 6,000 generator steps, 5 critic steps, GP 10, Adam 1e-4 (0.5, 0.9).
    "paper": TrainConfig(log_every=50, sample_every=500, checkpoint_every=500),
    # A CPU demo: same loss and optimiser, small batch. 1,000 steps: recognisable digits on the 8x8 built-in
    # in ~35 s on 2 cores (35 ms a step); 28x28 sets take ~270 ms a step (~4.5 min); 300 steps showed blobs.
    "quick": TrainConfig(steps=1000, batch_size=64, log_every=10, sample_every=100, checkpoint_every=100),
}

MODELS = ("wgan-gp", "flow")
FLOW_PRESETS = {
    # GPU-sized: a 64-channel U-Net, batch 256, 20,000 steps (~5M images, about the GAN's 6,000 x 6,000 x 5 / 7).
    "paper": TrainConfig(model="flow", steps=20_000, batch_size=256, lr=2e-4, beta1=0.9, beta2=0.999, unet_width=64,
                         ema_decay=0.9999, log_every=50, sample_every=1000, checkpoint_every=1000),
    # A CPU demo: 16-channel U-Net, batch 64, 20 Euler steps. On the shared 2 cores 1,500 steps took 33 s on the
    # 8x8 digits (21 ms a step) and 4.4 min on 28x28 Fashion-MNIST (110-130 ms a step); ~750 steps already look right.
    "quick": TrainConfig(model="flow", steps=1500, batch_size=64, lr=1e-3, beta1=0.9, beta2=0.999, unet_width=16,
                         ema_decay=0.995, ode_solver="euler", ode_steps=20, log_every=10, sample_every=250,
                         checkpoint_every=250),
}
MODEL_PRESETS = {"wgan-gp": PRESETS, "flow": FLOW_PRESETS}
