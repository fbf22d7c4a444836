"""Long jobs streamed into the page: events arrive as they happen, and closing the stream (Stop, a
closed page) stops the job before the handler finishes."""

import threading

import gradio as gr
import pytest

from core.jobs import JobStopped, Progress
from divweights_ui.streaming import Throttle, stream


def counting_job(seen_stop: threading.Event):
    def job(on_progress, should_stop):
        step = 0
        while not should_stop():
            step += 1
            on_progress(Progress("test", step, 0, f"step {step}"))
            if step > 10_000:
                raise AssertionError("the job was never told to stop")
        seen_stop.set()
        raise JobStopped("stopped")

    return job


def test_events_stream_and_the_result_is_returned():
    def job(on_progress, should_stop):
        for step in (1, 2, 3):
            on_progress(Progress("test", step, 3))
        return "done"

    events = stream(job)
    assert [next(events).done for _ in range(3)] == [1, 2, 3]
    with pytest.raises(StopIteration) as finished:
        next(events)
    assert finished.value.value == "done"


def test_closing_the_stream_stops_the_job():
    seen_stop = threading.Event()
    events = stream(counting_job(seen_stop))
    assert next(events).done == 1
    events.close()  # what gradio does on Stop or when the browser goes away
    assert seen_stop.is_set()


def test_library_errors_become_one_sentence():
    def refuse(on_progress, should_stop):
        raise ValueError("classes [42] do not exist")

    with pytest.raises(gr.Error, match="Classes \\[42\\] do not exist"):
        next(stream(refuse))

    def stopped(on_progress, should_stop):
        raise JobStopped("x")

    with pytest.raises(gr.Error, match="Stopped"):
        next(stream(stopped))


def test_throttle_lets_the_first_call_through_then_waits():
    throttle = Throttle(every_s=60)
    assert throttle.due() and not throttle.due()


def test_progress_callbacks_never_become_page_updates():
    from divweights_ui.streaming import into_progress

    class Bar:  # gr.Progress returns itself when called
        def __call__(self, fraction, desc=""):
            self.seen = (fraction, desc)
            return self

    bar = Bar()

    def job(on_progress, should_stop):
        on_progress(Progress("test", 1, 2, "half"))
        return "done"

    events = stream(job, into_progress(bar))
    with pytest.raises(StopIteration) as finished:
        next(events)
    assert finished.value.value == "done" and bar.seen == (0.5, "half")
