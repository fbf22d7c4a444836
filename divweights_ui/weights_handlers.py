"""Weights tab handlers: Algorithm 1 streamed into a live chart, γ sweeps, instant cached γ.

The workbench runs the optimiser on a worker thread (divweights_ui.streaming); its progress events
are streamed by generator handlers, and Stop (or a closed page) ends the run cleanly, keeping the
weights the session had.
"""

from __future__ import annotations

import dataclasses
import time

import gradio as gr

from divweights.data.dataset import class_names_of
from divweights.diversity import inspect as weights_inspect
from divweights.diversity.schemes import SCHEMES, SchemeConfig
from divweights.diversity.weights import WeightsConfig
from divweights.workbench import Workbench
from divweights_ui import figures
from divweights_ui.common import error, parse_gammas, require_features, weights_key
from divweights_ui.explain_handlers import health_note
from divweights_ui.session import Session
from divweights_ui.streaming import Throttle, stream, user_error


def weights_config(gamma, steps, lr) -> WeightsConfig:
    """UI values -> WeightsConfig (its defaults for everything else)."""
    try:
        config = WeightsConfig(gamma=float(gamma), steps=int(steps), lr=float(lr))
    except (TypeError, ValueError):
        raise error("γ, steps and learning rate must be numbers.") from None
    if not 0 <= config.gamma <= 1 or config.steps < 1 or config.lr <= 0:
        raise error("γ must be between 0 and 1, steps at least 1, and the learning rate above 0.")
    return config


def weights_numbers(gamma: float, vs_uniform: float, numbers: dict, n: int, status: str) -> str:
    """'uniform VS → weighted VS' line plus entropy and ESS, for people. numbers: vs, entropy,
    entropy_uniform, ess (from core: the optimiser's step rows or inspect.weight_summary)."""
    change = (numbers["vs"] / vs_uniform - 1) * 100 if vs_uniform else 0.0
    spread = numbers["entropy"] / numbers["entropy_uniform"] if numbers["entropy_uniform"] else 1.0
    # plain Markdown: the API returns this text too, so it must read well without a browser
    return (f"Vendi Score (the effective number of distinct images): uniform **{vs_uniform:.3f}** → "
            f"weighted **{numbers['vs']:.3f}** ({change:+.1f}%)\n\n"
            f"γ = {gamma:.2f} · draws spread over the dataset: {spread:.0%} of uniform (entropy "
            f"{numbers['entropy']:.3f} of {numbers['entropy_uniform']:.3f} nats) · ESS {numbers['ess']:,.0f} "
            f"of {n:,} · {status}")


def _finished(result, wb: Workbench | None = None) -> tuple:
    numbers = weights_inspect.weight_summary(result.p) | {"vs": result.vs_final}
    status = "stopped early" if result.stopped else "done"
    health = "" if wb is None else health_note(wb, result.p)  # ESS < 10% or crowded batches: say so
    return (figures.progress_figure(result.history, result.vs_uniform, result.config.steps),
            weights_numbers(result.config.gamma, result.vs_uniform, numbers, len(result.p), status) + health)


def compute_weights(session: Session, gamma, steps, lr, *, wb: Workbench):
    """Generator: stream (session, live chart, numbers) while Algorithm 1 runs; cached γ return at once."""
    features = require_features(session)
    config = weights_config(gamma, steps, lr)
    key = weights_key(config.gamma, config.steps, config.lr)
    if key in session.weights:
        session.current_key = key
        yield (session, *_finished(session.weights[key], wb))
        return
    history, throttle = [], Throttle()
    session.running = {"what": "weights", "gamma": config.gamma, "step": 0, "steps": config.steps}

    def on_event(event):
        session.running["step"] = event.done
        history.append({k: event.values[k] for k in ("step", "vs", "entropy", "ess", "lr")})
        if throttle.due():  # step 1 differentiates the uniform start: its VS and entropy are the uniform ones
            first, numbers = history[0], history[-1] | {"entropy_uniform": history[0]["entropy"]}
            return (session, figures.progress_figure(history, first["vs"], config.steps),
                    weights_numbers(config.gamma, first["vs"], numbers, len(features), "optimising…"))
        return None

    result = yield from stream(lambda on_progress, should_stop: wb.weights(features, config, on_progress, should_stop),
                               on_event)
    session.running = None
    if not result.stopped:
        session.weights[key] = result
        session.current_key = key
    yield (session, *_finished(result, wb))


