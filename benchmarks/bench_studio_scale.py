"""The studio at the size of a real dataset: every tab's handler on Fashion-MNIST at n = 2,000 / 20,000 / 60,000.

    python benchmarks/bench_studio_scale.py [--n 2000 20000 60000] [--quick] [--skip-train]

Drives the same handler functions the studio's buttons call (divweights_ui.handlers, weights_handlers,
explain_handlers, map_handlers, train_tab) on a fresh data root, so nothing is cached from before.
Each n runs in its own subprocess so that each column's peak RSS is its own. Per operation it prints
the wall seconds, the time to the first page update (streamed handlers: load, weights, sweep, Suggest
γ), the longest gap between two updates, the largest update's JSON size and the peak RSS seen while
the operation ran (sampled from /proc/self/statm every 10 ms).

Data: Fashion-MNIST's training set (pixels, 784-dimensional features): 200 / 2,000 images per class for
2,000 / 20,000, all 60,000 for 60,000. Without /usr/share/datasets/fashion-mnist the script says so and uses
synthetic clustered 28×28 images of the same sizes instead.

Targets (issue 22): no page update over 2 s except the named long jobs (embed, weights, sweep, map
layout, training; marked "long" below), which stream progress and stop; peak RSS under 4 GB at 60,000.
UMAP's first call in a process compiles numba code (~45 s): it is warmed first and reported apart.
--quick: 5 optimiser steps instead of 100 (long jobs shorter; the other rows are the same).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FASHION = Path("/usr/share/datasets/fashion-mnist")
PAGE_S = 4096 if not hasattr(os, "sysconf") else os.sysconf("SC_PAGE_SIZE")
LONG = {"load + embed", "weights", "sweep (3 γ)", "suggest γ", "map: UMAP layout (cold)", "map: UMAP every image (cold)"}


class RssPeak:
    """Peak resident memory while a block runs, sampled from /proc/self/statm every 10 ms."""

    def __init__(self):
        self.peak, self._stop = 0, threading.Event()

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE_S

    def _watch(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.now())

    def __enter__(self):
        self.peak = self.now()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def payload_bytes(value) -> int:
    """Rough size of what one update sends to the page: plotly figures as JSON, the rest as text."""
    size = 0
    for item in value if isinstance(value, tuple) else (value,):
        if hasattr(item, "to_json"):
            size += len(item.to_json())
        elif isinstance(item, (str, list, dict)):
            size += len(json.dumps(item, default=str))
    return size


def measure(rows: list, name: str, call):
    """Run `call()` (a plain call or a generator of page updates); record one row; return its result."""
    updates, gaps, largest = 0, [], 0
    first = None
    with RssPeak() as rss:
        start = last = time.perf_counter()
        out = call()
        if hasattr(out, "__next__"):  # a streamed handler: drain it as gradio would
            value = None
            for value in out:
                now = time.perf_counter()
                first = now - start if first is None else first
                gaps.append(now - last)
                last, updates = now, updates + 1
                largest = max(largest, payload_bytes(value))
            out = value
        else:
            largest = payload_bytes(out)
        seconds = time.perf_counter() - start
    rows.append({"op": name, "s": seconds, "first_s": first if first is not None else seconds,
                 "max_gap_s": max(gaps) if gaps else seconds, "updates": updates, "kb": largest / 1e3,
                 "rss_mb": rss.peak / 2**20})
    return out


def one_n(n: int, quick: bool, skip_train: bool) -> list[dict]:
    """Every operation at one n (in this process); -> rows."""
    from divweights_ui import explain_handlers as explain
    from divweights_ui import handlers as h
    from divweights_ui import train_tab
    from divweights_ui.common import SOURCES, weights_key
    from divweights_ui.map_handlers import draw_map, draw_map_streamed, recolour_map
    from divweights_ui.session import Session
    from divweights_ui.weights_handlers import compute_weights, sweep
    from core.data import projection
    from core.workbench import Workbench

    steps = 5 if quick else 100
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as root:
        if FASHION.is_dir():
            classes, per_class = "", (None if n >= 60000 else n // 10)
            kind, folder, builtin = SOURCES[0], "", "fashion-mnist"
        else:
            kind, builtin, classes, per_class, folder = SOURCES[2], "", "", None, synthetic_folder(root, n)
        wb = Workbench(root)
        session = Session()
        progress = lambda *a, **k: None  # noqa: E731  (gr.Progress stand-in)
        measure(rows, "load + embed", lambda: h.load_dataset(session, kind, builtin, classes, per_class, 0, None,
                                                               folder, "pixels", wb=wb, progress=progress))
        n = len(session.dataset)
        measure(rows, "dataset preview", lambda: h.dataset_preview(session, wb=wb))
        measure(rows, "class choices", lambda: explain.class_choices(session))
        measure(rows, "weights", lambda: compute_weights(session, 0.8, steps, 0.1, wb=wb))
        key = weights_key(0.8, steps, 0.1)
        measure(rows, "galleries (top/bottom)", lambda: h.top_bottom(session, 12, 64, wb=wb))
        measure(rows, "browse page 1", lambda: explain.browse(session, explain.ORDERS[0], explain.ALL_CLASSES, 1, wb=wb))
        measure(rows, "browse page 40, class 3", lambda: explain.browse(session, explain.ORDERS[1], "3", 40, wb=wb))
        measure(rows, "why (one image)", lambda: explain.why_weight(session, n // 2, 6, wb=wb))
        measure(rows, "modes", lambda: explain.show_modes(session, 4, 8, wb=wb))
        measure(rows, "map: PCA, 3,000 dots", lambda: draw_map(session, "PCA", False, None, wb=wb))
        measure(rows, "map: PCA, every image", lambda: draw_map(session, "PCA", False, n, wb=wb))
        warm = time.perf_counter()
        projection.warmup()  # numba compile: once per process, not part of any one operation
        warm_s = time.perf_counter() - warm
        session.layout = None
        measure(rows, "map: auto after new data", lambda: recolour_map(session, "UMAP", False, None, wb=wb))
        session.layout = None
        measure(rows, "map: UMAP layout (cold)", lambda: draw_map_streamed(session, "UMAP", False, None, wb=wb))
        measure(rows, "map: recolour (cached)", lambda: recolour_map(session, "UMAP", True, None, wb=wb))
        if not quick:
            session.layout = None
            measure(rows, "map: UMAP every image (cold)", lambda: draw_map_streamed(session, "UMAP", False, n, wb=wb))
        measure(rows, "export (CSV/NPY + why)", lambda: h.export(session, 64, wb=wb))
        measure(rows, "sweep (3 γ)", lambda: sweep(session, "0.2, 0.5, 1", steps, 0.1, 0.8, wb=wb))
        measure(rows, "suggest γ", lambda: explain.suggest(session, 25, 0, steps, 0.1, wb=wb))
        if not skip_train:
            message, _ = measure(rows, "train: create + start", lambda: train_tab.start_training(
                session, "quick", "cpu", 20, 64, False, [key], wb=wb))
            measure(rows, "train: first status", lambda: first_status(wb))
            for run in wb.list_runs():
                if run["state"] in ("queued", "running", "created"):
                    try:
                        wb.stop_run(wb.run_dir(run["run_id"]))
                    except ValueError:
                        pass
        rows.append({"op": "UMAP warm-up (numba, once)", "s": warm_s, "first_s": warm_s, "max_gap_s": warm_s,
                     "updates": 0, "kb": 0.0, "rss_mb": 0.0})
        rows.append({"op": "process peak RSS", "s": 0.0, "first_s": 0.0, "max_gap_s": 0.0, "updates": 0, "kb": 0.0,
                     "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "n": n})
    return rows


def first_status(wb, timeout_s: float = 120.0) -> str:
    """Wait for the run's first status beyond 'created' (its process has started)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        states = [run["state"] for run in wb.list_runs()]
        if states and all(s != "created" for s in states):
            return ",".join(states)
        time.sleep(0.05)
    return "created"


