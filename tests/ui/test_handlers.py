"""Handlers called directly (no server): values in, what the UI shows out; bad input keeps the session."""

import base64
import copy
import csv
import io
import os
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from core.workbench import Workbench
from divweights_ui import handlers as h
from divweights_ui import map_handlers as m
from divweights_ui import weights_handlers as w
from divweights_ui.common import parse_per_class, per_class_text
from divweights_ui.session import Session

BUILTIN = h.SOURCES[0]


@pytest.fixture(scope="module")
def base_session(tmp_path_factory):
    """digits 0/1, 30 per class, pixels, 8 weight steps (built once per module)."""
    return h.initial_session(Workbench(tmp_path_factory.mktemp("data")), h.StartupChoice("digits", (0, 1), 30, steps=8))


@pytest.fixture
def session(base_session, data_root):
    return copy.deepcopy(base_session)  # each test gets its own, like gr.State does per visitor


def _load(session, data_root, **overrides):
    values = dict(source_kind=BUILTIN, builtin="digits", classes="0, 1", per_class=30, seed=0, upload=None,
                  folder="", embedder="pixels")
    values.update(overrides)
    outputs = list(h.load_dataset(session, *values.values(), wb=Workbench(data_root), progress=lambda *a, **k: None))
    return outputs[-1]


def _run(generator):
    outputs = list(generator)
    return outputs, outputs[-1]


def test_initial_session_is_loaded_embedded_and_weighted(session):
    assert len(session.dataset) == 60 and session.features.shape[0] == 60
    assert session.embedder == "pixels" and session.current is not None
    assert "raw pixels" in h.notices_markdown(session)


def test_load_dataset_summary_and_cache_hit(data_root):
    session, summary, notice = _load(Session(), data_root, classes="3, 5", per_class=20)
    assert "40 images" in summary and "computed now" in summary and "pixels" in notice
    assert sorted(set(session.dataset.labels.tolist())) == [3, 5]
    session, summary, _ = _load(session, data_root, classes="3, 5", per_class=20)
    assert "from cache" in summary


def test_the_embedder_field_takes_the_cli_spelling(data_root, tiny_clip):
    for spelling in (f"{tiny_clip} none", f"{tiny_clip}/none", f" {tiny_clip} / none "):
        session, summary, _ = _load(Session(), data_root, classes="0", per_class=4, embedder=spelling)
        assert session.embedder == f"{tiny_clip}/none" and session.features.shape == (4, 16)


def test_images_per_class_blank_all_or_zero_means_every_image():
    for everything in (None, "", " all ", "All", 0, "0"):
        assert parse_per_class(everything) is None
    assert parse_per_class("20") == parse_per_class(20) == parse_per_class(20.0) == parse_per_class(" 20 ") == 20
    assert per_class_text(None) == "" and per_class_text(1000) == "1000"


@pytest.mark.parametrize("overrides", [
    dict(classes="0, 99"),  # class that does not exist
    dict(classes="zero"),  # not a number
    dict(per_class=5000),  # more than there are
    dict(per_class="lots"), dict(per_class="-3"), dict(per_class="2.5"),
    dict(source_kind=h.SOURCES[2], folder="../../etc"),  # outside the data root
    dict(source_kind=h.SOURCES[2], folder="no_such_folder"),
    dict(source_kind=h.SOURCES[1], upload=None),
    dict(embedder="not-a-model/none"),
])
def test_bad_dataset_input_is_a_plain_error_and_keeps_the_session(session, data_root, overrides):
    fingerprint, current = session.dataset.fingerprint, session.current_key
    with pytest.raises(gr.Error) as info:
        _load(session, data_root, **overrides)
    assert info.value.message and "Traceback" not in info.value.message
    assert session.dataset.fingerprint == fingerprint and session.current_key == current


def test_upload_zip_is_copied_under_the_data_root(data_root, tmp_path):
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(6):
            buffer = io.BytesIO()
            Image.new("RGB", (12, 12), (40 * i, 10, 200 - 30 * i)).save(buffer, format="PNG")
            zf.writestr(f"img_{i}.png", buffer.getvalue())
    session, summary, _ = _load(Session(), data_root, source_kind=h.SOURCES[1], upload=str(archive),
                                classes="", per_class=None)
    assert len(session.dataset) == 6 and "6 images" in summary
    assert any((data_root / "uploads").iterdir())


