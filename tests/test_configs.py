"""The shipped YAML configs load, validate, and say what the code says."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from tcdn.demo import demo_train_config, run_demo
from tcdn.training.config import TrainConfig
from tcdn.training.recipes import actions, best, lq_64px, recipe

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def differing(cfg: TrainConfig, base: TrainConfig) -> dict[str, object]:
    """The options of ``cfg`` whose values differ from ``base``'s, with ``cfg``'s values."""
    theirs = base.to_dict()
    return {k: v for k, v in cfg.to_dict().items() if theirs[k] != v}


def test_lq_64px_yaml_equals_its_recipe() -> None:
    from_yaml = TrainConfig.from_yaml(CONFIGS / "demo-lq-64px.yaml")
    assert from_yaml == lq_64px(200, 0) == recipe("lq-64px")


def test_best_yaml_is_the_default_recipe_and_the_demo() -> None:
    assert TrainConfig.from_yaml(CONFIGS / "best.yaml") == best() == recipe("best")
    assert recipe("two-stream") == best() and recipe("appearance") == recipe("scenes")
    assert demo_train_config(300, 0) == best()
    # the demo trains as long as a plain `tcdn train` does (the length round kept 300 steps)
    assert inspect.signature(run_demo).parameters["steps"].default == best().steps == 300
    assert best().precision == "auto"  # the length round's part A
    for name in ("actions", "scenes", "two-stream"):
        assert TrainConfig.from_yaml(CONFIGS / f"{name}.yaml") == recipe(name)
    # the first study's finalist, as it was measured, but for how often it writes checkpoints and
    # how its features are read
    finalist = TrainConfig.from_yaml(CONFIGS / "bn-nce-diffonly-64px.yaml")
    assert differing(actions(), finalist) == {"checkpoint_every": 75, "feature_norm": "l2"}


def test_the_recipes_ship_as_issue_19s_study_measured_them() -> None:
    import yaml

    from tcdn.sweep.spec import SweepSpec

    data = yaml.safe_load((CONFIGS / "study" / "everywhere.yaml").read_text())
    assert set(data["datasets"]) == {"weizmann4", "arid6", "genre3", "demo", "hue"}
    data["datasets"] = {"d": {"synthetic": {}}}  # the real sets need not be on this machine
    spec = SweepSpec.from_dict(data, root=CONFIGS / "study")
    shipped = {"motion": "actions", "appearance_aug": "scenes", "two_stream_aug": "best"}
    readout = yaml.safe_load((CONFIGS / "study" / "readout.yaml").read_text())
    readout["datasets"] = data["datasets"]
    rounds = SweepSpec.from_dict(readout, root=CONFIGS / "study")
    assert rounds.layers == ("fc6", "conv5")  # round 1; round 2 (norms: [l2]) used the same cells
    for measured, name in shipped.items():
        # the study trained in bf16 where the CPU has it (its rule 4 shipped fp32; the length
        # round shipped `auto` for `best`) and read fc6 as it is; the readout rounds chose unit
        # length, and the fourth temperature 0.5 for the two augmented recipes
        assert spec.recipes[measured].precision == "auto"
        assert differing(spec.recipes[measured], recipe(name, steps=300)) == {
            **({} if name == "best" else {"precision": "auto"}),
            "feature_norm": "none",
            **({} if measured == "motion" else {"temperature": 0.1}),
            **({"cross_stream": 0.0} if name == "best" else {}),
        }
        assert rounds.recipes[measured] == spec.recipes[measured]
    assert spec.curve_steps == (1000, 3000)
    # the fourth round's candidates, as run (docs/study/readout/), are the shipped recipes
    as_run = CONFIGS.parent / "docs" / "study" / "readout"
    # (the two-stream one before the cross-stream round added its term), and so is that round's
    fourth = {"appearance_t05": ("t05a", "scenes"), "two_stream_t05": ("t05b", "best")}
    # and the length round's two parts (docs/study/length-rule.md): `best` in fp32, and its bf16
    # runs continued to 1,000 steps
    rounds_as_run = {
        **fourth,
        "two_stream_cross": ("cross", "best"),
        "two_stream_cross_fp32": ("fp32", "best"),
    }
    kinds = {"cross": ("cross", "crosscurve", "cross1k")}
    for measured, (tag, name) in rounds_as_run.items():
        for lane in ("R1", "R2"):
            for kind in kinds.get(tag, (tag,)):
                ran = yaml.safe_load((as_run / f"sweep{lane}-{kind}-spec.yaml").read_text())
                ran["base"] = str(CONFIGS / "actions.yaml")  # the development machine's path
                ran["datasets"] = data["datasets"]
                as_spec = SweepSpec.from_dict(ran, root=as_run)
                cfg = as_spec.recipes[measured]
                before = {"cross_stream": 0.0} if measured == "two_stream_t05" else {}
                precision = {"fp32": "fp32", "t05a": "auto"}.get(tag)
                assert differing(cfg, recipe(name, steps=300)) == {
                    **({"precision": precision} if precision else {}),
                    "feature_norm": "none",
                    **before,
                }
                if kind == "cross1k":
                    assert as_spec.curve_steps == (1000,) and as_spec.curve_seeds == 3


def test_paper_yaml_equals_the_defaults() -> None:
    assert TrainConfig.from_yaml(CONFIGS / "paper-lq-alexnet.yaml") == TrainConfig()
    assert recipe("paper") == TrainConfig()


def test_yaml_files_name_every_option() -> None:
    """The shipped configs document every option, new ones included."""
    import dataclasses

    import yaml

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for path in sorted(CONFIGS.glob("*.yaml")):
        assert set(yaml.safe_load(path.read_text())) == fields, path.name


def test_transfer_yaml_is_the_demo_recipe_on_the_cifar_net() -> None:
    demo = lq_64px(200, 0)
    cifar = TrainConfig.from_yaml(CONFIGS / "transfer-lq-cifar-32px.yaml")
    assert differing(cifar, demo) == {
        "model": "cifar10_quick",
        "model_options": {},
        "image_size": 32,
        "steps": 1000,
        "checkpoint_every": 250,
    }


def test_study_finalists_are_the_demo_recipe_with_the_bn_nce_options() -> None:
    demo = lq_64px(200, 0)
    for motion in ("diff", "diffonly"):
        cfg = TrainConfig.from_yaml(CONFIGS / f"bn-nce-{motion}-64px.yaml")
        assert differing(cfg, demo) == {
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


def test_study_sweep_spec_has_the_three_recipes(tmp_path: Path) -> None:
    """configs/study/final.yaml: the shipped demo recipe and the two finalists at 300 steps (its
    weizmann4 path is checked where the data lie: here a folder stands in for it)."""
    import dataclasses

    import yaml

    from tcdn.sweep.spec import SweepSpec, architecture_key

    study = CONFIGS / "study"
    data = yaml.safe_load((study / "final.yaml").read_text())
    assert data["datasets"]["weizmann4"]["videos"].endswith("shared/data/weizmann4/videos")
    data["datasets"]["weizmann4"]["videos"] = str(tmp_path)
    spec = SweepSpec.from_dict(data, root=study)
    assert spec.train_seeds == 3 and set(spec.recipes) == {
        "shipped",
        "bn_nce_diff",
        "bn_nce_diffonly",
    }
    assert spec.recipes["shipped"] == dataclasses.replace(lq_64px(200, 0), steps=300)
    for motion in ("diff", "diffonly"):
        standalone = TrainConfig.from_yaml(CONFIGS / f"bn-nce-{motion}-64px.yaml")
        assert spec.recipes[f"bn_nce_{motion}"] == standalone
    keys = {architecture_key(cfg) for cfg in spec.recipes.values()}
    assert len(keys) == 3  # each recipe's random-init baseline is its own architecture and input


def test_the_margin_sweep_varies_the_margin_alone() -> None:
    from tcdn.sweep.spec import SweepSpec
    from tcdn.sweep.table import swept_option

    spec = SweepSpec.from_yaml(CONFIGS / "study" / "margin.yaml")
    assert swept_option(spec) == "margin"
    assert sorted(cfg.margin for cfg in spec.recipes.values()) == [0.1, 0.25, 0.5, 1.0, 2.0]
    assert {cfg.loss for cfg in spec.recipes.values()} == {"lq"}


def test_every_recipe_is_recognised_by_name_whatever_its_run_options() -> None:
    from tcdn.cli.train import RECIPE_NAMES
    from tcdn.training.recipes import ALIASES, RECIPES, recipe, recipe_name

    assert RECIPE_NAMES == (*RECIPES, *ALIASES)  # --recipe's choices, kept without importing
    for alias, name in ALIASES.items():
        assert recipe_name(recipe(alias)) == name  # a config is named by what it is
    for name in RECIPES:
        cfg = recipe(name, seed=7)
        assert recipe_name(cfg) == name
        run = dataclasses.replace(cfg, steps=cfg.steps + 1, precision="bf16", threads=1)
        assert recipe_name(run.to_dict()) == name  # how it ran does not change what it is
    assert recipe_name(dataclasses.replace(recipe("best"), temperature=0.1)) is None
    assert recipe_name(dataclasses.replace(recipe("actions"), motion="diff")) is None
    assert recipe_name(None) is None


def test_the_recipes_differ_in_their_input_and_loss_alone() -> None:
    from tcdn.training.recipes import recipe

    base = recipe("actions")
    assert differing(recipe("scenes"), base) == {
        "motion": "none",
        "augment": "appearance",
        "aug_crop_scale": 0.3,
        "aug_hue": 0.1,
        "temperature": 0.5,
    }
    assert differing(recipe("best"), base) == {
        "motion": "diff",
        "streams": 2,
        "augment": "appearance",
        "aug_crop_scale": 0.3,
        "aug_hue": 0.1,
        "temperature": 0.5,
        "cross_stream": 1.0,  # and its loss: the cross-stream term
        # and its precision (the length round's part A)
        "precision": "auto",
    }