def synthetic_folder(root: str, n: int) -> str:
    """Synthetic clustered 28×28 greyscale images as an .npz under the data root (no Fashion-MNIST here)."""
    import numpy as np

    rng = np.random.default_rng(0)
    centres = rng.integers(0, 255, size=(10, 28, 28, 1))
    labels = rng.integers(0, 10, size=n)
    noise = rng.normal(0, 40, size=(n, 28, 28, 1))
    images = np.clip(centres[labels] + noise, 0, 255).astype(np.uint8)
    np.savez(Path(root) / "synthetic.npz", images=images, labels=labels)
    return "synthetic.npz"


def table(results: dict[int, list[dict]]) -> str:
    ns = sorted(results)
    ops = list(dict.fromkeys(row["op"] for n in ns for row in results[n]))
    head = f"{'operation':<28}" + "".join(f" | {f'n={n:,}':^37}" for n in ns)
    sub = f"{'':<28}" + "".join(f" | {'total s':>7} {'update s':>8} {'KB':>7} {'RSS MB':>8}  " for _ in ns)
    lines = [head, sub, "-" * len(sub)]
    for op in ops:
        cells = []
        for n in ns:
            row = next((r for r in results[n] if r["op"] == op), None)
            if row is None:
                cells.append(f" | {'':37}")
                continue
            # a page update: the longest wait between two updates (a plain handler: its whole time)
            flag = "*" if op not in LONG and row["max_gap_s"] > 2 and not op.startswith(("UMAP", "process")) else " "
            cells.append(f" | {row['s']:>7.2f} {row['max_gap_s']:>8.2f} {row['kb']:>7.0f} {row['rss_mb']:>8.0f} {flag}")
        lines.append(f"{op + (' (long)' if op in LONG else ''):<28}" + "".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 20000, 60000])
    parser.add_argument("--quick", action="store_true", help="5 optimiser steps instead of 100")
    parser.add_argument("--skip-train", action="store_true", help="leave out creating and starting a run")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one n in this process -> JSON
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one_n(args.one, args.quick, args.skip_train)))
        return
    if not FASHION.is_dir():
        print(f"NOTE: {FASHION} is absent: synthetic 28×28 images stand in for Fashion-MNIST.")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{'quick: 5' if args.quick else '100'} optimiser steps; pixel features (784-d).")
    results = {}
    for n in args.n:
        cmd = [sys.executable, __file__, "--one", str(n)] + ["--quick"] * args.quick + ["--skip-train"] * args.skip_train
        done = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(f"n={n}: failed\n{done.stderr[-3000:]}")
            continue
        results[n] = json.loads(line[7:])
        print(f"n={n:,} done", flush=True)
        if n != args.n[-1]:
            print(table(results), flush=True)  # so far (the whole table again at the end)
    print(table(results))
    print("total s: the handler's wall time; update s: the longest wait for a page update (streamed handlers: "
          "between two updates); KB: the largest update's JSON; RSS MB: peak resident memory while it ran "
          "(the last row: the process peak). *: a page update over 2 s outside the named long jobs.")


if __name__ == "__main__":
    main()
