"""divweights core: diversity weights (mode balancing) for generative models.

The package face: `from core import vendi_score, optimise_weights, fid, Workbench, ...` works
whatever the layout underneath. Names resolve on first use (PEP 562), so `import core` loads
nothing heavy; torch, open_clip and umap are imported inside the functions that need them.

  core.diversity   the Vendi Score, diversity weights (Algorithm 1), baseline schemes, inspection, export
  core.data        datasets, safe ingest, embeddings, map layouts, files under the data root
  core.training    the GAN, the flow-matching model, their trainers, run folders and their execution
  core.evaluation  metrics, evaluating runs, comparing them, the paper's study
  core.workbench   the application layer the studio, the CLI and the study share
  core.cli         `python -m core ...`
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_FACE = {
    "vendi_score": "core.diversity.vendi",
    "vendi_score_kernel": "core.diversity.vendi",
    "optimise_weights": "core.diversity.weights",
    "sweep_gamma": "core.diversity.weights",
    "suggest_gamma": "core.diversity.suggest",
    "WeightsConfig": "core.diversity.weights",
    "WeightsResult": "core.diversity.weights",
    "SchemeConfig": "core.diversity.schemes",
    "scheme_weights": "core.diversity.schemes",
    "compare_schemes": "core.diversity.schemes",
    "fid": "core.evaluation.metrics.fid",
    "weighted_fid": "core.evaluation.metrics.fid",
    "kid": "core.evaluation.metrics.kid",
    "precision_recall": "core.evaluation.metrics.prc",
    "inception_score": "core.evaluation.metrics.inception",
    "EvalConfig": "core.evaluation.evaluate",
    "StudyConfig": "core.evaluation.study_plan",
    "DatasetSpec": "core.data.datasets",
    "load_dataset": "core.data.datasets",
    "DiversityWeightedSampler": "core.data.sampler",
    "EmbedConfig": "core.data.embed",
    "TrainConfig": "core.training.config",
    "Workbench": "core.workbench",
}
__all__ = ["__version__", *_FACE]


def __getattr__(name: str):
    if name not in _FACE:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(_FACE[name]), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
