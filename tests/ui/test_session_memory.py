"""What sessions hold: one copy of a dataset however many sessions load it, the shared cache within its
cap once sessions let go, and an expired session released together with what gradio kept for its page."""

import gc
import socket
import time

import pytest

from core.data import projection
from core.data.memo import prepared_bytes
from core.workbench import Workbench
from divweights_ui import handlers as h
from divweights_ui.layout import build_demo
from divweights_ui.serving import launch_kwargs
from divweights_ui.session import Session

gradio_client = pytest.importorskip("gradio_client")


def _load(session: Session, wb: Workbench, seed: int = 0) -> Session:
    outputs = list(h.load_dataset(session, h.SOURCES[0], "digits", "0, 1", 40, seed, None, "", "pixels",
                                  wb=wb, progress=lambda *a, **k: None))
    return outputs[-1][0]


def _distinct_bytes(sessions) -> int:
    """Bytes of the distinct dataset and feature arrays the sessions hold (shared arrays count once)."""
    arrays = {}
    for session in sessions:
        for array in (session.features, session.dataset.images, session.dataset.labels):
            arrays[id(array)] = array.nbytes
    return sum(arrays.values())


def test_sessions_loading_one_spec_hold_one_copy(data_root):
    wb = Workbench(data_root)  # the studio's: one for every visitor
    sessions = [_load(Session(), wb) for _ in range(8)]
    assert _distinct_bytes(sessions) == _distinct_bytes(sessions[:1]) == prepared_bytes(sessions[0].ready)
    assert "from cache" in h.dataset_summary(sessions[-1])


def test_released_sessions_leave_only_the_capped_cache(data_root):
    one = prepared_bytes(Workbench(data_root).prepare(*h._spec_and_embedder("0, 1", 40, 0, "digits", "pixels")))
    wb = Workbench(data_root, shared_bytes=2 * one)  # room for two datasets
    sessions = [_load(Session(), wb, seed) for seed in range(5)]  # five distinct subsets
    assert wb.shared.held_bytes <= 2 * one and wb.shared.live_bytes == 5 * one  # sessions keep theirs
    assert all(s.features is not None for s in sessions)
    for session in sessions:
        session.release()
    gc.collect()
    assert wb.shared.live_bytes == wb.shared.held_bytes <= 2 * one


def test_an_expired_session_is_released_with_what_gradio_kept_for_its_page(data_root):
    demo = build_demo(data_root, h.StartupChoice("digits", (0, 1), 20, steps=4), extra_tabs=False, session_ttl_s=15)
    assert demo.start_set.wait(timeout=300)
    projection.start_warmup().join(600)  # UMAP's compile holds the interpreter: launch's own check would time out
    with socket.socket() as probe:  # a port of its own (other studios may be serving on this machine)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **launch_kwargs(data_root, "127.0.0.1"))
    try:
        client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
        client.predict(h.SOURCES[0], "digits", "2, 7", 25, 1, None, "", "pixels", api_name="/load_dataset")
        pages = demo.state_holder.session_data
        session = next(v for v in pages[client.session_hash].state_data.values() if isinstance(v, Session))
        assert session.ready is not None
        deadline = time.monotonic() + 120
        while client.session_hash in pages and time.monotonic() < deadline:  # gradio expires state every second
            time.sleep(0.2)
        assert client.session_hash not in pages and session.ready is None and not session.weights
        # the page comes back: a fresh session, which works
        summary, _ = client.predict(h.SOURCES[0], "digits", "2, 7", 25, 1, None, "", "pixels",
                                    api_name="/load_dataset")
        assert "50 images" in summary
    finally:
        demo.close()
