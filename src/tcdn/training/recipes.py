"""Named training recipes: what a plain ``tcdn train`` and ``make demo`` use, the recipes named
by what they are for, and the references they are measured against. No torch here (the command
line reads the names quickly).

All of issue 19's recipes are AlexNet with BatchNorm (``alexnet_bn``, He init, dropout 0, a
projection head whose input, fc6, is what discovery clusters, each frame's fc6 divided by its
length, ``feature_norm: l2``), each input channel standardised and temporal InfoNCE
(``loss: nce``) on Lq's quadruplets; 64x64 frames, 300 steps at lr 0.01, in fp32
(:data:`PRECISION`), but ``best`` in bf16 where the CPU or GPU has it natively
(:data:`BEST_PRECISION`). They differ in what the network sees:

- ``best`` (also ``two-stream``): the default: appearance and motion, each its own network
  (``streams: 2``, ``motion: diff``: the RGB frame and its difference to the next), joined after
  per-stream L2 normalisation; each frame of a tuple augmented on its own (random resized crop
  down to 30% of the area, flip, brightness, contrast and saturation 0.4, grey 20%, hue within a
  tenth of a turn); InfoNCE at temperature 0.5 on the joined embedding plus, at equal weight, the
  cross-stream term (``cross_stream: 1``: each stream ranked against the other's frames, after
  CMC). The fourth readout round of issue 19's study chose the two streams (README, "Issue 19's
  readout rounds"; each rule was written before its run); the cross-stream round then beat that
  recipe in 10 of 10 set x method comparisons (weizmann4, where its appearance stream had learned
  the performer: K-means CE 1.107 +- 0.078 -> 0.663 +- 0.050), eligible on 8 of 10 (not genre3).
- ``scenes`` (also ``appearance``): the RGB frame alone, the same augmentation and temperature,
  its features read at unit length: the default after the second round; the better of the two
  on arid6 and on genre3 with K-means, but it learns *who* on weizmann4.
- ``actions``: the frame's difference to its successor alone (``motion: diffonly``): for
  collections where the same people in the same places perform every class (weizmann4: the only
  recipe that learns the action there, not the performer). The default before issue 19.
- ``lq-64px``: the recipe shipped before the studies (``configs/demo-lq-64px.yaml``): the paper's
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


#: fp32 by issue 19's rule 4: the study trained in bf16 (``auto``), but the winner's seed 0 in
#: fp32 fell outside the spread of its bf16 seeds on weizmann4 with K-means (1.532 bits against
#: 1.097 ± 0.246; spectral 1.822 against 1.802 ± 0.022). ``best`` trains in bf16 where the hardware
#: has it (:data:`BEST_PRECISION`).
PRECISION = "fp32"


#: l2 by the second readout round's rule (its winner's features are read at unit length); the
#: other two study recipes too: ``actions``' by the same round's evidence (unit length ranked
#: 3.60 against 4.10, and weizmann4's K-means CE fell from 1.032 +- 0.034 to 0.801 +- 0.083),
#: ``two-stream``'s only rescaled (its streams are unit length already)
FEATURE_NORM = "l2"


def actions(steps: int = 300, seed: int = 0) -> TrainConfig:
    """The frame-difference recipe (see the module text): :func:`lq_64px`'s schedule with a start
    that is not collapsed, temporal InfoNCE and the motion input."""
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
        precision=PRECISION,
        feature_norm=FEATURE_NORM,
    )
    return TrainConfig.from_dict(base)


#: what ``best`` (two streams) and ``scenes`` (RGB) share: the per-view augmentation (issue 19's
#: study) and the InfoNCE temperature, 0.5 by the fourth readout round's rule (each recipe against
#: itself at 0.1: better in 9 of 10 set x method comparisons, both; genre3's K-means CE of the RGB
#: recipe fell from 1.140 +- 0.104 to 0.860 +- 0.044, the two-stream recipe's spectral CE from
#: 1.411 +- 0.020 to 0.734 +- 0.024)
VIEW_RECIPE: dict[str, Any] = {
    "augment": "appearance",
    "aug_crop_scale": 0.3,
    "aug_hue": 0.1,
    "temperature": 0.5,
}


def scenes(steps: int = 300, seed: int = 0) -> TrainConfig:
    """:func:`actions` on the RGB frame with per-view augmentation (see the module text)."""
    return TrainConfig.from_dict(
        {**actions(steps, seed).to_dict(), "motion": "none", **VIEW_RECIPE}
    )


#: the weight of ``two_stream``'s cross-stream term (issue 19's cross-stream round)
CROSS_STREAM = 1.0

#: ``two_stream``'s length and precision, by issue 19's length round (docs/study/length-rule.md,
#: written before it ran). Part A: its seed 0 trained in fp32 was not better than its bf16 seeds
#: beyond their spread in 9 of 10 set x method comparisons, so it trains in bf16 where the
#: hardware has it natively (``auto``; fp32 elsewhere): a step 1.47x faster in two threads (1.6x
#: in one) on the development CPU. Part B: at 1,000 steps its mean CE was lower than at 300 in 6 of 10 comparisons
#: (weizmann4's K-means 0.663 +- 0.050 -> 0.484 +- 0.044) and it kept all 8 of its eligible
#: ones, but ``make demo`` took 392 s (the rule's bound: 300), so it stays at 300 steps.
BEST_STEPS = 300
BEST_PRECISION = "auto"


def two_stream(steps: int = BEST_STEPS, seed: int = 0) -> TrainConfig:
    """Appearance and motion, each its own network, with the cross-stream term (see the module
    text)."""
    return TrainConfig.from_dict(
        {
            **actions(steps, seed).to_dict(),
            "motion": "diff",
            "streams": 2,
            **VIEW_RECIPE,
            "cross_stream": CROSS_STREAM,
            "precision": BEST_PRECISION,
        }
    )


def best(steps: int = BEST_STEPS, seed: int = 0) -> TrainConfig:
    """The default, what a plain ``tcdn train`` and ``make demo`` use: :func:`two_stream`."""
    return two_stream(steps, seed)


def paper(steps: int | None = None, seed: int = 0) -> TrainConfig:
    """The paper's Lq configuration (``TrainConfig()``), optionally with fewer ``steps``."""
    cfg = TrainConfig(seed=seed)
    return cfg if steps is None else TrainConfig.from_dict({**cfg.to_dict(), "steps": steps})


