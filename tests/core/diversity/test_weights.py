import numpy as np
import pytest
import torch

from core.diversity.vendi import normalise_rows, vendi_score
from core.diversity.weights import (WeightsConfig, _optimise_batch, _prepare_tensor, _results, optimise_weights,
                          reduce_rank, sweep_gamma)

GAMMAS = (0.6, 0.8, 1.0)


def naive_reference(features, gamma, steps=100, objective="paper"):
    """Independent oracle: the published n×n formulation with autograd (as in ../shared/reference);
    objective="scale-free" puts log VS in place of VS."""
    X = torch.as_tensor(features, dtype=torch.float64)
    X = X / X.norm(dim=1, keepdim=True)
    K = X @ X.T
    w = torch.zeros(len(X), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.99)
    for _ in range(steps):
        p = torch.softmax(w, 0)
        lam = torch.linalg.eigvalsh(p.sqrt()[:, None] * K * p.sqrt()[None, :])
        lam = lam[lam > 0]
        vs = torch.exp(-(lam * lam.log()).sum())
        diversity = vs if objective == "paper" else vs.log()
        loss = -(gamma * diversity + (1 - gamma) * -(p * p.log()).sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return torch.softmax(w, 0).detach().numpy()


@pytest.fixture(scope="module")
def fmnist(reference_dir):
    pixels = np.load(reference_dir / "fmnist01_1000_pixels.npy")
    refs = {g: np.load(reference_dir / f"fmnist01_1000_gamma{g}.npz") for g in GAMMAS}
    return pixels, refs


def relative_error(p, p_ref):
    return np.max(np.abs(p - p_ref)) / np.max(np.abs(p_ref))


@pytest.mark.slow
def test_sweep_reproduces_published_reference_vectors(fmnist, tmp_path):
    pixels, refs = fmnist
    results = sweep_gamma(pixels / 255.0, GAMMAS, cache_dir=tmp_path)
    for gamma in GAMMAS:
        result, ref = results[gamma], refs[gamma]
        assert relative_error(result.p, ref["p"]) < 1e-8
        assert result.p.sum() == pytest.approx(1.0, abs=1e-12)
        assert result.history[-1]["vs"] == pytest.approx(float(ref["vs_before_last_step"]), rel=1e-6)
        assert result.vs_final == pytest.approx(float(ref["vs_final"]), rel=1e-9)
        assert result.vs_uniform == pytest.approx(float(ref["vs_uniform"]), rel=1e-9)
        # log-weights are defined up to an additive constant only through p; the raw w must match too
        assert np.max(np.abs(result.log_weights - ref["log_weights"])) < 1e-7


@pytest.mark.slow
def test_single_run_matches_reference_and_uint8_input(fmnist):
    pixels, refs = fmnist
    result = optimise_weights(pixels, gamma=0.8)  # uint8 in: rows are normalised, so scale is irrelevant
    assert relative_error(result.p, refs[0.8]["p"]) < 1e-8
    assert len(result.history) == 100
    assert result.history[0]["vs"] == pytest.approx(float(refs[0.8]["vs_uniform"]), rel=1e-9)
    assert result.history[-1]["lr"] == pytest.approx(0.1 * 0.99**19)


@pytest.mark.parametrize("n, d, rank", [(40, 10, 10), (12, 30, 12), (40, 10, 4)])
def test_matches_independent_autograd_oracle(n, d, rank):
    rng = np.random.default_rng(n + d + rank)
    X = rng.random((n, rank)) @ rng.random((rank, d))  # rank-deficient when rank < min(n, d)
    for gamma in (0.3, 1.0):
        p = optimise_weights(X, gamma=gamma, steps=30).p
        assert relative_error(p, naive_reference(X, gamma, steps=30)) < 1e-9


def test_reduce_rank_is_exact_and_never_wider_than_d():
    rng = np.random.default_rng(0)
    X = rng.random((50, 5)) @ rng.random((5, 20))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    F = reduce_rank(X)
    assert F.shape == (50, 5)
    np.testing.assert_allclose(F @ F.T, X @ X.T, atol=1e-12)
    wide = reduce_rank(X[:8])
    assert wide.shape[1] <= 8
    np.testing.assert_allclose(wide @ wide.T, X[:8] @ X[:8].T, atol=1e-12)


def test_torch_tensor_path_equals_numpy_path():
    """CUDA runs the same loop on torch tensors; check that branch here on CPU tensors."""
    X = np.random.default_rng(3).random((60, 12))
    F = reduce_rank(normalise_rows(X))
    F_t = _prepare_tensor(X, "float64", "cpu")  # CUDA's preparation, on CPU tensors
    np.testing.assert_allclose(F_t.numpy() @ F_t.numpy().T, F @ F.T, atol=1e-12)
    with pytest.raises(ValueError, match="all zero"):
        _prepare_tensor(np.vstack([X, np.zeros((1, 12))]), "float64", "cpu")
    config = WeightsConfig(steps=25)
    w_np, hist_np, _ = _optimise_batch(F, [0.5, 1.0], config)
    w_t, hist_t, _ = _optimise_batch(torch.from_numpy(F), [0.5, 1.0], config)
    assert isinstance(w_t, torch.Tensor)
    np.testing.assert_allclose(w_t.numpy(), w_np, rtol=1e-10, atol=1e-12)
    assert [row["lr"] for row in hist_t[0]] == [row["lr"] for row in hist_np[0]]
    np.testing.assert_allclose([row["vs"] for row in hist_t[1]], [row["vs"] for row in hist_np[1]], rtol=1e-12)
    res_np = _results(F, w_np, hist_np, False, [config, config])
    res_t = _results(torch.from_numpy(F), w_t, hist_t, False, [config, config])
    for a, b in zip(res_np, res_t):
        np.testing.assert_allclose(b.p, a.p, rtol=1e-10)
        assert b.vs_final == pytest.approx(a.vs_final, rel=1e-12) and b.vs_final > b.vs_uniform


def test_tensor_features_give_the_numpy_result(tmp_path):
    """GPU embeddings arrive as tensors: any device, with or without grad, same p as numpy."""
    X = np.random.default_rng(4).random((50, 9))
    expected = optimise_weights(X, gamma=0.7, steps=15).p
    X_t = torch.from_numpy(X).requires_grad_()
    np.testing.assert_allclose(optimise_weights(X_t, gamma=0.7, steps=15).p, expected, rtol=1e-12)
    np.testing.assert_allclose(optimise_weights(X_t, gamma=0.7, steps=15, device="cpu").p, expected, rtol=1e-12)
    before = X_t.detach().clone()
    _prepare_tensor(X_t, "float64", "cpu")  # normalises a copy in place: the caller's tensor is untouched
    assert torch.equal(X_t.detach(), before)
    swept = sweep_gamma(X_t, [0.7], cache_dir=tmp_path, steps=15)
    np.testing.assert_allclose(swept[0.7].p, expected, rtol=1e-12)
    assert sweep_gamma(X, [0.7], cache_dir=tmp_path, steps=15)[0.7].extra.get("cache_hit")  # same fingerprint


@pytest.mark.parametrize("bad, message", [(torch.ones(5, 2, 2), "2-D"), (torch.ones(1, 4), "at least 2"),
                                          (torch.ones(3, 4, dtype=torch.bool), "numeric"),
                                          (torch.tensor([[1.0, float("nan")], [1.0, 0.0]]), "NaN"),
                                          (torch.tensor([[1.0, 2.0], [0.0, 0.0]]), "all zero")])
def test_bad_tensors_are_refused_on_both_paths(bad, message):
    with pytest.raises(ValueError, match=message):
        optimise_weights(bad, steps=1)
    with pytest.raises(ValueError, match=message):
        _prepare_tensor(bad, "float64", "cpu")  # CUDA's preparation, on CPU tensors


def test_history_vs_matches_vendi_module_and_gamma_zero_stays_uniform():
    X = np.random.default_rng(4).random((30, 6))
    result = optimise_weights(X, gamma=0.9, steps=20)
    assert result.vs_final == pytest.approx(vendi_score(X, result.p), rel=1e-10)
    assert result.vs_final > result.vs_uniform
    assert result.history[-1]["ess"] == pytest.approx(1 / np.sum(np.square(
        optimise_weights(X, gamma=0.9, steps=19).p)), rel=1e-10)
    flat = optimise_weights(X, gamma=0.0, steps=20)
    np.testing.assert_allclose(flat.p, np.full(30, 1 / 30), atol=1e-12)


def test_batched_sweep_equals_separate_runs_and_caches(tmp_path):
    X = np.random.default_rng(5).random((25, 7))
    sweep = sweep_gamma(X, [0.5, 1.0], steps=15, cache_dir=tmp_path)
    for gamma in (0.5, 1.0):
        np.testing.assert_allclose(sweep[gamma].p, optimise_weights(X, gamma=gamma, steps=15).p, rtol=1e-12)
        assert not sweep[gamma].extra.get("cache_hit")
    again = sweep_gamma(X, [1.0, 0.5], steps=15, cache_dir=tmp_path)
    assert all(r.extra.get("cache_hit") for r in again.values())
    np.testing.assert_array_equal(again[0.5].p, sweep[0.5].p)
    other_steps = sweep_gamma(X, [0.5], steps=16, cache_dir=tmp_path)
    assert not other_steps[0.5].extra.get("cache_hit")


def test_corrupted_cache_file_is_recomputed(tmp_path):
    X = np.random.default_rng(6).random((20, 5))
    first = sweep_gamma(X, [0.8], steps=10, cache_dir=tmp_path)[0.8]
    (cached,) = [f for f in tmp_path.iterdir() if f.suffix == ".npz"]
    cached.write_bytes(cached.read_bytes()[:100])
    again = sweep_gamma(X, [0.8], steps=10, cache_dir=tmp_path)[0.8]
    assert not again.extra.get("cache_hit")
    np.testing.assert_array_equal(again.p, first.p)
    assert sweep_gamma(X, [0.8], steps=10, cache_dir=tmp_path)[0.8].extra["cache_hit"]  # rewritten whole


def test_cached_result_round_trips(tmp_path):
    X = np.random.default_rng(7).random((15, 4))
    result = sweep_gamma(X, [0.7], steps=5, cache_dir=tmp_path)[0.7]
    loaded = sweep_gamma(X, [0.7], steps=5, cache_dir=tmp_path)[0.7]
    assert loaded.extra["cache_hit"] and not result.extra.get("cache_hit")
    np.testing.assert_array_equal(loaded.p, result.p)
    np.testing.assert_array_equal(loaded.log_weights, result.log_weights)
    assert loaded.history == result.history
    assert loaded.config == result.config
    assert (loaded.vs_uniform, loaded.vs_final, loaded.stopped) == (result.vs_uniform, result.vs_final, False)


def test_on_step_streams_and_should_stop_cancels():
    X = np.random.default_rng(8).random((20, 5))
    seen = []
    result = optimise_weights(X, steps=50, on_step=seen.append, should_stop=lambda: len(seen) >= 7)
    assert result.stopped
    assert [row["step"] for row in seen] == list(range(1, 8))
    assert set(seen[0]) == {"step", "vs", "entropy", "ess", "lr"}
    assert len(result.history) == 7 and result.p.sum() == pytest.approx(1.0)


def test_float32_is_close_to_float64():
    X = np.random.default_rng(9).random((200, 16))
    p64 = optimise_weights(X, steps=30).p
    p32 = optimise_weights(X, steps=30, dtype="float32").p
    assert relative_error(p32, p64) < 1e-3
    assert WeightsConfig().dtype == "float64"


@pytest.mark.parametrize(
    "features, kwargs, message",
    [
        (np.ones((1, 3)), {}, "at least 2"),
        (np.array([[1.0, np.inf], [1.0, 0.0]]), {}, "NaN or infinite"),
        (np.zeros((3, 2)), {}, "all zero"),
        (np.ones((3, 2, 2)), {}, "2-D"),
        (np.eye(3), {"gamma": 1.5}, "gamma"),
        (np.eye(3), {"steps": 0}, "steps"),
    ],
)
def test_bad_input_raises_value_error(features, kwargs, message):
    with pytest.raises(ValueError, match=message):
        optimise_weights(features, **kwargs)


@pytest.mark.gpu
def test_cuda_equals_the_cpu_in_float64(fmnist):
    pixels, _ = fmnist
    for gamma in (0.6, 1.0):
        on_cpu = optimise_weights(pixels / 255.0, gamma=gamma, device="cpu")
        on_gpu = optimise_weights(pixels / 255.0, gamma=gamma, device="cuda")
        assert relative_error(on_gpu.p, on_cpu.p) <= 1e-10
        assert on_gpu.vs_final == pytest.approx(on_cpu.vs_final, rel=1e-10)


@pytest.mark.gpu
def test_cuda_matches_cpu(fmnist):
    pixels, refs = fmnist
    result = optimise_weights(pixels / 255.0, gamma=1.0, device="cuda")
    assert relative_error(result.p, refs[1.0]["p"]) < 1e-6
    p32 = optimise_weights(pixels / 255.0, gamma=1.0, device="cuda", dtype="float32").p
    assert relative_error(p32, refs[1.0]["p"]) < 1e-2
    on_gpu = torch.as_tensor(pixels, device="cuda")  # uint8 embeddings already on the GPU
    assert relative_error(optimise_weights(on_gpu, gamma=1.0).p, refs[1.0]["p"]) < 1e-6


@pytest.mark.parametrize("n, d, rank", [(40, 10, 10), (12, 30, 12)])
def test_scale_free_objective_matches_its_autograd_oracle(n, d, rank):
    rng = np.random.default_rng(n + d)
    X = rng.random((n, rank)) @ rng.random((rank, d))
    for gamma in (0.3, 0.8, 1.0):
        p = optimise_weights(X, gamma=gamma, steps=30, objective="scale-free").p
        assert relative_error(p, naive_reference(X, gamma, steps=30, objective="scale-free")) < 1e-9


def test_scale_free_gamma_spreads_over_zero_to_one_where_the_paper_saturates():
    """Pixel-like features (VS ≈ 19, unbalanced clusters in 64 dimensions): the paper's γ = 0.5 and 1.0
    give nearly the same effective sample size; the scale-free objective's falls steadily with γ."""
    from core.diversity.inspect import effective_sample_size

    rng = np.random.default_rng(0)
    kinds = rng.choice(6, size=300, p=[0.5, 0.2, 0.1, 0.1, 0.05, 0.05])
    X = (rng.normal(size=(6, 64)) * 2)[kinds] + rng.normal(size=(300, 64)) * 1.5
    assert vendi_score(X) > 15
    gammas = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
    ess = {objective: [effective_sample_size(optimise_weights(X, gamma=g, objective=objective).p) / 300
                       for g in gammas] for objective in ("paper", "scale-free")}
    paper, scale_free = ess["paper"], ess["scale-free"]
    assert paper[2] - paper[-1] < 0.1  # the paper's γ barely matters from 0.5 on
    assert scale_free[2] - scale_free[-1] > 0.4  # the scale-free γ still trades there
    assert all(a > b for a, b in zip(scale_free, scale_free[1:])) and scale_free[0] > 0.95


def test_the_objective_is_part_of_the_cache_key_and_of_the_config(tmp_path):
    X = np.random.default_rng(0).random((30, 6))
    paper = sweep_gamma(X, [0.5], cache_dir=tmp_path)[0.5]
    scale_free = sweep_gamma(X, [0.5], cache_dir=tmp_path, objective="scale-free")[0.5]
    assert "cache_hit" not in scale_free.extra and scale_free.config.objective == "scale-free"
    assert not np.allclose(paper.p, scale_free.p)
    assert sweep_gamma(X, [0.5], cache_dir=tmp_path, objective="scale-free")[0.5].extra["cache_hit"]
    with pytest.raises(ValueError, match="objective must be one of paper, scale-free"):
        optimise_weights(X, objective="log")
