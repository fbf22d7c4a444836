"""Diversity weights: Algorithm 1 of Berns, Colton & Guckelsberger (2023), exact and fast.

Log-weights w (init 0), p = softmax(w); minimise  L(p) = -(γ·VS(K, p) + (1-γ)·H(p))  with Adam
(lr 0.1, betas 0.9/0.999), lr ×0.99 every 5 steps, 100 steps. The paper's eq. 6 prints the entropy
sign the other way; the published code (and ../shared/reference) *maximise* H(p), as here.

Two objectives (WeightsConfig.objective):
- "paper": Algorithm 1 as published, bit for bit. VS lies in [1, n] and depends on the feature space
  while H(p) lies in [0, log n], so where VS is large (pixels: 12-35) the VS term outweighs the entropy
  for every γ above about 0.3 and γ stops trading the two.
- "scale-free": L(p) = -(γ·log VS + (1-γ)·H(p)). log VS is the Shannon entropy of the normalised
  spectrum, in nats like H(p) and bounded by log n like it, so γ trades like for like on any features.
  The gradient is ∇VS / VS: the same engine with the VS factor dropped.

Speed without changing what is computed (every step still evaluates the exact loss and gradient):
- the spectrum comes from the r×r matrix Fᵀ diag(p) F where F (n, r) has the same Gram matrix as
  the L2-normalised features and r = rank ≤ min(n, d) (exact rank reduction, done once);
- the gradient is analytic and reuses the step's one eigendecomposition M = U diag(λ) Uᵀ:
  ∂S/∂p_i = x_iᵀ (−log M − I) x_i = Σ_j (−log λ_j − 1)(F U)_ij², with S = −Σ λ log λ = log VS;
  no n×n matrix and no autograd through eigh (which would need several more r×r products);
- two passes over F per step (one Gram product, one F·U) and one r×r eigh; several γ share F;
- on the CPU the loop runs on numpy: its BLAS turns Zᵀ Z into a symmetric rank-k update (half the
  flops of a general product), and the (n, r) work arrays are allocated once (a fresh one costs about
  as much in page faults as the product). On CUDA the same code runs on torch tensors.
- every sum over items goes through a `rows` object (`LocalRows` here), so the same loop runs exactly on
  rows sharded across torch.distributed ranks (`core.diversity.distributed.ShardRows`: all-reduces).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np

from ..arrays import is_tensor as _is_tensor, to_numpy as _to_numpy, xp as _xp
from ..data.cache import ArrayCache
from ..data.storage import fingerprint_arrays
from ..devices import resolve_device
from .vendi import check_feature_array, check_row_norms, normalise_rows, score_from_eigenvalues


@dataclass
class WeightsConfig:
    gamma: float = 0.8  # 1.0 = pure diversity (max Vendi Score); 0.0 = stay uniform (max entropy)
    steps: int = 100  # Adam steps (Algorithm 1 runs 100)
    lr: float = 0.1  # Adam learning rate
    lr_decay: float = 0.99  # learning rate multiplied by this ...
    lr_step: int = 5  # ... every lr_step steps (torch StepLR)
    dtype: str = "float64"  # "float64" reproduces the reference; "float32" is faster on big data
    device: str | None = None  # "cpu", "cuda", or None = cuda when available
    objective: str = "paper"  # "paper" (γ·VS + (1-γ)·H, Algorithm 1) or "scale-free" (γ·log VS + (1-γ)·H)


OBJECTIVES = ("paper", "scale-free")


@dataclass
class WeightsResult:
    p: np.ndarray  # (n,) float64 probabilities, sum 1 (sharded: this rank's rows, see extra)
    log_weights: np.ndarray  # (n,) the optimised w (p = softmax(w))
    history: list[dict]  # per step: step, vs, entropy, ess, lr (values before that step's update)
    config: WeightsConfig
    vs_uniform: float  # VS with uniform p
    vs_final: float  # VS of the returned p
    stopped: bool = False  # True when should_stop() ended the run early
    extra: dict = field(default_factory=dict)  # e.g. {"cache_hit": True}


def _torch_dtype(dtype):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    return {"float64": torch.float64, "float32": torch.float32}[_dtype_name(dtype)]


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def reduce_rank(X):
    """(n, d) float64 array or tensor, rows L2-normalised -> F (n, r) with F Fᵀ = X Xᵀ, r = numerical rank.

    Every quantity of Algorithm 1 depends on X only through its Gram matrix, so F is an exact
    stand-in. Components with σ² below n·eps·σ²_max are round-off and dropped. Runs where X is
    (numpy or torch); never forms an n×n matrix when n > d.
    """
    xp = _xp(X)
    n, d = X.shape
    if n > d:
        basis = kept_basis(*xp.linalg.eigh(X.T @ X), n)  # eigh: (d,), (d, d)
        return X if basis is None else X @ basis
    lam, V = xp.linalg.eigh(X @ X.T)  # (n,), (n, n): F = V √Λ
    keep = _above_round_off(lam, n)
    return V[:, keep] * xp.sqrt(lam[keep])


def _above_round_off(lam, n: int):
    """Eigenvalues (ascending) that are signal: σ² above n·eps·σ²_max (the rest is round-off)."""
    return lam > n * np.finfo(np.float64).eps * lam[-1]


def kept_basis(lam, V, n: int):
    """The d×d side of the rank reduction: eigh of Xᵀ X = V diag(lam) Vᵀ for n rows -> V[:, keep]
    (d, r), or None when every component is kept (then F = X). The sharded engine calls this with the
    all-reduced Gram matrix of all ranks' rows."""
    keep = _above_round_off(lam, n)
    return None if bool(keep.all()) else V[:, keep]


