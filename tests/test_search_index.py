"""The approximate search index (``tcdn.search_index``): recall@10 against the exact scan, exact
distances for what it finds, a stale or foreign index file, and ``tcdn search --index``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet
from tcdn.search import nearest
from tcdn.search_index import (
    approximate_nearest,
    build_index,
    index_path,
    is_index_file,
    load_index,
    open_features,
    open_index,
    save_index,
)


def clustered(n: int = 4000, dim: int = 160, seed: int = 0, dtype: type = np.float16) -> FeatureSet:
    """Rows around 40 centres in a 24-d subspace of ``dim`` dimensions, plus noise in all: the
    structure real features have (a random cloud has no near neighbours to find)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(24, dim))
    centres = rng.normal(size=(40, 24)) * 3
    latent = centres[rng.integers(0, 40, n)] + rng.normal(size=(n, 24))
    x = (latent @ basis + 0.3 * rng.normal(size=(n, dim))).astype(dtype)
    video = np.repeat([f"v{i:03d}.mp4" for i in range(n // 20)], 20)
    frame = np.tile(np.arange(20), n // 20)
    return FeatureSet(x, video, frame, [""] * n)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index") / "f.npz"
    clustered().save(path)
    return path


def test_recall_at_10_against_the_exact_scan(saved: Path) -> None:
    fs = open_features(saved)
    assert isinstance(fs.features, np.memmap)
    idx = open_index(saved, fs, build=True)
    assert idx is not None and idx.meta["pca_dims"] == 128 and idx.meta["lists"] > 10
    rows = np.random.default_rng(1).choice(len(fs), 40, replace=False)
    found = 0
    for r in rows.tolist():
        exact = nearest(fs, fs.features[r], 10, exclude=r)
        approx = approximate_nearest(fs, idx, fs.features[r], 10, exclude=r)
        found += len({h.row for h in exact.frames} & {h.row for h in approx.frames})
        assert r not in [h.row for h in approx.frames]
        for h in approx.frames:  # the distances shown are exact, not the PCA's
            want = np.linalg.norm(fs.features[h.row].astype(np.float64) - fs.features[r])
            assert h.distance == pytest.approx(want, rel=1e-9)
        assert [h.distance for h in approx.frames] == sorted(h.distance for h in approx.frames)
    recall = found / (10 * len(rows))
    assert recall >= 0.95, recall  # measured: 1.0 here


def test_a_stale_index_is_rebuilt_and_a_foreign_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.npz"
    clustered(n=1000).save(path)
    fs = open_features(path)
    idx = open_index(path, fs, build=True)
    assert idx is not None and is_index_file(index_path(path))
    first = json.loads(str(np.load(index_path(path))["meta"]))["features_digest"]
    assert load_index(index_path(path), path, fs) is not None
    clustered(n=1000, seed=7).save(path)  # the features change, the index stays behind
    fs = open_features(path)
    assert load_index(index_path(path), path, fs) is None
    idx = open_index(path, fs, build=True)
    assert idx is not None and idx.meta["features_digest"] != first
    answer = approximate_nearest(fs, idx, fs.features[5], 3, exclude=5)
    assert [h.row for h in answer.frames] == [
        h.row for h in nearest(fs, fs.features[5], 3, exclude=5).frames
    ]
    # a file of someone else's at the index's name is neither read nor replaced
    index_path(path).write_bytes(b"my notes")
    with pytest.raises(TcdnError, match="not a search index written by tcdn"):
        open_index(path, fs, build=True)
    with pytest.raises(TcdnError, match="exists and was not written by tcdn"):
        save_index(build_index(fs), index_path(path), path)
    assert index_path(path).read_bytes() == b"my notes"


def test_non_finite_rows_are_named(tmp_path: Path) -> None:
    fs = clustered(n=400, dtype=np.float32)
    fs.features[123, 4] = np.inf  # after the checks of FeatureSet: as a memory-mapped file may hold
    with pytest.raises(TcdnError, match="first in row 123"):
        build_index(fs)


def test_a_compressed_file_is_read_whole(tmp_path: Path) -> None:
    fs = clustered(n=200)
    path = tmp_path / "c.npz"
    np.savez_compressed(path, features=fs.features, video=fs.video, frame=fs.frame, label=fs.label)
    loaded = open_features(path)
    assert not isinstance(loaded.features, np.memmap)
    assert np.array_equal(loaded.features, fs.features)


def test_search_command_index_and_exact(
    capsys: pytest.CaptureFixture[str], saved: Path, restore_logging: None
) -> None:
    from tcdn.cli import main

    outputs = {}
    for how in ("--index", "--exact"):
        assert main(["search", "--features", str(saved), "--row", "7", "--no-montage", how]) == 0
        outputs[how] = capsys.readouterr().out
    assert "approximate index" in outputs["--index"] and "exact scan" in outputs["--exact"]
    table = [line for line in outputs["--exact"].splitlines() if line[:4].strip().isdigit()]
    assert table == [line for line in outputs["--index"].splitlines() if line[:4].strip().isdigit()]


def test_an_index_that_cannot_be_saved_is_still_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tcdn import search_index

    def cannot_write(*args: object) -> None:  # as check_output_file says in a read-only folder
        raise TcdnError(f"the search index {index_path(path)}: cannot write in {tmp_path}")

    path = tmp_path / "f.npz"
    clustered(n=600).save(path)
    monkeypatch.setattr(search_index, "save_index", cannot_write)
    fs = open_features(path)
    idx = open_index(path, fs, build=True)
    assert idx is not None and not index_path(path).exists()
    assert "built again at every search" in caplog.text
    answer = approximate_nearest(fs, idx, fs.features[0], 3, exclude=0)
    assert len(answer.frames) == 3