def stopped(session: Session):
    """The Stop button: say where the job stopped and which weights are still in use -> (numbers, sweep note)."""
    job, session.running = session.running, None
    current = session.current
    in_use = (f"still using the previous weights (γ = {current.config.gamma:.2f}, Vendi Score {current.vs_final:.3f})"
              if current is not None else "no weights are computed yet")
    if job is None:
        return gr.skip(), gr.skip()
    where = f"Stopped at step {job['step']} of {job['steps']}; nothing from this run was kept, {in_use}."
    return (where, gr.skip()) if job["what"] == "weights" else (gr.skip(), where)


def show_weights(session: Session, *, wb: Workbench | None = None):
    """(live chart, numbers) of the weights currently chosen, for page load."""
    result = session.current
    if result is None:
        return figures.empty_figure("Press “Compute weights” to start."), "No weights computed yet."
    return _finished(result, wb)


def sweep(session: Session, gammas_text: str, steps, lr, chosen_gamma, *, wb: Workbench):
    """Generator: a γ sweep drawn point by point -> (session, trade-off figure, table markdown).

    γ values already cached appear at once; the others are computed one after another, each point
    drawn when it is done, with the step and an estimate of the time left. Stop (or closing the
    page) ends it cleanly; the γ values finished by then are kept.
    """
    features = require_features(session)
    config = weights_config(chosen_gamma, steps, lr)
    gammas = sorted(set(parse_gammas(gammas_text)) | {config.gamma})  # the slider's γ is always marked
    try:
        results = wb.cached_weights(features, gammas, config)
    except ValueError as exc:
        raise user_error(exc) from None
    todo = [g for g in gammas if g not in results]
    _keep(session, results, config)
    if results:
        yield (session, *_sweep_view(results, config.gamma, f"{len(results)} of {len(gammas)} γ values from the cache; "
                                                            f"computing {len(todo)}…" if todo else ""))
    started, throttle = time.monotonic(), Throttle()
    for index, gamma in enumerate(todo):
        session.running = {"what": "sweep", "gamma": gamma, "step": 0, "steps": config.steps}
        each = dataclasses.replace(config, gamma=gamma)

        def on_event(event, gamma=gamma, index=index):
            session.running["step"] = event.done
            if not throttle.due():
                return None
            done_steps = index * config.steps + event.done
            left = (time.monotonic() - started) / done_steps * (len(todo) * config.steps - done_steps)
            return (session, gr.skip(), f"γ = {gamma:.2f} ({index + 1} of {len(todo)} to compute): step "
                                        f"{event.done} of {config.steps} · about {_duration(left)} left…")

        result = yield from stream(lambda on_progress, should_stop: wb.weights(features, each, on_progress, should_stop),
                                   on_event)
        if result.stopped:
            session.running = None
            yield session, gr.skip(), f"Sweep stopped at γ = {gamma:.2f}; the {len(results)} γ values finished are kept."
            return
        results[gamma] = result
        _keep(session, {gamma: result}, config)
        yield (session, *_sweep_view(results, config.gamma, "" if index + 1 == len(todo) else
                                     f"{len(todo) - index - 1} γ values still to compute…"))
    session.running = None
    yield (session, *_sweep_view(results, config.gamma, ""))


def _keep(session: Session, results: dict, config: WeightsConfig) -> None:
    for gamma, result in results.items():
        session.weights[weights_key(gamma, config.steps, config.lr)] = result


