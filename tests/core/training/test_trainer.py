import pickle

import numpy as np
import pytest
import torch

from core.training.checkpoints import CheckpointError, checkpoint_bytes, read_checkpoint
from core.training.config import PRESETS, TrainConfig
from core.training.trainer import LossMeter, Trainer, gradient_penalty, train


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides) -> TrainConfig:
    return TrainConfig.preset("quick", **{"steps": 3, "batch_size": 8, "critic_steps": 2, "device": "cpu"} | overrides)


def tiny_images(n=40, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)


def network_tensors(trainer: Trainer) -> dict:
    return {**{f"g.{k}": v for k, v in trainer.generator.state_dict().items()},
            **{f"d.{k}": v for k, v in trainer.critic.state_dict().items()}}


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_presets():
    paper = TrainConfig.preset("paper")
    assert (paper.batch_size, paper.steps, paper.critic_steps, paper.gp_weight) == (6000, 6000, 5, 10.0)
    assert (paper.lr, paper.beta1, paper.beta2, paper.z_dim) == (1e-4, 0.5, 0.9, 64)
    quick = TrainConfig.preset("quick", steps=7)
    assert quick.steps == 7 and quick.batch_size < 500 and PRESETS["quick"].steps == 1000
    with pytest.raises(ValueError, match="unknown preset"):
        TrainConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.preset("quick", batchsize=3)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0).validate()


def test_sampling_is_with_replacement_by_p():
    p = np.zeros(40)
    p[[3, 17, 29]] = [0.5, 0.3, 0.2]
    trainer = Trainer(tiny_config(), tiny_images(), p)
    drawn = trainer.real_indices(20_000).numpy()
    assert set(np.unique(drawn)) == {3, 17, 29}  # only the items with mass, each many times
    frequencies = np.bincount(drawn, minlength=40)[[3, 17, 29]] / len(drawn)
    np.testing.assert_allclose(frequencies, [0.5, 0.3, 0.2], atol=0.02)
    uniform = Trainer(tiny_config(), tiny_images()).real_indices(4000).numpy()
    assert len(np.unique(uniform)) == 40  # the baseline: every item, equally likely


def test_bad_weights_refused():
    with pytest.raises(ValueError, match="shape"):
        Trainer(tiny_config(), tiny_images(), np.ones(5))
    with pytest.raises(ValueError, match="non-negative"):
        Trainer(tiny_config(), tiny_images(), -np.ones(40))


def test_seeded_and_deterministic_on_cpu():
    a = train(tiny_config(), tiny_images())
    b = train(tiny_config(), tiny_images())
    c = train(tiny_config(seed=1), tiny_images())
    assert_same_tensors(network_tensors(a), network_tensors(b))
    assert not torch.equal(a.generator.project[0].weight, c.generator.project[0].weight)


def test_checkpoint_roundtrip_continues_bit_for_bit():
    straight = train(tiny_config(steps=4), tiny_images())
    first = train(tiny_config(steps=2), tiny_images())
    restored = Trainer(tiny_config(steps=4), tiny_images())
    restored.load_state_tensors(*read_checkpoint(checkpoint_bytes(first)))
    assert restored.step == 2
    train(tiny_config(steps=4), tiny_images(), trainer=restored)
    assert_same_tensors(network_tensors(straight), network_tensors(restored))
    assert_same_tensors(restored.state_tensors()[0], straight.state_tensors()[0])  # Adam moments, RNGs too


def test_corrupted_or_foreign_checkpoints_refused():
    data = bytearray(checkpoint_bytes(Trainer(tiny_config(), tiny_images())))
    data[-5] ^= 0xFF  # a flipped byte in the tensor data
    with pytest.raises(CheckpointError, match="checksum"):
        read_checkpoint(bytes(data))
    with pytest.raises(CheckpointError):
        read_checkpoint(bytes(data[: len(data) // 2]))  # truncated
    with pytest.raises(CheckpointError, match="pickle"):
        read_checkpoint(pickle.dumps({"a": 1}))


def test_callbacks_and_stop():
    seen = []
    trainer = train(tiny_config(steps=5), tiny_images(), on_step=lambda step, losses: seen.append((step, set(losses))),
                    should_stop=lambda: len(seen) >= 2)
    assert trainer.step == 2 and [s for s, _ in seen] == [1, 2]
    assert seen[0][1] == {"loss_d", "loss_g", "wdist", "gp"}


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = <w, x> has gradient w everywhere: the penalty is (||w|| - 1)^2 exactly."""
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.copy_(torch.arange(16.0).reshape(1, 16) / 20)
    real, fake = torch.rand(5, 1, 4, 4), torch.rand(5, 1, 4, 4)
    gp = gradient_penalty(critic, real, fake, torch.rand(5, 1, 1, 1))
    expected = (critic[1].weight.norm() - 1) ** 2
    torch.testing.assert_close(gp, expected)
    gp.backward()  # the graph is kept: the penalty trains the critic
    assert critic[1].weight.grad is not None


def test_loss_meter_averages_over_the_window():
    meter = LossMeter()
    for value in (1.0, 3.0):
        meter.add({name: torch.tensor(value) for name in ("loss_d", "loss_g", "wdist", "gp")})
    result = meter.read()
    assert result["loss_d"] == 2.0 and result["gp"] == 2.0 and result["ms_per_step"] >= 0


@pytest.mark.gpu
def test_cuda_bf16_compile_step_runs():
    images = np.random.default_rng(0).integers(0, 256, (256, 28, 28, 1), dtype=np.uint8)
    config = TrainConfig.preset("quick", steps=3, batch_size=64, device="cuda", bf16=True, compile=True)
    trainer = train(config, images)
    losses = trainer.train_step()
    assert all(torch.isfinite(v) for v in losses.values())
    assert trainer.sample(trainer.fixed_latents()).shape == (64, 1, 28, 28)
