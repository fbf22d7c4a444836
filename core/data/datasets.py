"""Datasets: built-in sets (digits, MNIST, Fashion-MNIST), the paper's class pairs, user data.

A `Dataset` is one in-memory record: uint8 images (N, H, W, C), optional int64 labels and
class names, stable ids, a human description and a content fingerprint. User folders, zip
uploads and .npy/.npz arrays are read through `core.data.ingest`, which enforces the safe-ingest
rules; a path from the studio is confined to the data root by `core.data.storage.resolve_under`,
one from the command line is the user's own.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
from pathlib import Path

import numpy as np

from . import ingest, storage
from .dataset import Dataset, make_dataset
from .network import host_reachable

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {"images": "train-images-idx3-ubyte", "labels": "train-labels-idx1-ubyte"}
# where each IDX built-in is looked for, relative to the data root (torchvision's layout too)
IDX_SUBDIRS = {"mnist": ("mnist", "MNIST/raw"),
               "fashion-mnist": ("fashion-mnist", "FashionMNIST/raw")}
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
DESCRIPTIONS = {
    "digits": "scikit-learn handwritten digits: 1,797 8x8 grey images, 10 classes (bundled, offline)",
    "mnist": "MNIST training set: 60,000 28x28 grey handwritten digits, 10 classes",
    "fashion-mnist": "Fashion-MNIST training set: 60,000 28x28 grey clothing images, 10 classes",
}
BUILTINS = tuple(DESCRIPTIONS)


# ---------------------------------------------------------------------------- built-ins


@functools.lru_cache(maxsize=1)
def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0..16 grey levels -> 0..255 so every dataset shares the uint8 convention
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # (1797, 8, 8, 1)
    ids = [f"digits/{i:05d}" for i in range(len(images))]
    return _read_only(make_dataset("digits", images, bunch.target, MNIST_CLASSES, ids,
                                   DESCRIPTIONS["digits"]))


def _read_only(dataset: Dataset) -> Dataset:
    for array in (dataset.images, dataset.labels):
        if array is not None:
            array.setflags(write=False)
    return dataset


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def idx_candidates(name: str, data_root: Path) -> list[Path]:
    """Folders searched for a built-in's IDX files, in order."""
    folders = [data_root / sub for sub in IDX_SUBDIRS[name]]
    if name == "fashion-mnist":
        folders.append(DEBIAN_FASHION_DIR)
    return folders


def _locate_idx(name: str, data_root: Path) -> tuple[Path, Path] | None:
    for folder in idx_candidates(name, data_root):
        images = _find_idx_file(folder, IDX_FILES["images"])
        labels = _find_idx_file(folder, IDX_FILES["labels"])
        if images and labels:
            return images, labels
    return None


