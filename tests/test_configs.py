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


def test_transfer_yaml_is_the_demo_recipe_on_the_cifar_net() -> None:
    import dataclasses

    demo = demo_train_config(200, 0)
    cifar = TrainConfig.from_yaml(CONFIGS / "transfer-lq-cifar-32px.yaml")
    differ = {
        f.name: getattr(cifar, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(cifar, f.name) != getattr(demo, f.name)
    }
    assert differ == {
        "model": "cifar10_quick",
        "model_options": {},
        "image_size": 32,
        "steps": 1000,
        "checkpoint_every": 250,
    }
