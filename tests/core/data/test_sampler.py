"""DiversityWeightedSampler and the device draw: the distribution is p (chi-square), under DDP the
ranks' shares of one stream (2 real ranks: torchrun, gloo on loopback), past torch.multinomial's 2²⁴.

This file is also the ranks' program: `torchrun ... test_sampler.py OUT_DIR` (see `worker`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

ROOT = Path(__file__).resolve().parents[3]
# unequal mass, zeros included: a shard-and-renormalise sampler would get this wrong
P = np.array([0.0, 0.3, 0.05, 0.05, 0.0, 0.2, 0.1, 0.1, 0.15, 0.05])


def assert_follows(indices, p, alpha=1e-4):
    """The draws' frequencies agree with p (chi-square over the items with p > 0; none outside them)."""
    counts = np.bincount(np.asarray(indices), minlength=len(p))
    assert counts[p == 0].sum() == 0
    keep = p > 0
    assert chisquare(counts[keep], p[keep] / p[keep].sum() * counts.sum()).pvalue > alpha


# ---------------------------------------------------------------------------- the ranks' program

def worker(out_dir: Path) -> None:
    import torch.distributed as dist
    from torch.utils.data import DataLoader

    from core.data.sampler import DiversityWeightedSampler

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    try:
        found = {}
        sampler = DiversityWeightedSampler(P, num_samples=40_000, seed=3)  # replicas and rank from the group
        found["meta"] = np.array([sampler.num_replicas, sampler.rank, len(sampler)])
        found["epoch0"] = np.array(list(sampler))
        found["again0"] = np.array(list(DiversityWeightedSampler(P, num_samples=40_000, seed=3)))
        sampler.set_epoch(1)
        found["epoch1"] = np.array(list(sampler))
        loader = DataLoader(list(range(len(P))), batch_size=64, sampler=sampler)  # plain DataLoader, epoch 1
        found["loader1"] = torch.cat(list(loader)).numpy()
        n = 1000
        weights = np.random.default_rng(0).random(n) ** 3
        found["noreplace"] = np.array(list(DiversityWeightedSampler(weights, num_samples=n, replacement=False)))
        found["snippet"] = snippet_indices(weights, out_dir / f"rank{rank}")
        np.savez(out_dir / f"rank{rank}.npz", **found)
    finally:
        dist.destroy_process_group()


def snippet_indices(weights, folder: Path) -> np.ndarray:
    """The Export tab's snippet, run as pasted: the indices its loader yields in one epoch."""
    from core.diversity.export import sampler_snippet

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "weights.npy"  # one file per rank: a rank reading while another rewrites it sees a short file
    np.save(path, weights / weights.sum())
    namespace = {"dataset": torch.utils.data.TensorDataset(torch.arange(len(weights)))}
    exec(compile(sampler_snippet(str(path), batch_size=50), "snippet", "exec"), namespace)
    return torch.cat([batch[0] for batch in namespace["loader"]]).numpy()


# ---------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    from tests.core.diversity.test_distributed import torchrun

    out = tmp_path_factory.mktemp("sampler")
    done = torchrun([__file__, out])
    assert done.returncode == 0, done.stderr[-3000:]
    return [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)]


@pytest.mark.slow
def test_two_ranks_share_one_stream_whose_union_follows_p(ranks):
    for rank, each in enumerate(ranks):
        assert each["meta"].tolist() == [2, rank, 20_000]
    union = np.concatenate([each["epoch0"] for each in ranks])
    assert_follows(union, P)
    # the union is exactly the one-replica stream of the same seed: nothing renormalised per rank
    from core.data.sampler import DiversityWeightedSampler

    single = np.array(list(DiversityWeightedSampler(P, num_samples=40_000, seed=3, num_replicas=1, rank=0)))
    np.testing.assert_array_equal(ranks[0]["epoch0"], single[0::2])
    np.testing.assert_array_equal(ranks[1]["epoch0"], single[1::2])


@pytest.mark.slow
def test_set_epoch_changes_the_stream_and_the_seed_reproduces_it(ranks):
    for each in ranks:
        np.testing.assert_array_equal(each["epoch0"], each["again0"])
        assert not np.array_equal(each["epoch0"], each["epoch1"])
        np.testing.assert_array_equal(each["loader1"], each["epoch1"])  # through a DataLoader unchanged
    assert not np.array_equal(ranks[0]["epoch0"], ranks[1]["epoch0"])


@pytest.mark.slow
def test_the_export_snippet_takes_each_ranks_share_under_ddp(ranks):
    from core.data.sampler import DiversityWeightedSampler

    weights = np.random.default_rng(0).random(1000) ** 3
    stream = np.array(list(DiversityWeightedSampler(weights, num_samples=1000, seed=0, num_replicas=1, rank=0)))
    for rank, each in enumerate(ranks):
        np.testing.assert_array_equal(each["snippet"], stream[rank::2])  # 500 a rank: 10 batches of 50


@pytest.mark.slow
def test_without_replacement_the_ranks_are_disjoint(ranks):
    a, b = ranks[0]["noreplace"], ranks[1]["noreplace"]
    assert len(a) == len(b) == 500
    assert len(set(a.tolist()) | set(b.tolist())) == 1000  # disjoint, and together every item once


