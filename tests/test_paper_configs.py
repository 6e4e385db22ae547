"""configs/paper/: every experiment config parses, says what the paper reports and what it costs,
and runs end to end (ingest, train, discover, report) on tiny datasets in the official layouts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tcdn.errors import TcdnError
from tcdn.experiment import load_experiment
from tests.conftest import TRAIN_SIZE, write_noise_video
from tests.data.test_datasets import write_5contexts, write_ucf101

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper"
CONFIGS = sorted(PAPER.glob("*.yaml"))

#: a tiny network and run, so that every config runs a few steps in seconds
TINY = [
    f"train.image_size={TRAIN_SIZE}",
    "train.model_options={fc6_dim: 64}",
    "train.embed_dim=16",
    "train.batch_size=2",
    "train.steps=2",
    "train.checkpoint_every=2",
    "train.far=3",
    "discover.repeats=1",
]


def test_there_is_a_config_per_experiment() -> None:
    names = {p.stem for p in CONFIGS}
    for loss in ("ls", "lq"):
        for mu in ("", "-mu"):
            for layer in ("fc6", "fc7"):
                assert f"ucf101-{loss}{mu}-{layer}" in names  # Table 1
    assert "ucf101-sfa-fc6" in names  # Table 2
    assert {f"5contexts-{loss}-fc6" for loss in ("sfa", "ls", "lq")} <= names  # Table 3
    assert "ucf101-to-5contexts-lq-fc6" in names  # section 4.1.4


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_parses_and_documents_itself(path: Path) -> None:
    exp = load_experiment(path)
    assert exp.name == path.stem
    assert exp.paper["table"] and exp.paper["kmeans"]
    assert re.fullmatch(r"\d\.\d\d ± \d\.\d\d", exp.paper["kmeans"])
    assert "h on the 2-core development CPU" in exp.hardware
    assert exp.train.image_size == 227 and exp.train.steps == 30000  # the paper's run (SPEC §4)
    assert exp.discover.layer in ("fc6", "fc7") and exp.discover.repeats == 10
    text = path.read_text()
    assert f"tcdn run configs/paper/{path.name} --data-root" in text
    assert exp.paper["kmeans"] in text.splitlines()[1]  # said in the header's second line


def test_overrides_and_errors(tmp_path: Path) -> None:
    exp = load_experiment(CONFIGS[0], ["train.steps=5", "discover.repeats=2"])
    assert exp.train.steps == 5 and exp.discover.repeats == 2
    with pytest.raises(TcdnError, match=r"write train\.OPTION=VALUE"):
        load_experiment(CONFIGS[0], ["steps=5"])
    with pytest.raises(TcdnError, match="unknown training option"):
        load_experiment(CONFIGS[0], ["train.stepz=5"])
    with pytest.raises(TcdnError, match="unknown discover option"):
        load_experiment(CONFIGS[0], ["discover.kk=5"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntrain: {dataset: ucf202, root: u}\ndiscover: {dataset: ucf101, root: u}\n"
    )
    with pytest.raises(TcdnError, match="dataset 'ucf202' is unknown"):
        load_experiment(bad)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    write_ucf101(root / "ucf101", write_noise_video, n_frames=12)
    write_5contexts(root / "5contexts", write_noise_video, n_frames=6)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_runs_a_few_steps(
    path: Path,
    data_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    from tcdn.cli import main

    out = tmp_path_factory.getbasetemp() / "paper-runs"  # shared: stores and runs are reused
    argv = ["run", str(path), "--data-root", str(data_root), "--out", str(out), "--workers", "1"]
    code = main([*argv, *[a for s in TINY for a in ("--set", s)], "--no-progress"])
    said = capsys.readouterr()
    assert code == 0, said.err
    exp = load_experiment(path)
    assert f"the paper (table {exp.paper['table']}" in said.out
    where = out / "results" / exp.name
    results = json.loads((where / "results.json").read_text())
    assert results["experiment"]["paper"] == exp.paper
    assert results["layer"] == exp.discover.layer
    assert set(results["results"]) == {"trained", "random_assignment"}
    assert set(results["results"]["trained"]) == set(exp.discover.methods)
    assert results["discovered"]["k"] == len(results["classes"])
    assert (where / "report.html").is_file()
    assert (out / "runs" / exp.run / "log.jsonl").is_file()