def _weighted_gram(F, p, scratch=None):
    """Fᵀ diag(p) F for F (n, r), p (n,); numpy computes Zᵀ Z of one buffer as a symmetric syrk.

    scratch: an (n, r) array to reuse for Z; on the CPU a fresh array of that size costs about as
    much in page faults as the product itself.
    """
    xp = _xp(F)
    Z = xp.multiply(F, xp.sqrt(p)[:, None], out=scratch)
    return Z.T @ Z


class LocalRows:
    """Sums and maxima over the rows of Algorithm 1 when one process holds them all: nothing to
    combine. `core.diversity.distributed.ShardRows` has the same methods as all-reduces over ranks,
    so one loop serves both (every cross-row quantity of a step goes through these calls)."""

    def sum(self, a):  # a: per-process partial sums (any shape) -> the sums over all rows
        return a

    def max(self, a):
        return a

    def any(self, flag) -> bool:
        return bool(flag)

    def count(self, n: int) -> int:
        return int(n)


LOCAL_ROWS = LocalRows()


def _softmax_rows(w, rows=LOCAL_ROWS):
    xp = _xp(w)
    e = xp.exp(w - rows.max(xp.amax(w, 1))[:, None])
    return e / rows.sum(e.sum(1))[:, None]


def vs_and_log_gradient(F, p, scratch, rows=LOCAL_ROWS):
    """VS (k,) and ∂ log VS / ∂p (k, n) for probability vectors p (k, n) over reduced features F (n, r):
    one r×r eigendecomposition each. scratch: an (n, r) work array; rows: how sums over items are
    completed (LOCAL_ROWS, or all-reduces when the rows are sharded)."""
    xp = _xp(F)
    grams = rows.sum(xp.stack([_weighted_gram(F, p_k, scratch) for p_k in p]))  # (k, r, r)
    lam, U = xp.linalg.eigh(grams)  # (k, r), (k, r, r)
    positive = lam > 0  # zero / round-off negative eigenvalues are skipped, as in the reference
    log_lam = xp.log(xp.where(positive, lam, xp.ones_like(lam)))
    vs = xp.exp(-xp.where(positive, lam * log_lam, xp.zeros_like(lam)).sum(1))
    coef = xp.where(positive, -log_lam - 1.0, xp.zeros_like(lam))  # (k, r) = f'(λ), f = −λ log λ
    dS_dp = xp.stack([_squared_product(F, U_k, scratch) @ c_k for U_k, c_k in zip(U, coef)])  # (k, n)
    return vs, dS_dp


