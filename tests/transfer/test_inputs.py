"""What a transferred network reads (tcdn.transfer.inputs): the checkpoint's own input, motion
input from video frames, still images refused or sent to the appearance stream."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tcdn.errors import TcdnError
from tcdn.models.input import InputTransform, successor_rows
from tcdn.transfer.classifier import APPEARANCE, WHOLE, build_classifier
from tcdn.transfer.inputs import NetInput, encode_numpy, plan_input
from tests.conftest import small_config

from .conftest import cifar_checkpoint


def _with_input(ckpt: dict[str, Any], motion: str) -> dict[str, Any]:
    c = 6 if motion in ("diff", "stack") else 3
    rng = np.random.default_rng(0)
    mean, std = rng.uniform(0, 0.5, c), rng.uniform(0.1, 0.3, c)
    ckpt["input"] = InputTransform(motion, mean, std).state()
    return ckpt


def test_a_diffonly_network_is_refused_for_still_images_and_says_what_to_do() -> None:
    ckpt = _with_input(cifar_checkpoint(motion="diffonly", input_norm="meanstd"), "diffonly")
    with pytest.raises(TcdnError, match=r"cifar\.pt was trained on motion input.*motion=none"):
        plan_input(ckpt, video=False)
    transform, part = plan_input(ckpt, video=True)
    assert part == WHOLE and transform is not None and transform.motion == "diffonly"


def test_netinput_equals_the_training_transform_on_frames_and_successors() -> None:
    # the transform tcdn train applies (InputTransform) and the one fine-tuning applies agree,
    # the last frame of a video taking its predecessor with sign -1
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    nxt, sign = successor_rows(np.array([0, 3, 5]))
    assert sign.tolist() == [1, 1, -1, 1, -1]
    for motion in ("none", "diffonly", "diff"):
        c = 6 if motion == "diff" else 3
        t = InputTransform(motion, rng.uniform(0, 0.5, c), rng.uniform(0.1, 0.3, c))
        want = t(frames, frames[nxt], sign)
        net = NetInput(t, np.zeros(3, np.float32))
        pairs = np.concatenate([frames, frames[nxt]], axis=3) if net.needs_successor else frames
        got = encode_numpy(net, pairs, sign if net.needs_successor else None, "cpu")
        torch.testing.assert_close(got, want)
    plain = NetInput(None, np.array([100.0, 110.0, 120.0], np.float32))
    got = encode_numpy(plain, frames, None, "cpu")
    assert abs(float(got[:, 0].mean()) - (frames[..., 0].mean() - 100.0) / 255.0) < 1e-5


def test_two_streams_give_still_images_the_appearance_stream() -> None:
    cfg = small_config(
        model="alexnet_bn",
        model_options={"fc6_dim": 64, "pool_size": 1, "dropout": 0.0, "init": "he"},
        input_norm="meanstd",
        motion="diff",
        streams=2,
    )
    torch.manual_seed(0)
    ckpt = {"config": cfg.to_dict(), "model": cfg.build_model().state_dict(), "path": "two.pt"}
    ckpt = _with_input(ckpt, "diff")
    transform, part = plan_input(ckpt, video=False)
    assert part == APPEARANCE and transform is not None and transform.motion == "none"
    full = InputTransform.from_state(ckpt["input"])
    np.testing.assert_allclose(transform.mean, full.mean[:3])
    model, report = build_classifier(
        ckpt["config"], 4, init="trained", state=ckpt["model"], part=part
    )
    assert report is not None and "appearance stream" in report.summary()
    own = model.state_dict()
    for name, _ in report.loaded:  # backbone.X holds appearance.X
        src = "appearance." + name[len("backbone.") :]
        torch.testing.assert_close(own[name], ckpt["model"][src])
    assert any(n.startswith("motion.") for n, _ in report.unused)
    side = cfg.image_size
    assert model.eval()(torch.zeros(2, 3, side, side)).shape == (2, 4)
    _, whole = plan_input(ckpt, video=True)
    assert whole == WHOLE
    # video frames: both streams, every stage of each loaded (none left new but the new layer)
    model, report = build_classifier(
        ckpt["config"], 4, init="trained", state=ckpt["model"], part=whole
    )
    assert report is not None
    loaded = {name for name, _ in report.loaded}
    assert {n.split(".")[1] for n in loaded} == {"appearance", "motion"}
    with_weights = {k.split(".")[2] for k in ckpt["model"] if ".stages." in k}
    assert set(report.layers) == with_weights and "fc6" in with_weights
    own = model.state_dict()
    for name in loaded:
        torch.testing.assert_close(own[name], ckpt["model"][name[len("backbone.") :]])
    assert all(not n.startswith("backbone.") for n, _ in report.new)
