"""``tcdn.flows``: each command's flow called as a function, from paths to files, with the
command's guards (the outputs checked before any work, the folder locked while written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tcdn
from tcdn import runlock
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet
from tests.conftest import TRAIN_SIZE, tiny_checkpoint
from tests.transfer.conftest import cifar_checkpoint, write_image_folder

CONFIG = tcdn.DiscoverConfig(methods=("kmeans",), repeats=2)


@pytest.fixture(scope="module")
def feature_file(synthetic_collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The features ``tcdn.write_features`` saves of the synthetic collection (every 4th frame)."""
    out = tmp_path_factory.mktemp("feats") / "fc6.npz"
    feats = tcdn.write_features(
        synthetic_collection,
        out,
        checkpoint=tiny_checkpoint(),
        frame_stride=4,
        device="cpu",
        progress=False,
    )
    assert feats.meta["collection"] == str(synthetic_collection)
    return out


def test_write_features_saves_what_it_returns(feature_file: Path, tmp_path: Path) -> None:
    fs = FeatureSet.load(feature_file)
    assert fs.meta["source"] == "trained" and fs.meta["frame_stride"] == 4
    assert fs.features.shape[1] == 64  # the tiny AlexNet's fc6
    assert set(fs.frame.tolist()) <= set(range(0, 32, 4))
    with pytest.raises(TcdnError, match="needs --checkpoint"):
        tcdn.write_features(feature_file.parent, tmp_path / "x.npz")
    mine = tmp_path / "mine.npz"
    mine.write_text("the user's own file")
    with pytest.raises(TcdnError, match="not written by tcdn"):  # checked before any work
        tcdn.write_features(feature_file.parent, mine, source="raw_pixels")
    assert mine.read_text() == "the user's own file"


def test_discover_given_features_writes_the_command_s_files(
    feature_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tcdn.discovery.results

    out = tmp_path / "disc"
    seen = []  # the command prints its table once the files are written, before the report
    found = tcdn.discover(
        features=feature_file,
        config=CONFIG,
        out=out,
        report=False,
        on_written=lambda d: seen.append((d, (out / "videos.csv").is_file())),
    )
    assert seen == [(found, True)]
    in_memory = tcdn.discover(FeatureSet.load(feature_file), config=CONFIG)
    assert found.results["results"] == in_memory.results["results"]
    assert {p.name for p in out.iterdir()} >= {"results.json", "clusters.csv", "videos.csv"}
    assert not (out / "report.html").exists()
    assert json.loads((out / "results.json").read_text())["discovered"]["source"] == "given"
    # the guards of the command: one input, collection options refused, the folder locked
    with pytest.raises(TcdnError, match="give exactly one input"):
        tcdn.discover(config=CONFIG, out=tmp_path / "none")
    with pytest.raises(TcdnError, match="--layer applies to a VIDEOS folder"):
        tcdn.discover(features=feature_file, config=tcdn.DiscoverConfig(layer="fc6"))
    held = []
    monkeypatch.setattr(
        tcdn.discovery.results, "write_results", lambda *a, **k: held.append(runlock.holds(out))
    )
    tcdn.discover(features=feature_file, config=CONFIG, out=out, report=False)
    assert held == [True] and not runlock.holds(out)


def test_discover_a_collection_by_its_path(synthetic_collection: Path, tmp_path: Path) -> None:
    out = tmp_path / "disc"
    (out / "report").mkdir(parents=True)
    (out / "report" / "notes.txt").write_text("the user's")
    config = tcdn.DiscoverConfig(methods=("kmeans",), repeats=2, random_inits=1, frame_stride=4)
    with pytest.raises(TcdnError):  # a report folder tcdn did not make: refused before any work
        tcdn.discover(synthetic_collection, tiny_checkpoint(), config, out=out, device="cpu")
    found = tcdn.discover(
        synthetic_collection,
        tiny_checkpoint(),
        config,
        out=out,
        report=False,
        device="cpu",
        progress=False,
    )
    assert found.results["collection"] == str(synthetic_collection)
    assert found.results["layer"] == "fc6"
    assert (out / "clusters.csv").is_file()
    frames = tcdn.open_collection(synthetic_collection, size=TRAIN_SIZE)
    again = tcdn.discover(frames, tiny_checkpoint(), config, progress=False)
    assert again.results["results"] == found.results["results"]


def test_search_features(feature_file: Path, tmp_path: Path) -> None:
    png = tmp_path / "s.png"
    found = tcdn.search_features(feature_file, row=3, k=4, montage=png)
    assert png.is_file()
    assert len(found.answer.frames) == 4 and 3 not in [h.row for h in found.answer.frames]
    table = found.table()
    assert table.startswith("query: row 3 (") and "nearest videos" in table
    assert f"in {feature_file}" in table.splitlines()[0]
    with pytest.raises(TcdnError, match="give one query"):
        tcdn.search_features(feature_file, montage=None)
    with pytest.raises(TcdnError, match="--at applies to a video query"):
        tcdn.search_features(feature_file, row=1, at=0.5, montage=None)


def test_finetune_an_image_folder(tmp_path: Path) -> None:
    from tcdn.transfer import FinetuneConfig, format_table

    data = write_image_folder(tmp_path / "imgs", {"red": 6, "green": 6}, size=20)
    cfg = FinetuneConfig(
        dataset="imagefolder", protocols=("knn",), repeats=2, shots=2, seed=0, knn_k=1
    )
    out = tmp_path / "out"
    results = tcdn.finetune(data, cifar_checkpoint(), cfg, out, device="cpu", progress=False)
    assert json.loads((out / "results.json").read_text())["results"] == results["results"]
    assert "knn" in format_table(results)
    assert results["results"]["trained"]["knn"]["repeats"] == 2
    with pytest.raises(TcdnError, match="--labels applies to --dataset videos only"):
        tcdn.finetune(data, cifar_checkpoint(), cfg, out, labels=tmp_path / "l.csv")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own file")
    with pytest.raises(TcdnError):
        tcdn.finetune(data, cifar_checkpoint(), cfg, mine)
