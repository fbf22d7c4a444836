"""Sharded Algorithm 1 on torch.distributed: 2 real ranks (torchrun, gloo on loopback) give the
one-process p to 1e-10 in float64; bad input on one shard and a killed rank end every rank with a
clear message and no output file.

This file is also the ranks' program: `torchrun ... test_distributed.py CASE OUT_DIR` runs CASE on
every rank (see `worker`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "tests" / "reference"


def torchrun(args, nproc: int = 2, timeout: float = 240, wait: bool = True):
    """`python -m torch.distributed.run --standalone --nproc-per-node N ARGS` on loopback, one thread
    a rank (2 shared cores); returns the CompletedProcess (or the Popen when wait=False)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",
           "PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def relative_error(p, p_ref):
    return np.max(np.abs(p - p_ref)) / np.max(np.abs(p_ref))


def fmnist_features():
    return np.load(REFERENCE / "fmnist01_1000_pixels.npy") / 255.0


def wide_features():
    """n = 40 < d = 64, rank 6: the one-process engine takes the n×n side, the sharded one the d×d side."""
    rng = np.random.default_rng(7)
    return rng.random((40, 6)) @ rng.random((6, 64))


SPLIT = {"fmnist": 400, "wide": 25}  # rank 0's rows: unequal shards, unequal probability mass


# ---------------------------------------------------------------------------- the ranks' program

def worker(case: str, out_dir: Path) -> None:
    import torch.distributed as dist

    from core.diversity.distributed import ShardError, ShardRows, gather_to_rank0
    from core.diversity.weights import optimise_weights, sweep_gamma

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    try:
        if case == "weights":
            X = fmnist_features()
            local = X[:SPLIT["fmnist"]] if rank == 0 else X[SPLIT["fmnist"]:]
            result = optimise_weights(local, gamma=0.8, shards=ShardRows())
            p = gather_to_rank0(result.p, ShardRows())
            X = wide_features()
            local = X[:SPLIT["wide"]] if rank == 0 else X[SPLIT["wide"]:]
            swept = sweep_gamma(local, [0.3, 1.0], steps=30, shards=ShardRows())
            wide = {g: gather_to_rank0(r.p, ShardRows()) for g, r in swept.items()}
            stops = iter(range(10**6))
            stopped = optimise_weights(local, gamma=0.5, steps=30, shards=ShardRows(),  # only rank 1 asks to stop
                                       should_stop=lambda: rank == 1 and next(stops) >= 4)
            np.savez(out_dir / f"rank{rank}.npz", p=p if p is not None else [], wide03=wide[0.3] if rank == 0 else [],
                     wide10=wide[1.0] if rank == 0 else [], local_p=result.p, offset=result.extra["offset"],
                     n_total=result.extra["n_total"], vs=[row["vs"] for row in result.history],
                     ess=[row["ess"] for row in result.history], vs_final=result.vs_final,
                     vs_uniform=result.vs_uniform, stopped=stopped.stopped, stopped_steps=len(stopped.history))
        elif case == "bad_shard":
            X = wide_features()
            local = X[:SPLIT["wide"]].copy() if rank == 0 else X[SPLIT["wide"]:].copy()
            if rank == 1:
                local[3, 5] = np.nan
            try:
                optimise_weights(local, gamma=0.8, steps=5, shards=ShardRows())
                message = "no error"
            except ShardError as exc:
                message = f"ShardError: {exc}"
            (out_dir / f"rank{rank}.txt").write_text(message)
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    done = torchrun([__file__, "weights", out])
    assert done.returncode == 0, done.stderr[-3000:]
    return [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)]


