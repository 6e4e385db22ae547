"""Recipe studies (``tcdn.sweep``): the spec, the cells, resuming, the table and its statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tcdn.cli import main
from tcdn.errors import TcdnError
from tcdn.sweep.run import run_sweep
from tcdn.sweep.spec import SweepSpec
from tcdn.sweep.table import mean_ranks
from tcdn.training.config import TrainConfig
from tests.conftest import TRAIN_SIZE

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

TINY_TRAIN = {
    "image_size": TRAIN_SIZE,
    "model_options": {"fc6_dim": 32},
    "embed_dim": 8,
    "batch_size": 4,
    "far": 5,
    "steps": 2,
    "checkpoint_every": 1,
    "log_every": 1,
}


def _spec(tmp_path: Path, collection: Path, **extra: object) -> Path:
    data = {
        "train": TINY_TRAIN,
        "recipes": {"plain": {}, "normed": {"normalize": True, "squared": True}},
        "datasets": {
            "tiny": {"videos": str(collection), "groups": {"pair": r"_v(\d+)\.mp4$"}},
        },
        "train_seeds": 2,
        "discover": {"methods": ["kmeans"], "repeats": 2},
        **extra,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _one_cell_spec(
    tmp_path: Path,
    collection: Path,
    *,
    baselines: bool,
    layers: list[str] | None = None,
    **extra: object,
) -> SweepSpec:
    """One recipe, one training seed, one K-means repeat: a sweep of a single cell."""
    discover: dict[str, object] = {"methods": ["kmeans"], "repeats": 1, "baselines": baselines}
    if layers is not None:
        discover["layers"] = layers
    return SweepSpec.from_yaml(
        _spec(
            tmp_path, collection, train_seeds=1, recipes={"plain": {}}, discover=discover, **extra
        )
    )


@pytest.mark.slow
def test_sweep_runs_every_cell_once_and_tables_them(
    synthetic_collection: Path, tmp_path: Path, restore_logging: None, capsys
) -> None:
    spec_path = _spec(tmp_path, synthetic_collection)
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec_path), "--out", str(out), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "| plain |" in summary and "| normed |" in summary and "random_init" in summary
    for recipe in ("plain", "normed"):
        for seed in (0, 1):
            cell = out / "cells" / recipe / "tiny" / f"seed{seed}"
            assert (cell / "frame.json").is_file()
            assert (cell / "run" / "step_00000002.pt").is_file()
    rows = json.loads((out / "table.json").read_text())["rows"]
    plain = next(r for r in rows if r["recipe"] == "plain" and r["method"] == "kmeans")
    per_seed = [
        json.loads((out / "cells" / "plain" / "tiny" / f"seed{s}" / "frame.json").read_text())[
            "results"
        ]["trained"]["kmeans"]["ce_mean"]
        for s in (0, 1)
    ]
    # the trained row is over training seeds: mean and sample std of the seeds' CEs
    assert plain["seeds"] == 2 and plain["ce_values"] == pytest.approx(per_seed)
    assert plain["ce_mean"] == pytest.approx(np.mean(per_seed))
    assert plain["ce_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert "nmi_pair_mean" in plain
    sources = {r["source"] for r in rows}
    assert sources == {"trained", "random_init", "raw_pixels", "random_assignment"}
    assert (out / "table.csv").read_text().startswith("source,recipe,dataset")
    assert (out / "curves-tiny.png").stat().st_size > 1000
    # the two recipes share an architecture: one random-init baseline, run once
    assert len(list((out / "baselines" / "tiny").glob("frame-random_init-*.json"))) == 1

    # a finished sweep run again trains nothing: no file of a cell changes
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*") if p.is_file()}
    assert main(["sweep", str(spec_path), "--out", str(out), "--no-progress"]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # a changed recipe under an old name is refused, not mixed in
    changed = _spec(tmp_path, synthetic_collection, recipes={"plain": {"lr": 0.5}})
    with pytest.raises(TcdnError, match=r"another recipe named 'plain'.*lr"):
        run_sweep(SweepSpec.from_yaml(changed), out, progress=False)


def test_a_killed_cell_resumes_from_its_checkpoint(
    synthetic_collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tcdn.sweep.run as run_mod

    spec = _one_cell_spec(tmp_path, synthetic_collection, baselines=False)
    out = tmp_path / "sweep"
    real = run_mod.discover_collection
    calls = []

    def dies_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "discover_collection", dies_once)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, progress=False)
    run_dir = out / "cells" / "plain" / "tiny" / "seed0" / "run"
    ckpt = run_dir / "step_00000002.pt"
    stamp = ckpt.stat().st_mtime_ns
    rows = run_sweep(spec, out, progress=False)
    assert ckpt.stat().st_mtime_ns == stamp  # the training was not redone
    assert [r["recipe"] for r in rows] == ["plain"]


def test_a_learning_curve_continues_the_cells_run_exactly(
    synthetic_collection: Path, tmp_path: Path
) -> None:
    import torch

    from tcdn.data.load import open_collection
    from tcdn.training.checkpoint import load_checkpoint
    from tcdn.training.config import TrainConfig
    from tcdn.training.run import train

    spec = _one_cell_spec(tmp_path, synthetic_collection, baselines=True, curve={"steps": [3, 4]})
    out = tmp_path / "sweep"
    run_sweep(spec, out, progress=False)
    cell = out / "cells" / "plain" / "tiny" / "seed0"
    assert (cell / "curve" / "frame-step00000003.json").is_file()
    assert (cell / "curve" / "frame-step00000004.json").is_file()
    curve = json.loads((out / "table.json").read_text())["curve"]
    assert sorted(r["steps"] for r in curve) == [2, 3, 4]  # the cell's own 2 steps first
    per_step = {
        n: json.loads((cell / "curve" / f"frame-step{n:08d}.json").read_text())["results"][
            "trained"
        ]["kmeans"]["ce_mean"]
        for n in (3, 4)
    }
    assert {r["steps"]: r["ce_mean"] for r in curve if r["steps"] > 2} == pytest.approx(per_step)
    assert "## Learning curve" in (out / "summary.md").read_text()
    assert (out / "learning-curve.png").stat().st_size > 1000
    # the curve is one run: its checkpoint at step 3 is a 3-step training from scratch
    frames = open_collection(synthetic_collection, TRAIN_SIZE, progress=False)
    cfg = TrainConfig.from_dict({**spec.recipes["plain"].to_dict(), "steps": 3})
    alone = load_checkpoint(train(frames, cfg, tmp_path / "alone", progress=False))
    continued = load_checkpoint(cell / "curve" / "run" / "step_00000003.pt")
    for name, weight in alone["model"].items():
        assert torch.equal(weight, continued["model"][name]), name
    # run again: nothing is trained or scored twice
    stamp = (cell / "curve" / "frame-step00000004.json").stat().st_mtime_ns
    run_sweep(spec, out, progress=False)
    assert (cell / "curve" / "frame-step00000004.json").stat().st_mtime_ns == stamp


def test_each_layer_is_a_scoring_of_its_own(synthetic_collection: Path, tmp_path: Path) -> None:
    """``discover: layers``: every cell and the random-init baseline scored at each layer, one
    file and one table row per scoring; the network's own layer scored again under its name."""
    from tcdn.sweep.spec import parse_scoring, scoring_name

    spec = _one_cell_spec(
        tmp_path,
        synthetic_collection,
        baselines=True,
        layers=["fc6", "conv5"],
    )
    assert spec.scorings == ("frame@fc6", "frame@conv5")
    assert [parse_scoring(s) for s in spec.scorings] == [
        ("frame", "fc6", None),
        ("frame", "conv5", None),
    ]
    assert scoring_name("video", None) == "video" and parse_scoring("video") == (
        "video",
        None,
        None,
    )
    assert parse_scoring(scoring_name("frame", "fc6", "l2")) == ("frame", "fc6", "l2")
    assert parse_scoring("frame+l2") == ("frame", None, "l2")
    out = tmp_path / "sweep"
    rows = run_sweep(spec, out, progress=False)
    cell = out / "cells" / "plain" / "tiny" / "seed0"
    read = {}
    for scoring, layer in (("frame@fc6", "fc6"), ("frame@conv5", "conv5")):
        results = json.loads((cell / f"{scoring}.json").read_text())
        assert results["layer"] == layer
        read[layer] = results["results"]["trained"]["kmeans"]["ce_mean"]
        base = next((out / "baselines" / "tiny").glob(f"{scoring}-random_init-*.json"))
        assert json.loads(base.read_text())["layer"] == layer
    assert not (cell / "frame.json").exists()
    trained = {r["level"]: r["ce_mean"] for r in rows if r["source"] == "trained"}
    assert trained == pytest.approx({"frame@fc6": read["fc6"], "frame@conv5": read["conv5"]})
    assert {r["level"] for r in rows if r["source"] == "random_init"} == set(spec.scorings)
    summary = (out / "summary.md").read_text()
    assert "## frames, conv5 features, kmeans" in summary
    assert "## frames, fc6 features, kmeans" in summary
    assert json.loads((out / "spec.json").read_text())["layers"] == ["fc6", "conv5"]


