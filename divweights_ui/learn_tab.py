"""The Learn tab: the Vendi Score and diversity weights taught interactively, offline and instantly.

Two parts, both computed by core.diversity.playground (the same `vendi_score` / Algorithm-1 engine
the studio uses on real data); this file only declares components and wires them:
- the paper's worked example (eq. 2–4): an editable similarity table K and probabilities p, the
  eigenvalues of diag(√p) K diag(√p) and the score, and Algorithm 1 run on it step by step;
- a toy Gaussian mixture with an imbalance: Algorithm 1 runs live and the mass per mode moves
  towards balance while VS, entropy and ESS update.
"""

from __future__ import annotations

import time
from fractions import Fraction

import gradio as gr
import numpy as np

from divweights.diversity import playground as pg
from divweights.diversity.weights import WeightsConfig
from divweights_ui import figures
from divweights_ui.streaming import user_error

INTERNAL = dict(api_visibility="private")
FRAME_EVERY = 5  # Algorithm-1 steps per streamed frame of the mixture (20 frames per run)
EXAMPLE_FRAME_S = 0.05  # pause between frames of the 4-item example, so the motion can be seen
MAX_EXAMPLE_ITEMS = 40  # the worked example's K is at most 40 × 40 and p 40 long: it stays instant
P_TOLERANCE = 1e-3  # p summing this close to 1 is renormalised (0.5 + 3 × 0.166667 = 1.000001)

INTRO = """## Learn: what the Vendi Score counts, and what diversity weights do
The **Vendi Score** (VS) is the *effective number of distinct items*: 4 copies of one image count
as 1, four unrelated images as 4. **Diversity weights** give each item a probability so that
drawing by those probabilities makes the data as diverse as possible (γ = 1), or a compromise
with staying uniform (γ < 1). Everything here runs instantly, without a dataset."""

EXAMPLE_HELP = """### 1 · The paper's worked example
Four items: item 1 is unlike the others; items 2–4 are the same image three times (similarity 1).
Edit the tables: similarity K must be symmetric, 1 on the diagonal, and possible (positive
semi-definite); p must be non-negative and sum to 1. **What to notice:** with uniform p the score is
1.755, not 4 and not 2 — three copies of one image count as less than three items, but the
duplicate still gets ¾ of the draws. Giving each *kind* half of the mass, p = (½, ⅙, ⅙, ⅙), reaches
exactly 2: that is what **Run Algorithm 1** finds by itself."""

MIXTURE_HELP = """### 2 · A toy mixture: watch mode balancing happen
Points from Gaussian modes, one much bigger than the others (90/10 by default). Similarity is a
Gaussian (RBF) kernel of the distance, with the **bandwidth** as its reach (cosine similarity of raw
2-D points would only see angles). Dot area ∝ weight. **What to notice:** at γ = 0 nothing moves —
every point keeps the uniform share. Raise γ and the small mode's points swell: the mass per mode
moves from 90/10 towards 50/50, the Vendi Score rises, and the effective sample size (ESS) falls —
the price of diversity. The big mode's outskirts swell too: to the kernel, a point far from the
crowd is a rare kind of its own. A very small bandwidth makes every point its own "kind" (weights
stay even); a very large one sees a single blob."""