def one_thread_blas():
    """The one-process runs beside the ranks: BLAS with 2 threads on 2 shared cores is many times slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


@pytest.mark.slow
def test_two_ranks_equal_one_process_on_the_reference_set(two_ranks):
    from core.diversity.weights import optimise_weights

    with one_thread_blas():
        one = optimise_weights(fmnist_features(), gamma=0.8)
    p = two_ranks[0]["p"]
    assert p.shape == (1000,) and relative_error(p, one.p) <= 1e-10
    assert relative_error(p, np.load(REFERENCE / "fmnist01_1000_gamma0.8.npz")["p"]) < 1e-8  # the published vectors
    for rank, each in enumerate(two_ranks):  # each rank holds its own rows of the global p, and the global numbers
        offset = int(each["offset"])
        np.testing.assert_array_equal(each["local_p"], p[offset: offset + len(each["local_p"])])
        assert int(each["n_total"]) == 1000
        np.testing.assert_allclose(each["vs"], [row["vs"] for row in one.history], rtol=1e-10)
        np.testing.assert_allclose(each["ess"], [row["ess"] for row in one.history], rtol=1e-10)
        assert float(each["vs_final"]) == pytest.approx(one.vs_final, rel=1e-10)
        assert float(each["vs_uniform"]) == pytest.approx(one.vs_uniform, rel=1e-12)
    assert two_ranks[0]["local_p"].sum() != pytest.approx(0.4, abs=1e-3)  # the shards carry unequal mass


@pytest.mark.slow
def test_two_ranks_sweep_wide_rank_deficient_features(two_ranks):
    from core.diversity.weights import sweep_gamma

    with one_thread_blas():
        one = sweep_gamma(wide_features(), [0.3, 1.0], steps=30)
    assert relative_error(two_ranks[0]["wide03"], one[0.3].p) <= 1e-10
    assert relative_error(two_ranks[0]["wide10"], one[1.0].p) <= 1e-10


@pytest.mark.slow
def test_one_rank_asking_to_stop_stops_every_rank_at_the_same_step(two_ranks):
    for each in two_ranks:
        assert bool(each["stopped"]) and int(each["stopped_steps"]) == 4


@pytest.mark.slow
def test_bad_values_on_one_shard_raise_on_every_rank(tmp_path):
    done = torchrun([__file__, "bad_shard", tmp_path])
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):  # rank 0's rows are fine, and it still learns what went wrong and where
        message = (tmp_path / f"rank{rank}.txt").read_text()
        assert message.startswith("ShardError: rank 1:") and "NaN" in message


@pytest.fixture
def one_rank_group():
    """A real gloo process group of one rank in this process (no launcher needed)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_one_rank_group_equals_one_process_and_saves_atomically(one_rank_group, tmp_path):
    from core.diversity.distributed import ShardRows, save_gathered_npy
    from core.diversity.weights import optimise_weights

    X = np.random.default_rng(2).random((30, 8))
    result = optimise_weights(X, gamma=0.7, steps=20, shards=ShardRows())
    assert relative_error(result.p, optimise_weights(X, gamma=0.7, steps=20).p) <= 1e-12
    assert result.extra == {"rank": 0, "world_size": 1, "offset": 0, "n_local": 30, "n_total": 30}
    out = tmp_path / "sub" / "p.npy"
    assert save_gathered_npy(out, result.p, ShardRows()) == out
    np.testing.assert_array_equal(np.load(out), result.p)
    assert [path.name for path in out.parent.iterdir()] == ["p.npy"]  # no temp file left


def test_tensor_branch_of_the_sharded_engine(one_rank_group, monkeypatch):
    """nccl runs the sharded loop on CUDA tensors; drive that branch here with CPU tensors over gloo."""
    import torch

    from core.diversity import distributed, weights

    monkeypatch.setattr(distributed, "normalised_features",
                        lambda features, device, min_rows: weights._normalised_tensor(features, "cpu", min_rows))
    X = np.random.default_rng(5).random((25, 40))  # n < d: the sharded d×d side against the one-process n×n side
    rows = distributed.ShardRows()
    F = rows.prepare(X, "float64", None)
    assert isinstance(F, torch.Tensor) and F.shape == (25, 25)
    result = weights.optimise_weights(X, gamma=0.9, steps=15, shards=distributed.ShardRows())
    assert relative_error(result.p, weights.optimise_weights(X, gamma=0.9, steps=15).p) <= 1e-10


@pytest.mark.gpu
def test_nccl_group_on_the_gpu_equals_one_process():
    import torch
    import torch.distributed as dist

    from core.diversity.distributed import ShardRows, gather_to_rank0
    from core.diversity.weights import optimise_weights

    torch.cuda.set_device(0)
    dist.init_process_group("nccl", store=dist.HashStore(), rank=0, world_size=1)
    try:
        X = np.random.default_rng(6).random((300, 32))
        result = optimise_weights(torch.as_tensor(X, device="cuda"), gamma=0.8, steps=20, shards=ShardRows())
        p = gather_to_rank0(result.p, ShardRows())
    finally:
        dist.destroy_process_group()
    assert relative_error(p, optimise_weights(X, gamma=0.8, steps=20, device="cpu").p) <= 1e-10


def test_bad_input_in_a_group_is_one_clear_error(one_rank_group, tmp_path):
    from core.diversity.distributed import ShardError, ShardRows, save_gathered_npy
    from core.diversity.weights import optimise_weights, sweep_gamma

    with pytest.raises(ShardError, match="rank 0 \\(rows 0–1\\): .*all zero"):
        optimise_weights(np.array([[1.0, 2.0], [0.0, 0.0]]), steps=2, shards=ShardRows(label="rows 0–1"))
    with pytest.raises(ValueError, match="at least 2 items"):
        optimise_weights(np.ones((1, 3)), steps=2, shards=ShardRows())
    with pytest.raises(ValueError, match="cache_dir"):
        sweep_gamma(np.ones((3, 3)), [0.5], cache_dir=tmp_path, shards=ShardRows())
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(OSError, match="was not written"):
        save_gathered_npy(blocked / "p.npy", np.ones(3) / 3, ShardRows())  # its folder cannot exist


# ---------------------------------------------------------------------------- the command line

def cli_args(features, out, *extra):
    return ["-m", "core", "weights", features, "--gamma", "0.8", "--steps", "20", "--distributed",
            "--device", "cpu", "--out", out, *extra]


