"""A launched studio on 127.0.0.1, driven through gradio_client by each stable api_name."""

import json
import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from divweights_ui import handlers as h
from divweights_ui.serving import check_origins
from tests.ui.launch import launched_studio, slow_down_weights

NAMED_ORIGIN = "http://localhost:5173"  # as `app.py --allow-origin http://localhost:5173`

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    with launched_studio(root, per_class=30, steps=6, origins=check_origins([NAMED_ORIGIN])) as demo:
        yield demo, root, gradio_client.Client(demo.local_url, verbose=False)


def test_every_api_name_answers(served):
    demo, root, client = served
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/load_dataset", "/compute_weights", "/sweep_gamma", "/top_bottom", "/umap", "/export_weights",
            "/select_points"} <= names

    summary, notice = client.predict(h.SOURCES[0], "digits", "2, 7", 25, 1, None, "", "pixels",
                                     api_name="/load_dataset")
    assert "50 images" in summary and "pixels" in notice

    _, numbers = client.predict(1.0, 15, 0.1, api_name="/compute_weights")
    assert "<" not in numbers  # API users get readable text, not markup
    uniform, weighted = (float(v) for v in re.findall(r"\*\*([\d.]+)\*\*", numbers)[:2])
    assert weighted > uniform

    sweep_plot, table = client.predict("0, 1", 6, 0.1, 1.0, api_name="/sweep_gamma")
    assert len(json.loads(sweep_plot["plot"])["data"][0]["y"]) == 2 and "| 1.00 |" in table

    top, bottom, hist, mass, stats = client.predict(4, 32, api_name="/top_bottom")
    assert len(top) == len(bottom) == 4 and all(Path(item["image"]).exists() for item in top)
    assert "batch of 32" in stats

    figure, note = client.predict("PCA", False, 3000, api_name="/umap")
    assert len(json.loads(figure["plot"])["data"][0]["customdata"]) == 50  # x/y travel as base64 arrays

    gallery, text = client.predict("0, 1, 2", api_name="/select_points")
    assert len(gallery) == 3 and "3 selected" in text

    files, snippet = client.predict(64, api_name="/export_weights")
    p = np.load(files[1], allow_pickle=False)
    assert p.shape == (50,) and p.sum() == pytest.approx(1.0) and "DiversityWeightedSampler(" in snippet and "set_epoch" in snippet


def test_bad_input_comes_back_as_a_sentence(served):
    _, _, client = served
    with pytest.raises(Exception, match="do not exist"):
        client.predict(h.SOURCES[0], "digits", "0, 42", 10, 0, None, "", "pixels", api_name="/load_dataset")


def test_data_root_and_caches_are_not_served(served):
    demo, root, _ = served
    cached = sorted((root / "cache" / "embeddings").glob("*.npy"))
    assert cached, "the embedding cache should exist after start-up"
    base = demo.local_url.rstrip("/")
    for path in (cached[0], root / "cache", Path(__file__)):
        response = httpx.get(f"{base}/gradio_api/file={path}")
        assert response.status_code in (403, 404), path
    thumbs = sorted((root / "generated").rglob("*.png"))
    assert thumbs and httpx.get(f"{base}/gradio_api/file={thumbs[0]}").status_code == 200


def test_requests_for_other_hosts_and_foreign_origins_are_refused(served):
    demo, root, _ = served
    base = demo.local_url.rstrip("/")
    port = base.rsplit(":", 1)[1]
    assert httpx.get(base + "/").status_code == 200
    rebinding = httpx.get(base + "/", headers={"Host": f"evil.example:{port}"})  # a DNS-rebinding page
    assert rebinding.status_code == 403 and "access-control-allow-origin" not in rebinding.headers
    assert httpx.get(base + "/config", headers={"Host": f"evil.example:{port}"}).status_code == 403
    before = sorted(p.name for p in Path(demo.GRADIO_CACHE).rglob("*")) if Path(demo.GRADIO_CACHE).exists() else []
    upload = httpx.post(base + "/gradio_api/upload", headers={"Origin": "http://evil.example"},
                        files={"files": ("x.zip", b"PK\x05\x06" + bytes(18))})
    assert upload.status_code == 403
    after = sorted(p.name for p in Path(demo.GRADIO_CACHE).rglob("*")) if Path(demo.GRADIO_CACHE).exists() else []
    assert after == before  # nothing of the foreign page's upload was stored
    same_site = httpx.post(base + "/gradio_api/upload", headers={"Origin": base},
                           files={"files": ("x.txt", b"hello")})
    assert same_site.status_code == 200
    assert httpx.get(base + "/monitoring").status_code in (403, 404)