def _loss_and_grad(F, w, gammas, scratch, rows=LOCAL_ROWS, objective: str = "paper"):
    """Exact loss terms and ∂L/∂w for a batch of log-weights.

    F (n, r); w (k, n); gammas (k,); scratch: an (n, r) work array; rows: as for vs_and_log_gradient;
    objective: "paper" differentiates γ·VS (∂VS = VS·∂log VS), "scale-free" γ·log VS.
    Returns vs (k,), entropy (k,), ess (k,), grad (k, n).
    """
    xp = _xp(F)
    p = _softmax_rows(w, rows)  # (k, n)
    vs, dS_dp = vs_and_log_gradient(F, p, scratch, rows)
    log_p = xp.log(p)
    g = gammas[:, None]
    diversity = g * vs[:, None] * dS_dp if objective == "paper" else g * dS_dp
    dL_dp = -(diversity + (1.0 - g) * (-log_p - 1.0))
    # the step's three item sums in one call (one all-reduce when sharded): Σ p log p, Σ p ∂L/∂p, Σ p²
    p_log_p, p_dL, p_sq = rows.sum(xp.stack([(p * log_p).sum(1), (p * dL_dp).sum(1), (p**2).sum(1)]))
    grad_w = p * (dL_dp - p_dL[:, None])  # softmax backward
    return vs, -p_log_p, 1.0 / p_sq, grad_w


def _squared_product(F, U, out):
    """(F U)² element-wise, written into out (n, r)."""
    W = _xp(F).matmul(F, U, out=out)
    W *= W
    return W


class _Adam:
    """torch.optim.Adam's update (betas 0.9/0.999, eps 1e-8), written out so the CPU path needs no
    torch; StepLR's decay is applied by the caller."""

    def __init__(self, w, betas=(0.9, 0.999), eps=1e-8):
        xp = _xp(w)
        self.m, self.v, self.t = xp.zeros_like(w), xp.zeros_like(w), 0
        self.betas, self.eps = betas, eps

    def step(self, w, grad, lr: float) -> None:
        (b1, b2), self.t = self.betas, self.t + 1
        self.m += (1.0 - b1) * (grad - self.m)  # torch: m.lerp_(grad, 1 - β1)
        self.v *= b2
        self.v += (1.0 - b2) * grad * grad
        denom = _xp(w).sqrt(self.v) / math.sqrt(1.0 - b2**self.t) + self.eps
        w -= (lr / (1.0 - b1**self.t)) * self.m / denom


def algorithm_steps(F, w, gammas, config: WeightsConfig, rows=LOCAL_ROWS):
    """Algorithm 1 one step at a time: updates the log-weights w (k, n) in place and yields each step's
    history rows (one per γ of gammas (k,), values before that step's update). The engine's loop and
    the Learn tab's live stepper both run this."""
    xp = _xp(F)
    gam = np.asarray(gammas, dtype=F.dtype) if xp is np else F.new_tensor(gammas)
    adam, lr = _Adam(w), config.lr
    scratch = xp.empty_like(F)  # reused by every product of the loop
    for step in range(1, config.steps + 1):
        vs, entropy, ess, grad = _loss_and_grad(F, w, gam, scratch, rows, config.objective)
        adam.step(w, grad, lr)
        step_rows = _history_rows(step, vs, entropy, ess, lr)
        if step % config.lr_step == 0:
            lr *= config.lr_decay  # torch StepLR, same float products
        yield step_rows


def initial_log_weights(F, k: int):
    """w = 0 (k, n) where F is (numpy or a tensor on F's device): uniform p, Algorithm 1's start."""
    return np.zeros((k, F.shape[0]), dtype=F.dtype) if _xp(F) is np else F.new_zeros(k, F.shape[0])


