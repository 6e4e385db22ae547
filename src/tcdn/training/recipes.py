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


def paper(steps: int | None = None, seed: int = 0) -> TrainConfig:
    """The paper's Lq configuration (``TrainConfig()``), optionally with fewer ``steps``."""
    cfg = TrainConfig(seed=seed)
    return cfg if steps is None else TrainConfig.from_dict({**cfg.to_dict(), "steps": steps})


RECIPES: dict[str, Callable[..., TrainConfig]] = {"best": best, "lq-64px": lq_64px, "paper": paper}
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