@pytest.fixture(scope="module")
def shard_files(tmp_path_factory):
    """fmnist's first 300 rows as one .npy and as three shard files of unequal length in a folder."""
    folder = tmp_path_factory.mktemp("shards")
    pixels = np.load(REFERENCE / "fmnist01_1000_pixels.npy")[:300]
    np.save(folder / "all.npy", pixels)
    (folder / "parts").mkdir()
    for name, rows in (("a", slice(0, 70)), ("b", slice(70, 260)), ("c", slice(260, 300))):
        np.save(folder / "parts" / f"{name}.npy", pixels[rows])
    return folder


@pytest.mark.slow
def test_cli_two_ranks_write_the_one_process_p(shard_files, tmp_path):
    from core.diversity.weights import optimise_weights

    with one_thread_blas():
        one = optimise_weights(np.load(shard_files / "all.npy"), gamma=0.8, steps=20).p
    done = torchrun(cli_args(shard_files / "parts", tmp_path / "p.npy"))  # a folder of 3 shards over 2 ranks
    assert done.returncode == 0, done.stderr[-3000:]
    p = np.load(tmp_path / "p.npy")
    assert p.dtype == np.float64 and relative_error(p, one) <= 1e-10
    assert done.stdout.count("step") == 1 and done.stdout.count("final VS") == 1  # rank 0 alone prints
    assert [path.name for path in tmp_path.iterdir()] == ["p.npy"]


@pytest.mark.slow
def test_cli_bad_shard_ends_every_rank_and_keeps_the_old_output(shard_files, tmp_path):
    bad = np.load(shard_files / "all.npy").astype(np.float64)
    bad[200, 7] = np.inf  # in rank 1's rows (150–299)
    np.save(tmp_path / "bad.npy", bad)
    out = tmp_path / "p.npy"
    np.save(out, np.array([0.5, 0.5]))
    done = torchrun(cli_args(tmp_path / "bad.npy", out))
    assert done.returncode != 0
    assert "error: rank 1 (rows 150–299): features contain NaN or infinite values" in done.stderr
    np.testing.assert_array_equal(np.load(out), [0.5, 0.5])  # untouched
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.npy", "p.npy"]


def test_a_zero_byte_shard_is_a_sentence(tmp_path):
    """numpy raises EOFError (not ValueError) on an empty file: it ended every rank with a traceback."""
    from core.cli.common import UserError
    from core.cli.distributed import open_shards

    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(UserError, match="empty.npy is not a readable numeric .npy array \\(the file is empty, 0 bytes\\)"):
        open_shards([tmp_path / "empty.npy"])


@pytest.mark.slow
def test_cli_zero_byte_shard_ends_every_rank_with_one_line(shard_files, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    np.save(folder / "a.npy", np.load(shard_files / "all.npy")[:100])
    (folder / "b.npy").write_bytes(b"")  # a copy that ran out of disk
    done = torchrun(cli_args(folder, tmp_path / "p.npy"))
    # the ranks end with exit 2 and one line (torchrun then prints its own ChildFailedError summary)
    assert done.returncode != 0 and "exitcode  : 2" in done.stderr
    assert "EOFError" not in done.stderr and "numpy/lib" not in done.stderr and "core/cli" not in done.stderr
    assert "error: rank 0: b.npy is not a readable numeric .npy array (the file is empty, 0 bytes)" in done.stderr
    assert not (tmp_path / "p.npy").exists()


def _rank_pids(launcher_pid: int) -> dict[int, int]:
    """{rank: pid} of torchrun's worker processes (from /proc: their RANK variable)."""
    found = {}
    for task in Path(f"/proc/{launcher_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            for item in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
                if item.startswith(b"RANK="):
                    found[int(item[5:])] = int(child)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path(f"/proc/self/task/{os.getpid()}/children").exists(), reason="finds the ranks through /proc")
def test_cli_killed_rank_ends_every_rank_with_no_output(shard_files, tmp_path):
    out = tmp_path / "p.npy"
    launcher = torchrun(cli_args(shard_files / "all.npy", out, "--steps", "1000000"), wait=False)
    try:
        for line in launcher.stdout:  # wait until the steps run
            if line.split()[:1] == ["10"]:
                break
        os.kill(_rank_pids(launcher.pid)[1], signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0
    assert "error: rank 0: lost contact with another rank" in stderr or "rank 0: stopped by the launcher" in stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_distributed_outside_torchrun_is_one_error_line(tmp_path, capsys, monkeypatch):
    from core.cli import main

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    np.save(tmp_path / "f.npy", np.ones((4, 3)))
    assert main(["weights", str(tmp_path / "f.npy"), "--distributed", "--out", str(tmp_path / "p.npy")]) == 2
    assert "runs under torchrun" in capsys.readouterr().err
    assert not (tmp_path / "p.npy").exists()


def test_shard_rows_need_a_process_group():
    from core.diversity.distributed import ShardRows

    with pytest.raises(ValueError, match="process group"):
        ShardRows()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    worker(sys.argv[1], Path(sys.argv[2]))