def _optimise_batch(F, gammas, config: WeightsConfig, on_step=None, should_stop=None, rows=LOCAL_ROWS):
    """Run Algorithm 1 for several γ at once (Adam is element-wise, so rows stay independent).
    F may be one rank's rows of a sharded set: `rows` completes the sums and agrees on stopping."""
    k = len(gammas)
    w = initial_log_weights(F, k)
    steps = algorithm_steps(F, w, gammas, config, rows)
    histories, stopped = [[] for _ in range(k)], False
    for step in range(1, config.steps + 1):
        if rows.any(should_stop is not None and should_stop()):  # sharded: every rank stops at the same step
            stopped = True
            break
        step_rows = next(steps)
        for history, row in zip(histories, step_rows):
            history.append(row)
        if on_step is not None:
            on_step(step_rows[0] if k == 1 else {"step": step, "rows": step_rows})
    return w, histories, stopped


def _history_rows(step, vs, entropy, ess, lr) -> list[dict]:
    """One history row per γ; ess (k,) = 1 / Σ p², the effective sample size."""
    return [
        {"step": step, "vs": float(v), "entropy": float(h), "ess": float(e), "lr": float(lr)}
        for v, h, e in zip(vs.tolist(), entropy.tolist(), ess.tolist())
    ]


def _prepare(features, dtype, device):
    """Checked, normalised, rank-reduced features: numpy on the CPU, a torch tensor on CUDA.

    features: an (n, d) array, or a torch tensor on any device (GPU embeddings need no host copy).
    """
    device = resolve_device(device)  # no torch import on a CPU-only machine
    if device != "cpu":
        return _prepare_tensor(features, dtype, device)
    return as_engine_dtype(reduce_rank(normalised_features(features, device)), dtype)


def normalised_features(features, device, min_rows: int = 2):
    """Checked (n, d) features, float64 with rows L2-normalised: numpy on the CPU, a tensor on `device`
    otherwise. min_rows: 2 for a whole set; a shard of a sharded set may hold a single row."""
    if resolve_device(device) != "cpu":
        return _normalised_tensor(features, device, min_rows)
    X = check_feature_array(_to_numpy(features) if _is_tensor(features) else features)
    _check_count(X.shape[0], min_rows)
    return normalise_rows(X)


def as_engine_dtype(F, dtype):
    """The engine's working copy of reduced features F: contiguous, in `dtype`, where F is."""
    if _is_tensor(F):
        return F.to(_torch_dtype(dtype)).contiguous()
    return np.ascontiguousarray(F, dtype=_dtype_name(dtype))


def _check_count(n: int, min_rows: int = 2) -> None:
    if n < min_rows:
        what = "diversity weights need at least 2 items" if min_rows == 2 else f"need at least {min_rows} row(s)"
        raise ValueError(f"{what}; got {n}")


def _prepare_tensor(features, dtype, device):
    """The same as tensors on `device`: checks and reduction run there, with no host copies."""
    return as_engine_dtype(reduce_rank(_normalised_tensor(features, device)), dtype)


def _normalised_tensor(features, device, min_rows: int = 2):
    import torch

    X = torch.as_tensor(features, device=device).detach()
    if X.dtype == torch.bool or X.is_complex():
        raise ValueError(f"features must be numeric; got dtype {X.dtype}")
    check_feature_array(np.broadcast_to(np.float64(0.0), tuple(X.shape)))  # the numpy path's shape rules
    _check_count(X.shape[0], min_rows)
    X = X.to(torch.float64, copy=True)  # the caller's tensor is untouched
    norms = X.norm(dim=1)
    check_row_norms(bool(torch.isfinite(X).all()), torch.nonzero(norms == 0).flatten().tolist())
    X /= norms[:, None]  # in place: at n = 1,000,000, d = 768 one float64 copy is 6 GB of GPU memory
    return X


def _vs_of(F, p, rows=LOCAL_ROWS) -> float:
    """VS of one probability vector (n,) on the reduced features, computed where F is."""
    p = np.asarray(p, dtype=F.dtype) if isinstance(F, np.ndarray) else F.new_tensor(p)
    gram = rows.sum(_weighted_gram(F, p))
    return score_from_eigenvalues(_to_numpy(_xp(F).linalg.eigvalsh(gram)).astype(np.float64))


