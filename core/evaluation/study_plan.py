"""What the paper's study consists of, without running it: its config, the names and places of
every subset, weights file and model, the resumable state file, and the rows read back from it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..data.storage import atomic_write_json
from ..diversity.schemes import SCHEMES
from .evaluate import METRICS, mean_ci
from ..training.config import MODELS

STATE_VERSION = 1


STATE_VERSION = 1


@dataclass
class StudyConfig:
    dataset: str = "mnist"  # built-in name or a labelled dataset path under the data root
    pairs: tuple[tuple[int, int], ...] = ((0, 1), (3, 8), (4, 9))  # the paper's class pairs
    seeds: int = 5  # seeds 0..seeds-1: each draws its own subset, weights and models
    gammas: tuple[float, ...] = (0.6, 0.8, 1.0)  # one DivW model per γ
    per_class: int | None = 3000  # examples per class in each subset (None: all of the class)
    embedder: str = "pixels"  # features for the weights and all metrics
    pretrained: str = "openai"  # open_clip weights tag (ignored for pixels)
    weight_steps: int = 100  # Algorithm 1 steps
    preset: str = "paper"  # training preset of core.training.trainer ("paper" or "quick")
    steps: int | None = None  # generator steps (None: the preset's)
    batch_size: int | None = None  # training batch (None: the preset's)
    device: str = "auto"  # training / embedding device
    n_samples: int = 10_000  # generated samples per model for evaluation
    kid_subsets: int = 100  # KID subsets
    kid_subset_size: int = 1000  # rows per KID subset
    target_gamma: float | None = None  # γ of the weights wFID measures against (None: the largest γ)
    model: str = "wgan-gp"  # model family trained for every weighting: "wgan-gp" or "flow"
    schemes: tuple[str, ...] = ()  # weightings to train (core.diversity.schemes); () = uniform + diversity

    @classmethod
    def quick(cls, **overrides) -> "StudyConfig":
        """A CPU-sized study on the bundled digits: minutes, not hours."""
        base = cls(dataset="digits", pairs=((0, 1), (3, 8)), seeds=2, per_class=100, preset="quick", steps=300,
                   device="cpu", n_samples=300, kid_subsets=10, kid_subset_size=200)
        return replace(base, **overrides)

    def wfid_gamma(self) -> float:
        return float(self.target_gamma if self.target_gamma is not None else max(self.gammas))

    def models(self) -> list[str]:
        """Model names: "baseline" (uniform), "divw_g<γ>" per γ (diversity), then the other schemes by name."""
        names = []
        for scheme in self.schemes or ("uniform", "diversity"):
            names += {"uniform": ["baseline"], "diversity": [gamma_model(g) for g in self.gammas]}.get(scheme, [scheme])
        return names

    def other_schemes(self) -> list[str]:
        """The baseline schemes beyond uniform and diversity weights (class-balanced, ...)."""
        return [s for s in self.schemes if s not in ("uniform", "diversity")]

    def validate(self) -> "StudyConfig":
        unknown = [s for s in self.schemes if s not in SCHEMES]
        if unknown:
            raise ValueError(f"unknown schemes {', '.join(unknown)}; choose from {', '.join(SCHEMES)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        return self


def model_scheme(model: str) -> str:
    """The weighting scheme a study model name stands for."""
    return "uniform" if model == "baseline" else ("diversity" if model.startswith("divw_g") else model)


def model_title(model: str) -> str:
    """How tables and figures name a model: "uniform", "DivW γ=0.8", "class-balanced"."""
    return "uniform" if model == "baseline" else model.replace("divw_g", "DivW γ=")


def gamma_model(gamma: float) -> str:
    return f"divw_g{gamma:g}"


def pair_name(pair) -> str:
    return "-".join(str(c) for c in pair)


@dataclass
class StudyState:
    path: Path
    config: dict
    done: dict = field(default_factory=dict)  # step key -> its record (Table 1 row, metrics, ...)

    @classmethod
    def open(cls, out: Path, config: StudyConfig) -> "StudyState":
        """Load `<out>/state.json` or start one; refuse a folder that holds a different study."""
        path = out / "state.json"
        wanted = json.loads(json.dumps(asdict(config)))
        if not path.exists():
            state = cls(path, wanted)
            state.save()
            return state
        saved = json.loads(path.read_text())
        if _with_defaults(saved.get("config") or {}) != wanted:
            raise ValueError(f"{out} holds a study with different settings; choose another --out or delete it")
        return cls(path, saved["config"], saved.get("done", {}))

    def mark(self, key: str, record) -> None:
        self.done[key] = record
        self.save()

    def save(self) -> None:
        atomic_write_json(self.path, {"version": STATE_VERSION, "config": self.config, "done": self.done})


def _with_defaults(saved: dict) -> dict:
    """A saved study config with the fields an older version lacked (model, schemes) at their defaults."""
    defaults = json.loads(json.dumps(asdict(StudyConfig())))
    return {key: saved.get(key, value) for key, value in defaults.items()} | saved


def scheme_weights_path(out: Path, pair, seed: int, scheme: str) -> Path:
    return out / "weights" / f"{pair_name(pair)}_s{seed}_{scheme}.npy"


def weights_path(out: Path, pair, seed: int, gamma: float) -> Path:
    return out / "weights" / f"{pair_name(pair)}_s{seed}_g{gamma:g}.npy"


def run_dir_of(out: Path, pair, seed: int, model: str) -> Path:
    return out / "runs" / f"{pair_name(pair)}_s{seed}_{model}"


def model_weights(out: Path, pair, seed: int, model: str) -> np.ndarray | None:
    """The sampling probabilities a model trains with: None (uniform) for the baseline."""
    if model == "baseline":
        return None
    if model_scheme(model) != "diversity":
        return np.load(scheme_weights_path(out, pair, seed, model), allow_pickle=False)
    return np.load(weights_path(out, pair, seed, float(model.removeprefix("divw_g"))), allow_pickle=False)


def table1_rows(done: dict) -> list[dict]:
    return [row for key, rows in done.items() if key.startswith("weights/") for row in rows]


def scheme_rows(done: dict) -> list[dict]:
    """The data under each weighting (VS, entropy, ESS, largest weight), one row per subset and scheme."""
    return [row for key, rows in done.items() if key.startswith("schemes/") for row in rows]


def metric_rows(done: dict) -> list[dict]:
    return [row for key, row in done.items() if key.startswith("eval/")]


def summarise(rows: list[dict], metrics=METRICS) -> list[dict]:
    """Mean ± 95% CI over seeds for every (pair, model, metric)."""
    groups: dict[tuple, list] = {}
    for row in rows:
        for metric in metrics:
            groups.setdefault((row["pair"], row["model"], metric), []).append(row.get(metric))
    return [{"pair": pair, "model": model, "metric": metric, "n": len(values), **dict(zip(("mean", "ci"), mean_ci(values)))}
            for (pair, model, metric), values in groups.items()]
