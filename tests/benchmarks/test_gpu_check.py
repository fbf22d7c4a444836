"""benchmarks/gpu_check.sh: what it runs on a GPU machine, and that without one it refuses loudly."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args, out: Path):
    return subprocess.run(["bash", "benchmarks/gpu_check.sh", *args], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "OUT": str(out)}, timeout=120)


def test_dry_run_lists_every_cuda_step(tmp_path):
    result = run("--dry-run", "--study", out=tmp_path)
    assert result.returncode == 0, result.stderr
    steps = [line.split("]")[0].strip("[") for line in result.stdout.splitlines()]
    assert steps == ["gpu_tests", "bench_weights", "bench_embed", "bench_train", "bench_metrics", "study"]
    assert "-m pytest -m gpu" in result.stdout and result.stdout.count("--device cuda") == 5
    assert f"{tmp_path}/bench_metrics.txt" in result.stdout


def test_without_a_gpu_it_refuses_to_start(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the real check would run")
    result = run(out=tmp_path)
    assert result.returncode != 0 and "no CUDA GPU" in result.stderr + result.stdout
    assert not (tmp_path / "gpu_tests.txt").exists()