def _results(F, w, histories, stopped, configs, rows=LOCAL_ROWS) -> list[WeightsResult]:
    """WeightsResults of the optimised w (k, n); sharded, each holds this rank's rows of p."""
    w = _to_numpy(w).astype(np.float64)
    p = _softmax_rows(w, rows)
    out = []
    for w_k, p_k, history, config in zip(w, p, histories, configs):
        vs_uniform = history[0]["vs"] if history else _vs_of(F, np.full(len(p_k), 1.0 / rows.count(len(p_k))), rows)
        out.append(WeightsResult(p=p_k, log_weights=w_k, history=history, config=config,
                                 vs_uniform=vs_uniform, vs_final=_vs_of(F, p_k, rows), stopped=stopped))
    return out


def optimise_weights(features, gamma: float = 0.8, steps: int = 100, lr: float = 0.1, lr_decay: float = 0.99,
                     lr_step: int = 5, device=None, dtype="float64",
                     on_step: Callable[[dict], None] | None = None,
                     should_stop: Callable[[], bool] | None = None, shards=None,
                     objective: str = "paper") -> WeightsResult:
    """Diversity weights of items with features (n, d): an array, or a torch tensor on any device
    (cosine similarity; rows normalised inside).

    on_step(row) is called after every step with {step, vs, entropy, ess, lr} (values of the
    iterate that step differentiated); should_stop() -> True ends the run cleanly (result.stopped).
    shards=`core.diversity.distributed.ShardRows()`: features are this rank's rows of a set sharded
    across an initialised torch.distributed process group (every rank calls this, each with its
    rows); the result is exact (as one process) and holds this rank's rows of p.
    objective: "paper" (Algorithm 1 as published) or "scale-free" (γ·log VS + (1-γ)·H(p): γ means the
    same on any features; see the module's docstring).
    """
    config = WeightsConfig(gamma=float(gamma), steps=int(steps), lr=float(lr), lr_decay=float(lr_decay),
                           lr_step=int(lr_step), dtype=_dtype_name(dtype), device=None if device is None else str(device),
                           objective=objective)
    _check_config(config)
    if shards is not None:
        return _sweep_shards(features, [config.gamma], config, shards, on_step, should_stop)[config.gamma]
    F = _prepare(features, dtype, device)
    w, histories, stopped = _optimise_batch(F, [config.gamma], config, on_step, should_stop)
    return _results(F, w, histories, stopped, [config])[0]


def _check_config(config: WeightsConfig) -> None:
    if not 0.0 <= config.gamma <= 1.0:
        raise ValueError(f"gamma must be between 0 and 1; got {config.gamma}")
    if config.steps < 1:
        raise ValueError(f"steps must be at least 1; got {config.steps}")
    if not config.lr > 0 or config.lr_step < 1 or not config.lr_decay > 0:
        raise ValueError("lr and lr_decay must be > 0 and lr_step ≥ 1")
    if config.objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}; got {config.objective!r}")


# ----------------------------------------------------------------------------- γ sweeps + cache

def features_fingerprint(features) -> str:
    return fingerprint_arrays(_to_numpy(features) if _is_tensor(features) else np.asarray(features))


def cache_key(fingerprint: str, config: WeightsConfig) -> str:
    settings = {k: v for k, v in asdict(config).items() if k != "device"}  # device does not change p
    if settings["objective"] == "paper":  # entries made before there was a choice stay valid
        del settings["objective"]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return f"{fingerprint}-g{config.gamma:.4f}-{digest}"


_HISTORY = ("step", "vs", "entropy", "ess", "lr")  # the columns of WeightsResult.history
_ENTRY = ("p", "log_weights", "vs_uniform", "vs_final", *(f"history_{k}" for k in _HISTORY))


def _entry(result: WeightsResult) -> dict[str, np.ndarray]:
    """A finished result as the plain arrays of a cache entry; its config is in the key."""
    columns = {f"history_{k}": np.array([row[k] for row in result.history]) for k in _HISTORY}
    return {"p": result.p, "log_weights": result.log_weights, "vs_uniform": np.float64(result.vs_uniform),
            "vs_final": np.float64(result.vs_final), **columns}