def _cell(value) -> float:
    """A table entry as a float: a number, '0.25' or an exact fraction '1/6'; anything else NaN (reported)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(Fraction(text)) if "/" in text else float(text)
        except (ValueError, ZeroDivisionError):
            return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _table(table, name: str) -> tuple[np.ndarray | None, str]:
    """A Dataframe value (rows of entries) -> (float array (rows, cols), "") or (None, the problem).

    The size is checked before any entry is converted, so a huge table is refused at once."""
    if isinstance(table, np.ndarray):
        table = table.tolist()
    rows = table.values.tolist() if hasattr(table, "values") else table
    if not isinstance(rows, list) or not all(isinstance(row, (list, tuple)) for row in rows[:MAX_EXAMPLE_ITEMS + 1]):
        return None, f"{name} must be a table of numbers."
    if len(rows) > MAX_EXAMPLE_ITEMS or any(len(row) > MAX_EXAMPLE_ITEMS for row in rows):
        return None, (f"{name} is too large: the Learn tab takes at most {MAX_EXAMPLE_ITEMS} items "
                      f"(a {MAX_EXAMPLE_ITEMS} × {MAX_EXAMPLE_ITEMS} K). Larger data belongs in the Weights tab.")
    widths = sorted({len(row) for row in rows})
    if len(widths) > 1:
        return None, f"Every row of {name} needs the same number of entries; these rows have {widths} entries."
    return np.array([[_cell(value) for value in row] for row in rows], dtype=np.float64).reshape(len(rows), -1), ""


def _probabilities(p: np.ndarray, n: int) -> tuple[np.ndarray | None, str]:
    """p (n,) -> (p renormalised, "") when its sum is within P_TOLERANCE of 1, else (None, the true reason)."""
    if p.shape != (n,):
        return None, f"p needs one number per item ({n}); it has {p.size}."
    blank = np.flatnonzero(~np.isfinite(p))
    if len(blank):
        return None, f"p must be numbers: entry {blank[0] + 1} is blank or not a number."
    negative = np.flatnonzero(p < 0)
    if len(negative):
        return None, f"p must not be negative: entry {negative[0] + 1} is {p[negative[0]]:g}."
    total = float(p.sum())
    if abs(total - 1.0) > P_TOLERANCE:
        return None, (f"p must sum to 1 (within {P_TOLERANCE:g}); these sum to {total:.6g}. Fractions such as "
                      "1/6 are exact.")
    return p / total, ""


def _number(value, name: str, low: float, high: float | None = None) -> float:
    """A slider or field value as a float within [low, high] (high None: above low), or gr.Error."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (low <= number and (high is None or number <= high)) or (high is None and number == low):
        bound = f"between {low:g} and {high:g}" if high is not None else f"above {low:g}"
        raise gr.Error(f"{name} must be a number {bound} (got {value!r}).", print_exception=False)
    return number


def example_view(K_table, p_table):
    """-> (eigenvalue figure, explanation). Invalid input is explained, never raised."""
    K, problem = _table(K_table, "K")
    problems = [problem] if problem else pg.kernel_problems(K)
    if not problems:
        p, problem = _table(p_table, "p")
        if not problem:
            p, problem = _probabilities(p.reshape(-1), K.shape[0])
        problems = [problem] if problem else []
    if problems:
        return figures.empty_figure("Fix the tables to see the eigenvalues."), "⚠️ " + " ".join(problems)
    return _view(K, p)


def _view(K: np.ndarray, p: np.ndarray):
    """The figure and text of a checked K (n, n) and p (n,)."""
    lam = pg.kernel_spectrum(K, p)
    vs = pg.score_from_eigenvalues(lam)
    K2, p2, groups = pg.merge_duplicates(K, p)
    merged = ""
    if len(groups) < K.shape[0]:
        parts = ", ".join(f"{{{', '.join(str(i + 1) for i in g)}}} with p = {m:.3f}" for g, m in zip(groups, p2))
        merged = (f"\n\nIdentical items merged ({parts}): the {len(groups)}-item reduction has the same score, "
                  f"**{pg.kernel_score(K2, p2):.4f}**.")
    text = (f"**Vendi Score {vs:.4f}**: these {K.shape[0]} items are worth {vs:.2f} distinct items "
            f"(exp of the entropy of the eigenvalues {', '.join(f'{v:.3f}' for v in lam)}).{merged}")
    return figures.eigenvalue_figure(lam, vs), text


def example_run(K_table, gamma):
    """Generator: Algorithm 1 on the example's K from uniform p -> (p table, figure, explanation)."""
    K, problem = _table(K_table, "K")
    problems = [problem] if problem else pg.kernel_problems(K)
    if problems:
        raise gr.Error(" ".join(problems), print_exception=False)
    gamma = _number(gamma, "γ", 0.0, 1.0)
    stepper = pg.Stepper(pg.kernel_features(K), WeightsConfig(gamma=gamma))
    while not stepper.done:
        row = stepper.step(4)
        p = stepper.p
        figure, text = _view(K, p)
        yield ([[round(float(v), 6) for v in p]], figure,
               f"Algorithm 1, γ = {gamma:.2f}, step {row['step']} of {stepper.config.steps}: {text}")
        time.sleep(EXAMPLE_FRAME_S)


