"""The studio under load: N sessions × R rounds through gradio_client, and what the studio's memory does.

Starts the studio in its own process (the app's `build_demo` and launch settings, 127.0.0.1 only, on a
fresh data root unless --data-dir), then runs N client sessions at once, each doing R rounds of
load_dataset → compute_weights → top_bottom → umap (PCA) → export_weights. Prints

1. latency percentiles (p50 / p90 / max, seconds) per operation, and how many calls hit the client
   time-out (--timeout) or failed;
2. the studio process's RSS: once started, after one warm-up flow has been released (first-call imports
   and buffers are not per-session memory), at its peak (VmHWM), right after the sessions end, and once
   their data is released (gradio frees a session's state `--session-ttl` seconds after its last
   action; the default here is short so that the release can be seen — the studio's own is 2 hours),
   with the shared data cache at each point: the bytes and entries it keeps (≤ its cap) and the bytes of
   datasets in use (kept, or held by a live session).

Sessions load the same built-in subsets (round r: seed r, so R distinct specs) unless --distinct, where
each session draws its own seed (N·R specs, the worst case for the shared cache).

    python benchmarks/bench_load.py [--sessions 15] [--rounds 3] [--source fashion-mnist] [--per-class 1000]
                                    [--steps 100] [--timeout 120] [--session-ttl 30] [--distinct]

Figures depend on the machine being idle: run it alone. `--serve` is the studio side (used internally).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPERATIONS = ("load_dataset", "compute_weights", "top_bottom", "umap", "export_weights")
URL_LINE = "[bench] studio at "


# ----------------------------------------------------------------------------- the studio side


def serve(args) -> int:
    """The studio as app.py runs it, with a short session TTL and a /bench_memory endpoint."""
    from divweights_ui import handlers as h
    from divweights_ui.layout import build_demo
    from divweights_ui.serving import launch_kwargs

    data_root = Path(args.data_dir)
    choice = h.StartupChoice(args.source, tuple(args.classes), args.per_class, steps=args.steps)
    demo = build_demo(data_root, choice, extra_tabs=True, session_ttl_s=args.session_ttl)
    if not demo.start_set.wait(timeout=args.start_timeout):
        print("[bench] the start dataset was not ready in time", flush=True)
        return 1
    from core.data import projection

    projection.start_warmup().join(args.start_timeout)  # UMAP's one-off compile is not part of the load
    demo.queue(default_concurrency_limit=4, max_size=64).launch(
        server_name="127.0.0.1", server_port=args.port, quiet=True, prevent_thread_lock=True,
        **launch_kwargs(data_root, "127.0.0.1"))
    print(f"{URL_LINE}{demo.local_url}", flush=True)
    memo = getattr(demo.workbench, "shared", None)
    while True:  # the driver reads the cache's state from this file (no extra route on the studio)
        state = {"bytes": memo.held_bytes if memo else 0, "live": memo.live_bytes if memo else 0,
                 "entries": len(memo) if memo else 0}
        Path(args.data_dir, "bench_memory.json").write_text(json.dumps(state))
        time.sleep(0.5)


# ----------------------------------------------------------------------------- the driver side


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cache_state(data_root: Path) -> dict:
    try:
        return json.loads((data_root / "bench_memory.json").read_text())
    except (OSError, ValueError):
        return {"bytes": 0, "live": 0, "entries": 0}


def start_studio(args, data_root: Path) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, __file__, "--serve", "--data-dir", str(data_root), "--port", str(free_port()),
               "--source", args.source, "--per-class", str(args.per_class), "--steps", str(args.steps),
               "--session-ttl", str(args.session_ttl), "--classes", *map(str, args.classes)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=os.environ | {"PYTHONUNBUFFERED": "1"})
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout:
            if args.verbose:
                print("   studio:", line.rstrip(), flush=True)
            if line.startswith(URL_LINE):
                found.append(line[len(URL_LINE):].strip())
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(args.start_timeout) or not found:
        process.kill()
        raise SystemExit("the studio did not start (run with --verbose to see its output)")
    return process, found[0]


def one_session(url: str, session: int, args, latencies: dict, problems: dict) -> None:
    """R rounds of one visitor (one gradio_client session)."""
    from gradio_client import Client

    from divweights_ui.common import SOURCES

    try:
        client = Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": args.timeout})
    except Exception as exc:  # noqa: BLE001 - a busy studio may not even answer the connection
        problems["time-out" if "timed out" in str(exc).lower() else "failed"].append(f"connect: {str(exc)[:80]}")
        return
    for r in range(args.rounds):
        seed = session * args.rounds + r if args.distinct else r
        calls = [("load_dataset", (SOURCES[0], args.source, ", ".join(map(str, args.classes)), args.per_class,
                                   seed, None, "", "pixels")),
                 ("compute_weights", (0.8, args.steps, 0.1)),
                 ("top_bottom", (12, 64)),
                 ("umap", ("PCA", False, 3000)),
                 ("export_weights", (64,))]
        for name, inputs in calls:
            began = time.perf_counter()
            job = client.submit(*inputs, api_name=f"/{name}")
            try:
                job.result(timeout=args.timeout)
                latencies[name].append(time.perf_counter() - began)
            except TimeoutError:
                problems["time-out"].append(name)
                job.cancel()
                break  # the rest of this round depends on it
            except Exception as exc:  # noqa: BLE001 - counted and named, the load goes on
                problems["failed"].append(f"{name}: {str(exc)[:80]}")
                break


def percentile_rows(latencies: dict) -> list[str]:
    rows = [f"{'operation':<16} {'calls':>5} {'p50 s':>7} {'p90 s':>7} {'max s':>7}"]
    for name in OPERATIONS:
        values = np.array(latencies[name])
        if values.size:
            rows.append(f"{name:<16} {values.size:>5} {np.percentile(values, 50):>7.2f} "
                        f"{np.percentile(values, 90):>7.2f} {values.max():>7.2f}")
        else:
            rows.append(f"{name:<16} {0:>5} {'-':>7} {'-':>7} {'-':>7}")
    return rows


def wait_for_release(pid: int, data_root: Path, args) -> tuple[float, dict]:
    """RSS once gradio has expired the sessions' state (TTL + a margin) and the cache has settled."""
    deadline = time.monotonic() + args.session_ttl + args.release_wait
    time.sleep(args.session_ttl)
    last = rss_mb(pid)
    while time.monotonic() < deadline:  # settle: RSS stops falling
        time.sleep(2)
        now = rss_mb(pid)
        if abs(now - last) < 1:
            break
        last = now
    return rss_mb(pid), cache_state(data_root)


