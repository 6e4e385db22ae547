"""Does training learn? A short real run of the demo's configuration on the built-in synthetic data.

Slow (a few minutes on 2 cores): it trains the default recipe (``best``: two BatchNorm AlexNets,
on the augmented RGB frame and on its difference to the next, temporal InfoNCE) for 100 steps on
the demo collection, then checks the learned fc6 features discover the categories clearly better
than the same networks with random weights, and that both are no worse than a random assignment
(issue 19's study, 300 steps: 0.367 ± 0.033 bits against the random networks' 1.548 of 2.58).
This guards the whole
learning path (sampler -> batch layout -> loss -> optimiser -> features), which the unit tests
only check piece by piece.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tcdn.data.load import load_frames
from tcdn.data.synthetic import SyntheticConfig, generate
from tcdn.demo import DEMO_SIZE, demo_train_config
from tcdn.discovery.config import DiscoverConfig
from tcdn.discovery.pipeline import discover_collection
from tcdn.training.checkpoint import load_checkpoint
from tcdn.training.run import train


@pytest.fixture
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_default_recipe_beats_random_init_on_synthetic_data(
    tmp_path: Path, two_threads: None
) -> None:
    generate(tmp_path / "videos", SyntheticConfig(), progress=False)
    frames = load_frames(tmp_path / "videos", size=DEMO_SIZE, progress=False)
    ckpt = train(frames, demo_train_config(steps=100, seed=0), tmp_path / "run", progress=False)
    results, _, _ = discover_collection(
        frames,
        load_checkpoint(ckpt),
        DiscoverConfig(
            sources=("trained", "random_init", "random_assignment"),
            methods=("kmeans",),
            repeats=3,
            frame_stride=4,
        ),
        progress=False,
    )
    res = {s: results["results"][s]["kmeans"] for s in results["results"]}
    trained, rand_net, rand_assign = res["trained"], res["random_init"], res["random_assignment"]
    assert rand_assign["ce_mean"] == pytest.approx(math.log2(6), abs=0.05)
    assert rand_net["ce_mean"] < rand_assign["ce_mean"]
    assert trained["ce_mean"] < rand_assign["ce_mean"] - 0.4, res
    # Learning must help, with a gap wider than both spreads.
    assert trained["ce_mean"] + trained["ce_std"] < rand_net["ce_mean"] - rand_net["ce_std"], res
