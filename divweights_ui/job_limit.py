"""At most MAX_JOBS_PER_SESSION events of one page waiting or running: long jobs (load, weights, sweep,
evaluation) and the Learn tab's computations are refused up front, before gradio queues them, when their
page already has that many.

gradio runs a validator with the event's own inputs before queueing it; the validators below take
those inputs (unused) and the request, and read gradio's queue for the page's pending events.
"""

from __future__ import annotations

import gradio as gr

MAX_JOBS_PER_SESSION = 4  # events of one page waiting or running (chained refreshes included)


class JobLimit:
    """Validators bound to one demo (set `demo` once it is built)."""

    def __init__(self):
        self.demo = None

    def _verdicts(self, request: gr.Request, n_inputs: int):
        queue = getattr(self.demo, "_queue", None)  # gradio's queue: its pending events per session
        pending = len(queue.pending_event_ids_session.get(request.session_hash, ())) if queue is not None else 0
        first = gr.validate(pending < MAX_JOBS_PER_SESSION, f"This page already has {pending} jobs waiting or "
                            "running: wait for them, or press Stop.")
        return [first] + [gr.validate(True, "") for _ in range(n_inputs - 1)]

    def load(self, session, source_kind, builtin, classes, per_class, seed, upload, folder, embedder,
             subfolders, request: gr.Request):
        return self._verdicts(request, 10)

    def weights(self, session, gamma, steps, lr, request: gr.Request):
        return self._verdicts(request, 4)

    def sweep(self, session, gammas, steps, lr, gamma, request: gr.Request):
        return self._verdicts(request, 5)

    def evaluate(self, session, runs, n_samples, request: gr.Request):
        return self._verdicts(request, 3)

    # the Learn tab (divweights_ui.learn_tab): small, but each is a job of the page all the same
    def learn_example(self, K, p, request: gr.Request):
        return self._verdicts(request, 2)

    def learn_example_run(self, K, gamma, request: gr.Request):
        return self._verdicts(request, 2)

    def learn_mixture(self, modes, majority, spread, n, gamma, q, bandwidth, seed, request: gr.Request):
        return self._verdicts(request, 8)