def test_skipped_files_are_named_a_few_at_a_time():
    assert h.skipped_notices([]) == []
    assert h.skipped_notices([("a.png", "broken")]) == ["Skipped 1 file that could not be read: `a.png` (broken)."]
    many = h.skipped_notices([(f"{i}.png", "broken") for i in range(5)])[0]
    assert many.startswith("Skipped 5 files") and "`2.png`" in many and "`3.png`" not in many and many.endswith("; 2 more.")


def test_a_refused_upload_names_the_users_file_and_leaves_nothing(session, data_root, tmp_path):
    fingerprint = session.dataset.fingerprint
    archive = tmp_path / "hostile.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.png", b"x")
    with pytest.raises(gr.Error) as info:
        _load(session, data_root, source_kind=h.SOURCES[1], upload=str(archive), classes="", per_class=None)
    assert info.value.message.startswith("hostile.zip: entry '../escape.png'")  # the user's name, no digest
    assert session.dataset.fingerprint == fingerprint
    assert not (data_root / "uploads").exists() or not any((data_root / "uploads").iterdir())


def test_compute_streams_then_caches(session, data_root):
    outputs, (session, figure, numbers) = _run(w.compute_weights(session, 1.0, 30, 0.1, wb=Workbench(data_root)))
    result = session.current
    assert result.config.gamma == 1.0 and result.vs_final > result.vs_uniform  # γ=1 raises diversity
    assert f"{result.vs_final:.3f}" in numbers and f"{result.vs_uniform:.3f}" in numbers
    assert len(figure.data[0].x) == 30  # every step on the live chart
    again, _ = _run(w.compute_weights(session, 1.0, 30, 0.1, wb=Workbench(data_root)))
    assert len(again) == 1  # already computed: one immediate answer


def test_stopping_keeps_previous_weights(session, data_root):
    before = session.current_key
    generator = w.compute_weights(session, 0.5, 10000, 0.1, wb=Workbench(data_root))
    next(generator)  # first live update arrives
    generator.close()  # what gradio does on Stop or when the browser goes away
    assert session.current_key == before and len(session.weights) == 1
    sweeping = w.sweep(session, "0.1, 0.9", 10000, 0.1, 0.1, wb=Workbench(data_root))
    next(sweeping)
    sweeping.close()
    assert len(session.weights) == 1 and not any((data_root / "cache" / "weights").glob("*g0.9*"))


def test_bad_weights_input(session, data_root):
    for gamma, steps, lr in [(1.5, 10, 0.1), (0.5, 0, 0.1), (0.5, 10, -1)]:
        with pytest.raises(gr.Error):
            next(w.compute_weights(session, gamma, steps, lr, wb=Workbench(data_root)))
    with pytest.raises(gr.Error, match="Load a dataset"):
        next(w.compute_weights(Session(), 0.5, 10, 0.1, wb=Workbench(data_root)))


def test_sweep_marks_chosen_gamma_and_fills_the_cache(session, data_root):
    outputs, (session, figure, table) = _run(w.sweep(session, "0, 0.5, 1", 8, 0.1, 0.5, wb=Workbench(data_root)))
    assert "step 1 of 8" in outputs[0][2]  # progress streamed first
    assert list(figure.data[0].x) and len(figure.data[0].y) == 3
    assert figure.data[1].name.startswith("chosen γ=0.50")
    vs = list(figure.data[0].y)
    assert vs[2] >= vs[0]  # γ=1 is at least as diverse as γ=0
    assert "| 0.50 |" in table
    outputs, _ = _run(w.compute_weights(session, 0.5, 8, 0.1, wb=Workbench(data_root)))
    assert len(outputs) == 1  # the sweep already computed it
    with pytest.raises(gr.Error):
        next(w.sweep(session, "0.2, 7", 8, 0.1, 0.5, wb=Workbench(data_root)))


def test_top_bottom_galleries_and_stats(session, data_root):
    top, bottom, hist, mass, stats = h.top_bottom(session, 5, 16, wb=Workbench(data_root))
    p = session.current_p()
    assert len(top) == len(bottom) == 5
    weights_top = [float(caption.split("·")[1].strip(" ×")) for _, caption in top]
    assert weights_top == sorted(weights_top, reverse=True)
    assert weights_top[0] == pytest.approx(p.max() * len(p), abs=0.01)
    generated = (data_root / "generated").resolve()
    for path, _ in top + bottom:
        assert generated in __import__("pathlib").Path(path).resolve().parents
    assert sum(hist.data[0].y) == 60
    assert len(mass.data) == 2 and sum(mass.data[1].y) == pytest.approx(1.0)
    assert "Effective sample size" in stats and "batch of 16" in stats