def drive(args) -> int:
    data_root = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="dw-load-"))
    process, url = start_studio(args, data_root)
    try:
        # one flow first, released: imports and one-off buffers of the first call are not per-session memory
        latencies = {name: [] for name in OPERATIONS}
        problems = {"time-out": [], "failed": []}
        fresh = rss_mb(process.pid)
        one_session(url, args.sessions, argparse.Namespace(**vars(args) | {"rounds": 1}), latencies, problems)
        before, cache_before = wait_for_release(process.pid, data_root, args)
        latencies = {name: [] for name in OPERATIONS}
        began = time.perf_counter()
        with ThreadPoolExecutor(args.sessions) as pool:
            for future in [pool.submit(one_session, url, s, args, latencies, problems) for s in range(args.sessions)]:
                future.result()
        wall = time.perf_counter() - began
        ended, cache_ended = rss_mb(process.pid), cache_state(data_root)
        peak = rss_mb(process.pid, "VmHWM")
        released, cache_released = wait_for_release(process.pid, data_root, args)
    finally:
        process.terminate()
        process.wait(30)
        if not args.data_dir:
            shutil.rmtree(data_root, ignore_errors=True)

    flows = args.sessions * args.rounds
    print(f"\n{args.sessions} sessions × {args.rounds} rounds ({flows} flows) of {args.source} classes "
          f"{args.classes}, {args.per_class}/class, pixels, {args.steps} steps; "
          f"{'distinct seeds per session' if args.distinct else 'the same spec per round'}; {wall:.0f} s\n")
    print("\n".join(percentile_rows(latencies)))
    print(f"\nclient time-outs (> {args.timeout:.0f} s): {len(problems['time-out'])}; failed calls: "
          f"{len(problems['failed'])}" + (f" (first: {problems['failed'][0]})" if problems["failed"] else ""))
    print(f"\n{'studio RSS':<34} {'MB':>8} {'cache MB':>9} {'entries':>8} {'in use MB':>10}")
    for label, rss, cache in [("started (start set ready)", fresh, None),
                              ("after one warm-up flow, released", before, cache_before), ("peak (VmHWM)", peak, None),
                              ("when the sessions ended", ended, cache_ended),
                              (f"released (after {args.session_ttl:.0f} s TTL)", released, cache_released)]:
        cache_mb = "-" if cache is None else f"{cache['bytes'] / 2**20:.0f}"
        entries = "-" if cache is None else str(cache["entries"])
        live = "-" if cache is None else f"{cache['live'] / 2**20:.0f}"
        print(f"{label:<34} {rss:>8.0f} {cache_mb:>9} {entries:>8} {live:>10}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", default="fashion-mnist", help="built-in set (digits works anywhere)")
    parser.add_argument("--classes", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100, help="weights steps per compute")
    parser.add_argument("--timeout", type=float, default=120.0, help="client time-out per call, seconds")
    parser.add_argument("--session-ttl", type=float, default=30.0, help="the studio's session TTL, seconds")
    parser.add_argument("--release-wait", type=float, default=60.0, help="at most this long for RSS to settle")
    parser.add_argument("--start-timeout", type=float, default=900.0)
    parser.add_argument("--distinct", action="store_true", help="every session and round loads its own subset")
    parser.add_argument("--data-dir", default=None, help="default: a fresh temporary data root")
    parser.add_argument("--verbose", action="store_true", help="show the studio's output")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.rounds < 1 or args.sessions > 200 or args.rounds > 50:
        parser.error("sessions must be 1..200 and rounds 1..50")
    return serve(args) if args.serve else drive(args)


if __name__ == "__main__":
    sys.exit(main())
