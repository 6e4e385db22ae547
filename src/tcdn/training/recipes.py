"""Named training recipes: what a plain ``tcdn train`` and ``make demo`` use, and the references
it is measured against. No torch here (the command line reads the names quickly).

- ``best``: the winner of the recipe study (README, "Which recipe, and why"; the rule that picked
  it was fixed before its final round): AlexNet with BatchNorm (``alexnet_bn``, He init, dropout
  0, a projection head whose input, fc6, is what discovery clusters), each input channel
  standardised, the frame's difference to its successor as the input (``motion: diffonly``), and
  temporal InfoNCE (``loss: nce``) on Lq's quadruplets; 64x64 frames, 300 steps at lr 0.01.
  ``configs/best.yaml`` writes it out.
- ``lq-64px``: the recipe shipped before the study (``configs/demo-lq-64px.yaml``): the paper's
  Lq, L2-normalised and squared as in the authors' release, AlexNet at 64x64, 200 steps.
- ``appearance``: ``best`` on the RGB frame instead of the difference, each frame of a tuple
  augmented on its own (random resized crop down to 30% of the area, flip, brightness, contrast
  and saturation 0.4, grey 20%, hue within a tenth of a turn): the appearance stream alone.
- ``two-stream``: both streams, each its own network (``streams: 2``, ``motion: diff``), joined
  after per-stream L2 normalisation, with ``appearance``'s augmentation.
- ``paper``: the paper's configuration as SPEC pins it (``TrainConfig()``'s defaults;
  ``configs/paper-lq-alexnet.yaml``): Lq on 227x227 frames for 30,000 steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tcdn.errors import TcdnError
from tcdn.training.config import TrainConfig

#: the frame side of the CPU-sized recipes
SIZE_64 = 64


def lq_64px(steps: int = 200, seed: int = 0) -> TrainConfig:
    """The Lq recipe on 64x64 frames (the demo before the study). It departs from the paper in
    three ways, each measured on the synthetic data (never on a labelled evaluation set):

    - at 64x64 AlexNet's pool5 is 1x1, so the adaptive pool before fc6 is 1x1 too instead of
      6x6 (which only repeats that one cell 36 times, at 36 times the cost of fc6);
    - 200 steps instead of 30,000, at a constant learning rate of 0.01;
    - L2-normalised embeddings and squared distances (the authors' release): with the paper's
      plain Euclidean Lq, every learning rate we tried (0.001 to 0.01) collapsed the embeddings
      to one point (loss = margin) within 150-500 steps on this data.
    """
    return TrainConfig(
        loss="lq",
        model="alexnet",
        model_options={"pool_size": 1},
        image_size=SIZE_64,
        steps=steps,
        lr=0.01,
        lr_step=10 * steps,
        normalize=True,
        squared=True,
        checkpoint_every=max(steps // 4, 1),
        keep_last=2,
        seed=seed,
    )


def best(steps: int = 300, seed: int = 0) -> TrainConfig:
    """The study's winner (see the module text): :func:`lq_64px`'s schedule with a start that is
    not collapsed, temporal InfoNCE and the motion input."""
    base = lq_64px(200, seed).to_dict()  # the study's recipes all started from the 200-step one
    base.update(
        loss="nce",
        model="alexnet_bn",
        model_options={"pool_size": 1, "dropout": 0.0, "init": "he"},
        head="mlp",
        input_norm="meanstd",
        motion="diffonly",
        steps=steps,
        checkpoint_every=max(steps // 4, 1),
    )
    return TrainConfig.from_dict(base)


#: the per-view augmentation of ``appearance`` and ``two-stream`` (issue 19's study)
VIEW_AUGMENT: dict[str, Any] = {"augment": "appearance", "aug_crop_scale": 0.3, "aug_hue": 0.1}


def appearance(steps: int = 300, seed: int = 0) -> TrainConfig:
    """:func:`best` on the RGB frame with per-view augmentation (see the module text)."""
    return TrainConfig.from_dict({**best(steps, seed).to_dict(), "motion": "none", **VIEW_AUGMENT})


def two_stream(steps: int = 300, seed: int = 0) -> TrainConfig:
    """Appearance and motion, each its own network (see the module text)."""
    return TrainConfig.from_dict(
        {**best(steps, seed).to_dict(), "motion": "diff", "streams": 2, **VIEW_AUGMENT}
    )


def paper(steps: int | None = None, seed: int = 0) -> TrainConfig:
    """The paper's Lq configuration (``TrainConfig()``), optionally with fewer ``steps``."""
    cfg = TrainConfig(seed=seed)
    return cfg if steps is None else TrainConfig.from_dict({**cfg.to_dict(), "steps": steps})


RECIPES: dict[str, Callable[..., TrainConfig]] = {
    "best": best,
    "appearance": appearance,
    "two-stream": two_stream,
    "lq-64px": lq_64px,
    "paper": paper,
}
#: what ``tcdn train`` uses when neither ``--recipe`` nor ``--config`` says otherwise
DEFAULT_RECIPE = "best"


def recipe(name: str, **kwargs: Any) -> TrainConfig:
    """The recipe called ``name`` (:data:`RECIPES`), e.g. ``recipe("best", steps=1000)``."""
    try:
        make = RECIPES[name]
    except KeyError:
        raise TcdnError(
            f"unknown recipe {name!r}; choose from {', '.join(RECIPES)} (or give --config FILE)"
        ) from None
    return make(**kwargs)


#: options that say how a run was carried out, not what it learns: a config that differs from a
#: recipe only in these is that recipe
RUN_OPTIONS = frozenset(
    {
        "steps",
        "seed",
        "precision",
        "bf16",
        "channels_last",
        "compile",
        "tensorboard",
        "checkpoint_every",
        "keep_last",
        "log_every",
        "threads",
        "lr_step",
    }
)


def recipe_name(config: dict[str, Any] | TrainConfig | None) -> str | None:
    """The name of the recipe (:data:`RECIPES`) a training config is, up to :data:`RUN_OPTIONS`
    (steps, seed, precision...); ``None`` for a config of its own (or none at all)."""
    if config is None:
        return None
    mine = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    have = mine.resolved().to_dict()
    for name, make in RECIPES.items():
        ref = make().resolved().to_dict()
        if all(have.get(k) == v for k, v in ref.items() if k not in RUN_OPTIONS):
            return name
    return None
