"""What the workbench's operations return (core.workbench): plain records, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.dataset import Dataset
from .data.datasets import DatasetSpec
from .data.embed import EmbedConfig
from .diversity.inspect import ClassMass


@dataclass
class Prepared:
    """A dataset loaded and embedded: what every later operation works on."""

    spec: DatasetSpec
    dataset: Dataset
    features: np.ndarray  # (n, d) float32, rows L2-normalised
    embedder: EmbedConfig
    cache_hit: bool  # the features came from the embedding cache


@dataclass
class Inspection:
    """What a set of weights does to its dataset (the Inspect tab, `inspect`)."""

    top: np.ndarray  # (k,) indices of the most favoured examples, highest first
    bottom: np.ndarray  # (k,) indices of the least favoured examples, lowest first
    relative: np.ndarray  # (n,) n·p: 1.0 = the uniform share
    histogram: tuple[np.ndarray, np.ndarray]  # counts (bins,), log2 edges (bins + 1,) of n·p
    bin_members: list[str]  # per bin, its examples as index ranges ("3, 17, 200-220"): a bar selects them
    class_names: list[str] | None  # names of class_mass.classes, None without labels
    class_mass: ClassMass | None  # mass per class, uniform vs weighted
    summary: dict  # weight_summary(p, batch_size) + entropy, entropy_uniform


@dataclass
class MapLayout:
    """A 2-D map of (a fixed sample of) the embeddings."""

    indices: np.ndarray  # (m,) the examples drawn, a sample independent of the weights
    coords: np.ndarray  # (m, 2) float32; row j is example indices[j]
    method: str  # "umap" or "pca"
    note: str  # for people, e.g. why PCA is shown while UMAP compiles


@dataclass
class Coverage:
    """Generated samples of runs on one dataset, placed on the data's map (the Compare tab)."""

    real_xy: np.ndarray  # (n, 2) the training data on the map
    gen_xy: dict[str, np.ndarray]  # model label -> (m, 2) its samples on the same map
    method: str  # "UMAP" or "PCA"
    classes: list[str] | None  # class names, None without labels
    mass: dict[str, np.ndarray] | None  # "data", "target", each model -> share of mass per class
    nearest: list[tuple[str, np.ndarray, int]]  # (model, generated image, index of nearest training image)


@dataclass
class TrainerExport:
    """A folder of image files for another tool (core.diversity.export_formats)."""

    kind: str  # "imagefolder" (Hugging Face datasets), "kohya" or "resampled"
    folder: Path
    summary: str  # one paragraph: what was written, and how far repeats or draws are from p
    snippet: str  # how the tool reads it


@dataclass
class ExportFiles:
    csv: Path
    npy: Path
    json: Path
    snippet: str  # a PyTorch DataLoader snippet (DiversityWeightedSampler) reading the .npy
    note: str = ""  # for people: e.g. why the CSV has no neighbour columns