def mixture_frames(modes, majority, spread, n, gamma, q, bandwidth, seed, pause_s: float = 0.0):
    """Generator: Algorithm 1 on the toy mixture, one frame every FRAME_EVERY steps ->
    (scatter, mass-per-mode figure, numbers markdown)."""
    gamma = _number(gamma, "γ", 0.0, 1.0)
    q = _number(q, "The order q", 0.0, None)
    bandwidth = _number(bandwidth, "The kernel bandwidth", 0.0, None)
    try:
        config = pg.MixtureConfig(int(modes), float(majority), float(spread), int(n), int(seed or 0))
        points, labels = pg.toy_mixture(config)
        features = pg.random_fourier_features(points, float(bandwidth), seed=config.seed)
        stepper = pg.Stepper(features, WeightsConfig(gamma=float(gamma)))
    except (TypeError, ValueError) as exc:
        raise user_error(exc) from None
    check = pg.rff_check(points, features, float(bandwidth)) if config.n <= pg.MAX_EXACT_CHECK else None
    started = time.perf_counter()
    yield _mixture_frame(points, labels, features, stepper, q, check, started)
    while not stepper.done:
        stepper.step(FRAME_EVERY)
        yield _mixture_frame(points, labels, features, stepper, q, check, started)
        if pause_s:
            time.sleep(pause_s)


def _mixture_frame(points, labels, features, stepper, q, check, started):
    p = stepper.p
    frame = pg.snapshot(stepper.F, labels, p, stepper.step_count, float(q))  # the reduced features: r×r
    elapsed = time.perf_counter() - started
    rate = f"{stepper.step_count / elapsed:,.0f} steps/s" if stepper.step_count and elapsed > 0 else "starting"
    shares = " / ".join(f"{m:.0%}" for m in frame.mode_mass)
    uniform = " / ".join(f"{m:.0%}" for m in frame.mode_mass_uniform)
    kernel = ("" if check is None else
              f" · RBF through {features.shape[1] // 2} random Fourier features: VS error {check.relative_error:.1%} "
              f"against the exact {len(p)}×{len(p)} kernel (uniform p)")
    order = "VS" if float(q) == 1.0 else f"VS (order q = {float(q):g})"
    text = (f"**Mass per mode:** uniform {uniform} → weighted **{shares}** (step {frame.step} of "
            f"{stepper.config.steps}, γ = {stepper.config.gamma:.2f})\n\n"
            f"{order} **{frame.vs:.2f}** · entropy {frame.entropy:.3f} of {np.log(len(p)):.3f} nats · "
            f"ESS {frame.ess:,.0f} of {len(p):,} · {rate}{kernel}")
    title = f"Toy mixture, dot area ∝ weight (step {frame.step})"
    return (figures.mixture_figure(points, labels, p, title),
            figures.mode_mass_figure(frame.mode_mass_uniform, frame.mode_mass), text)


def _fractions_table(K) -> list[list[str]]:
    return [[f"{float(v):g}" for v in row] for row in K]


def _uniform(K_table):
    """p = 1/n for each item of the K table (n from its rows; a K too large or ragged: nothing changes)."""
    K, problem = _table(K_table, "K")
    return gr.skip() if problem or not K.size else [[f"1/{K.shape[0]}"] * K.shape[0]]


def _streamed_mixture(*values):
    yield from mixture_frames(*values, pause_s=0.0)


def _fractions(p) -> list[list[str]]:
    """p as one table row of exact fractions ('1/6'), so the table's sum is exactly 1."""
    return [[str(Fraction(float(v)).limit_denominator(1000)) for v in p]]