RECIPES: dict[str, Callable[..., TrainConfig]] = {
    "best": best,
    "actions": actions,
    "scenes": scenes,
    "lq-64px": lq_64px,
    "paper": paper,
}
#: what each recipe's network sees, in a few words (the discovery report says it)
WHAT_IT_SEES = {
    "best": "the RGB frame and its difference to the next, each its own network, trained to agree",
    "actions": "the frame's difference to the next",
    "scenes": "the RGB frame",
    "lq-64px": "the RGB frame, the paper's Lq at 64x64",
    "paper": "the RGB frame, the paper's Lq at 227x227",
}
#: other names of recipes: what they are, which a config of theirs is named by
ALIASES = {"two-stream": "best", "appearance": "scenes"}
#: what ``tcdn train`` uses when neither ``--recipe`` nor ``--config`` says otherwise
DEFAULT_RECIPE = "best"


def recipe(name: str, **kwargs: Any) -> TrainConfig:
    """The recipe called ``name`` (:data:`RECIPES`), e.g. ``recipe("best", steps=1000)``."""
    try:
        make = RECIPES[ALIASES.get(name, name)]
    except KeyError:
        raise TcdnError(
            f"unknown recipe {name!r}; choose from {', '.join([*RECIPES, *ALIASES])} (or give "
            "--config FILE)"
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
        # how the features are read, not what is learned: a run read another way is the recipe
        "feature_norm",
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