def test_map_hover_data_and_selection(session, data_root):
    session, figure, note = m.draw_map(session, "PCA", True, 3000, wb=Workbench(data_root))
    trace = figure.data[0]
    assert len(trace.x) == 60 and session.layout.method == "pca"
    index, label, weight, b64 = trace.customdata[0]
    assert Image.open(io.BytesIO(base64.b64decode(b64))).size[0] > 0
    assert label in ("0", "1") and weight > 0
    gallery, text = m.select_points(session, "0, 3-5", wb=Workbench(data_root))
    assert len(gallery) == 4 and "4 selected" in text
    with pytest.raises(gr.Error):
        m.select_points(session, "0, 999", wb=Workbench(data_root))
    with pytest.raises(gr.Error):
        m.select_points(session, "abc", wb=Workbench(data_root))


def test_map_samples_large_sets(session, data_root):
    session, figure, note = m.draw_map(session, "PCA", False, 20, wb=Workbench(data_root))
    assert len(figure.data[0].x) == 20 and "sample of 20 of 60" in note
    assert session.layout.coords.shape == (20, 2) and len(session.layout.indices) == 20
    layout = session.layout
    session.current_key = None  # weights change: the map is recoloured, its layout and sample are reused
    session, figure, _ = m.recolour_map(session, "PCA", True, 20, wb=Workbench(data_root))
    assert session.layout is layout
    assert set(figure.data[0].customdata[:, 2]) == {1.0}  # no weights: everything at the uniform 1×


def test_export_files(session, data_root):
    files, snippet = h.export(session, 32, wb=Workbench(data_root))
    assert [f.rsplit(".", 1)[1] for f in files] == ["csv", "npy", "json"]
    rows = list(csv.DictReader(open(files[0])))
    assert len(rows) == 60 and float(rows[0]["p"]) == pytest.approx(session.current_p()[0])
    np.testing.assert_allclose(np.load(files[1]), session.current_p())
    assert f"{Path(files[1]).name}" in snippet and "batch_size=32" in snippet
    assert Path(files[1]).name.startswith("digits-0-1") and "pixels-g0.8" in Path(files[1]).name  # says what it is
    with pytest.raises(gr.Error, match="Compute weights"):
        empty = Session(ready=session.ready)
        h.export(empty, 32, wb=Workbench(data_root))


def test_missing_clip_weights_point_to_pixels(session, data_root, monkeypatch):
    from core.data import embed

    def unavailable(model, pretrained):  # as on an offline machine without cached CLIP weights
        raise embed.WeightsUnavailable(f"CLIP weights {model}/{pretrained} are not cached.")

    monkeypatch.setattr(embed, "resolve_weights", unavailable)
    embed.load_clip.cache_clear()
    fingerprint = session.dataset.fingerprint
    with pytest.raises(gr.Error, match="pixels"):
        _load(session, data_root, embedder="ViT-B-32/openai")
    assert session.dataset.fingerprint == fingerprint


def test_out_of_range_requests_are_one_sentence_and_do_no_work(session, data_root):
    import tracemalloc

    with pytest.raises(gr.Error, match="(?i)steps must be between 1 and 10,000"):
        next(w.compute_weights(session, 0.5, 10**9, 0.1, wb=Workbench(data_root)))
    with pytest.raises(gr.Error, match="(?i)the number of γ values"):
        next(w.sweep(session, ", ".join(f"{g / 1000:g}" for g in range(1001)), 10, 0.1, 0.5, wb=Workbench(data_root)))
    tracemalloc.start()
    with pytest.raises(gr.Error, match="between 0 and 59"):
        m.select_points(session, "0-10000000", wb=Workbench(data_root))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 << 20  # refused before 10 million indices were made
    assert len(session.weights) == 1  # nothing computed, nothing lost


