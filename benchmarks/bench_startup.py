"""How fast the studio starts, and what the live weights chart costs.

Prints two tables:
1. `python app.py` on a fresh data root (cold) and again on the same root (warm): seconds until the
   page is served (HTTP 200 on /) and until the start dataset is ready (the studio's terminal line
   "[divweights] start dataset ready"). The start dataset is the studio's default: Fashion-MNIST
   T-shirt/Trouser, 1,000 each, when Debian's dataset-fashion-mnist is installed, else digits.
2. The live chart's overhead at n = 2,000 (Fashion-MNIST pixels, else random images of that size):
   the Weights tab's handler (workbench + streamed plotly figures, consumed as gradio would) against
   `optimise_weights` alone, same features and settings, nothing cached. Medians of --repeats.

    python benchmarks/bench_startup.py [--repeats 3] [--skip-app]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

READY_LINE = "[divweights] start dataset ready"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(data_root: Path, timeout: float = 900.0) -> tuple[float, float]:
    """(seconds to page served, seconds to start dataset ready) of one `python app.py`."""
    port = free_port()
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py", "--data-dir", str(data_root), "--port", str(port)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=os.environ | {"PYTHONUNBUFFERED": "1"})
    ready = threading.Event()
    ready_at: list[float] = []

    def read() -> None:
        for line in process.stdout:
            if READY_LINE in line and not ready_at:
                ready_at.append(time.perf_counter() - began)
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    served = None
    try:
        while served is None and time.perf_counter() - began < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        served = time.perf_counter() - began
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("the studio exited before serving the page")
                time.sleep(0.1)
        if not ready.wait(max(1.0, timeout - (time.perf_counter() - began))):
            raise RuntimeError("the start dataset was not ready in time")
        return served, ready_at[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def features_2000() -> tuple[np.ndarray, str]:
    try:
        from core.data.datasets import load_dataset

        data = load_dataset("fashion-mnist", classes=(0, 1), per_class=1000, seed=0)
        return data.images.reshape(2000, -1).astype(np.float32) / 255.0, "Fashion-MNIST 0/1 pixels"
    except Exception:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (2000, 784)).astype(np.float32) / 255.0, "random 28x28 images"


def handler_path(features: np.ndarray, steps: int) -> float:
    """The Weights tab's compute_weights, consumed as gradio would, on a fresh workbench (no cache)."""
    from core.data.dataset import make_dataset
    from core.data.datasets import DatasetSpec
    from core.data.embed import EmbedConfig
    from core.results import Prepared
    from core.workbench import Workbench
    from divweights_ui.session import Session
    from divweights_ui.weights_handlers import compute_weights

    images = np.zeros((len(features), 1, 1, 1), np.uint8)
    dataset = make_dataset("bench", images, None, None, [str(i) for i in range(len(features))], "benchmark")
    with tempfile.TemporaryDirectory() as root:
        session = Session(ready=Prepared(DatasetSpec("bench"), dataset, features, EmbedConfig.parse("pixels"), False))
        began = time.perf_counter()
        for _ in compute_weights(session, 0.8, steps, 0.1, wb=Workbench(root)):
            pass
        return time.perf_counter() - began


def engine_alone(features: np.ndarray, steps: int) -> float:
    from core.diversity.weights import optimise_weights

    began = time.perf_counter()
    optimise_weights(features, gamma=0.8, steps=steps, device="cpu")
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--skip-app", action="store_true", help="only the live-chart table")
    args = parser.parse_args()

    if not args.skip_app:
        rows = {"cold": [], "warm": []}
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as root:
                for kind in ("cold", "warm"):
                    rows[kind].append(start_app(Path(root) / "data"))
        print(f"{'start':<6} {'page served (s)':>16} {'start set ready (s)':>20}   (median of {args.repeats})")
        for kind, times in rows.items():
            served, ready = (statistics.median(t[i] for t in times) for i in (0, 1))
            print(f"{kind:<6} {served:>16.1f} {ready:>20.1f}")
        print()

    features, source = features_2000()
    engine_alone(features[:200], 2)  # warm imports (plotly's first figure included) and BLAS
    handler_path(features[:200], 2)
    handler = statistics.median(handler_path(features, args.steps) for _ in range(args.repeats))
    engine = statistics.median(engine_alone(features, args.steps) for _ in range(args.repeats))
    print(f"live chart at n = 2,000, d = {features.shape[1]} ({source}), {args.steps} steps, median of {args.repeats}")
    print(f"{'path':<36} {'seconds':>8}")
    print(f"{'optimise_weights alone':<36} {engine:>8.2f}")
    print(f"{'Weights tab handler (live chart)':<36} {handler:>8.2f}")
    print(f"{'overhead':<36} {100 * (handler / engine - 1):>7.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