def test_a_layer_a_network_lacks_is_refused_before_training(
    synthetic_collection: Path, tmp_path: Path
) -> None:
    spec = _one_cell_spec(
        tmp_path,
        synthetic_collection,
        baselines=False,
        layers=["fc6", "layer4"],
    )
    out = tmp_path / "sweep"
    with pytest.raises(
        TcdnError, match=r"recipe plain's network \(alexnet\) has no layer 'layer4'"
    ):
        run_sweep(spec, out, progress=False)
    assert not (out / "cells").exists()


def test_mean_ranks_share_ties() -> None:
    rows = [
        {
            "source": "trained",
            "recipe": r,
            "dataset": d,
            "level": "frame",
            "method": "kmeans",
            "ce_mean": v,
        }
        for r, d, v in [
            ("a", "x", 1.0),
            ("b", "x", 2.0),
            ("c", "x", 2.0),
            ("a", "y", 3.0),
            ("b", "y", 1.0),
        ]
    ]
    # x: a 1, b and c tie for 2 and 3 (2.5 each); y: b 1, a 2
    assert mean_ranks(rows, "frame", "kmeans") == {"a": 1.5, "b": 1.75, "c": 2.5}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"recipes": {}}, "give at least one recipe"),
        ({"recipes": {"bad name": {}}}, "recipe name 'bad name'"),
        ({"recipes": {"x": {"lr": -1}}}, "recipe x: invalid training option lr"),
        ({"datasets": {"d": {}}}, "either videos: DIR or synthetic"),
        ({"datasets": {"d": {"videos": "nowhere"}}}, "does not exist"),
        ({"datasets": {"d": {"synthetic": {"hue_spread": 2}}}}, "hue_spread"),
        ({"datasets": {"d": {"synthetic": {}, "colour": 1}}}, "unknown key"),
        ({"discover": {"levels": ["clip"]}}, "levels"),
        ({"discover": {"methods": ["dbscan"]}}, "unknown clustering method"),
        ({"train_seeds": 0}, "train_seeds"),
        ({"colour": 1}, "unknown key"),
        ({"curve": {"steps": [5, 4]}}, "must rise"),
        ({"curve": {"steps": [2, 5]}}, r"beyond the recipes' own steps \(2\)"),
        ({"curve": {"steps": "5"}}, "list of step counts"),
        ({"curve": {"steps": [5], "seeds": 3}}, "seeds must be a whole number from 1 to"),
        ({"curve": {"steps": [5], "every": 1}}, "curve: unknown key"),
        ({"discover": {"layers": "conv5"}}, "layers must be a list of distinct layer names"),
        ({"discover": {"layers": ["fc6", "fc6"]}}, "distinct layer names"),
        ({"discover": {"layers": []}}, "distinct layer names"),
        ({"discover": {"norms": ["l1"]}}, "norms must be a list of distinct names of none, l2"),
    ],
)
def test_bad_specs_are_refused(
    synthetic_collection: Path, tmp_path: Path, change: dict, match: str
) -> None:
    with pytest.raises(TcdnError, match=match):
        SweepSpec.from_yaml(_spec(tmp_path, synthetic_collection, **change))