def _from_entry(arrays: dict[str, np.ndarray] | None, config: WeightsConfig) -> WeightsResult | None:
    """The result a cache entry holds, or None when there is none (or it is of another layout)."""
    if arrays is None or set(arrays) != set(_ENTRY):
        return None
    columns = [arrays[f"history_{k}"].tolist() for k in _HISTORY]
    history = [dict(zip(_HISTORY, row)) for row in zip(*columns)]
    return WeightsResult(p=arrays["p"], log_weights=arrays["log_weights"], history=history, config=config,
                         vs_uniform=float(arrays["vs_uniform"]), vs_final=float(arrays["vs_final"]),
                         extra={"cache_hit": True})


def sweep_gamma(features, gammas, cache_dir=None, steps: int = 100, lr: float = 0.1, lr_decay: float = 0.99,
                lr_step: int = 5, device=None, dtype="float64", on_step=None, should_stop=None,
                shards=None, objective: str = "paper") -> dict[float, WeightsResult]:
    """Diversity weights for several γ, computed together in one batched run; results are cached
    on disk (cache_dir, `core.data.cache.ArrayCache` .npz entries) under a fingerprint of the features
    and the config, so repeats are instant (extra={"cache_hit": True}); a damaged entry is recomputed.
    shards: sharded rows as in `optimise_weights` (then no cache: no rank sees the whole set)."""
    config = WeightsConfig(steps=int(steps), lr=float(lr), lr_decay=float(lr_decay), lr_step=int(lr_step),
                           dtype=_dtype_name(dtype), device=None if device is None else str(device), objective=objective)
    if shards is not None:
        if cache_dir is not None:
            raise ValueError("cache_dir cannot be used with shards: no rank holds the whole feature set")
        return _sweep_shards(features, gammas, config, shards, on_step, should_stop)
    return sweep(features, gammas, config, cache_dir, on_step, should_stop)


def _sweep_shards(features, gammas, config: WeightsConfig, shards, on_step, should_stop) -> dict[float, WeightsResult]:
    """The batched run on one rank's rows: `shards` prepares them (the rank reduction over all ranks)
    and completes every sum over items; results carry this rank's rows and shards.layout in extra."""
    configs = _configs(gammas, config)
    F = shards.prepare(features, config.dtype, config.device)
    w, histories, stopped = _optimise_batch(F, list(configs), config, on_step, should_stop, shards)
    results = _results(F, w, histories, stopped, list(configs.values()), shards)
    for result in results:
        result.extra.update(shards.layout)
    return dict(zip(configs, results))


def sweep(features, gammas, config: WeightsConfig, cache_dir=None, on_step=None,
          should_stop=None) -> dict[float, WeightsResult]:
    """`sweep_gamma` with the settings as one WeightsConfig (its γ is replaced by each of `gammas`)."""
    configs = _configs(gammas, config)
    results = cached_results(features, gammas, config, cache_dir)
    todo = [g for g in configs if g not in results]
    if todo:
        F = _prepare(features, config.dtype, config.device)
        w, histories, stopped = _optimise_batch(F, todo, configs[todo[0]], on_step, should_stop)
        cache = None if cache_dir is None else ArrayCache(cache_dir, ".npz")
        fingerprint = None if cache is None else features_fingerprint(features)
        for g, result in zip(todo, _results(F, w, histories, stopped, [configs[g] for g in todo])):
            results[g] = result
            if cache is not None and not stopped:
                cache.store(cache_key(fingerprint, configs[g]), _entry(result), {"config": asdict(result.config)})
    return {g: results[g] for g in configs}


def cached_results(features, gammas, config: WeightsConfig, cache_dir=None) -> dict[float, WeightsResult]:
    """The results of `gammas` already in the cache (nothing is computed)."""
    configs = _configs(gammas, config)
    if cache_dir is None:
        return {}
    cache, fingerprint, found = ArrayCache(cache_dir, ".npz"), features_fingerprint(features), {}
    for g, each in configs.items():
        cached = _from_entry(cache.load(cache_key(fingerprint, each)), each)
        if cached is not None:
            found[g] = cached
    return found


def _configs(gammas, config: WeightsConfig) -> dict[float, WeightsConfig]:
    configs = {float(g): replace(config, gamma=float(g)) for g in dict.fromkeys(gammas)}
    for each in configs.values():
        _check_config(each)
    return configs
