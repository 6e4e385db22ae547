"""The Python API that ``tcdn/__init__.py`` offers, used as the README shows it, on tiny data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import tcdn
from tests.conftest import TRAIN_SIZE


def test_import_is_light_and_lists_its_names() -> None:
    import subprocess

    code = "import sys, tcdn; print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
    for name in tcdn.__all__:
        assert getattr(tcdn, name) is not None, name
    assert set(tcdn.__all__) <= set(dir(tcdn))


def test_the_readme_example_end_to_end(synthetic_collection: Path, tmp_path: Path) -> None:
    report = tcdn.ingest(
        synthetic_collection,
        tmp_path / "store",
        tcdn.StoreSettings(decode=tcdn.data.DecodeSettings.make(TRAIN_SIZE)),
        progress=False,
    )
    assert report.n_videos == 6 and not report.bad
    frames = tcdn.open_collection(tmp_path / "store", size=TRAIN_SIZE)
    config = tcdn.TrainConfig(
        image_size=TRAIN_SIZE,
        model_options={"fc6_dim": 64},
        embed_dim=16,
        batch_size=4,
        far=5,
        steps=2,
    )
    run = tcdn.train(frames, config, tmp_path / "run", progress=False)
    ckpt = tcdn.load_checkpoint(run)
    feats = tcdn.frame_features(frames, "trained", ckpt, progress=False)
    assert feats.features.shape == (len(frames.frames), 64)
    config_d = tcdn.DiscoverConfig(methods=("kmeans",), repeats=2, k=3)
    found = tcdn.discover(frames, ckpt, config_d, progress=False)
    given = tcdn.discover(feats, config=config_d)
    assert (
        found.results["results"]["trained"]["kmeans"]["ce_values"]
        == (given.results["results"]["given"]["kmeans"]["ce_values"])
    )
    assert "trained" in tcdn.format_table(found.results)
    assert np.isfinite(found.results["results"]["trained"]["kmeans"]["ce_mean"])


@pytest.mark.slow
def test_the_readme_unlabelled_example(train_frames, tmp_path: Path) -> None:
    """The README's discovery of an unlabelled folder, and its estimators, on tiny data."""
    from dataclasses import replace

    from tests.conftest import tiny_checkpoint

    frames = replace(train_frames, videos=[replace(v, label=None) for v in train_frames.videos])
    ckpt = tiny_checkpoint()
    found = tcdn.discover(frames, ckpt, tcdn.DiscoverConfig(max_k=4), progress=False)
    assert "chosen without labels" in tcdn.format_table(found.results)
    tcdn.write_results(tmp_path, found.clustered, found.results, found.assignments)
    page = tcdn.write_report(tmp_path, found, frames)
    assert page == tmp_path / "report.html" and page.is_file()

    x = found.clustered.features
    km = tcdn.KMeans(3, random_state=0).fit(x)
    np.testing.assert_array_equal(km.predict(x), km.labels_)
    assert tcdn.SpectralClustering(3, random_state=0).fit_predict(x).shape == (len(x),)
    assert 2 <= tcdn.choose_k(x, max_k=4).k <= 4
