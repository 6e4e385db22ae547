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


TRANSFER = sorted((PAPER / "transfer").glob("*.yaml"))


def test_there_is_a_transfer_config_per_table() -> None:
    tables = {load_experiment(p).paper["table"] for p in TRANSFER}
    assert tables == {"4", "5", "6"}


@pytest.mark.parametrize("path", TRANSFER, ids=[p.stem for p in TRANSFER])
def test_transfer_config_parses_and_documents_itself(path: Path) -> None:
    exp = load_experiment(path)
    assert exp.name == path.stem and exp.discover is None and exp.finetune is not None
    assert re.fullmatch(r"\d+\.\d+", exp.paper["trained"])
    assert re.fullmatch(r"\d+\.\d+", exp.paper["random_init"])
    text = path.read_text().splitlines()
    assert exp.paper["trained"] in text[1] and exp.paper["random_init"] in text[1]
    assert f"tcdn run configs/paper/transfer/{path.name} --data-root" in "\n".join(text)
    assert exp.train.steps == 30000 and exp.finetune.config.repeats >= 5


def test_a_config_needs_something_to_do(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain: {dataset: ucf101, root: u}\n")
    with pytest.raises(TcdnError, match="neither 'discover' nor 'finetune'"):
        load_experiment(bad)
    bad.write_text("name: x\ntrain: {dataset: ucf101, root: u}\nfinetune: {dataset: cifar10}\n")
    with pytest.raises(TcdnError, match="finetune: needs a dataset and its root"):
        load_experiment(bad)
    with pytest.raises(TcdnError, match="unknown transfer option"):
        load_experiment(TRANSFER[0], ["finetune.shotz=1"])


def test_a_transfer_table_runs_end_to_end(
    data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    # Table 4 on tiny fixtures: UCF101 videos to pre-train, PASCAL VOC action crops to fine-tune
    from tcdn.cli import main
    from tests.transfer.conftest import write_voc

    write_voc(data_root)
    path = PAPER / "transfer" / "pascal-ucf101-lq-alexnet.yaml"
    tiny = [s for s in TINY if not s.startswith("discover.")] + [
        "finetune.repeats=1",
        "finetune.shots=1",
        "finetune.test_size=6",
        "finetune.epochs=1",
        "finetune.min_steps=2",
    ]
    argv = [
        "run",
        str(path),
        "--data-root",
        str(data_root),
        "--out",
        str(tmp_path),
        "--workers",
        "1",
    ]
    code = main([*argv, *[a for s in tiny for a in ("--set", s)], "--no-progress"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "the paper (table 4, AlexNet, Lq (UCF101)): random_init 15.10, trained 18.15" in said.out
    results = json.loads((tmp_path / "results" / path.stem / "results.json").read_text())
    assert results["experiment"]["paper"]["trained"] == "18.15"
    assert set(results["results"]) == {"trained", "random_init"}
    assert results["results"]["trained"]["finetune"]["repeats"] == 1
    assert results["transfer"]["layers"]  # the weights did come from the trained run
    assert (tmp_path / "runs" / "ucf101-lq" / "log.jsonl").is_file()
