"""`python -m core embed` and `datasets`: the user's own paths (relative: the current directory),
refusals in one line with nothing written. The studio (a confined workbench) refuses the same paths."""

import json
import zipfile

import numpy as np
import pytest

from core.cli import main
from core.data.datasets import DatasetSpec
from core.workbench import Workbench
from tests.core.data.test_ingest import grey, png_bytes


@pytest.fixture
def workdir(tmp_path, data_root, monkeypatch):
    """The user's own folder, outside the data root, as the current directory."""
    folder = tmp_path / "home" / "work"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    return folder


def unit_rows(features):
    return np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


def cats_zip(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(4):
            archive.writestr(f"cat{i}.png", png_bytes(grey(40 * i + 10, (8, 8))))
    return path


def test_embed_writes_features_labels_and_config(workdir, capsys):
    assert main(["embed", "digits", "--classes", "3,8", "--per-class", "20", "--model", "pixels",
                 "--out", "out/f.npy", "--labels-out", "out/l.npy"]) == 0
    features, labels = np.load(workdir / "out" / "f.npy"), np.load(workdir / "out" / "l.npy")
    assert features.shape == (40, 64) and unit_rows(features) and labels.tolist() == [3] * 20 + [8] * 20
    meta = json.loads((workdir / "out" / "f.json").read_text())
    assert meta["config"]["model"] == "pixels" and len(meta["ids"]) == 40
    assert "wrote" in capsys.readouterr().out


def test_embed_takes_an_archive_and_outputs_outside_the_data_root(workdir, tmp_path, data_root, capsys):
    archive = cats_zip(tmp_path / "home" / "Downloads" / "cats.zip")
    assert main(["embed", "../Downloads/cats.zip", "--model", "pixels", "--out", str(tmp_path / "feats.npy")]) == 0
    assert np.load(tmp_path / "feats.npy").shape == (4, 64)
    assert archive.exists() and any((data_root / "uploads").iterdir())  # extracted (checked) under the data root
    with pytest.raises(ValueError, match="outside the data root"):  # the studio refuses the same file
        Workbench(data_root).load(DatasetSpec(str(archive)))


def test_embed_refuses_to_overwrite(workdir, capsys):
    args = ["embed", "digits", "--model", "pixels", "--out", "f.npy"]
    assert main(args) == 0
    before = (workdir / "f.npy").read_bytes()
    assert main(["embed", "digits", "--model", "pixels", "--image-size", "4", "--out", "f.npy"]) == 2
    assert "--overwrite" in capsys.readouterr().err and (workdir / "f.npy").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0


@pytest.mark.parametrize("argv, message", [
    (("embed", "../elsewhere", "--model", "pixels", "--out", "f.npy"), "nor a file or folder on this machine"),
    (("embed", "digits", "--classes", "x", "--model", "pixels", "--out", "f.npy"), "--classes"),
    (("embed", "digits", "--classes", "0,1", "--per-class", "9999", "--model", "pixels", "--out", "f.npy"),
     "cannot draw"),
    (("embed", "digits", "--model", "pixels", "--out", "f.txt"), "must end in .npy"),
    (("embed", "nowhere", "--model", "pixels", "--out", "f.npy"), "not a built-in"),
    (("embed", "digits", "--model", "no-such-model", "--out", "f.npy"), "unknown open_clip model")])
def test_bad_input_exits_2_and_writes_nothing(workdir, data_root, capsys, argv, message):
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(workdir.rglob("*.npy")) == [] and list(data_root.rglob("*.npy")) == []


def test_embed_takes_the_studio_spelling_of_a_model(workdir, tiny_clip, capsys):
    spellings = {"flags": ["--model", tiny_clip, "--pretrained", "none"], "slash": ["--model", f"{tiny_clip}/none"],
                 "space": ["--model", f"{tiny_clip} none"]}
    for name, flags in spellings.items():
        assert main(["embed", "digits", "--classes", "0", "--per-class", "4", *flags, "--device", "cpu",
                     "--out", f"{name}.npy"]) == 0, capsys.readouterr().err
        assert json.loads((workdir / f"{name}.json").read_text())["config"]["pretrained"] == "none"
    np.testing.assert_array_equal(np.load(workdir / "flags.npy"), np.load(workdir / "slash.npy"))
    np.testing.assert_array_equal(np.load(workdir / "flags.npy"), np.load(workdir / "space.npy"))
    assert main(["embed", "digits", "--model", f"{tiny_clip}/none", "--pretrained", "openai", "--out", "x.npy"]) == 2
    assert "give one" in capsys.readouterr().err and not (workdir / "x.npy").exists()


def test_missing_clip_weights_is_a_clear_error(workdir, capsys, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["embed", "digits", "--out", "f.npy"]) == 2
    assert "use --model pixels" in capsys.readouterr().err
    assert not (workdir / "f.npy").exists()


def test_datasets_lists_builtins_and_describes_a_source(workdir, capsys):
    assert main(["datasets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["digits", "mnist", "fashion-mnist"] and rows[0]["available"]
    np.save(workdir / "a.npy", np.zeros((3, 4, 4), np.uint8))
    assert main(["datasets", "a.npy"]) == 0
    assert "3 images of 4x4x1" in capsys.readouterr().out