def _sweep_view(results: dict, chosen: float, status: str):
    gammas = sorted(results)
    summaries = {g: weights_inspect.weight_summary(results[g].p) for g in gammas}
    table = sweep_table(results, summaries, gammas)
    return sweep_figure(results, summaries, gammas, chosen), (f"*{status}*\n\n{table}" if status else table)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def sweep_figure(results: dict, summaries: dict, gammas: list[float], chosen: float):
    return figures.sweep_figure(gammas, [results[g].vs_final for g in gammas], [summaries[g]["ess"] for g in gammas],
                                [summaries[g]["entropy"] for g in gammas], chosen if chosen in results else None)


def sweep_table(results: dict, summaries: dict, gammas: list[float]) -> str:
    table = ["| γ | weighted VS | ESS | entropy |", "|---|---|---|---|"]
    for g in gammas:
        table.append(f"| {g:.2f} | {results[g].vs_final:.3f} | {summaries[g]['ess']:,.0f} | {summaries[g]['entropy']:.3f} |")
    table.append(f"\nUniform VS: {results[gammas[0]].vs_uniform:.3f}. Every γ here is now cached: "
                 "set it on the slider and press Compute to use it at once.")
    return "\n".join(table)


SCHEME_TITLES = {"uniform": "uniform (baseline)", "diversity": "diversity weights", "class-balanced": "class-balanced",
                 "inverse-density": "inverse density (kNN)", "leverage": "ridge leverage"}


def compare_schemes(session: Session, gamma, steps, lr, *, wb: Workbench) -> str:
    """Every weighting scheme on the session's dataset side by side (Markdown): VS, entropy, ESS, the
    largest weight and the mass per class; diversity weights at the slider's γ (cached when computed)."""
    features = require_features(session)
    config = weights_config(gamma, steps, lr)
    labels = session.dataset.labels
    try:
        rows = wb.compare_schemes(features, labels, [SchemeConfig(s, gamma=config.gamma) for s in SCHEMES], config)
    except ValueError as exc:
        raise user_error(exc) from None
    return schemes_table(rows, session, len(features))


def schemes_table(rows: list[dict], session: Session, n: int) -> str:
    """Markdown table of `Workbench.compare_schemes` rows (class names from the dataset)."""
    has_mass = any("class_mass" in row for row in rows)
    head = "| weighting | VS | entropy (nats) | ESS | largest weight |" + (" mass per class |" if has_mass else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        gamma = f" (γ = {row['label'].split('=')[1]})" if row["scheme"] == "diversity" else ""
        line = (f"| {SCHEME_TITLES.get(row['scheme'], row['scheme'])}{gamma} | {row['vs']:.3f} | {row['entropy']:.3f} | "
                f"{row['ess']:,.0f} of {n:,} | {row['max_relative']:.2f}× uniform |")
        lines.append(line + (f" {_mass_text(session.dataset, row['class_mass'])} |" if has_mass else ""))
    note = ("\n\nEvery row is a probability vector over the same images; the Train tab trains any of them "
            "beside the baseline and DivW runs.")
    if not has_mass:
        note = "\n\nClass-balanced weights need class labels: this dataset has none, so that row is left out." + note
    return "\n".join(lines) + note


def export_scheme(session: Session, scheme: str, *, wb: Workbench) -> list[str]:
    """CSV, .npy and JSON of one baseline weighting of the session's data (the same files as the Export tab's)."""
    features = require_features(session)
    if scheme not in SCHEMES or scheme == "diversity":
        raise error("Choose a weighting to export (diversity weights: the Export tab).")
    try:
        result = wb.scheme_weights(features, session.dataset.labels, SchemeConfig(scheme), n=len(features))
        files = wb.export_scheme(session.dataset, session.embedder, result, features)
    except (ValueError, OSError) as exc:  # OSError: a full or read-only disk
        raise user_error(exc) from None
    return [str(files.csv), str(files.npy), str(files.json)]


def _mass_text(dataset, class_mass: dict) -> str:
    names = class_names_of(dataset, list(class_mass))
    return " · ".join(f"{name}: {mass:.0%}" for name, mass in zip(names, class_mass.values()))
