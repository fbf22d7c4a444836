import numpy as np
import pytest

from core.data import projection


def _clusters(n_per=30, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, d)) * 5
    features = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres]).astype(np.float32)
    return features, np.repeat([0, 1], n_per)


def test_pca_separates_clusters_and_is_deterministic():
    features, labels = _clusters()
    coords = projection.pca_2d(features)
    assert coords.shape == (60, 2)
    np.testing.assert_array_equal(coords, projection.pca_2d(features))
    first = coords[:, 0]
    assert (first[labels == 0].max() < first[labels == 1].min()) or (first[labels == 1].max() < first[labels == 0].min())


def test_umap_layout_is_cached(tmp_path):
    features, labels = _clusters()
    config = projection.ProjectionConfig(n_neighbors=10)
    coords, hit = projection.project(features, config, cache_dir=tmp_path)
    assert coords.shape == (60, 2) and not hit
    assert projection.is_warm()
    again, hit = projection.project(features, config, cache_dir=tmp_path)
    assert hit
    np.testing.assert_array_equal(coords, again)
    # a different config is a different cache entry
    _, hit = projection.project(features, projection.ProjectionConfig(n_neighbors=5), cache_dir=tmp_path)
    assert not hit
    # UMAP keeps the two clusters apart: nearest neighbour in the map has the same label
    dists = np.linalg.norm(coords[:, None] - coords[None], axis=-1) + np.eye(60) * 1e9
    assert np.mean(labels[dists.argmin(1)] == labels) > 0.95


def test_umap_beyond_the_fit_places_the_rest_in_chunks_with_progress_and_stop(tmp_path, monkeypatch):
    from core.jobs import JobStopped

    features, labels = _clusters(n_per=40)
    monkeypatch.setattr(projection, "TRANSFORM_CHUNK", 10)
    config = projection.ProjectionConfig(n_neighbors=10, max_fit=50)  # 50 fitted, 30 placed in 3 chunks
    events = []
    coords, hit = projection.project(features, config, tmp_path, on_progress=events.append)
    assert coords.shape == (80, 2) and not hit and np.isfinite(coords).all()
    assert [e.done for e in events] == [0, 50, 60, 70, 80] and {e.job for e in events} == {"map"}
    with pytest.raises(JobStopped):  # a fresh cache: Stop between chunks, nothing cached
        projection.project(features, config, tmp_path / "other", should_stop=lambda: True)
    assert not projection.has_cached(features, config, tmp_path / "other")


def test_bad_input():
    with pytest.raises(ValueError):
        projection.project(np.zeros((0, 3)))
    with pytest.raises(ValueError):
        projection.project(np.ones((10, 3)), projection.ProjectionConfig(method="tsne"))


def test_display_sample_keeps_extremes():
    p = np.random.default_rng(0).dirichlet(np.ones(1000))
    idx = projection.display_sample(1000, 200, p=p, keep_extremes=5)
    assert len(idx) == 200 and np.all(np.diff(idx) > 0)
    assert int(np.argmax(p)) in idx and int(np.argmin(p)) in idx
    assert projection.display_sample(50, 200).tolist() == list(range(50))


def test_pca_axes_from_a_sample_match_the_full_data():
    rng = np.random.default_rng(1)  # 3 elongated clusters: two clear leading axes
    centres = rng.normal(size=(3, 12)) * 6
    X = np.concatenate([c + rng.normal(size=(400, 12)) for c in centres]).astype(np.float32)
    full = projection.pca_2d(X, max_fit=10_000)
    sampled = projection.pca_2d(X, max_fit=300)  # axes from 300 of 1,200 rows, every row projected
    centred = X - X.mean(0)
    exact = centred @ np.linalg.svd(centred.astype(np.float64), full_matrices=False)[2][:2].T
    for k in range(2):
        assert abs(np.corrcoef(full[:, k], exact[:, k])[0, 1]) > 0.9999
        assert abs(np.corrcoef(sampled[:, k], exact[:, k])[0, 1]) > 0.99
    assert sampled.shape == (1200, 2) and sampled.dtype == np.float32