def read_idx(path: Path, max_bytes: int = 1 << 30) -> np.ndarray:
    """Parse one IDX file (optionally gzipped): big-endian header, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes or len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not a uint8 IDX file (or is larger than {max_bytes} bytes)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError(f"{path}: header declares {shape} but holds {len(data) - offset} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


@functools.lru_cache(maxsize=4)
def _idx_dataset(name: str, images_path: Path, labels_path: Path, _stamp: tuple) -> Dataset:
    images = read_idx(images_path)[..., None]  # (N, 28, 28, 1)
    labels = read_idx(labels_path).astype(np.int64)
    if len(labels) != len(images):
        raise ValueError(f"{images_path} has {len(images)} images but {labels_path} {len(labels)} labels")
    class_names = FASHION_CLASSES if name == "fashion-mnist" else MNIST_CLASSES
    ids = [f"{name}/train/{i:05d}" for i in range(len(images))]
    description = f"{DESCRIPTIONS[name]} (from {images_path.parent})"
    return _read_only(make_dataset(name, images, labels, class_names, ids, description))


def _stamp(*paths: Path) -> tuple:
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)


def _online(host: str = "ossci-datasets.s3.amazonaws.com", timeout: float = 2.0) -> bool:
    return host_reachable(host, timeout)


def _download_idx(name: str, data_root: Path) -> None:
    """torchvision download into <data_root>/{MNIST,FashionMNIST}/raw (only when online)."""
    import torchvision

    getattr(torchvision.datasets, TORCHVISION_CLASS[name])(root=str(data_root), train=True, download=True)


def _load_idx_builtin(name: str, data_root: Path, download: bool) -> Dataset:
    found = _locate_idx(name, data_root)
    if found is None and download and _online():
        _download_idx(name, data_root)
        found = _locate_idx(name, data_root)
    if found is None:
        raise FileNotFoundError(_missing_message(name, data_root))
    return _idx_dataset(name, *found, _stamp(*found))


def _missing_message(name: str, data_root: Path) -> str:
    where = ", ".join(str(p) for p in idx_candidates(name, data_root))
    files = f"{IDX_FILES['images']}[.gz] and {IDX_FILES['labels']}[.gz]"
    hint = "; or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
    return (f"{name} is not available here: looked for {files} in {where}; no download possible "
            f"(offline). Copy the IDX files into {data_root / IDX_SUBDIRS[name][0]}{hint}, "
            f"or use 'digits'.")


def list_builtins(data_root=None) -> list[dict]:
    """Each built-in with whether it is available here (no download attempted) and where."""
    root = Path(data_root) if data_root else storage.default_data_root()
    rows = [{"name": "digits", "available": True, "description": DESCRIPTIONS["digits"],
             "where": "scikit-learn (bundled)"}]
    for name in ("mnist", "fashion-mnist"):
        found = _locate_idx(name, root)
        where = str(found[0].parent) if found else "not found (" + ", ".join(
            str(p) for p in idx_candidates(name, root)) + ")"
        rows.append({"name": name, "available": found is not None,
                     "description": DESCRIPTIONS[name], "where": where})
    return rows


def load_builtin(name: str, data_root=None, download: bool = True) -> Dataset:
    """A built-in dataset by name; arrays are read-only and shared between callers."""
    root = Path(data_root) if data_root else storage.default_data_root()
    if name == "digits":
        base = _digits()
    elif name in IDX_SUBDIRS:
        base = _load_idx_builtin(name, root, download)
    else:
        raise ValueError(f"unknown built-in {name!r}; choose one of {', '.join(BUILTINS)}")
    return dataclasses.replace(base, ids=list(base.ids), skipped=[])  # callers get their own record


# ---------------------------------------------------------------------------- subsets


def class_pair(dataset: Dataset, classes, per_class: int | None = 3000, seed: int = 0) -> Dataset:
    """The paper's balanced class subset: `per_class` examples of each class in `classes`.

    One `np.random.default_rng(seed)` draws, class by class in the order given, `per_class`
    indices without replacement (sorted within the class), so the subset is identical on
    every machine. `per_class=None` keeps every example of those classes. Labels keep their
    original class indices (and names).
    """
    if dataset.labels is None:
        raise ValueError(f"{dataset.name} has no labels, so it cannot be split by class: leave the classes "
                         "and the number per class empty")
    classes = tuple(int(c) for c in classes)
    _check_classes(dataset, classes)
    rng = np.random.default_rng(seed)
    chosen = [_draw_class(dataset, c, per_class, rng) for c in classes]
    index = np.concatenate(chosen)
    return _subset(dataset, index, f"{dataset.name}[{'-'.join(map(str, classes))}"
                                   f"{'' if per_class is None else f',n={per_class}'},seed={seed}]")


def _check_classes(dataset: Dataset, classes: tuple[int, ...]) -> None:
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct and non-empty, got {classes}")
    n_classes = len(dataset.class_names) if dataset.class_names else int(dataset.labels.max()) + 1
    bad = [c for c in classes if not 0 <= c < n_classes]
    if bad:
        raise ValueError(f"classes {bad} do not exist in {dataset.name} (0..{n_classes - 1})")


def _draw_class(dataset: Dataset, label: int, per_class: int | None, rng) -> np.ndarray:
    members = np.flatnonzero(dataset.labels == label)
    if per_class is None:
        return members
    if not 0 < per_class <= len(members):
        raise ValueError(f"class {label} of {dataset.name} has {len(members)} examples; "
                         f"cannot draw {per_class} per class")
    return np.sort(rng.choice(members, size=per_class, replace=False))


def _subset(dataset: Dataset, index: np.ndarray, name: str) -> Dataset:
    features = None if dataset.features is None else dataset.features[index]
    return make_dataset(name, dataset.images[index], dataset.labels[index], dataset.class_names,
                        [dataset.ids[i] for i in index],
                        f"{dataset.description}; subset of {len(index)}", features)


def per_class_subset(dataset: Dataset, per_class: int, seed: int = 0) -> Dataset:
    """`per_class` examples of every class (the class-pair rule over all classes)."""
    classes = tuple(int(c) for c in np.unique(dataset.labels)) if dataset.labels is not None else ()
    return class_pair(dataset, classes, per_class, seed)


# ---------------------------------------------------------------------------- entry point


def load_dataset(source: str, data_root=None, classes=None, per_class: int | None = None,
                 seed: int = 0, subfolders_as_classes: bool = False, confine: bool = True) -> Dataset:
    """A built-in name ("digits", "mnist", "fashion-mnist") or a path.

    Paths may be a folder of images (recursive; `subfolders_as_classes` labels each image by
    its top-level subfolder), a .zip upload (checked, then extracted under
    <data_root>/uploads/), or a .npy/.npz array file; with `confine` (the studio) they must lie
    under the data root, without (the command line) anywhere. `classes`/`per_class`/`seed` select
    the paper's balanced class subset (see `class_pair`).
    """
    root = Path(data_root).expanduser().resolve() if data_root else storage.default_data_root()
    if source in BUILTINS:
        dataset = load_builtin(source, root)
    else:
        limits = None if confine else ingest.COMMAND_LINE_LIMITS  # the studio: the default IngestLimits
        dataset = ingest.load_path(source, root, subfolders_as_classes=subfolders_as_classes, limits=limits,
                                   confine=confine)
    if classes is not None:
        return class_pair(dataset, classes, per_class, seed)
    if per_class is not None:
        return per_class_subset(dataset, per_class, seed)
    return dataset


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Enough to rebuild a dataset anywhere (a training process, an evaluation, the study); saved
    in every run's config.json. `load` is the one place a spec becomes a load."""

    source: str  # built-in name, or a path (studio: relative to the data root; CLI: absolute)
    classes: tuple[int, ...] | None = None  # the paper's class subset, e.g. (0, 1); None = all
    per_class: int | None = None  # examples per class of the subset; None = all of each class
    seed: int = 0  # which subset is drawn
    subfolders_as_classes: bool = False  # folders and zips: label by top-level subfolder

    def __post_init__(self):
        if not str(self.source).strip():
            raise ValueError("choose a dataset: a built-in name or a path")
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(int(c) for c in self.classes) or None)
        if self.per_class is not None and int(self.per_class) < 1:
            raise ValueError(f"images per class must be at least 1 (got {self.per_class})")

    def load(self, data_root=None, confine: bool = True) -> Dataset:
        return load_dataset(self.source, data_root, classes=self.classes, per_class=self.per_class,
                            seed=self.seed, subfolders_as_classes=self.subfolders_as_classes, confine=confine)

    def load_saved(self, data_root=None) -> Dataset:
        """Rebuild the dataset of a saved spec (a run, an evaluation) in any process, whatever its
        working directory: a relative path was recorded by the studio and lies under the data root
        (confined, as it was loaded); an absolute one was the command line's own path."""
        relative = self.source not in BUILTINS and not Path(self.source).expanduser().is_absolute()
        return self.load(data_root, confine=relative)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"classes": None if self.classes is None else list(self.classes)}

    @classmethod
    def from_dict(cls, saved: dict) -> "DatasetSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in saved.items() if k in names}
        values["classes"] = tuple(values["classes"]) if values.get("classes") else None
        return cls(**values)
