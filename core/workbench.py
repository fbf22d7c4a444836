"""The application layer: one method per user operation, shared by the studio, the CLI and the study.

    wb = Workbench("data")                                     # the studio: paths confined to the root
    wb = Workbench("data", confine=False)                      # the CLI: the user's own paths
    ready = wb.prepare(DatasetSpec("digits"), EmbedConfig.parse("pixels"))
    result = wb.weights(ready.features, WeightsConfig(gamma=0.8), on_progress=print)
    view = wb.inspect(ready.dataset, result.p)
    run_dir = wb.create_run(ready.spec, result.p, TrainConfig.preset("quick"), label="gamma=0.8 (pixels)")
    wb.start_run(run_dir)                                      # a background process executes the folder

Inputs and outputs are the typed configs (DatasetSpec, EmbedConfig, WeightsConfig, TrainConfig,
EvalConfig, StudyConfig) and result objects; defaults live in those dataclasses only. Every long
job takes `on_progress(Progress)` and `should_stop()` (core.jobs). Everything the workbench writes
lives under its data root: caches, generated files, uploads and (by default) runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .data import projection, storage
from .data.dataset import Dataset, class_names_of
from .data.datasets import BUILTINS, DatasetSpec
from .data.embed import EmbedCancelled, EmbedConfig, check_web_embedder, embed, embed_cached
from .data.memo import MAX_SHARED_DATA_BYTES, PreparedMemo
from .devices import resolve_device
from .diversity import contribution, suggest
from .diversity import inspect as weights_inspect
from .diversity.modes import modes_view
from .diversity import schemes
from .diversity.schemes import SchemeConfig, SchemeResult
from .diversity import export_formats
from .diversity.export import ExportMeta, export_weights, sampler_snippet
from .diversity.vendi import vendi_score
from .diversity.weights import WeightsConfig, WeightsResult, cached_results, sweep
from .evaluation import compare
from .evaluation.compare import comparable_runs, load_evaluations
from .evaluation.evaluate import EvalConfig, embed_images, evaluate_run, generate_images, nearest_real, run_dataset
from .evaluation.study import run_study
from .jobs import JobStopped, OnProgress, ShouldStop, reporter, stopped
from .limits import RequestLimits, check_range, check_work
from .results import Coverage, ExportFiles, Inspection, MapLayout, Prepared, TrainerExport
from .threads import making_way
from .training import runs
from .training.config import TrainConfig

GENERATED_DIR = "generated"  # the only folder under the data root the studio serves


class Workbench:
    """User-level operations over one data root. Holds no per-user state: the studio keeps each
    session's dataset and weights itself, so one workbench serves every visitor. What it does hold is
    read-only and shared: `shared`, the prepared datasets (core.data.memo), so that sessions loading
    the same spec hold one copy."""

    def __init__(self, data_root=None, confine: bool = True, limits: RequestLimits | None = None,
                 shared_bytes: int | None = None):
        self.data_root = Path(data_root).expanduser().resolve() if data_root else storage.default_data_root()
        self.confine = confine  # True: paths from the web page stay under the data root
        # the web page's requests stay within documented ranges (the command line has none)
        self.limits = limits if limits is not None else (RequestLimits() if confine else None)
        # prepared datasets kept for every session (the studio); the command line prepares each once
        shared_bytes = (MAX_SHARED_DATA_BYTES if confine else 0) if shared_bytes is None else shared_bytes
        self.shared = PreparedMemo(shared_bytes) if shared_bytes > 0 else None

    # --- places ---------------------------------------------------------------------------------

    def cache_dir(self, kind: str) -> Path:
        return self.data_root / "cache" / kind

    def generated_dir(self) -> Path:
        return self.data_root / GENERATED_DIR

    def runs_root(self) -> Path:
        return runs.runs_root(self.data_root)

    def user_path(self, path) -> Path:
        """A path a user named: under the data root when confined, else as given (relative: cwd)."""
        if self.confine:
            return storage.resolve_under(self.data_root, path)
        return Path(path).expanduser().resolve()

    # --- data -----------------------------------------------------------------------------------

    def load(self, spec: DatasetSpec) -> Dataset:
        return spec.load(self.data_root, confine=self.confine)

    def embed(self, dataset: Dataset, embedder: EmbedConfig, on_progress: OnProgress = None,
              should_stop: ShouldStop = None, use_cache: bool = True) -> tuple[np.ndarray, bool]:
        """-> (features (n, d) float32 rows L2-normalised, cache hit). Stopping raises JobStopped."""
        if self.confine:  # from the web page: listed open_clip weights, checkpoints only from <root>/models
            embedder = check_web_embedder(embedder, self.data_root / "models")
        report = reporter(on_progress, "embed", len(dataset))
        progress = lambda done, total: report(done, f"embedding {done:,}/{total:,} images", total)  # noqa: E731
        try:
            if not use_cache:
                return embed(dataset, embedder.model, embedder.pretrained, embedder.device, embedder.batch_size,
                             progress, should_stop, embedder.image_size), False
            return embed_cached(dataset, embedder, self.cache_dir("embeddings"), progress, should_stop)
        except EmbedCancelled:
            raise JobStopped("embedding stopped") from None

    def prepare(self, spec: DatasetSpec, embedder: EmbedConfig, on_progress: OnProgress = None,
                should_stop: ShouldStop = None) -> Prepared:
        """Load and embed: the Dataset tab's Load button, `embed`, each subset of the study.

        With a shared cache (the studio), a built-in or uploaded spec already prepared for anyone comes
        back as that same read-only Prepared (`cache_hit` True), and concurrent requests compute it once."""
        def make() -> Prepared:
            dataset = self.load(spec)
            features, hit = self.embed(dataset, embedder, on_progress, should_stop)
            return Prepared(spec, dataset, features, embedder, hit)

        key = self._shared_key(spec, embedder)
        return make() if key is None else self.shared.get(key, make, should_stop)

    def _shared_key(self, spec: DatasetSpec, embedder: EmbedConfig):
        """The shared cache's key, or None when not shared: no cache, or a source whose contents may
        change under the same spec (a folder; uploads/<digest>/ is content-addressed, built-ins fixed)."""
        parts = Path(spec.source).parts
        fixed = spec.source in BUILTINS or (self.confine and len(parts) >= 3 and parts[0] == "uploads")
        if self.shared is None or not fixed:
            return None
        return spec, tuple(sorted(asdict(embedder).items()))

    # --- weights --------------------------------------------------------------------------------

    def weights(self, features, config: WeightsConfig = WeightsConfig(), on_progress: OnProgress = None,
                should_stop: ShouldStop = None) -> WeightsResult:
        """Diversity weights for one γ (Algorithm 1), cached on disk. A stopped run comes back with
        `stopped=True` and is not cached."""
        return self.sweep(features, [config.gamma], config, on_progress, should_stop)[float(config.gamma)]

    def sweep(self, features, gammas, config: WeightsConfig = WeightsConfig(), on_progress: OnProgress = None,
              should_stop: ShouldStop = None) -> dict[float, WeightsResult]:
        """Diversity weights for several γ in one batched run (config gives everything but γ)."""
        gammas = [float(g) for g in gammas]
        self._check_weights_request(gammas, config, features, runs=len(gammas))
        report = reporter(on_progress, "weights" if len(gammas) == 1 else "sweep", config.steps)

        def on_step(row: dict) -> None:  # {step, vs, entropy, ess, lr}, or {step, rows} for several γ
            report(row["step"], f"step {row['step']}/{config.steps}", **row)

        if not runs.active_runs(self.data_root):
            return sweep(features, gammas, config, self.cache_dir("weights"), on_step, should_stop)
        with making_way(self.runs_root()):  # background training pauses: the weights get every core
            return sweep(features, gammas, config, self.cache_dir("weights"), on_step, should_stop)

    def cached_weights(self, features, gammas, config: WeightsConfig = WeightsConfig()) -> dict[float, WeightsResult]:
        """The γ values of a sweep whose weights are already cached (nothing is computed)."""
        self._check_weights_request(gammas, config)
        return cached_results(features, gammas, config, self.cache_dir("weights"))

    def scheme_weights(self, features, labels, scheme: SchemeConfig, weights_config: WeightsConfig = WeightsConfig(),
                       on_progress: OnProgress = None, should_stop: ShouldStop = None,
                       n: int | None = None) -> SchemeResult:
        """The probability vector of one weighting scheme (core.diversity.schemes); "diversity" goes
        through `weights` (cached, progress, making way for training) with γ = scheme.gamma."""
        from dataclasses import replace

        def diversity(x):
            result = self.weights(x, replace(weights_config, gamma=scheme.gamma), on_progress, should_stop)
            if result.stopped:
                raise JobStopped("diversity weights stopped")
            return result

        n = n if n is not None else (len(features) if features is not None else None)
        return schemes.scheme_weights(scheme, features, labels, n, diversity=diversity)

    def compare_schemes(self, features, labels, configs: list[SchemeConfig],
                        weights_config: WeightsConfig = WeightsConfig(), should_stop: ShouldStop = None) -> list[dict]:
        """Side-by-side rows (scheme, label, VS, entropy, ESS, largest weight, mass per class) of every
        scheme that applies (class-balanced is skipped for unlabelled data), plus each row's p."""
        rows = []
        for config in configs:
            if config.scheme in schemes.NEEDS_LABELS and labels is None:
                continue
            result = self.scheme_weights(features, labels, config, weights_config, should_stop=should_stop)
            summary = schemes.scheme_summary(result.p, features, labels)
            rows.append({"scheme": config.scheme, "label": result.label, **summary, "p": result.p})
        return rows

    def _check_weights_request(self, gammas, config: WeightsConfig, features=None, runs: int = 0) -> None:
        """The studio's ranges; with features (n, d), also the work of `runs` runs (RequestLimits)."""
        if self.limits is not None:
            check_range("the number of γ values", len(gammas), 1, self.limits.max_gammas)
            check_range("steps", config.steps, 1, self.limits.max_weight_steps)
            check_range("the learning rate", config.lr, 1e-12, self.limits.max_learning_rate)
            shape = np.shape(features) if features is not None else ()
            if runs and len(shape) == 2:
                check_work(self.limits, config.steps, runs, shape[0], shape[1])

    def inspect(self, dataset: Dataset, p: np.ndarray, k: int = 12, batch_size: int = 64) -> Inspection:
        if k < 1 or batch_size < 1:
            raise ValueError("the number of examples and the batch size must be at least 1")
        if self.limits is not None:
            check_range("the number of examples shown", k, 1, self.limits.max_shown)
            check_range("the batch size", batch_size, 1, self.limits.max_batch_size)
        top, bottom = weights_inspect.top_bottom_indices(p, k)
        mass, names = None, None
        if dataset.labels is not None:
            mass = weights_inspect.class_mass(p, dataset.labels)
            names = class_names_of(dataset, mass.classes)
        summary = weights_inspect.weight_summary(p, batch_size)
        counts, edges = weights_inspect.weight_histogram(p, log2=True)
        members = [weights_inspect.index_ranges(m) for m in weights_inspect.histogram_members(p, edges)]
        return Inspection(top, bottom, weights_inspect.relative_weights(p), (counts, edges), members, names, mass,
                          summary)

    def export(self, dataset: Dataset, embedder: str, result: WeightsResult, batch_size: int = 64,
               features: np.ndarray | None = None, explained: contribution.Explained | None = None) -> ExportFiles:
        """CSV, .npy + JSON sidecar and a sampler snippet under generated/exports/, in a folder keyed
        by everything the weights depend on (dataset, embedder, full config): sessions never share one.
        features (n, d): the CSV also says why each weight (VS gain per 1% of mass; nearest neighbours up
        to contribution.EXPORT_NEIGHBOURS_MAX_N examples, said in the note and the sidecar beyond).
        explained: `explain_weights(features, result.p)` when the caller keeps it."""
        if self.limits is not None:
            check_range("the batch size", batch_size, 1, self.limits.max_batch_size)
        config = {k: v for k, v in asdict(result.config).items() if k != "device"}
        key = hashlib.sha256(json.dumps([dataset.fingerprint, embedder, config], sort_keys=True).encode()).hexdigest()[:12]
        meta = ExportMeta(dataset_name=dataset.name, dataset_fingerprint=dataset.fingerprint, embedder=embedder,
                          config=config, vs_uniform=float(result.vs_uniform), vs_weighted=float(result.vs_final))
        stem = re.sub(r"[^A-Za-z0-9.]+", "-", f"{dataset.name}-{embedder}-g{result.config.gamma:g}").strip("-.")[:80]
        extra, note = None, ""
        if features is not None:
            extra = contribution.explanation_columns(features, result.p, explained=explained)
            if "nearest_neighbours" not in extra:
                note = (f"The CSV has no nearest-neighbour columns: above {contribution.EXPORT_NEIGHBOURS_MAX_N:,} "
                        f"images finding every image's neighbours takes minutes (n² comparisons); the "
                        f"Why panel finds any one image's at once.")
                meta.notes.append(note)
        paths = export_weights(result.p, dataset.ids, dataset.labels, meta,
                               self.generated_dir() / "exports" / f"{dataset.fingerprint}-{key}", stem=stem or "weights",
                               extra_columns=extra, class_names=dataset.class_names)
        return ExportFiles(paths["csv"], paths["npy"], paths["json"], sampler_snippet(paths["npy"].name, batch_size),
                           note)

    def export_scheme(self, dataset: Dataset, embedder: str, result: SchemeResult, features: np.ndarray | None = None,
                      batch_size: int = 64) -> ExportFiles:
        """A baseline weighting (core.diversity.schemes) exported like diversity weights: CSV, .npy + JSON
        sidecar (the scheme and its label as the config; VS of the data with uniform and with p when
        features are given) and the sampler snippet, under generated/exports/."""
        if self.limits is not None:
            check_range("the batch size", batch_size, 1, self.limits.max_batch_size)
        config = {"scheme": result.scheme, "label": result.label}
        key = hashlib.sha256(json.dumps([dataset.fingerprint, embedder, config], sort_keys=True).encode()).hexdigest()[:12]
        vs = (None, None) if features is None else (vendi_score(features), vendi_score(features, result.p))
        meta = ExportMeta(dataset_name=dataset.name, dataset_fingerprint=dataset.fingerprint, embedder=embedder,
                          config=config, vs_uniform=vs[0], vs_weighted=vs[1])
        stem = re.sub(r"[^A-Za-z0-9.]+", "-", f"{dataset.name}-{embedder}-{result.scheme}").strip("-.")[:80]
        paths = export_weights(result.p, dataset.ids, dataset.labels, meta,
                               self.generated_dir() / "exports" / f"{dataset.fingerprint}-{key}", stem=stem or "weights",
                               class_names=dataset.class_names)
        return ExportFiles(paths["csv"], paths["npy"], paths["json"], sampler_snippet(paths["npy"].name, batch_size))

    def export_for_trainer(self, dataset: Dataset, p: np.ndarray, kind: str, out=None, total: int | None = None,
                           draws: int | None = None, features: np.ndarray | None = None, seed: int = 0) -> TrainerExport:
        """The images and their weights as a folder another tool trains from (export_formats.TRAINER_FORMATS):
        "imagefolder" (Hugging Face datasets; features add the why-columns), "kohya" (total repeats, default
        4·n) or "resampled" (draws by p, default n). out: the studio writes under generated/exports/ (keyed by
        the data and the weights); the command line where the user says."""
        if kind not in export_formats.TRAINER_FORMATS:
            raise ValueError(f"unknown export format {kind!r}; choose one of {', '.join(export_formats.TRAINER_FORMATS)}")
        p = runs.sampling_probabilities(p, len(dataset))
        n = len(dataset)
        total, draws = (total or 4 * n), (draws or n)
        if self.limits is not None:
            check_range("the total number of repeats", total, 1, self.limits.max_export_draws)
            check_range("the number of draws", draws, 1, self.limits.max_export_draws)
        if out is None or self.confine:
            key = hashlib.sha256(json.dumps([runs.weights_fingerprint(p), total, draws, seed]).encode()).hexdigest()[:12]
            out = self.generated_dir() / "exports" / f"{dataset.fingerprint}-{key}" / kind
        else:
            out = self.user_path(out)
        labels = None if dataset.labels is None else class_names_of(dataset, dataset.labels)
        if kind == "imagefolder":
            extra = contribution.explanation_columns(features, p) if features is not None else None
            folder = export_formats.write_imagefolder(dataset.images, dataset.ids, p, out, labels, extra)
            summary = f"{n:,} images with a metadata.csv (weight, p{', why-columns' if extra else ''})."
        elif kind == "kohya":
            folder, repeats = export_formats.write_kohya(dataset.images, dataset.ids, p, out, total, dataset.name)
            summary = (f"{n - repeats.dropped:,} images in {len(set(repeats.counts[repeats.counts > 0].tolist()))} "
                       f"repeat folders, {repeats.total:,} draws per pass; the shares differ from p by at most "
                       f"{repeats.max_abs_error:.2g} (total variation {repeats.total_variation:.2g})"
                       + (f"; {repeats.dropped:,} images with 0 repeats left out." if repeats.dropped else "."))
        else:
            folder, drawn = export_formats.write_resampled(dataset.images, dataset.ids, p, out, draws, seed)
            summary = (f"{draws:,} draws by p (seed {seed}) of {len(np.unique(drawn)):,} distinct images, "
                       "hard-linked where the disk allows; manifest.csv names each source.")
        return TrainerExport(kind, folder, summary, export_formats.trainer_snippet(kind, folder))

    # --- explaining weights and choosing γ (core.diversity.suggest / modes / contribution) -----------

    def suggest_gamma(self, features, min_ess_fraction: float | None = 0.25, max_weight_ratio: float | None = None,
                      config: WeightsConfig = WeightsConfig(), on_progress: OnProgress = None,
                      should_stop: ShouldStop = None):
        """The largest γ whose weights keep ESS ≥ min_ess_fraction·n and/or max n·p ≤ max_weight_ratio
        (a GammaSuggestion: γ, its weights, the curve searched); at most 4 runs, cached ones are free."""
        self._check_weights_request([config.gamma], config, features, runs=suggest.MAX_RUNS)
        report = reporter(on_progress, "suggest", config.steps)
        rounds = []

        def on_step(row: dict) -> None:
            report(row["step"], f"γ search, run {len(rounds) + 1}: step {row['step']}/{config.steps}", **row)

        def on_round(row: dict) -> None:
            rounds.append(row)
            verdict = "meets" if row["meets"] else "misses"
            report(config.steps, f"γ = {row['gamma']:.2f}: ESS {100 * row['ess_fraction']:.1f}%, largest weight "
                   f"{row['max_relative']:.1f}× ({verdict} the constraint)", **row)

        with making_way(self.runs_root()) if runs.active_runs(self.data_root) else nullcontext():
            return suggest.suggest_gamma(features, min_ess_fraction, max_weight_ratio, config,
                                         self.cache_dir("weights"), suggest.GRID, on_step, on_round, should_stop)

    def weight_health(self, p: np.ndarray, batch_size: int = 64, suggested_gamma: float | None = None):
        """Whether training on p would keep drawing the same few images (a WeightHealth with a message)."""
        if self.limits is not None:
            check_range("the batch size", batch_size, 1, self.limits.max_batch_size)
        return suggest.weight_health(p, batch_size, suggested_gamma)

    def modes(self, features, p: np.ndarray, n_modes: int = 6, per_mode: int = 8):
        """The dataset's modes (eigenvectors of Xᵀ diag(p) X): spectrum under uniform p and under p,
        and the images loading most on each of the top `n_modes` (a ModesView)."""
        if self.limits is not None:
            check_range("the number of modes shown", n_modes, 1, 32)
            check_range("the images per mode", per_mode, 1, self.limits.max_shown)
        return modes_view(features, p, n_modes, per_mode)

    def explain_weights(self, features, p: np.ndarray) -> contribution.Explained:
        """What every `why` and the export's why-columns of p share (seconds at n = 60,000: keep it)."""
        return contribution.explain_weights(features, p)

    def why(self, features, p: np.ndarray, index: int, k: int = 6, explained: contribution.Explained | None = None):
        """Why example `index` got its weight: its contribution to VS and its nearest neighbours (a Why).
        explained: `explain_weights(features, p)` kept by the caller (then this is one n·d search)."""
        if self.limits is not None:
            check_range("the number of neighbours", k, 1, self.limits.max_shown)
        return contribution.why(features, p, int(index), k, explained)

    def browse(self, dataset: Dataset, p: np.ndarray, page: int = 1, descending: bool = True,
               label: int | None = None, per_page: int = 48):
        """One page of every example sorted by weight, optionally of one class (a BrowsePage)."""
        if self.limits is not None:
            check_range("the images per page", per_page, 1, self.limits.max_shown)
        return weights_inspect.browse_page(p, page, descending, dataset.labels, label, per_page)

    def map_layout(self, features: np.ndarray, method: str = "auto", max_points: int = 3000,
                   on_progress: OnProgress = None, should_stop: ShouldStop = None) -> MapLayout:
        """UMAP (cached per sample) or PCA of at most `max_points` examples; "auto" (maps redrawn in
        passing) = UMAP when its layout is cached, else PCA with a note (a UMAP layout takes seconds to
        minutes: the Draw map button's job). The sample does not depend on the weights. UMAP reports
        Progress("map") and stops between chunks."""
        if max_points < 2:
            raise ValueError("draw at least 2 dots")
        if self.limits is not None:
            check_range("the number of dots", max_points, 2, self.limits.max_map_points)
        if method not in ("auto", "umap", "pca"):
            raise ValueError("the map method must be UMAP or PCA")
        indices = projection.display_sample(len(features), max_points)
        sample, cache = features[indices], self.cache_dir("umap")
        note = ""
        if method == "auto":
            method = "umap" if projection.has_cached(sample, projection.ProjectionConfig(), cache) else "pca"
            if method == "pca" and not projection.is_warm():
                note = ("UMAP is still being prepared in the background (its first use compiles code, about a "
                        "minute). Showing a PCA map for now: press **Draw map** with UMAP in a moment.")
            elif method == "pca":
                note = (f"This is PCA: a UMAP layout of these {len(indices):,} dots is not computed yet (seconds "
                        "to minutes). Press **Draw map** with UMAP to compute it, with progress; it is kept.")
        coords, _ = projection.project(sample, projection.ProjectionConfig(method=method), cache, on_progress,
                                       should_stop)
        return MapLayout(indices, coords, method, note)

    def warm_up_maps(self, features: np.ndarray | None, max_points: int = 3000) -> None:
        """Compile UMAP (and lay out these features, cached) on a background thread."""
        sample = None if features is None else features[projection.display_sample(len(features), max_points)]
        projection.start_warmup(sample, self.cache_dir("umap"))

    # --- training runs --------------------------------------------------------------------------

    def new_run_dir(self, name: str) -> Path:
        """A fresh folder <runs>/<slug of name>-<time stamp>[-i] (created)."""
        slug = run_slug(name)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for attempt in range(1000):
            run_dir = self.runs_root() / (f"{slug}-{stamp}" + (f"-{attempt}" if attempt else ""))
            try:
                run_dir.mkdir(parents=True)
                return run_dir
            except FileExistsError:
                continue
        raise ValueError("could not find a free run name")

    def create_run(self, spec: DatasetSpec, p: np.ndarray | None, config: TrainConfig, label: str = "",
                   preset: str | None = None, run_dir=None, name: str | None = None,
                   dataset: Dataset | None = None, reuse: bool = False, scheme: str | None = None) -> Path:
        """Write a run folder once: config.json (the TrainConfig, the dataset spec and fingerprint, the
        weights' fingerprint and label) and weights.npy. p None = uniform (the baseline).

        run_dir: default a new folder <data root>/runs/<name>-<time stamp>. reuse: a folder that already holds
        the same run (same data, weights and settings) is kept as it is (the study's resume);
        otherwise an existing run is refused.
        """
        config = config.validate()
        if self.limits is not None:
            check_range("training steps", config.steps, 1, self.limits.max_train_steps)
            check_range("the training batch size", config.batch_size, 1, self.limits.max_train_batch)
        resolve_device(config.device)  # a missing GPU is refused now, not in the background
        dataset = dataset if dataset is not None else self.load(spec)
        p = runs.sampling_probabilities(p, len(dataset))
        label = label or ("uniform" if np.ptp(p) == 0 else "weights")
        record = runs.run_record(config, spec.to_dict(), dataset.fingerprint, p, label, preset, scheme)
        record["image_shape"] = list(dataset.images.shape[1:])
        record["device_resolved"] = resolve_device(config.device)
        new = run_dir is None or not Path(run_dir).exists()  # a folder this call makes: removed if it fails
        if run_dir is None:
            run_dir = self.new_run_dir(name or f"{Path(spec.source).name}-{'baseline' if label == 'uniform' else label}")
        run_dir = Path(run_dir).resolve()
        if run_dir in (self.data_root, self.runs_root().resolve()) or run_dir in self.runs_root().resolve().parents:
            raise ValueError(f"{run_dir} holds the studio's data or its runs; choose a folder of the run's own")
        if (run_dir / "config.json").exists():
            if not reuse:
                raise ValueError(f"{run_dir} already holds a run: resume it, or choose another run folder")
            runs.check_resume(runs.read_config(run_dir), record)
            return run_dir
        try:
            runs.create_run(run_dir, record, p)
            runs.write_status(run_dir, "created", step=0, steps=config.steps, message="created")
        except OSError:  # a full disk: a half-written folder would list as an "unknown" run
            if new:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        return run_dir

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run listed under <data root>/runs/ (names from the web page stay there)."""
        if not run_id or not str(run_id).strip():
            raise ValueError("choose a run first")
        root = self.runs_root().resolve()
        path = storage.resolve_under(root, root / str(run_id))
        if path.parent != root or not path.is_dir():  # a direct child of runs/, never runs/ itself or deeper
            raise ValueError(f"there is no run {run_id!r}")
        return path

    def start_run(self, run_dir) -> None:
        """Execute a created (or interrupted) run folder in a background process: closing the
        studio or the browser does not stop it."""
        runs.launch_run(Path(run_dir), self.data_root)

    def execute_run(self, run_dir, queue: bool = True, overrides: dict | None = None,
                    on_progress: OnProgress = None, should_stop: ShouldStop = None) -> str:
        """Carry out a run folder in this process (the CLI, the study); -> final state."""
        from .training.execution import execute

        return execute(Path(run_dir), self.data_root, queue=queue, overrides=overrides, on_progress=on_progress,
                       should_stop=should_stop)

    def list_runs(self) -> list[dict]:
        return runs.list_runs(self.data_root)

    def stop_run(self, run_dir) -> None:
        """Ask a queued or running run to checkpoint and exit."""
        state = runs.refresh_status(run_dir).get("state")
        if state not in runs.ACTIVE_STATES:
            raise ValueError(f"run {Path(run_dir).name} is {state}: nothing to stop")
        runs.request_stop(run_dir)

    def resume_run(self, run_dir) -> None:
        """Continue an interrupted or failed run from its last good checkpoint, in the background."""
        status = runs.refresh_status(run_dir)
        state = status.get("state")
        if state in runs.ACTIVE_STATES:
            raise ValueError(f"run {Path(run_dir).name} is already {state}")
        if state == "finished":
            raise ValueError(f"run {Path(run_dir).name} has finished all its steps")
        if not (Path(run_dir) / "config.json").exists():
            raise ValueError(f"run {Path(run_dir).name} was never created completely; start a new run instead")
        self.start_run(run_dir)

    def delete_run(self, run_dir) -> None:
        runs.delete_run(Path(run_dir))

    # --- evaluation -----------------------------------------------------------------------------

    def run_dataset(self, run_dir) -> Dataset:
        """The dataset a run trained on, rebuilt from its spec and checked against its fingerprint."""
        return run_dataset(Path(run_dir), self.data_root)

    def real_features(self, dataset: Dataset, config: EvalConfig, on_progress: OnProgress = None,
                      should_stop: ShouldStop = None) -> np.ndarray:
        """The real data's features for the metrics, through the embedding cache shared with the weights."""
        embedder = EmbedConfig(model=config.embedder, pretrained=config.pretrained, device=config.device)
        return self.embed(dataset, embedder, on_progress, should_stop)[0]

    def evaluate(self, run_dirs, config: EvalConfig = EvalConfig(), p_target: np.ndarray | None = None,
                 on_progress: OnProgress = None, should_stop: ShouldStop = None) -> list[dict]:
        """Sample and score each run (VS, FID, wFID, P/R, IS, KID) into its eval.json.

        Runs on the same data share one embedding of it. wFID targets `p_target`, else each run's
        own weights (uniform for a baseline)."""
        self._check_eval(config)
        run_dirs = [Path(d) for d in run_dirs]
        report = reporter(on_progress, "evaluate", len(run_dirs))
        results, shared = [], {}
        for index, run_dir in enumerate(run_dirs):
            if stopped(should_stop):
                raise JobStopped(f"evaluation stopped after {index} of {len(run_dirs)} runs")
            report(index, f"evaluating {run_dir.name} ({index + 1}/{len(run_dirs)})")
            dataset = self.run_dataset(run_dir)
            if dataset.fingerprint not in shared:
                shared[dataset.fingerprint] = self.real_features(dataset, config)
            results.append(evaluate_run(run_dir, config, dataset, p_target, shared[dataset.fingerprint],
                                        self.data_root, self.data_root / "cache"))
        report(len(run_dirs), "evaluated")
        return results

    def _check_eval(self, config: EvalConfig) -> None:
        if self.limits is not None:
            check_range("the number of samples", config.n_samples, 1, self.limits.max_eval_samples)
            check_range("the number of KID subsets", config.kid_subsets, 1, self.limits.max_kid_subsets)

    def coverage(self, run_dirs, config: EvalConfig, p_target: np.ndarray | None = None, samples: int = 300,
                 nearest_shown: int = 4) -> Coverage:
        """Where each run's samples fall on the map of its training data, the mass per class they get
        (labelled by nearest training image) and their nearest training images (memorisation check).
        Every run must have trained on the same data; seeds of one model are pooled."""
        from .training.checkpoints import load_generator

        run_dirs = [Path(d) for d in run_dirs]
        dataset = self.run_dataset(run_dirs[0])
        features_real = self.real_features(dataset, config)
        images, features = {}, {}
        for run_dir in run_dirs:
            label = compare.run_label(run_dir)
            generator = load_generator(run_dir, resolve_device(config.device))
            sample = generate_images(generator, samples, seed=config.seed + 1)
            embedded = embed_images(sample, config)
            images[label] = np.concatenate([images[label], sample]) if label in images else sample
            features[label] = np.concatenate([features[label], embedded]) if label in features else embedded
        real_xy, gen_xy, method = compare.shared_map(features_real, features, "umap" if projection.is_warm() else "pca")
        classes, mass = None, None
        if dataset.labels is not None:
            ids, mass = compare.class_mass_rows(dataset.labels, p_target, features_real, features)
            classes = class_names_of(dataset, ids)
        nearest = []
        for label, sample in images.items():
            found = nearest_real(features_real, features[label][:nearest_shown])
            nearest += [(label, image, int(index)) for image, index in zip(sample[:nearest_shown], found)]
        return Coverage(real_xy, gen_xy, method, classes, mass, nearest)

    def compare(self, run_dirs) -> list[dict]:
        """The saved evaluations of runs (eval.json), each with its model label: files only, quick."""
        return load_evaluations([Path(d) for d in run_dirs])

    def comparable_runs(self) -> list[dict]:
        return comparable_runs(self.data_root)

    # --- the study ------------------------------------------------------------------------------

    def study(self, config, out, on_progress: OnProgress = None, should_stop: ShouldStop = None) -> dict:
        """The paper's study (core.evaluation.study) through this workbench's own operations."""
        return run_study(config, Path(out), self, on_progress=on_progress, should_stop=should_stop)


def run_slug(name: str) -> str:
    """A run folder's name part: lower case letters, digits, '.' and '-'. A decimal point between digits
    becomes 'p' ("divw-g0.5" -> "divw-g0p5") so γ = 0.5 and 0.8 stay two readable names."""
    text = re.sub(r"(?<=\d)\.(?=\d)", "p", Path(str(name)).name)
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-.").lower()[:48] or "run"
