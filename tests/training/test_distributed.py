"""Training under torchrun (``tcdn.training.distributed``): batch sharding and a two-process gloo run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.training.run import train
from tests.conftest import TRAIN_SIZE, small_config


# -- distributed ---------------------------------------------------------------------------------
def test_uneven_global_batch_is_refused_before_starting(
    train_frames: FrameSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(TcdnError, match="divisible by 3"):
        train(train_frames, small_config(batch_size=4), tmp_path, progress=False)
    assert not tmp_path.joinpath("config.yaml").exists()


#: largest allowed |w_ddp - w_single| over all weights after 4 steps: only the order in which
#: floating-point sums are taken differs (measured: about 2e-8 for weights of about 0.1)
DDP_TOLERANCE = 1e-6


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(
    synthetic_collection: Path, tmp_path: Path
) -> None:
    """``torchrun --nproc_per_node=2 -m tcdn train`` on CPU (gloo) takes the steps of a single
    process with the same global batch. Dropout is off: each rank draws its own masks."""
    import os
    import subprocess
    import sys

    cfg = small_config(
        steps=4,
        batch_size=6,
        lr=0.5,
        normalize=True,
        squared=True,
        augment="appearance",
        model_options={"fc6_dim": 64, "dropout": 0.0},
        threads=1,
    )
    yaml_path = tmp_path / "cfg.yaml"
    yaml_path.write_text(yaml.safe_dump(cfg.to_dict()))
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [
        str(synthetic_collection),
        "--config",
        str(yaml_path),
        "--size",
        str(TRAIN_SIZE),
        "--no-progress",
    ]
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "tcdn",
            "train",
            *common,
            "--out",
            str(tmp_path / "ddp"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from tcdn.data.load import load_frames

    frames = load_frames(synthetic_collection, size=TRAIN_SIZE, progress=False)
    single = train(frames, cfg, tmp_path / "single", progress=False)
    a = torch.load(tmp_path / "ddp" / "step_00000004.pt", weights_only=True)
    b = torch.load(single, weights_only=True)
    assert a["world_size"] == 2 and b["world_size"] == 1
    start = torch.load(tmp_path / "single" / "step_00000002.pt", weights_only=True)["model"]
    moved = max((b["model"][k] - start[k]).abs().max().item() for k in start)
    assert moved > 100 * DDP_TOLERANCE  # the runs did learn something between steps 2 and 4
    for name, tensor in b["model"].items():
        diff = (a["model"][name] - tensor).abs().max().item()
        assert diff < DDP_TOLERANCE, (name, diff)
    assert a["sampler"]["bit_generator"] == b["sampler"]["bit_generator"]
    logs = [json.loads(r) for r in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2, 3, 4]  # rank 0 alone writes the log
