"""Flow matching: the U-Net's shapes, the loss and sampler maths, batch drawing, EMA and bit-exact resume."""

import numpy as np
import pytest
import torch
from scipy import stats

from core.training.checkpoints import checkpoint_bytes, read_checkpoint
from core.training.config import FLOW_PRESETS, TrainConfig
from core.training.flow import EMA, FlowSampler, integrate, ot_pairing, per_sample_loss, straight_path
from core.training.flow_trainer import FlowTrainer
from core.training.trainer import Trainer, train
from core.training.unet import UNet, unet_sides

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides) -> TrainConfig:
    base = {"model": "flow", "steps": 3, "batch_size": 8, "unet_width": 8, "device": "cpu", "ode_steps": 2}
    return TrainConfig.preset("quick", **base | overrides)


def toy_images(n=40, seed=0) -> np.ndarray:
    """Two kinds of 8x8 images (a bright left half or a bright top half) with a little noise."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 8, 8, 1), np.float64)
    images[::2, :, :4] = 1.0
    images[1::2, :4, :] = 1.0
    return np.clip(255 * (images + 0.05 * rng.normal(size=images.shape)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape, sides", [((1, 28, 28), [(28, 28), (14, 14), (7, 7)]),
                                          ((3, 32, 32), [(32, 32), (16, 16), (8, 8), (4, 4)]),
                                          ((3, 64, 64), [(64, 64), (32, 32), (16, 16), (8, 8)]),
                                          ((1, 8, 8), [(8, 8), (4, 4)])])
def test_unet_levels_and_shapes(shape, sides):
    assert unet_sides(*shape[1:]) == sides
    net = UNet(shape, width=8)
    x = torch.randn(2, *shape)
    assert net(x, torch.rand(2)).shape == x.shape
    assert torch.equal(net(x, torch.rand(2)), torch.zeros_like(x))  # zero-initialised head: v = 0 at start


def test_straight_path_and_its_velocity():
    x0, x1 = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    x_t, u = straight_path(x0, x1, t)
    assert torch.allclose(x_t[0], x0[0]) and torch.allclose(x_t[3], x1[3])
    assert torch.allclose(x_t[1], 0.75 * x0[1] + 0.25 * x1[1]) and torch.allclose(u, x1 - x0)
    perfect = lambda x, t: u  # noqa: E731  (the true velocity of these pairs)
    assert torch.equal(per_sample_loss(perfect, x0, x1, t), torch.zeros(4))


def test_fixed_step_solvers_against_the_exact_solution():
    x0 = torch.zeros(3, 1, 2, 2)
    field = lambda x, t: t.view(-1, 1, 1, 1).expand_as(x)  # noqa: E731  dx/dt = t: x(1) = x0 + 1/2
    n = 10
    euler = integrate(field, x0, steps=n, method="euler")
    assert torch.allclose(euler, torch.full_like(x0, (n - 1) / (2 * n)))  # left Riemann sum of t
    assert torch.allclose(integrate(field, x0, steps=n, method="midpoint"), torch.full_like(x0, 0.5))
    sampler = FlowSampler(field, (1, 2, 2), steps=n, method="midpoint")
    assert sampler.z_dim == 4
    assert torch.allclose(sampler(torch.zeros(3, 4)), torch.full((3, 1, 2, 2), 0.75))  # (0.5 + 1) / 2


def test_ot_pairing_finds_the_cheapest_assignment():
    x1 = torch.tensor([[0.0], [10.0], [20.0]])
    x0 = torch.tensor([[19.0], [1.0], [11.0]])
    assert ot_pairing(x0, x1).tolist() == [1, 2, 0]


def test_flow_loss_decreases_on_a_toy_set():
    trainer = FlowTrainer(tiny_config(lr=3e-3, batch_size=32), toy_images())
    losses = [trainer.train_step()["loss"].item() for _ in range(80)]
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])


@pytest.mark.parametrize("weighting", ["sample", "importance"])
def test_batches_are_drawn_at_the_right_frequencies(weighting):
    p = np.random.default_rng(3).dirichlet(np.ones(40))
    trainer = FlowTrainer(tiny_config(loss_weighting=weighting), toy_images(), p)
    drawn = np.bincount(trainer.real_indices(40_000).numpy(), minlength=40)
    expected = p if weighting == "sample" else np.full(40, 1 / 40)  # importance: uniform draws
    _, p_value = stats.chisquare(drawn, 40_000 * expected)
    assert p_value > 1e-3
    wrong = np.full(40, 1 / 40) if weighting == "sample" else p
    assert stats.chisquare(drawn, 40_000 * wrong)[1] < 1e-6  # the test can tell the two apart
    if weighting == "importance":
        np.testing.assert_allclose(trainer.loss_weights.numpy(), 40 * p, rtol=1e-6)


def test_importance_weighting_scales_each_loss_by_n_p():
    p = np.linspace(1, 3, 40) / np.linspace(1, 3, 40).sum()
    config = tiny_config(loss_weighting="importance", batch_size=16)
    trainer, twin = FlowTrainer(config, toy_images(), p), FlowTrainer(config, toy_images(), p)
    indices = twin.real_indices(16)  # twin replays the trainer's random streams by hand
    x1 = twin.data[indices].float().div(127.5).sub(1)
    x0 = torch.randn(x1.shape, generator=twin.rng_noise)
    t = torch.rand(16, generator=twin.rng_noise)
    with torch.no_grad():
        expected = (torch.as_tensor(40 * p, dtype=torch.float32)[indices] * per_sample_loss(twin.net, x0, x1, t)).mean()
    assert torch.allclose(trainer.train_step()["loss"], expected)


def test_ema_warms_up_then_averages():
    net = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    ema = EMA(net, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)  # decay min(0.9, 2/11)
    assert ema.module.weight.item() == pytest.approx(1 - 2 / 11)
    for _ in range(200):
        ema.update(net)
    assert ema.module.weight.item() == pytest.approx(1.0, abs=1e-6)


def test_checkpoint_roundtrip_continues_bit_for_bit():
    config = tiny_config(steps=6, coupling="ot")
    straight = train(config, toy_images(), trainer=FlowTrainer(config, toy_images()))
    half = FlowTrainer(config, toy_images())
    for _ in range(3):
        half.train_step()
    tensors, meta = read_checkpoint(checkpoint_bytes(half))
    resumed = FlowTrainer(config, toy_images())
    resumed.load_state_tensors(tensors, meta)
    train(config, toy_images(), trainer=resumed)
    a, b = straight.state_tensors()[0], resumed.state_tensors()[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(straight.sample(straight.fixed_latents()[:4]), resumed.sample(resumed.fixed_latents()[:4]))


def test_a_gan_checkpoint_is_not_loaded_into_a_flow_trainer():
    gan = Trainer(TrainConfig.preset("quick", steps=1, batch_size=8, critic_steps=1, device="cpu"), toy_images())
    tensors, meta = read_checkpoint(checkpoint_bytes(gan))
    with pytest.raises(KeyError, match="not a flow"):
        FlowTrainer(tiny_config(), toy_images()).load_state_tensors(tensors, meta)


def test_samples_are_images_from_fixed_noise():
    trainer = FlowTrainer(tiny_config(n_samples=6), toy_images())
    z = trainer.fixed_latents()
    assert z.shape == (6, 64) and torch.equal(z, FlowTrainer(tiny_config(n_samples=6, seed=5), toy_images()).fixed_latents())
    images = trainer.sample(z)
    assert images.shape == (6, 1, 8, 8) and images.min() >= 0 and images.max() <= 1


def test_flow_presets_and_bad_settings():
    assert FLOW_PRESETS["quick"].model == FLOW_PRESETS["paper"].model == "flow"
    assert TrainConfig.preset("quick").model == "wgan-gp"  # the default stays the paper's GAN
    assert TrainConfig.preset("paper", model="flow").unet_width > TrainConfig.preset("quick", model="flow").unet_width
    for bad in ({"ode_solver": "rk45"}, {"loss_weighting": "both"}, {"coupling": "sinkhorn"}, {"ema_decay": 1.0}):
        with pytest.raises(ValueError):
            tiny_config(**bad).validate()
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig.preset("quick", model="vae")