def test_pages_of_other_origins_cannot_read_or_call_anything(served):
    """A page on another localhost port (or any other origin) sending its Origin: every method is
    refused before gradio (results, files and event streams included), with no CORS echo; the studio's
    own origin and an --allow-origin one work."""
    demo, root, client = served
    base = demo.local_url.rstrip("/")
    port = int(base.rsplit(":", 1)[1])
    thumb = root / "generated" / "probe.txt"  # a file the studio serves (thumbnails and exports live here)
    thumb.write_text("served")
    reads = ["/config", "/gradio_api/info", f"/gradio_api/file={thumb}", "/gradio_api/queue/data?session_hash=abc"]
    for origin in ("http://localhost:3000", f"http://127.0.0.1:{port + 1}", "http://evil.example", "null"):
        headers = {"Origin": origin}
        for path in reads:
            response = httpx.get(base + path, headers=headers)
            assert response.status_code == 403, (origin, path)
            assert "access-control-allow-origin" not in response.headers, (origin, path)
        join = httpx.post(base + "/gradio_api/queue/join", headers=headers,
                          json={"data": [4, 32], "fn_index": 0, "session_hash": "abc"})
        assert join.status_code == 403 and "access-control-allow-origin" not in join.headers
        preflight = httpx.options(base + "/gradio_api/queue/join", headers={
            **headers, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    for own in (base, f"http://localhost:{port}"):  # the page's own origin, by either loopback name
        assert httpx.get(own + "/config", headers={"Origin": own}).status_code == 200, own
        assert httpx.get(own + f"/gradio_api/file={thumb}", headers={"Origin": own}).status_code == 200
    named = httpx.get(base + "/config", headers={"Origin": NAMED_ORIGIN})
    assert named.status_code == 200 and named.headers["access-control-allow-origin"] == NAMED_ORIGIN
    preflight = httpx.options(base + "/gradio_api/queue/join", headers={
        "Origin": NAMED_ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == NAMED_ORIGIN
    assert preflight.headers["access-control-allow-headers"] == "content-type"


@pytest.mark.slow
def test_concurrent_sessions_with_different_embedders_get_their_own_exports(served, tmp_path):
    """Two visitors on the same data and γ, one with pixels and one with a (random-weight) CLIP model,
    working at the same time: each export holds that visitor's own weights."""
    import threading

    from core.data.datasets import DatasetSpec
    from core.data.embed import EmbedConfig
    from core.diversity.weights import WeightsConfig
    from core.workbench import Workbench

    demo, root, _ = served
    embedders = ["pixels", "ViT-B-32/none"]
    clients = [gradio_client.Client(demo.local_url, verbose=False) for _ in embedders]
    exported, failures = {}, []

    def visit(client, embedder):
        try:
            client.predict(h.SOURCES[0], "digits", "0, 1", 20, 0, None, "", embedder, api_name="/load_dataset")
            client.predict(0.8, 12, 0.1, api_name="/compute_weights")
            exported[embedder] = client.predict(64, api_name="/export_weights")[0]
        except Exception as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=visit, args=pair) for pair in zip(clients, embedders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not failures, failures
    bench = Workbench(tmp_path / "elsewhere")  # the same computation, away from the studio's caches
    folders = set()
    for embedder, files in exported.items():
        ready = bench.prepare(DatasetSpec("digits", (0, 1), 20), EmbedConfig.parse(embedder))
        expected = bench.weights(ready.features, WeightsConfig(gamma=0.8, steps=12)).p
        np.testing.assert_allclose(np.load(files[1]), expected, rtol=1e-9)
        assert json.loads(Path(files[2]).read_text())["embedder"] == embedder
        folders.add(Path(files[1]).parent)
    assert len(folders) == 2


@pytest.mark.xfail(strict=False, reason="KNOWN BUG, open in issue 23 item 8: fails in the full suite only (order-dependent since the 60k-scale map and shared-data merges); the cause is not found yet")
def test_one_page_cannot_fill_the_queue(served, monkeypatch):
    from divweights_ui.job_limit import MAX_JOBS_PER_SESSION

    demo, _, _ = served
    slow_down_weights(monkeypatch, 0.001)  # 10 s for the first job: the others are still waiting behind it
    client = gradio_client.Client(demo.local_url, verbose=False)  # one page
    client.predict(h.SOURCES[0], "digits", "0, 1", 30, 0, None, "", "pixels", api_name="/load_dataset")
    jobs = [client.submit(0.5, 10_000, 0.1, api_name="/compute_weights") for _ in range(MAX_JOBS_PER_SESSION + 2)]
    outcomes = []
    for job in jobs:
        try:
            job.result(timeout=300)
            outcomes.append("ran")
        except Exception as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == "ran" and any("jobs waiting or running" in o for o in outcomes[1:]), outcomes
