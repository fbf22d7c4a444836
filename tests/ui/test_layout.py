"""build_demo() builds without launching; wiring, help text and serving rules."""

import importlib.util

import gradio as gr
import pytest

import app
from divweights_ui import handlers as h
from divweights_ui.layout import build_demo
from divweights_ui.serving import check_exposure, launch_kwargs

REQUIRED_APIS = {"load_dataset", "compute_weights", "sweep_gamma", "top_bottom", "umap", "export_weights",
                 "suggest_gamma", "why_weight", "modes", "browse_weights",  # explaining weights, choosing γ
                 "learn_example", "learn_example_run", "learn_mixture",  # the Learn tab
                 "compare_schemes", "export_scheme",  # other weighting schemes, side by side (Weights tab)
                 "export_for_trainer"}  # the Export tab's folders for other training tools


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The studio's own tabs (Train/Compare belong to other modules and have their own tests)."""
    return build_demo(tmp_path_factory.mktemp("data"), h.StartupChoice("digits", (0, 1), 20, steps=4),
                      extra_tabs=False)


def _dependencies(demo):
    return demo.get_config_file()["dependencies"]


def test_builds_without_launching_and_names_every_action(demo):
    assert isinstance(demo, gr.Blocks) and not demo.is_running
    public = {d["api_name"] for d in _dependencies(demo) if d.get("api_visibility", "public") == "public"}
    assert REQUIRED_APIS | {"select_points"} == public


def test_gpu_bound_events_share_one_slot(demo):
    by_name = {fn.api_name: fn for fn in demo.fns.values()}
    for name in ("load_dataset", "compute_weights", "sweep_gamma"):
        assert by_name[name].concurrency_id == "gpu" and by_name[name].concurrency_limit == 1
    assert by_name["top_bottom"].concurrency_id != "gpu"


def test_every_control_explains_itself(demo):
    controls = (gr.Slider, gr.Number, gr.Textbox, gr.Radio, gr.Dropdown, gr.Checkbox)
    missing = [block.label for block in demo.blocks.values()
               if isinstance(block, controls) and block.interactive is not False and not getattr(block, "info", None)]
    assert missing == []


def test_the_start_set_is_prepared_in_the_background(demo):
    states = [block for block in demo.blocks.values() if isinstance(block, gr.State)]
    assert states[0].value.dataset is None  # the page is built (and served) before any computation
    assert demo.start_set.wait(timeout=120) and demo.start_set.error is None
    session = demo.start_set.visitor_session()
    assert session.dataset is not None and session.current is not None
    assert session.weights is not demo.start_set.session.weights  # each visitor changes their own copy


def test_a_visitor_gets_the_start_set_unless_they_loaded_their_own(demo):
    from divweights_ui.startup import adopt_start

    demo.start_set.wait(timeout=120)
    *_, (session, notice) = adopt_start(h.Session(), start=demo.start_set)
    assert session.current is not None and "raw pixels" in notice
    assert h.start_fields(session)[1] == "pixels"
    own = demo.start_set.visitor_session()
    own.current_key = None
    *_, (kept, _) = adopt_start(own, start=demo.start_set)
    assert kept is own and kept.current_key is None


def test_empty_start_with_extra_tabs(data_root):
    demo = build_demo(data_root, default=None)
    state = next(block for block in demo.blocks.values() if isinstance(block, gr.State))
    assert state.value.dataset is None
    tabs = {block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)}
    assert {"Dataset", "Weights", "Inspect", "Map", "Export"} <= tabs
    for module, title in (("train_tab", "Train"), ("compare_tab", "Compare")):
        present = importlib.util.find_spec(f"divweights_ui.{module}") is not None
        assert (title in tabs) == present


def test_only_generated_files_are_served(data_root):
    kwargs = launch_kwargs(data_root)
    assert kwargs["allowed_paths"] == [str((data_root / "generated").resolve())]
    assert str((data_root / "cache").resolve()) in kwargs["blocked_paths"]
    assert kwargs["max_file_size"] == f"{h.MAX_UPLOAD_MB}mb"


@pytest.mark.parametrize("host,share,auth,ok", [
    ("127.0.0.1", False, None, True), ("localhost", False, None, True), ("::1", False, None, True),
    ("0.0.0.0", False, None, False), ("192.168.1.5", False, None, False), ("127.0.0.1", True, None, False),
    ("0.0.0.0", False, "ann:secret", True), ("0.0.0.0", False, "no-colon", False),
])
def test_exposure_rules(host, share, auth, ok):
    if ok:
        check_exposure(host, share, auth)
    else:
        with pytest.raises(ValueError):
            check_exposure(host, share, auth)