def test_the_embedder_field_cannot_reach_server_files(session, data_root, tmp_path):
    from core.data.embed import EmbedConfig, check_web_embedder

    secret = tmp_path / "secret.pt"
    secret.write_bytes(b"x")
    messages = []
    for path in (str(secret), str(tmp_path / "absent.pt"), "../../etc/passwd"):
        with pytest.raises(gr.Error) as info:
            _load(session, data_root, embedder=f"ViT-B-32/{path}")
        messages.append(info.value.message.replace(path, "PATH"))
    assert len(set(messages)) == 1 and "checkpoint file must be named" in messages[0]  # no existence oracle
    (data_root / "models").mkdir()
    (data_root / "models" / "mine.pt").write_bytes(b"x")
    accepted = check_web_embedder(EmbedConfig.parse("ViT-B-32/mine.pt"), data_root / "models")
    assert accepted.pretrained == str((data_root / "models" / "mine.pt").resolve())
    assert check_web_embedder(EmbedConfig.parse("ViT-B-32/openai"), data_root / "models").pretrained == "openai"


def _zip_of_images(path, count=4):
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            buffer = io.BytesIO()
            Image.new("RGB", (10, 10), (50 * i, 20, 100)).save(buffer, format="PNG")
            zf.writestr(f"img_{i}.png", buffer.getvalue())
    return path


def test_an_upload_cut_short_by_a_full_disk_is_not_kept(session, data_root, tmp_path, monkeypatch):
    from core.data import storage

    archive = _zip_of_images(tmp_path / "shapes.zip")
    fingerprint = session.dataset.fingerprint

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", disk_full)
    with pytest.raises(gr.Error, match="is full: free some space"):
        _load(session, data_root, source_kind=h.SOURCES[1], upload=str(archive), classes="", per_class=None)
    monkeypatch.undo()
    assert session.dataset.fingerprint == fingerprint
    assert not (data_root / "uploads").exists() or not any((data_root / "uploads").rglob("*"))  # no torn copy
    session, summary, _ = _load(session, data_root, source_kind=h.SOURCES[1], upload=str(archive), classes="",
                                per_class=None)
    assert "4 images" in summary  # once there is space, the same file loads


def test_a_torn_copy_from_before_is_replaced(data_root, tmp_path):
    from core.data.storage import file_digest

    archive = _zip_of_images(tmp_path / "shapes.zip")
    torn = data_root / "uploads" / file_digest(archive) / "shapes.zip"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(archive.read_bytes()[:50])  # what an older version left on a full disk
    session, summary, _ = _load(Session(), data_root, source_kind=h.SOURCES[1], upload=str(archive), classes="",
                                per_class=None)
    assert "4 images" in summary and torn.read_bytes() == archive.read_bytes()


def test_errors_always_have_a_sentence():
    from divweights_ui.streaming import user_error

    assert "no details" in user_error(ValueError("")).message
    assert "is full" in user_error(OSError(28, "No space left on device")).message


def test_an_upload_past_the_uploads_quota_is_refused_and_nothing_is_stored(data_root, tmp_path, monkeypatch):
    import functools

    from core.data import ingest

    archive = _zip_of_images(tmp_path / "shapes.zip")
    tiny = ingest.IngestLimits(max_uploads_bytes=100)  # the quota, made tiny
    monkeypatch.setattr(h, "check_uploads_quota", functools.partial(ingest.check_uploads_quota, limits=tiny))
    with pytest.raises(gr.Error, match="max_uploads_bytes"):
        _load(Session(), data_root, source_kind=h.SOURCES[1], upload=str(archive), classes="", per_class=None)
    assert not (data_root / "uploads").exists() or not any((data_root / "uploads").rglob("*.zip"))


def test_a_sweep_draws_cached_points_first_then_each_point_when_done(session, data_root):
    wb = Workbench(data_root)
    _run(w.compute_weights(session, 0.3, 6, 0.1, wb=wb))  # γ = 0.3 is now cached
    outputs, (_, figure, table) = _run(w.sweep(session, "0, 0.3, 1", 6, 0.1, 0.3, wb=wb))
    figures_drawn = [out[1] for out in outputs if not isinstance(out[1], dict)]  # gr.skip() is a dict update
    assert len(figures_drawn[0].data[0].y) == 1 and "1 of 3 γ values from the cache; computing 2" in outputs[0][2]
    assert [len(f.data[0].y) for f in figures_drawn] == [1, 2, 3, 3]  # a point per finished γ, then the result
    assert "| 1.00 |" in table and "to compute" not in table


