"""The installable distribution, as a user gets it: the wheel is built from this checkout, installed with
--no-deps into a fresh virtual environment outside it (that reuses this environment's dependencies), and
used from an empty folder: the `divweights` command, the sampler in a plain script, the `datasets` export."""

import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder of a fresh venv with the wheel installed, the wheel, an empty working folder)."""
    pytest.importorskip("build")
    base = tmp_path_factory.mktemp("package")
    dist = base / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)], check=True,
                   capture_output=True)
    wheel = next(dist.glob("divweights-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # numpy, torch, … of this env
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    work = base / "empty"
    work.mkdir()
    return venv / "bin", wheel, work


def run(bin_dir: Path, work: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DIVWEIGHTS_DATA_DIR")}
    env |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(work / ".hf"), "XDG_DATA_HOME": str(work / ".data")}
    return subprocess.run(list(args), cwd=work, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_installs_divweights_and_nothing_named_core(installed):
    _, wheel, _ = installed
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert "divweights" in tops and "divweights_ui" in tops and "core" not in tops
    assert any(name.startswith("divweights_ui/assets/studio.css") for name in zipfile.ZipFile(wheel).namelist())


def test_the_command_computes_weights_from_an_empty_folder(installed):
    bin_dir, _, work = installed
    np.save(work / "features.npy", np.random.default_rng(0).random((40, 6)))
    done = run(bin_dir, work, str(bin_dir / "divweights"), "weights", "features.npy", "--gamma", "0.7",
               "--objective", "scale-free", "--out", "p.npy")
    assert done.returncode == 0, done.stderr
    p = np.load(work / "p.npy")
    assert p.shape == (40,) and p.sum() == pytest.approx(1.0)
    assert run(bin_dir, work, str(bin_dir / "divweights"), "studio", "--help").returncode == 0


def test_a_plain_script_imports_the_library_and_its_sampler(installed):
    bin_dir, _, work = installed
    script = work / "train.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        from divweights import DiversityWeightedSampler, optimise_weights, vendi_score
        p = optimise_weights(np.random.default_rng(1).random((30, 5)), gamma=0.8).p
        sampler = DiversityWeightedSampler(p, num_samples=300, seed=0)
        drawn = list(sampler)
        assert len(drawn) == 300 and max(drawn) < 30 and "core" not in sys.modules
        print("ok", round(vendi_score(np.eye(3)), 6))
    """))
    done = run(bin_dir, work, str(bin_dir / "python"), "train.py")
    assert done.returncode == 0 and done.stdout.strip() == "ok 3.0", done.stderr


def test_the_datasets_export_loads_with_hugging_face_datasets(installed):
    pytest.importorskip("datasets")
    bin_dir, _, work = installed
    np.save(work / "w.npy", np.full(100, 0.01))
    done = run(bin_dir, work, str(bin_dir / "divweights"), "export", "digits", "--classes", "0,1", "--per-class", "50",
               "--weights", "w.npy", "--format", "imagefolder", "--out", "hf")
    assert done.returncode == 0, done.stderr
    script = 'from datasets import load_dataset; d = load_dataset("imagefolder", data_dir="hf", split="train"); ' \
             'print(len(d), sorted(d.column_names))'
    loaded = run(bin_dir, work, str(bin_dir / "python"), "-c", script)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("100 ") and "'p'" in loaded.stdout and "'weight'" in loaded.stdout
