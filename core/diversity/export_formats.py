"""Diversity weights into the tools people train with, each a folder of real image files.

- `write_imagefolder`: Hugging Face `datasets`' "imagefolder" layout: the images plus a `metadata.csv`
  whose `file_name` column names them and whose `weight` / `p` columns (and any why-columns) carry the
  weights: `datasets.load_dataset("imagefolder", data_dir=DIR)`.
- `write_kohya`: kohya sd-scripts (and LoRA trainers that read its config): integer repeats per image
  from p by largest-remainder rounding, one folder per repeat count, and a `dataset_config.toml` with
  one `[[datasets.subsets]]` per folder and its `num_repeats`.
- `write_resampled`: K draws by p with replacement as files (hard links where the filesystem allows,
  else copies) for any trainer that reads a folder (StyleGAN2-ADA, diffusers' imagefolder), with a
  manifest of which source each file came from.

Every writer builds its folder beside the target and renames it into place when complete, so an
existing export is never left half-replaced, and refuses a target that is not its own earlier export.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import __version__
from .vendi import check_probabilities

MARKER = ".divweights-export.json"  # names a folder as ours: only such a folder is ever replaced


@dataclass(frozen=True)
class Repeats:
    """Integer repeats per image and how far their draw shares are from p."""

    counts: np.ndarray  # (n,) int, sum == total
    total: int  # the number of draws one pass over the repeated images makes
    max_abs_error: float  # max_i |counts_i / total - p_i|
    total_variation: float  # ½ Σ_i |counts_i / total - p_i|

    @property
    def dropped(self) -> int:
        """Images with 0 repeats (p below half a draw): not in the export."""
        return int((self.counts == 0).sum())


def largest_remainder(p: np.ndarray, total: int) -> Repeats:
    """Round total·p to integers that sum to `total` (Hamilton's method: floors, then one more to the
    largest remainders). Each share counts_i/total is within 1/total of p_i."""
    p = check_probabilities(p)
    if int(total) < 1:
        raise ValueError(f"the total number of repeats must be at least 1 (got {total})")
    ideal = p * int(total)
    counts = np.floor(ideal).astype(np.int64)
    short = int(total) - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(ideal - counts), kind="stable")[:short]] += 1
    error = counts / int(total) - p
    return Repeats(counts, int(total), float(np.abs(error).max()), float(0.5 * np.abs(error).sum()))


# ---------------------------------------------------------------------------- the writers


def write_imagefolder(images: np.ndarray, ids: Sequence[str], p: np.ndarray, out_dir: str | os.PathLike,
                      labels: Sequence[str] | None = None,
                      extra_columns: dict[str, Sequence[str]] | None = None) -> Path:
    """images (n, H, W, C) uint8 -> out_dir/<index>.png + metadata.csv (file_name, id, label, weight = n·p,
    p, extra columns), loadable with `datasets.load_dataset("imagefolder", data_dir=out_dir)`."""
    p = _check(images, ids, p, labels)
    columns = {"id": list(ids), **({"label": list(labels)} if labels is not None else {}),
               "weight": [f"{v * p.size:.9g}" for v in p], "p": [f"{v:.12g}" for v in p], **(extra_columns or {})}
    if any(len(values) != p.size for values in columns.values()):
        raise ValueError(f"every metadata column needs {p.size} values")

    def fill(folder: Path) -> None:
        names = [f"{i:06d}.png" for i in range(p.size)]
        for name, image in zip(names, images):
            _save_png(image, folder / name)
        _write_csv(folder / "metadata.csv", {"file_name": names, **columns})

    return _build(out_dir, "imagefolder", fill, {"n": int(p.size)})


def write_kohya(images: np.ndarray, ids: Sequence[str], p: np.ndarray, out_dir: str | os.PathLike,
                total: int | None = None, name: str = "data", resolution: int | None = None) -> tuple[Path, Repeats]:
    """Folders `<repeats>_<name>/` of the images repeated that many times (largest-remainder rounding of
    total·p; default total = 4·n) and `dataset_config.toml` with one `[[datasets.subsets]]` per folder.
    Images whose share rounds to 0 are left out (counted in Repeats.dropped)."""
    p = _check(images, ids, p)
    repeats = largest_remainder(p, total if total is not None else 4 * p.size)
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40] or "data"
    side = resolution or max(images.shape[1:3])
    final = Path(out_dir).expanduser().resolve()  # image_dir is absolute: kohya resolves relative ones elsewhere

    def fill(folder: Path) -> None:
        subsets = []
        for count in sorted(set(repeats.counts[repeats.counts > 0].tolist())):
            sub = folder / f"{count}_{slug}"
            sub.mkdir()
            for index in np.flatnonzero(repeats.counts == count):
                _save_png(images[index], sub / f"{index:06d}.png")
            subsets.append((sub.name, count))
        lines = ["# kohya sd-scripts dataset config written by divweights: repeats ∝ diversity weights",
                 f"# {repeats.total} draws per pass; max |share - p| = {repeats.max_abs_error:.3g}, "
                 f"total variation = {repeats.total_variation:.3g}; {repeats.dropped} images with 0 repeats left out",
                 "[general]", "shuffle_caption = false", "caption_extension = \".txt\"", "",
                 "[[datasets]]", f"resolution = {int(side)}", "batch_size = 1", ""]
        for folder_name, count in subsets:
            lines += ["  [[datasets.subsets]]", f"  image_dir = {json.dumps(str(final / folder_name))}",
                      f"  num_repeats = {count}", ""]
        (folder / "dataset_config.toml").write_text("\n".join(lines), encoding="utf-8")
        _write_csv(folder / "repeats.csv", {"index": list(range(p.size)), "id": list(ids),
                                            "p": [f"{v:.12g}" for v in p], "repeats": repeats.counts.tolist()})

    path = _build(out_dir, "kohya", fill, {"total": repeats.total, "max_abs_error": repeats.max_abs_error,
                                           "total_variation": repeats.total_variation})
    return path, repeats


def write_resampled(images: np.ndarray, ids: Sequence[str], p: np.ndarray, out_dir: str | os.PathLike,
                    draws: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    """`draws` images drawn by p with replacement into out_dir/images/<draw>.png, each a hard link to
    its source's one PNG in out_dir/sources/ (a copy where links are refused), and manifest.csv
    (file_name, source_index, source_id). Returns (folder, the drawn source indices)."""
    p = _check(images, ids, p)
    if int(draws) < 1:
        raise ValueError(f"the number of draws must be at least 1 (got {draws})")
    drawn = np.random.default_rng(seed).choice(p.size, size=int(draws), replace=True, p=p)

    def fill(folder: Path) -> None:
        (folder / "sources").mkdir()
        (folder / "images").mkdir()
        sources = {}
        for index in np.unique(drawn):
            sources[int(index)] = _save_png(images[index], folder / "sources" / f"{index:06d}.png")
        names = [f"{j:07d}.png" for j in range(len(drawn))]
        for name, index in zip(names, drawn):
            _link_or_copy(sources[int(index)], folder / "images" / name)
        _write_csv(folder / "manifest.csv", {"file_name": [f"images/{n}" for n in names],
                                             "source_index": drawn.tolist(),
                                             "source_id": [ids[int(i)] for i in drawn]})

    return _build(out_dir, "resampled", fill, {"draws": int(draws), "seed": int(seed)}), drawn


# ---------------------------------------------------------------------------- helpers


def _check(images: np.ndarray, ids: Sequence[str], p: np.ndarray, labels=None) -> np.ndarray:
    p = check_probabilities(p)
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) != p.size or len(ids) != p.size:
        raise ValueError(f"expected {p.size} uint8 images (n, H, W, C) and ids, got {images.shape} {images.dtype} "
                         f"and {len(ids)} ids")
    if labels is not None and len(labels) != p.size:
        raise ValueError(f"{len(labels)} labels for {p.size} images")
    return p


def _save_png(image: np.ndarray, path: Path) -> Path:
    from PIL import Image

    array = image[:, :, 0] if image.shape[2] == 1 else image
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")
    return path


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed: a copy reads the same
        shutil.copyfile(source, target)


def _write_csv(path: Path, columns: dict[str, Sequence]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*columns.values()))
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _build(out_dir, kind: str, fill, facts: dict) -> Path:
    """Fill a staging folder beside out_dir, then swap it in: readers see the old export or the new one."""
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and not (out_dir / MARKER).is_file():
        if not out_dir.is_dir() or any(out_dir.iterdir()):
            raise ValueError(f"{out_dir} exists and is not a divweights export: choose a new or empty folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        fill(staging)
        (staging / MARKER).write_text(json.dumps({"format": kind, "divweights_version": __version__, **facts}))
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(staging, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


# ---------------------------------------------------------------------------- how each tool reads it

TRAINER_FORMATS = ("imagefolder", "kohya", "resampled")


def trainer_snippet(kind: str, folder: str | os.PathLike) -> str:
    """Copy-paste code (or a command) that reads an export of `kind` in its tool."""
    folder = str(folder)
    if kind == "imagefolder":
        return f'''import torch
from datasets import load_dataset
from torch.utils.data import DataLoader, WeightedRandomSampler

data = load_dataset("imagefolder", data_dir={folder!r}, split="train")  # image, id, label, weight, p, why-columns
p = torch.tensor(data["p"], dtype=torch.double)
sampler = WeightedRandomSampler(p, num_samples=len(p), replacement=True)  # drawn by the diversity weights
# (DDP or more than 2**24 images: divweights.DiversityWeightedSampler(p.numpy(), num_samples=len(p)))
loader = DataLoader(data.with_format("torch"), batch_size=64, sampler=sampler, drop_last=True)
'''
    if kind == "kohya":
        return f'''# kohya sd-scripts (LoRA / fine-tuning): the repeats in dataset_config.toml follow the diversity weights
accelerate launch train_network.py --dataset_config {os.path.join(folder, "dataset_config.toml")} \\
    --pretrained_model_name_or_path MODEL --output_dir OUT --network_module networks.lora ...
'''
    if kind == "resampled":
        return f'''# any trainer that reads a folder: point it at the drawn images (manifest.csv says where each came from)
python dataset_tool.py --source={os.path.join(folder, "images")} --dest=data.zip   # StyleGAN2-ADA
# diffusers: load_dataset("imagefolder", data_dir={os.path.join(folder, "images")!r})
'''
    raise ValueError(f"unknown export format {kind!r}; choose one of {', '.join(TRAINER_FORMATS)}")
