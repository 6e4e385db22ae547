"""The shipped YAML configs load, validate, and say what the code says."""

from __future__ import annotations

from pathlib import Path

from tcdn.demo import demo_train_config
from tcdn.training.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_demo_yaml_equals_the_demo_config() -> None:
    from_yaml = TrainConfig.from_yaml(CONFIGS / "demo-lq-64px.yaml")
    assert from_yaml == demo_train_config(200, 0)


def test_paper_yaml_equals_the_defaults() -> None:
    assert TrainConfig.from_yaml(CONFIGS / "paper-lq-alexnet.yaml") == TrainConfig()


def test_yaml_files_name_every_option() -> None:
    """The shipped configs document every option, new ones included."""
    import dataclasses

    import yaml

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for path in sorted(CONFIGS.glob("*.yaml")):
        assert set(yaml.safe_load(path.read_text())) == fields, path.name


def test_study_finalists_are_the_demo_recipe_with_the_bn_nce_options() -> None:
    import dataclasses

    demo = demo_train_config(200, 0)
    for motion in ("diff", "diffonly"):
        cfg = TrainConfig.from_yaml(CONFIGS / f"bn-nce-{motion}-64px.yaml")
        differ = {
            f.name: getattr(cfg, f.name)
            for f in dataclasses.fields(TrainConfig)
            if getattr(cfg, f.name) != getattr(demo, f.name)
        }
        assert differ == {
            "loss": "nce",
            "model": "alexnet_bn",
            "model_options": {"pool_size": 1, "dropout": 0.0, "init": "he"},
            "head": "mlp",
            "input_norm": "meanstd",
            "motion": motion,
            "steps": 300,
        }
        assert (cfg.head_hidden, cfg.head_dim, cfg.temperature, cfg.far_positive) == (
            1024,
            256,
            0.1,
            True,
        )
