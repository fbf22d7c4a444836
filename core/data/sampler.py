"""Drawing training examples by diversity weights: a Sampler for DataLoader / DDP, and a device draw.

`DiversityWeightedSampler` is `torch.utils.data.WeightedRandomSampler` that also works under
DistributedDataParallel: every rank draws the *same* global stream from (seed, epoch) and keeps every
num_replicas-th draw from position rank, so the union over ranks is one sample from p. (Splitting the
dataset into shards and renormalising p inside each would change p whenever shards carry unequal
mass.) Without a process group it is one replica: a plain weighted sampler.

Both draw by the inverse CDF: cdf = cumsum(p) in float64, divided by its last entry so that it ends
at exactly 1, and a draw is searchsorted(cdf, u, right=True) for u uniform in [0, 1). An item of
zero mass has cdf equal to its predecessor's and is never drawn; u < 1 = cdf[-1] keeps every index
in range. `torch.multinomial`, under WeightedRandomSampler, refuses more than 2²⁴ categories; this
has no limit but memory (the cdf is n float64). Without replacement the order of draws is the
exponential race: the smallest Eᵢ / pᵢ (Eᵢ ~ Exp(1)) first, which is exactly sequential weighted
drawing without replacement (Efraimidis & Spirakis 2006).

`index_table` + `draw_indices`: the same draw for a training loop that keeps its data on the GPU:
n indices in one kernel sequence, no host synchronisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

CHUNK = 1 << 16  # draws per rank generated at a time: memory stays O(CHUNK) however long the epoch
MAX_NUM_SAMPLES = 1 << 62  # draws per epoch: a rank's len() must fit a machine index (sys.maxsize)


@dataclass(frozen=True)
class IndexTable:
    """The inverse-CDF table of p on a device."""

    cdf: torch.Tensor  # (n,) float64, non-decreasing, cdf[-1] == 1.0 exactly


def sampling_weights(p) -> torch.Tensor:
    """p (n,): probabilities or any non-negative weights (array, list or tensor) -> float64 CPU tensor,
    checked: 1-D, non-empty, finite, non-negative, positive total; scaled so that its largest entry is 1
    (the draw only depends on ratios, and a cumulative sum of weights near 1e308 would overflow to inf)."""
    weights = torch.as_tensor(np.asarray(p.detach().cpu() if isinstance(p, torch.Tensor) else p, dtype=np.float64))
    if weights.ndim != 1 or weights.numel() == 0:
        raise ValueError(f"p must be a non-empty vector (n,), one weight per example; got shape {tuple(weights.shape)}")
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ValueError("p must be finite and non-negative")
    largest = float(weights.max())
    if not largest > 0:
        raise ValueError("p has no positive weight: nothing can be drawn")
    return weights / largest  # ≤ n in total: the cumulative sum stays finite


def index_table(p, device=None) -> IndexTable:
    """The draw table of p (n,) (probabilities or non-negative weights) on `device` (default CPU)."""
    cdf = torch.cumsum(sampling_weights(p), 0)
    cdf /= cdf[-1].clone()  # x / x == 1 exactly: the table ends at 1, so u < 1 never runs past it
    return IndexTable(cdf.to(device) if device is not None else cdf)


def draw_indices(table: IndexTable, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n indices (n,) int64 drawn with replacement by p, on the table's device; no host sync.
    generator: a torch.Generator on that device (None: torch's default one)."""
    u = torch.rand(n, generator=generator, device=table.cdf.device, dtype=torch.float64)
    return torch.searchsorted(table.cdf, u, right=True)


def exponential_race(weights: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The first k draws (k,) without replacement by weights (n,), k ≤ the number of positive weights:
    the k smallest Eᵢ / wᵢ, in order (w = 0 gives an infinite key: never among them)."""
    keys = torch.empty_like(weights).exponential_(generator=generator) / weights
    return torch.topk(keys, k, largest=False, sorted=True).indices


class DiversityWeightedSampler(Sampler[int]):
    """Indices drawn by p, one epoch at a time; under DDP each rank yields its share of one global stream.

    p: (n,) probabilities (or non-negative weights), in dataset order. num_samples: draws per epoch
    over all ranks (default n; without replacement, the number of items with p > 0). seed: the same
    on every rank; set_epoch(e) before each epoch gives a new stream (seed + e), as with
    DistributedSampler. num_replicas / rank: default from the initialised process group, else 1 / 0.
    drop_last=False: each rank gets ceil(num_samples / num_replicas) draws (the stream is that much
    longer); True: floor. Without replacement the ranks' indices are disjoint, unless ceil rounding
    asks for more draws than items with p > 0 (then the stream wraps, as DistributedSampler pads).
    """

    def __init__(self, p, num_samples: int | None = None, replacement: bool = True, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None, drop_last: bool = False):
        self.weights = sampling_weights(p)  # (n,) float64
        self.table = index_table(self.weights)
        self.n, self.positive = len(self.weights), int((self.weights > 0).sum())
        self.replacement, self.seed, self.epoch = bool(replacement), int(seed), 0
        self.num_replicas, self.rank = _replicas(num_replicas, rank)
        total = (self.n if replacement else self.positive) if num_samples is None else int(num_samples)
        if not 1 <= total <= MAX_NUM_SAMPLES:
            raise ValueError(f"num_samples must be between 1 and {MAX_NUM_SAMPLES:,} (2**62) draws per epoch; got {total:,}")
        if not replacement and total > self.positive:
            raise ValueError(f"without replacement at most {self.positive} examples (those with p > 0) can be "
                             f"drawn; num_samples is {total}")
        self.num_samples = total // self.num_replicas if drop_last else -(-total // self.num_replicas)  # per rank
        if self.num_samples < 1:
            raise ValueError(f"drop_last with {total} samples over {self.num_replicas} replicas leaves none per rank")
        self.total_size = self.num_samples * self.num_replicas  # the global stream's length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)  # the same stream on every rank
        if not self.replacement:
            yield from self._without_replacement(generator).tolist()
            return
        step = CHUNK * self.num_replicas  # a multiple of num_replicas: rank r keeps positions r, r + R, ...
        for start in range(0, self.total_size, step):
            u = torch.rand(min(step, self.total_size - start), generator=generator, dtype=torch.float64)
            yield from torch.searchsorted(self.table.cdf, u[self.rank:: self.num_replicas].contiguous(),
                                          right=True).tolist()

    def _without_replacement(self, generator) -> torch.Tensor:
        order = exponential_race(self.weights, min(self.total_size, self.positive), generator)
        if len(order) < self.total_size:  # ceil rounding past the items with mass: wrap, as DistributedSampler pads
            order = order.repeat(-(-self.total_size // len(order)))[: self.total_size]
        return order[self.rank:: self.num_replicas]


def _replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    import torch.distributed as dist

    grouped = dist.is_available() and dist.is_initialized()
    num_replicas = (dist.get_world_size() if grouped else 1) if num_replicas is None else int(num_replicas)
    rank = (dist.get_rank() if grouped else 0) if rank is None else int(rank)
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"rank must be in [0, num_replicas); got rank {rank} of {num_replicas}")
    return num_replicas, rank
