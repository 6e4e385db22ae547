"""The training config (``tcdn.training.config``): validation, YAML, ``--set`` overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import tcdn.training.config as train_mod
from tcdn.errors import TcdnError
from tcdn.training.config import TrainConfig
from tests.conftest import small_config


# -- TrainConfig ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("loss", "triplet"),
        ("model", "vgg"),
        ("steps", 0),
        ("batch_size", 0),
        ("embed_dim", 0),
        ("image_size", 16),
        ("lr", 0.0),
        ("lr", -1.0),
        ("lr", float("nan")),
        ("lr", float("inf")),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("weight_decay", -1e-4),
        ("lr_step", 0),
        ("lr_gamma", 0.0),
        ("lr_gamma", 1.5),
        ("grad_clip", 0.0),
        ("margin", 0.0),
        ("margin", float("nan")),
        ("window", 0),
        ("far", 1),
        ("negative_share", 1.5),
        ("checkpoint_every", 0),
        ("keep_last", 0),
        ("log_every", 0),
    ],
)
def test_config_rejects_bad_values(option: str, value: object) -> None:
    with pytest.raises(TcdnError, match=f"invalid training option {option}="):
        TrainConfig(**{option: value})  # type: ignore[arg-type]


def test_config_error_lists_choices() -> None:
    with pytest.raises(TcdnError) as info:
        TrainConfig(model="vgg")
    assert "alexnet" in str(info.value) and "alexnet_lrcn" in str(info.value)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(TcdnError, match="unknown training option") as info:
        TrainConfig.from_dict({"steps": 5, "learning_rate": 0.1, "bach_size": 3})
    msg = str(info.value)
    assert "bach_size, learning_rate" in msg
    assert "known:" in msg and "batch_size" in msg and "lr" in msg


def test_resolved_defaults() -> None:
    lq, ls = TrainConfig().resolved(), TrainConfig(loss="ls").resolved()
    assert (lq.embed_dim, lq.batch_size, lq.margin, lq.tuple_size) == (1024, 40, 0.5, 4)
    assert (ls.embed_dim, ls.batch_size, ls.margin, ls.tuple_size) == (4096, 120, 1.0, 2)
    assert TrainConfig(margin=0.2).resolved().margin == 0.2


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = small_config(loss="ls", mu=True, grad_clip=None, margin=0.7, seed=3)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    back = TrainConfig.from_yaml(path)
    assert back == cfg
    assert back.model_options == {"fc6_dim": 64}
    assert back.grad_clip is None


def test_yaml_partial_file_keeps_defaults(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("steps: 12\nloss: ls\n")
    cfg = TrainConfig.from_yaml(path)
    assert (cfg.steps, cfg.loss, cfg.lr) == (12, "ls", TrainConfig().lr)
    path.write_text("")
    assert TrainConfig.from_yaml(path) == TrainConfig()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- a\n- b\n", "must hold a mapping"),
        ("steps: [1, 2\n", "cannot read config file"),
        ("stepz: 3\n", "unknown training option"),
    ],
)
def test_bad_yaml(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(TcdnError, match=match):
        TrainConfig.from_yaml(path)


def test_missing_yaml(tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="cannot read config file"):
        TrainConfig.from_yaml(tmp_path / "absent.yaml")


# -- the other losses ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("loss", "tuple_size", "embed", "batch", "margin"),
    [("sfa", 2, 4096, 120, 1.0), ("ld", 3, 1024, 40, 0.5)],
)
def test_resolved_defaults_of_sfa_and_ld(loss, tuple_size, embed, batch, margin) -> None:
    cfg = TrainConfig(loss=loss).resolved()
    assert (cfg.tuple_size, cfg.embed_dim, cfg.batch_size, cfg.margin) == (
        tuple_size,
        embed,
        batch,
        margin,
    )


def test_compile_needs_channels_last() -> None:
    with pytest.raises(TcdnError, match=r"compile.*channels_last"):
        small_config(compile=True, channels_last=False)


# -- config options and --set --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("schedule", "linear"),
        ("warmup", -1),
        ("augment", "strong"),
        ("aug_flip", 1.5),
        ("aug_crop_scale", 0.0),
        ("aug_grey", -0.1),
        ("cross_stream", -0.5),
        ("cross_stream", float("inf")),
    ],
)
def test_config_rejects_bad_new_values(option: str, value: object) -> None:
    with pytest.raises(TcdnError, match=f"invalid training option {option}="):
        TrainConfig(**{option: value})  # type: ignore[arg-type]


def test_cross_stream_needs_two_streams_and_nce() -> None:
    two = {"loss": "nce", "model": "alexnet_bn", "motion": "diff", "streams": 2}
    assert TrainConfig(**two, cross_stream=1.0).cross_stream == 1.0
    with pytest.raises(TcdnError, match=r"cross_stream=1\.0: ranks one stream") as info:
        TrainConfig(**{**two, "streams": 1}, cross_stream=1.0)
    assert "streams: 2" in str(info.value)
    with pytest.raises(TcdnError, match="cross_stream"):
        TrainConfig(**{**two, "loss": "lq"}, cross_stream=1.0)


def test_parse_overrides() -> None:
    assert train_mod.parse_overrides(
        ["lr=0.001", "model_options={dropout: 0}", "grad_clip=null"]
    ) == {
        "lr": 0.001,
        "model_options": {"dropout": 0},
        "grad_clip": None,
    }
    cfg = TrainConfig.from_dict(train_mod.parse_overrides(["lr=1e-3", "bf16=true", "steps=12"]))
    assert (cfg.lr, cfg.bf16, cfg.steps) == (1e-3, True, 12)
    with pytest.raises(TcdnError, match="option=value"):
        train_mod.parse_overrides(["lr"])
    with pytest.raises(TcdnError, match="cannot read the value"):
        train_mod.parse_overrides(["model_options={a: [1"])