def build_learn_tab(tab: gr.Tab | None = None, limit=None) -> None:
    """Components and wiring of the Learn tab (inside `tab`: opening it runs the mixture once).
    limit: the studio's JobLimit (divweights_ui.job_limit): its per-page cap covers these events too."""
    wc = WeightsConfig()
    mc = pg.MixtureConfig()
    gr.Markdown(INTRO)
    gr.Markdown(EXAMPLE_HELP)
    headers = [f"item {i + 1}" for i in range(4)]
    with gr.Row():
        with gr.Column(scale=3):
            # text cells: exact fractions such as 1/6 can be typed (parsed by _cell)
            K_table = gr.Dataframe(value=_fractions_table(pg.PAPER_K), headers=headers, datatype="str", type="array",
                                   row_count=4, column_count=4, interactive=True, label="Similarity K (edit me)",
                                   elem_id="dw-learn-k")
            p_table = gr.Dataframe(value=_fractions([0.25] * 4), headers=headers, datatype="str", type="array",
                                   row_count=1, column_count=4, interactive=True,
                                   label="Probabilities p (sum to 1)", elem_id="dw-learn-p")
            with gr.Row():
                uniform_btn = gr.Button("Uniform p", size="sm")
                balanced_btn = gr.Button("p = (½, ⅙, ⅙, ⅙)", size="sm", elem_id="dw-learn-balanced")
                reset_btn = gr.Button("Paper's K", size="sm", elem_id="dw-learn-reset")
            with gr.Row():
                example_gamma = gr.Slider(0, 1, value=1.0, step=0.05, label="γ for Algorithm 1",
                                          info="1 = only diversity; lower keeps p closer to uniform")
                run_example_btn = gr.Button("Run Algorithm 1", variant="primary", elem_id="dw-learn-run-example")
        with gr.Column(scale=2):
            first_figure, first_text = example_view(pg.PAPER_K.tolist(), [[0.25] * 4])  # tiny: 4×4
            example_text = gr.Markdown(first_text, elem_id="dw-learn-example")
            eigen_plot = gr.Plot(first_figure, label="Eigenvalues", elem_id="dw-learn-eigen")
    gr.Markdown(MIXTURE_HELP)
    with gr.Row():
        with gr.Column(scale=2):
            gamma = gr.Slider(0, 1, value=wc.gamma, step=0.05, label="γ (diversity strength)",
                              info="0 = stay uniform, 1 = only diversity", elem_id="dw-learn-gamma")
            bandwidth = gr.Slider(0.05, 2.0, value=0.5, step=0.05, label="Kernel bandwidth",
                                  info="How far similarity reaches (RBF σ)", elem_id="dw-learn-bandwidth")
            q = gr.Slider(0.25, 4, value=1.0, step=0.25, label="Order q of the score shown",
                          info="1 = the paper's Shannon VS; <1 counts rare points more, >1 common ones "
                               "(the weights always optimise q = 1)", elem_id="dw-learn-q")
            with gr.Row():
                modes = gr.Slider(2, 6, value=mc.modes, step=1, label="Modes", info="Gaussian blobs on a circle")
                majority = gr.Slider(0.5, 0.98, value=mc.majority, step=0.01, label="Share of the big mode",
                                     info="0.9 = 90/10", elem_id="dw-learn-majority")
            with gr.Row():
                spread = gr.Slider(0.05, 1.0, value=mc.spread, step=0.05, label="Spread", info="Width of each blob")
                n = gr.Slider(100, pg.MAX_TOY_POINTS, value=mc.n, step=50, label="Points (n)", info="At most 2,000")
                seed = gr.Number(value=mc.seed, precision=0, label="Seed", minimum=0, info="Same seed, same points")
            run_btn = gr.Button("Run Algorithm 1 on the mixture", variant="primary", elem_id="dw-learn-run")
        with gr.Column(scale=3):
            numbers = gr.Markdown("Press **Run** or move a slider.", elem_id="dw-learn-mass")
            scatter = gr.Plot(label="Mixture", elem_id="dw-learn-scatter")
            mass = gr.Plot(label="Mass per mode", elem_id="dw-learn-mode-mass")

    # ---- wiring
    # every event that computes is under the page's job limit (checked before gradio queues it)
    checked = (lambda name: {"validator": getattr(limit, name)}) if limit is not None else (lambda name: {})
    example_io = dict(inputs=[K_table, p_table], outputs=[eigen_plot, example_text], **checked("learn_example"))
    K_table.input(example_view, api_name="learn_example", **example_io)  # edits only: runs write p
    p_table.input(example_view, **example_io, **INTERNAL)
    uniform_btn.click(_uniform, inputs=[K_table], outputs=[p_table], **INTERNAL).then(example_view, **example_io,
                                                                                      **INTERNAL)
    balanced_btn.click(lambda: _fractions(pg.PAPER_P_BALANCED), outputs=[p_table],
                       **INTERNAL).then(example_view, **example_io, **INTERNAL)
    reset_btn.click(lambda: (_fractions_table(pg.PAPER_K), _fractions([0.25] * 4)), outputs=[K_table, p_table],
                    **INTERNAL).then(example_view, **example_io, **INTERNAL)
    run_example_btn.click(example_run, inputs=[K_table, example_gamma], outputs=[p_table, eigen_plot, example_text],
                          api_name="learn_example_run", **checked("learn_example_run"))
    mixture_io = dict(inputs=[modes, majority, spread, n, gamma, q, bandwidth, seed], outputs=[scatter, mass, numbers],
                      **checked("learn_mixture"))
    run = run_btn.click(_streamed_mixture, api_name="learn_mixture", **mixture_io)
    for slider in (gamma, bandwidth, q, modes, majority, spread, n):
        slider.release(_streamed_mixture, trigger_mode="always_last", cancels=[run], **mixture_io, **INTERNAL)
    if tab is not None:  # the mixture moves as soon as the tab is opened
        tab.select(_streamed_mixture, trigger_mode="always_last", **mixture_io, **INTERNAL)
