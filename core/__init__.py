"""divweights: diversity weights (mode balancing) for generative models.

Installed, this package is `divweights` (`pip install divweights[...]`); in a checkout its folder is
`core/` and `divweights` names the same modules (core/_alias.py). Its own imports are relative.

The package face: `from divweights import vendi_score, optimise_weights, fid, Workbench, ...` works
whatever the layout underneath. Names resolve on first use (PEP 562), so `import divweights` loads
nothing heavy; torch, open_clip and umap are imported inside the functions that need them. The base
needs numpy and scipy only; a name that needs an extra says which (`pip install 'divweights[torch]'`).

  .diversity   the Vendi Score, diversity weights (Algorithm 1), baseline schemes, inspection, export
  .data        datasets, safe ingest, embeddings, map layouts, files under the data root
  .training    the GAN, the flow-matching model, their trainers, run folders and their execution
  .evaluation  metrics, evaluating runs, comparing them, the paper's study
  .workbench   the application layer the studio, the CLI and the study share
  .cli         the `divweights` command (`python -m core ...` in a checkout)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

if __name__ == "core":  # a checkout: `divweights` is another name of these very modules
    from ._alias import alias_package

    alias_package("divweights", __name__)

_FACE = {
    "vendi_score": ".diversity.vendi",
    "vendi_score_kernel": ".diversity.vendi",
    "optimise_weights": ".diversity.weights",
    "sweep_gamma": ".diversity.weights",
    "suggest_gamma": ".diversity.suggest",
    "WeightsConfig": ".diversity.weights",
    "WeightsResult": ".diversity.weights",
    "SchemeConfig": ".diversity.schemes",
    "scheme_weights": ".diversity.schemes",
    "compare_schemes": ".diversity.schemes",
    "fid": ".evaluation.metrics.fid",
    "weighted_fid": ".evaluation.metrics.fid",
    "kid": ".evaluation.metrics.kid",
    "precision_recall": ".evaluation.metrics.prc",
    "inception_score": ".evaluation.metrics.inception",
    "EvalConfig": ".evaluation.evaluate",
    "StudyConfig": ".evaluation.study_plan",
    "DatasetSpec": ".data.datasets",
    "load_dataset": ".data.datasets",
    "DiversityWeightedSampler": ".data.sampler",
    "EmbedConfig": ".data.embed",
    "TrainConfig": ".training.config",
    "Workbench": ".workbench",
}
__all__ = ["__version__", *_FACE]


# the extra that brings each optional dependency (pyproject.toml's [project.optional-dependencies])
EXTRAS = {"torch": "torch", "torchvision": "torch", "safetensors": "torch", "torchdiffeq": "train", "PIL": "train",
          "open_clip": "clip", "gradio": "studio", "plotly": "studio", "umap": "studio", "sklearn": "studio",
          "threadpoolctl": "torch", "huggingface_hub": "clip"}


def missing_extra(exc: ModuleNotFoundError, what: str) -> ImportError:
    """An ImportError that says which extra brings the missing module."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return exc
    return ImportError(f"{what} needs {top}: pip install 'divweights[{extra}]' (or 'divweights[all]')")


def __getattr__(name: str):
    if name not in _FACE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(_FACE[name], __name__), name)
    except ModuleNotFoundError as exc:
        raise missing_extra(exc, name) from exc
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