def test_one_replica_behaves_like_weighted_random_sampler():
    from core.data.sampler import DiversityWeightedSampler

    sampler = DiversityWeightedSampler(P * 7.0, num_samples=50_000)  # weights need not sum to 1
    assert len(sampler) == 50_000 and (sampler.num_replicas, sampler.rank) == (1, 0)
    assert_follows(list(sampler), P)
    torch_counts = np.bincount(list(torch.utils.data.WeightedRandomSampler(P, 50_000)), minlength=len(P))
    ours = np.bincount(list(sampler), minlength=len(P))
    assert chisquare(ours[P > 0], torch_counts[P > 0] / torch_counts.sum() * ours.sum()).pvalue > 1e-4


def test_without_replacement_order_follows_sequential_weighted_draws():
    """The first draw of the exponential race is a draw by p; all draws are distinct."""
    from core.data.sampler import DiversityWeightedSampler

    firsts = []
    for epoch in range(4000):
        sampler = DiversityWeightedSampler(P, replacement=False, seed=11)
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert len(order) == len(set(order)) == int((P > 0).sum())
        firsts.append(order[0])
    assert_follows(firsts, P)


def test_drop_last_and_padding_lengths():
    from core.data.sampler import DiversityWeightedSampler

    assert len(DiversityWeightedSampler(P, num_samples=11, num_replicas=3, rank=2)) == 4
    assert len(DiversityWeightedSampler(P, num_samples=11, num_replicas=3, rank=2, drop_last=True)) == 3
    shares = [list(DiversityWeightedSampler(P, replacement=False, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(s) for s in shares] == [3, 3, 3] and len(set(sum(shares, []))) == 8  # 9 slots, 8 items: one wraps


@pytest.mark.parametrize("kwargs, message", [
    ({"p": [[0.5, 0.5]]}, "vector"), ({"p": []}, "vector"), ({"p": [0.5, -0.1]}, "non-negative"),
    ({"p": [0.0, 0.0]}, "no positive"), ({"p": [1.0, float("nan")]}, "finite"),
    ({"p": [0.5, 0.5], "num_samples": 0}, "between 1 and"),
    ({"p": [0.5, 0.5], "num_samples": 2**70}, "between 1 and"),  # len() could not hold it: refused up front
    ({"p": [0.0, 1.0], "replacement": False, "num_samples": 2}, "at most 1"),
    ({"p": [0.5, 0.5], "num_replicas": 2, "rank": 2}, "rank"),
    ({"p": [0.5, 0.5], "num_samples": 1, "num_replicas": 2, "rank": 0, "drop_last": True}, "none per rank"),
])
def test_bad_arguments_are_refused(kwargs, message):
    from core.data.sampler import DiversityWeightedSampler

    with pytest.raises(ValueError, match=message):
        DiversityWeightedSampler(**kwargs)


@pytest.mark.parametrize("p", [[1e308, 1e308], [1e308, 0.0, 1e308, 1e308], [1e-320, 2e-320]])
def test_weights_near_the_ends_of_float64_draw_only_valid_indices(p):
    """A cumulative sum of weights near 1e308 overflows to inf (then cdf = [0, nan] and every draw was
    index n); subnormal weights lose their ratios. Both are scaled by the largest weight first."""
    from core.data.sampler import DiversityWeightedSampler, draw_indices, index_table

    scaled = np.asarray(p) / max(p)
    expected = scaled / scaled.sum()
    drawn = np.array(list(DiversityWeightedSampler(p, num_samples=20_000)))
    assert drawn.min() >= 0 and drawn.max() < len(p)
    assert_follows(drawn, expected)
    table = index_table(p)
    assert torch.isfinite(table.cdf).all() and table.cdf[-1] == 1.0
    assert_follows(draw_indices(table, 20_000, torch.Generator().manual_seed(1)).numpy(), expected)


def test_past_two_to_the_24_items_where_multinomial_stops():
    from core.data.sampler import DiversityWeightedSampler, draw_indices, index_table

    n = (1 << 24) + 8
    p = np.full(n, 0.5 / (n - 1))
    p[-1] = 0.5  # half the mass on the last item, past multinomial's range
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.as_tensor(p), 10, replacement=True)
    drawn = np.array(list(DiversityWeightedSampler(p, num_samples=20_000)))
    assert drawn.max() < n and abs((drawn == n - 1).mean() - 0.5) < 0.02
    assert 0.48 < (draw_indices(index_table(p), 20_000) == n - 1).double().mean().item() < 0.52


def test_draw_indices_follows_p_and_is_reproducible():
    from core.data.sampler import draw_indices, index_table

    table = index_table(P)
    first = draw_indices(table, 50_000, torch.Generator().manual_seed(5))
    assert first.dtype == torch.int64 and first.shape == (50_000,)
    assert torch.equal(first, draw_indices(table, 50_000, torch.Generator().manual_seed(5)))
    assert_follows(first.numpy(), P)


@pytest.mark.gpu
def test_draw_indices_on_the_gpu_needs_no_host_sync():
    from core.data.sampler import draw_indices, index_table

    table = index_table(P, "cuda")
    generator = torch.Generator("cuda").manual_seed(0)
    draw_indices(table, 8, generator)  # warm-up (kernel loading may sync)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        drawn = draw_indices(table, 100_000, generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert drawn.device.type == "cuda"
    assert_follows(drawn.cpu().numpy(), P)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    worker(Path(sys.argv[1]))
