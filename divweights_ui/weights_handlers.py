"""Weights tab handlers: Algorithm 1 streamed into a live chart, γ sweeps, instant cached γ.

The optimisation runs on a worker thread; its `on_step` rows are streamed by a generator
handler and its `should_stop` turns True when gradio closes the generator (Stop button, closed
page), so a cancelled run ends cleanly and keeps nothing.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from core.diversity import inspect as weights_inspect
from divweights_ui import figures
from divweights_ui.common import STREAM_EVERY_S, _cache, _require_features, _user_error, parse_gammas, weights_key
from divweights_ui.session import Session

def _weights_config(gamma, steps, lr):
    from core.diversity.weights import WeightsConfig

    try:
        config = WeightsConfig(gamma=float(gamma), steps=int(steps), lr=float(lr))
    except (TypeError, ValueError):
        raise gr.Error("γ, steps and learning rate must be numbers.", print_exception=False) from None
    if not 0 <= config.gamma <= 1 or config.steps < 1 or config.lr <= 0:
        raise gr.Error("γ must be between 0 and 1, steps at least 1, and the learning rate above 0.",
                       print_exception=False)
    return config


def weights_numbers(result, running: bool = False) -> str:
    """'uniform VS → weighted VS' line plus entropy and ESS, for people."""
    last = result.history[-1] if result.history else {}
    n = len(result.p)
    vs_weighted = last.get("vs", result.vs_final) if running else result.vs_final
    change = (vs_weighted / result.vs_uniform - 1) * 100 if result.vs_uniform else 0.0
    ess = last.get("ess", weights_inspect.effective_sample_size(result.p))
    status = "optimising…" if running else ("stopped early" if result.stopped else "done")
    return (f"<div id='vs-line'>Vendi Score: uniform <b id='vs-uniform'>{result.vs_uniform:.3f}</b> → "
            f"weighted <b id='vs-weighted'>{vs_weighted:.3f}</b> ({change:+.1f}%)</div>\n\n"
            f"γ = {result.config.gamma:.2f} · entropy {last.get('entropy', float('nan')):.3f} nats "
            f"(uniform {np.log(n):.3f}) · ESS {ess:,.0f} of {n:,} · {status}")


@dataclass
class _Running:
    """Stand-in result while optimising, so weights_numbers can show partial values."""

    p: np.ndarray
    history: list
    config: object
    vs_uniform: float
    vs_final: float = float("nan")
    stopped: bool = False
    last_yield: float = 0.0  # time.monotonic() of the last streamed update


def _streamed(run):
    """Run `run(on_step, should_stop)` on a worker thread; yield each on_step row; return its result.

    When the consumer stops early (Stop button, closed browser: gradio closes the generator),
    should_stop() turns True and the worker ends cleanly before this generator finishes.
    """
    updates: queue.Queue = queue.Queue()
    stop = threading.Event()
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["result"] = run(updates.put, stop.is_set)
        except Exception as exc:  # re-raised below, in the handler's thread
            outcome["error"] = exc
        finally:
            updates.put(None)

    worker = threading.Thread(target=work, name="weights", daemon=True)
    worker.start()
    try:
        while (row := updates.get()) is not None:
            yield row
    finally:
        stop.set()
        worker.join()
    if "error" in outcome:
        error = outcome["error"]
        raise _user_error(error) if isinstance(error, ValueError) else error
    return outcome["result"]


def compute_weights(session: Session, gamma, steps, lr, *, data_root: Path):
    """Generator: stream (session, live chart, numbers) while Algorithm 1 runs; cached γ return at once."""
    from core.diversity.vendi import vendi_score
    from core.diversity.weights import sweep_gamma

    features = _require_features(session)
    config = _weights_config(gamma, steps, lr)
    key = weights_key(config.gamma, config.steps, config.lr)
    if key in session.weights:
        session.current_key = key
        result = session.weights[key]
        yield session, figures.progress_figure(result.history, result.vs_uniform, config.steps), weights_numbers(result)
        return

    def run(on_step, should_stop):
        return sweep_gamma(features, [config.gamma], cache_dir=_cache(data_root, "weights"), steps=config.steps,
                           lr=config.lr, on_step=on_step, should_stop=should_stop)[config.gamma]

    running = _Running(np.full(len(features), 1.0 / len(features)), [], config, vendi_score(features))
    rows = _streamed(run)
    while True:
        try:
            running.history.append(next(rows))
        except StopIteration as done:
            result = done.value
            break
        if len(running.history) == 1 or _due(running):
            yield (session, figures.progress_figure(running.history, running.vs_uniform, config.steps),
                   weights_numbers(running, running=True))
    if not result.stopped:
        session.weights[key] = result
        session.current_key = key
    yield session, figures.progress_figure(result.history, result.vs_uniform, config.steps), weights_numbers(result)


def _due(running) -> bool:
    """True at most once per STREAM_EVERY_S for this run (the browser cannot redraw faster)."""
    now = time.monotonic()
    if now - running.last_yield > STREAM_EVERY_S:
        running.last_yield = now
        return True
    return False


def show_weights(session: Session):
    """(live chart, numbers) of the weights currently chosen, for page load."""
    result = session.current
    if result is None:
        return figures.empty_figure("Press “Compute weights” to start."), "No weights computed yet."
    return figures.progress_figure(result.history, result.vs_uniform, result.config.steps), weights_numbers(result)


def sweep(session: Session, gammas_text: str, steps, lr, chosen_gamma, *, data_root: Path):
    """Generator: γ sweep (one batched, disk-cached run) -> (session, trade-off figure, table markdown).

    Streams a progress line while it runs; Stop or closing the page ends it cleanly.
    """
    from core.diversity.weights import sweep_gamma

    features = _require_features(session)
    config = _weights_config(chosen_gamma, steps, lr)
    gammas = sorted(set(parse_gammas(gammas_text)) | {config.gamma})  # the slider's γ is always marked

    def run(on_step, should_stop):
        return sweep_gamma(features, gammas, cache_dir=_cache(data_root, "weights"), steps=config.steps,
                           lr=config.lr, on_step=on_step, should_stop=should_stop)

    rows = _streamed(run)
    running = _Running(None, [], config, float("nan"))
    while True:
        try:
            row = next(rows)
        except StopIteration as done:
            results = done.value
            break
        if _due(running):
            yield session, gr.skip(), f"Sweeping {len(gammas)} γ values together: step {row['step']} of {config.steps}…"
    if any(result.stopped for result in results.values()):
        yield session, gr.skip(), "Sweep stopped before the end; nothing was kept."
        return
    for gamma, result in results.items():
        session.weights[weights_key(gamma, config.steps, config.lr)] = result
    yield (session, sweep_figure(results, gammas, config.gamma), sweep_table(results, gammas))


def _entropy(p: np.ndarray) -> float:
    return float(-(p * np.log(np.maximum(p, 1e-300))).sum())


def sweep_figure(results: dict, gammas: list[float], chosen: float):
    ess = [weights_inspect.effective_sample_size(results[g].p) for g in gammas]
    entropy = [_entropy(results[g].p) for g in gammas]
    vs = [results[g].vs_final for g in gammas]
    return figures.sweep_figure(gammas, vs, ess, entropy, chosen if chosen in results else None)


def sweep_table(results: dict, gammas: list[float]) -> str:
    table = ["| γ | weighted VS | ESS | entropy |", "|---|---|---|---|"]
    for g in gammas:
        p = results[g].p
        table.append(f"| {g:.2f} | {results[g].vs_final:.3f} | {weights_inspect.effective_sample_size(p):,.0f} "
                     f"| {_entropy(p):.3f} |")
    table.append(f"\nUniform VS: {results[gammas[0]].vs_uniform:.3f}. Every γ here is now cached: "
                 "set it on the slider and press Compute to use it at once.")
    return "\n".join(table)
