"""The shared cache of prepared datasets: one copy per key, bounded by bytes, one computation per key."""

import gc
import threading

import numpy as np
import pytest

from core.data.dataset import make_dataset
from core.data.datasets import DatasetSpec
from core.data.embed import EmbedConfig
from core.data.memo import PreparedMemo, prepared_bytes
from core.jobs import JobStopped
from core.results import Prepared
from core.workbench import Workbench

PIXELS = EmbedConfig.parse("pixels")


def _prepared(seed: int, n: int = 50) -> Prepared:
    """A Prepared of n 4×4 images and (n, 16) features: n·16 + n·64 bytes."""
    images = np.random.default_rng(seed).integers(0, 255, (n, 4, 4, 1), dtype=np.uint8)
    dataset = make_dataset(f"toy{seed}", images, None, None, [str(i) for i in range(n)], "toy")
    features = images.reshape(n, -1).astype(np.float32)
    return Prepared(DatasetSpec(f"toy{seed}"), dataset, features, PIXELS, False)


class Maker:
    """make() for one key, counting its calls."""

    def __init__(self, seed: int):
        self.seed, self.calls = seed, 0

    def __call__(self) -> Prepared:
        self.calls += 1
        return _prepared(self.seed)


def test_two_sessions_preparing_one_spec_share_read_only_arrays(data_root):
    wb = Workbench(data_root)
    spec = DatasetSpec("digits", (0, 1), 20)
    first, second = wb.prepare(spec, PIXELS), wb.prepare(spec, PIXELS)
    assert second.features is first.features and second.dataset is first.dataset and second.cache_hit
    for array in (first.features, first.dataset.images, first.dataset.labels):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0] = 0
    assert wb.prepare(DatasetSpec("digits", (0, 1), 20, seed=1), PIXELS).features is not first.features
    assert wb.prepare(spec, EmbedConfig.parse("pixels", image_size=4)).features is not first.features


def test_the_command_line_and_folders_are_not_shared(data_root):
    spec = DatasetSpec("digits", (0, 1), 20)
    cli = Workbench(data_root, confine=False)
    assert cli.shared is None and cli.prepare(spec, PIXELS).features is not cli.prepare(spec, PIXELS).features
    folder = data_root / "mine"
    folder.mkdir()
    np.save(folder / "x.npy", np.zeros((3, 4, 4), np.uint8))
    wb = Workbench(data_root)
    assert wb._shared_key(DatasetSpec("mine"), PIXELS) is None  # its files may change between loads
    assert wb._shared_key(DatasetSpec("uploads/0a1b/x.zip"), PIXELS) is not None  # content-addressed


def test_past_the_cap_the_least_recently_used_entry_goes():
    size = prepared_bytes(_prepared(0))
    memo = PreparedMemo(max_bytes=2 * size)
    makers = [Maker(seed) for seed in range(3)]
    memo.get(0, makers[0])
    memo.get(1, makers[1])
    memo.get(0, makers[0])  # 0 is now the most recent
    memo.get(2, makers[2])  # over the cap: 1, the least recently used, is dropped
    gc.collect()
    assert memo.held_bytes == 2 * size and len(memo) == 2
    memo.get(0, makers[0])
    memo.get(2, makers[2])
    assert [m.calls for m in makers] == [1, 1, 1]
    memo.get(1, makers[1])
    assert makers[1].calls == 2 and memo.held_bytes <= memo.max_bytes


def test_an_entry_a_session_still_holds_is_shared_after_eviction_and_freed_after_it():
    size = prepared_bytes(_prepared(0))
    memo = PreparedMemo(max_bytes=size)
    maker = Maker(0)
    held = memo.get("a", maker)  # a session keeps this
    memo.get("b", Maker(1))  # evicts "a" from the cache
    gc.collect()
    assert memo.held_bytes == size and memo.live_bytes == 2 * size
    again = memo.get("a", maker)
    assert again.features is held.features and maker.calls == 1  # found through the session's copy
    del held, again
    gc.collect()
    assert memo.live_bytes == size  # only what the cache keeps
    memo.get("a", maker)
    assert maker.calls == 2


def test_an_entry_larger_than_the_cap_is_handed_out_but_not_kept():
    memo = PreparedMemo(max_bytes=10)
    ready = memo.get("big", Maker(0))
    assert ready.features.shape == (50, 16) and memo.held_bytes == 0 and len(memo) == 0


def test_concurrent_requests_for_one_key_compute_it_once():
    memo, n = PreparedMemo(max_bytes=1 << 20), 6
    arrived, calls, results = threading.Semaphore(0), [], []

    def make():
        calls.append(1)
        for _ in range(n - 1):  # the others are on their way in while this computes
            arrived.acquire(timeout=30)
        return _prepared(0)

    def visitor():
        arrived.release()
        results.append(memo.get("k", make))

    threads = [threading.Thread(target=visitor) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(calls) == 1 and len(results) == n
    assert all(r.features is results[0].features for r in results)


def test_a_failed_maker_lets_the_next_request_make_it_and_a_stopped_waiter_stops():
    memo = PreparedMemo(max_bytes=1 << 20)

    def broken():
        raise ValueError("class 42 does not exist")

    with pytest.raises(ValueError):
        memo.get("k", broken)
    assert memo.get("k", Maker(0)).features.shape == (50, 16)

    started, finish = threading.Event(), threading.Event()

    def slow():
        started.set()
        finish.wait(30)
        return _prepared(1)

    maker = threading.Thread(target=lambda: memo.get("slow", slow))
    maker.start()
    assert started.wait(30)
    with pytest.raises(JobStopped):
        memo.get("slow", Maker(1), should_stop=lambda: True)
    finish.set()
    maker.join(30)

