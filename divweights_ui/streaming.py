"""Long workbench jobs streamed into the page, and stopped by it.

`stream(job)` runs `job(on_progress, should_stop)` on a worker thread and yields each
core.jobs.Progress event as it arrives; the generator's return value is the job's result. When
gradio closes the handler's generator (the Stop button, a closed page), `should_stop()` turns True
and the worker ends cleanly before the generator finishes, so nothing half-made is kept.
"""

from __future__ import annotations

import queue
import threading
import time

import gradio as gr

from divweights.data.storage import disk_error_message
from divweights.jobs import JobStopped

# Streamed chart refresh period. Each refresh is a redraw in the browser, which shares the CPU with the
# optimiser on a laptop: 100 steps at n = 2,000 took 18.9 s from the browser at 0.25 s, 14.7 s at 0.5 s
# and 12.6 s at 1 s (9 s through the API, no chart).
STREAM_EVERY_S = 1.0


def user_error(exc: BaseException) -> gr.Error:
    """A library exception as a one-sentence gr.Error (the session is left as it was)."""
    message = str(exc).strip() or f"{exc.__class__.__name__} (no details were given)"
    if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        message = disk_error_message(exc, "the data root")  # a full disk, a read-only one, …: one sentence
    if not any(mark in message.split(" ", 1)[0] for mark in "./\\'\""):  # a file name keeps its spelling
        message = message[0].upper() + message[1:]
    return gr.Error(message, print_exception=False)


def stream(job, on_event=None):
    """Generator: Progress events of `job(on_progress, should_stop)`; returns its result (see module).

    on_event(event) -> what to yield for it (None: nothing), so a handler writes
    `result = yield from stream(job, on_event)`; without it the events themselves are yielded."""
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["result"] = job(events.put, stop.is_set)
        except BaseException as exc:  # re-raised below, in the handler's thread
            outcome["error"] = exc
        finally:
            events.put(None)

    worker = threading.Thread(target=work, name="studio-job", daemon=True)
    worker.start()
    try:
        while (event := events.get()) is not None:
            update = event if on_event is None else on_event(event)
            if update is not None:
                yield update
    finally:
        stop.set()
        worker.join()
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, JobStopped):
            raise gr.Error("Stopped; nothing was changed.", print_exception=False) from error
        raise user_error(error) if isinstance(error, (ValueError, OSError)) else error
    return outcome["result"]


def into_progress(progress):
    """on_event for `stream` that only moves gradio's progress bar (yields nothing)."""

    def on_event(event) -> None:
        progress(event.fraction, desc=event.message)  # gr.Progress returns itself: never yield it

    return on_event


class Throttle:
    """True at most once per `every_s` seconds (the first call included)."""

    def __init__(self, every_s: float = STREAM_EVERY_S):
        self.every_s, self.last = every_s, float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            return True
        return False