def test_typing_a_selection_says_problems_in_the_note_and_upload_titles_show_the_users_name(session, data_root,
                                                                                              tmp_path):
    gallery, note = m.select_points_quietly(session, "0, 999", wb=Workbench(data_root))
    assert gallery == gr.skip() and "between 0 and 59" in note  # no error toast while typing
    session, summary, _ = _load(Session(), data_root, source_kind=h.SOURCES[1],
                                upload=str(_zip_of_images(tmp_path / "shapes.zip")), classes="", per_class=None)
    assert summary.startswith("### shapes.zip")  # not uploads/<digest>/shapes.zip


def test_the_map_colours_by_class_and_histogram_bars_carry_their_images(session, data_root):
    session, figure, _ = m.draw_map(session, "PCA", False, 3000, "class", wb=Workbench(data_root))
    assert [trace.name for trace in figure.data] == ["0", "1"]
    assert sorted(int(i) for trace in figure.data for i in trace.customdata[:, 0]) == list(range(60))
    _, _, hist, _, _ = h.top_bottom(session, 4, 16, wb=Workbench(data_root))
    chosen = [text for text in hist.data[0].customdata[:, 1] if text]
    assert sum(len(m.parse_indices(text, 60)) for text in chosen) == 60  # the bars cover every image once


def test_an_uploads_subfolders_can_be_its_classes(data_root, tmp_path):
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for kind, colour in (("cats", 30), ("dogs", 200)):
            for i in range(3):
                buffer = io.BytesIO()
                Image.new("RGB", (10, 10), (colour, 40 * i, 90)).save(buffer, format="PNG")
                zf.writestr(f"{kind}/{i}.png", buffer.getvalue())
    values = dict(source_kind=h.SOURCES[1], builtin="digits", classes="", per_class=None, seed=0,
                  upload=str(archive), folder="", embedder="pixels", subfolders=True)
    *_, (session, summary, _) = h.load_dataset(Session(), *values.values(), wb=Workbench(data_root),
                                               progress=lambda *a, **k: None)
    assert session.dataset.class_names == ["cats", "dogs"] and "cats (3), dogs (3)" in summary


@pytest.mark.parametrize("code, sentence", [(28, "is full"), (122, "is full"), (30, "cannot be written")])
def test_a_full_or_read_only_disk_at_export_is_a_sentence(session, data_root, monkeypatch, code, sentence):
    """ENOSPC / EDQUOT / EROFS at the export's writes: gradio showed its blank 'upstream app raised an
    exception'; now a gr.Error with the sentence, for the Export tab and a scheme's export."""
    from core.data import storage
    from divweights_ui.weights_handlers import export_scheme

    def refuse(path, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(storage, "atomic_write_bytes", refuse)
    with pytest.raises(gr.Error, match=sentence):
        h.export(session, 64, wb=Workbench(data_root))
    with pytest.raises(gr.Error, match=sentence):
        export_scheme(session, "uniform", wb=Workbench(data_root))


def test_large_maps_carry_no_hover_pictures(session, data_root, monkeypatch):
    monkeypatch.setattr(m, "HOVER_THUMBS_MAX", 10)  # tens of thousands of dots: pictures would be tens of MB
    session.layout = None
    session, figure, note = m.draw_map(session, "PCA", False, 20, wb=Workbench(data_root))
    assert figure.data[0].type == "scattergl" and set(figure.data[0].customdata[:, 3]) == {""}
    assert "without its picture" in note


def test_draw_map_streams_a_umap_layout_over_a_pca_map(session, data_root, monkeypatch):
    from core.data import projection
    from core.jobs import Progress

    def fake_umap(features, config, on_progress=None, should_stop=None):  # UMAP's compile takes a minute
        for done in (0, len(features) // 2):
            if on_progress is not None:
                on_progress(Progress("map", done, len(features), f"UMAP: {done} laid out"))
        return projection.pca_2d(features)[:, ::-1].copy()

    monkeypatch.setattr(projection, "_umap_fit_transform", fake_umap)
    session.layout = None
    wb = Workbench(data_root / "fresh-umap")
    updates = list(m.draw_map_streamed(session, "UMAP", False, 3000, wb=wb))
    assert "PCA" in updates[0][1].layout.title.text and "background" in updates[0][2]
    assert any("UMAP: 30 laid out" in u[2] for u in updates[1:-1])
    assert "UMAP" in updates[-1][1].layout.title.text and session.layout.method == "umap"
    again = list(m.draw_map_streamed(session, "UMAP", True, 3000, wb=wb))  # the layout is kept: at once
    assert len(again) == 1 and session.layout.method == "umap"