def test_app_refuses_a_busy_port_before_loading_anything(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert app.main(["--port", str(port)]) == 2
    assert f"port {port}" in capsys.readouterr().err


def test_app_refuses_public_host_without_auth(capsys):
    assert app.main(["--host", "0.0.0.0"]) == 2  # refuses before loading anything
    assert "--auth" in capsys.readouterr().err


def test_origins_are_compared_by_host_and_port_and_named_ones_are_checked(capsys):
    from divweights_ui.serving import check_origins, normalise_origin, same_origin

    assert same_origin("http://127.0.0.1:7860", "127.0.0.1:7860") and same_origin("http://[::1]:7860", "[::1]:7860")
    assert same_origin("http://LocalHost", "localhost") and same_origin("https://studio.lan", "studio.lan:443")
    for origin in ("http://localhost:3000", "http://127.0.0.1:3000", "http://localhost:7860", "null", "garbage"):
        assert not same_origin(origin, "127.0.0.1:7860"), origin
    assert normalise_origin("http://LocalHost:3000/") == "http://localhost:3000"
    assert check_origins(["http://localhost", "https://a.example:8443"]) == {"http://localhost:80",
                                                                              "https://a.example:8443"}
    for bad in ("ftp://x", "localhost:3000", "http://x/path", "*"):
        with pytest.raises(ValueError, match="must be an origin"):
            check_origins([bad])
    assert app.main(["--allow-origin", "*"]) == 2  # refused before loading anything
    assert "--allow-origin '*' must be an origin" in capsys.readouterr().err


def test_every_computing_event_of_the_learn_tab_is_under_the_page_job_limit(demo):
    from divweights_ui import learn_tab

    learn = [fn for fn in demo.fns.values() if getattr(fn.fn, "__module__", "") == learn_tab.__name__
             and fn.fn.__name__ in ("example_view", "example_run", "_streamed_mixture")]
    assert len(learn) >= 10 and all(fn.validator is not None for fn in learn)


def test_own_images_empty_the_class_fields_and_built_in_restores_them():
    from divweights_ui.layout import _builtin_fields, _source_fields

    upload = _source_fields(h.SOURCES[1], "fashion-mnist")
    assert [update["visible"] for update in upload[:3]] == [False, True, False]
    assert upload[3]["value"] == "" and upload[4]["value"] == ""  # an unlabelled zip would refuse "0,1"
    folder = _source_fields(h.SOURCES[2], "fashion-mnist")
    assert [update["visible"] for update in folder[:3]] == [False, False, True] and folder[3]["value"] == ""
    builtin = _source_fields(h.SOURCES[0], "fashion-mnist")
    assert builtin[0]["visible"] and (builtin[3]["value"], builtin[4]["value"]) == ("0, 1", "1000")
    digits = _builtin_fields("digits")  # another built-in: its own fields, not Fashion's "0, 1 / 1000"
    assert (digits[0]["value"], digits[1]["value"]) == ("", "")  # blank: all (a number field showed 0)


def test_allowed_hosts_are_this_computer_and_the_chosen_host():
    from divweights_ui.serving import _host_of, allowed_hosts

    assert allowed_hosts("127.0.0.1", share=False) == {"localhost", "127.0.0.1", "::1"}
    assert "studio.lan" in allowed_hosts("studio.lan", share=False)
    assert allowed_hosts("0.0.0.0", share=False) is None and allowed_hosts("127.0.0.1", share=True) is None
    assert [_host_of(h) for h in ("127.0.0.1:7860", "[::1]:7860", "LocalHost", "evil.example:80")] == [
        "127.0.0.1", "::1", "localhost", "evil.example"]


def test_sessions_are_freed_when_idle_or_closed(demo):
    from divweights_ui.layout import SESSION_TTL_S

    state = next(block for block in demo.blocks.values() if isinstance(block, gr.State))
    assert state.time_to_live == SESSION_TTL_S < float("inf")
    demo.start_set.wait(timeout=120)
    session = demo.start_set.visitor_session()
    state.delete_callback(session)  # what gradio calls when the session expires
    assert session.ready is None and session.weights == {} and session.layout is None
    assert demo.start_set.session.ready is not None  # the start set every visitor copies is kept


def test_on_a_full_disk_the_studio_starts_and_says_so(data_root, monkeypatch):
    import shutil as shutil_module

    from core.data import storage
    from divweights_ui import startup

    usage = shutil_module.disk_usage(data_root)
    monkeypatch.setattr(startup.shutil, "disk_usage", lambda path: usage._replace(free=0))

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", disk_full)  # no cache file can be written
    demo = build_demo(data_root, h.StartupChoice("digits", (0, 1), 10, steps=3))
    assert demo.start_set.wait(timeout=120) and demo.start_set.error is None  # computed, just not cached
    *_, (session, notice) = startup.adopt_start(h.Session(), start=demo.start_set)
    assert session.current is not None and "nearly full" in notice