def test_a_margin_sweep_is_plotted_against_the_margin(
    synthetic_collection: Path, tmp_path: Path
) -> None:
    from tcdn.sweep.table import plot_option_sweep, swept_option

    margins = {"m0.25": 0.25, "m0.5": 0.5, "m1": 1.0}
    spec = SweepSpec.from_yaml(
        _spec(
            tmp_path, synthetic_collection, recipes={k: {"margin": v} for k, v in margins.items()}
        )
    )
    assert swept_option(spec) == "margin"
    # two options at once (normalize and squared), or booleans, make no such plot
    assert swept_option(SweepSpec.from_yaml(_spec(tmp_path, synthetic_collection))) is None
    one = {"level": "frame", "method": "kmeans", "dataset": "tiny"}
    rows = [
        {**one, "source": "trained", "recipe": k, "ce_mean": 1.0 + v, "ce_std": 0.1}
        for k, v in margins.items()
    ] + [
        {**one, "source": "raw_pixels", "recipe": "", "ce_mean": 1.4, "ce_std": 0.0},
        {**one, "source": "random_init", "recipe": "", "ce_mean": 1.6, "ce_std": 0.1},
    ]
    path = plot_option_sweep(spec, rows, tmp_path)
    assert path == tmp_path / "ce-vs-margin.png" and path.stat().st_size > 1000


def test_options_added_later_keep_the_keys_of_earlier_sweeps() -> None:
    """A sweep folder's results belong to the key its recipes had when they ran: an option added
    since (feature_norm, cross_stream) at its default must not change the key."""
    from tcdn.sweep.spec import recipe_key

    data = yaml.safe_load((CONFIGS / "study" / "readout.yaml").read_text())
    data["datasets"] = {"d": {"synthetic": {}}}
    spec = SweepSpec.from_dict(data, root=CONFIGS / "study")
    # the keys issue 19's readout rounds recorded in their sweep folders' spec.json
    recorded = {"motion": "3ae74dc0c4e7", "appearance_aug": "3b8bc2d58c5d"}
    recorded["two_stream_aug"] = "12e199f97dfd"
    assert {name: recipe_key(spec.recipes[name]) for name in recorded} == recorded
    cfg = spec.recipes["two_stream_aug"]
    changed = TrainConfig.from_dict({**cfg.to_dict(), "cross_stream": 1.0})
    assert recipe_key(changed) != recorded["two_stream_aug"]
