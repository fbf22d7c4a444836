"""Write diversity weights where other tools can use them.

- `<stem>.csv`: index, id, label (the class name), label_id (its number), weight (n * p, 1.0 = uniform
  share), p (+ why-columns when features are given)
- `<stem>.npy`: p as float64 (n,), plus `<stem>.json`: dataset fingerprint, embedder, config, VS
- a copy-paste PyTorch snippet that reads the .npy into `divweights.DiversityWeightedSampler` (DDP-aware)
- small PNG thumbnails (for galleries) into a generated-files folder

Files are written atomically; an existing export with the same name is replaced only after the
new file is complete.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..data.storage import atomic_save_npy, atomic_write_bytes, atomic_write_json, atomic_write_text
from .inspect import effective_sample_size
from .vendi import check_probabilities

EXPORT_FORMAT_VERSION = 1


@dataclass
class ExportMeta:
    """What the JSON sidecar records about where the weights came from."""

    dataset_name: str
    dataset_fingerprint: str
    embedder: str
    config: dict[str, Any] = field(default_factory=dict)  # asdict(WeightsConfig)
    vs_uniform: float | None = None
    vs_weighted: float | None = None
    notes: list[str] = field(default_factory=list)  # e.g. which why-columns were left out and why


def weights_csv_text(p: np.ndarray, ids: Sequence[str], labels: np.ndarray | None,
                     extra: dict[str, Sequence[str]] | None = None, class_names: Sequence[str] | None = None) -> str:
    """CSV text with header index,id,label,label_id,weight,p (weight = n * p), then any `extra` columns
    (name -> n text values, e.g. `core.diversity.contribution.explanation_columns`).

    labels (n,): class ids; label is the id's name in class_names (the id itself where there is none),
    label_id the id; both empty without labels."""
    p = check_probabilities(p)
    if len(ids) != p.size:
        raise ValueError(f"{len(ids)} ids for {p.size} weights")
    extra = extra or {}
    if any(len(values) != p.size for values in extra.values()):
        raise ValueError(f"every extra CSV column needs {p.size} values")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "id", "label", "label_id", "weight", "p", *extra])
    for i, (item_id, prob) in enumerate(zip(ids, p)):
        label_id = "" if labels is None else int(labels[i])
        label = class_name(label_id, class_names)
        writer.writerow([i, item_id, label, label_id, f"{prob * p.size:.9g}", f"{prob:.12g}",
                         *(v[i] for v in extra.values())])
    return buffer.getvalue()


def class_name(label_id: int | str, class_names: Sequence[str] | None) -> str:
    """The name of a class id ("" for no label; the id itself when the names do not cover it)."""
    if label_id == "":
        return ""
    return str(class_names[label_id]) if class_names and 0 <= label_id < len(class_names) else str(label_id)


def sidecar(p: np.ndarray, meta: ExportMeta) -> dict[str, Any]:
    """The JSON document saved next to the .npy file."""
    p = check_probabilities(p)
    return {
        "format": "divweights-weights",
        "format_version": EXPORT_FORMAT_VERSION,
        "divweights_version": __version__,
        "n": int(p.size),
        "ess": effective_sample_size(p),
        **asdict(meta),
    }


def export_weights(
    p: np.ndarray,
    ids: Sequence[str],
    labels: np.ndarray | None,
    meta: ExportMeta,
    out_dir: str | Path,
    stem: str = "weights",
    extra_columns: dict[str, Sequence[str]] | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write `<stem>.csv` (plus `extra_columns`; labels named by class_names), `<stem>.npy` and `<stem>.json`
    into out_dir; return their paths."""
    p = check_probabilities(p)
    if not stem or "/" in stem or stem.startswith("."):
        raise ValueError(f"export name {stem!r} must be a plain file name")
    csv_text = weights_csv_text(p, ids, labels, extra_columns, class_names)  # validate everything before writing anything
    document = sidecar(p, meta)
    out_dir = Path(out_dir)
    return {
        "csv": atomic_write_text(out_dir / f"{stem}.csv", csv_text),
        "npy": atomic_save_npy(out_dir / f"{stem}.npy", p.astype(np.float64)),
        "json": atomic_write_json(out_dir / f"{stem}.json", document),
    }


def load_exported_weights(npy_path: str | Path) -> np.ndarray:
    """Read p back from an exported .npy (never unpickles)."""
    return check_probabilities(np.load(npy_path, allow_pickle=False))


def sampler_snippet(npy_name: str = "weights.npy", batch_size: int = 64) -> str:
    """Python code a user can paste into a PyTorch training script: one process or DDP alike."""
    return f'''import numpy as np
from torch.utils.data import DataLoader

from divweights import DiversityWeightedSampler  # pip install 'divweights[torch]': DDP-aware, any size

# Diversity weights exported by divweights: one probability per example, same order as your dataset.
p = np.load("{npy_name}", allow_pickle=False)
assert len(p) == len(dataset), "weights and dataset must list the same examples in the same order"

# Under DDP (torchrun) every rank draws the same global stream from (seed, epoch) and keeps its own
# share, so all ranks together sample exactly p; without a process group it is a plain weighted sampler.
sampler = DiversityWeightedSampler(
    p,
    num_samples=len(p),  # one "epoch" = n draws over all ranks
    replacement=True,  # the paper samples batches with replacement
    seed=0,  # the same on every rank
)
loader = DataLoader(dataset, batch_size={batch_size}, sampler=sampler, drop_last=True)

# for epoch in range(epochs):
#     sampler.set_epoch(epoch)  # a new stream every epoch, the same on every rank
#     for batch in loader: ...
# Lightning: Trainer(use_distributed_sampler=False), or it wraps this sampler in its own.
# One process without divweights installed: torch.utils.data.WeightedRandomSampler(
#     torch.as_tensor(p, dtype=torch.double), num_samples=len(p), replacement=True)  # up to 2**24 examples
'''


def write_thumbnails(
    images: np.ndarray, indices: Sequence[int], out_dir: str | Path, size: int = 96
) -> list[Path]:
    """Save images[indices] as PNGs (upscaled with nearest-neighbour to `size` px) into out_dir.

    images: (N, H, W, C) uint8. File names carry the index: `00042.png`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in indices:
        path = out_dir / f"{int(index):05d}.png"
        if not path.exists():
            image = thumbnail_image(images[int(index)], size)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths


def thumbnail_image(image: np.ndarray, size: int = 96):
    """(H, W, C) uint8 -> PIL image whose longer side is `size` (nearest for tiny images)."""
    from PIL import Image

    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    pil = Image.fromarray(array)
    scale = size / max(pil.size)
    new_size = (max(1, round(pil.size[0] * scale)), max(1, round(pil.size[1] * scale)))
    resample = Image.NEAREST if max(pil.size) < size else Image.BILINEAR
    return pil.resize(new_size, resample)
