"""Discovery end to end: the features of every source, clustered and scored the same way.

:func:`discover_collection` scores one collection with four feature sources computed the same way:

- ``trained``: the checkpoint's network (its default feature layer, ``fc6`` for AlexNet);
- ``random_init``: the *same* network with random weights, a fresh initialisation per repeat;
- ``raw_pixels``: the frames' pixels reduced by PCA;
- ``random_assignment``: every frame put in a uniformly random cluster.

:func:`discover_features` scores features of any origin (a :class:`~tcdn.features.FeatureSet`) the
same way, against ``random_assignment``; :func:`discover` takes either. All of them cluster frames
(``level="frame"``) or videos (``level="video"``: the mean of each video's frame features,
:func:`~tcdn.features.pool_by_video`), as a :class:`~tcdn.discovery.config.DiscoverConfig` says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from tcdn.data.frameset import FrameSet
from tcdn.discovery.config import GIVEN_SOURCES, RANDOM_ASSIGNMENT, DiscoverConfig
from tcdn.discovery.evaluate import Score, random_assignment_scores, score_clusterings
from tcdn.discovery.results import build_results
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet, pool_by_video

log = logging.getLogger(__name__)


class Discovery(NamedTuple):
    """What a discovery returns.

    Attributes
    ----------
    results
        The scores and the facts needed to reproduce them (written to ``results.json``).
    assignments
        ``"source/method"`` -> ``(N,)`` clusters of the first repeat, for every source that clusters.
    clustered
        The ``N`` rows clustered: their ``video``, ``frame`` (-1 for a whole video) and ``label``
        (no feature columns).
    """

    results: dict[str, Any]
    assignments: dict[str, np.ndarray]
    clustered: FeatureSet


@dataclass
class _Source:
    """How one feature source gives the features of repeat ``r`` (``None``: random assignment)."""

    features: Callable[[int], np.ndarray] | None
    per_repeat: bool = False  # a new array every repeat (random_init); else computed once


def _repeat_features(
    source: _Source, pool: Callable[[np.ndarray], np.ndarray]
) -> Callable[[int], np.ndarray]:
    """``repeat -> pooled features``; a fixed source is computed (and pooled) once, so that
    :func:`score_clusterings` sees the same array and reuses its spectral embedding."""
    compute = source.features
    assert compute is not None
    if source.per_repeat:
        return lambda r: pool(compute(r))
    cache: list[np.ndarray] = []

    def once(_repeat: int) -> np.ndarray:
        if not cache:
            cache.append(pool(compute(0)))
        return cache[0]

    return once


def _score_sources(
    index: FeatureSet, sources: dict[str, _Source], config: DiscoverConfig
) -> tuple[FeatureSet, dict[str, dict[str, Score]], dict[str, float]]:
    """Cluster the rows of ``index`` (pooled per video at ``level="video"``) with each source's
    features and score them; return the rows clustered, the scores and the seconds per source."""
    level = config.level
    clustered = pool_by_video(index) if level == "video" else index
    unit = "videos" if level == "video" else "frames"
    labels = clustered.label_codes()
    classes = clustered.class_names
    if len(classes) < 2:
        raise TcdnError(
            f"the {unit} to cluster have a single class ({classes[0] if classes else 'none'}): "
            "scoring a discovery needs at least two"
        )
    k = config.n_clusters(len(classes))
    if not 2 <= k <= len(clustered):
        hint = " or use --level frame" if level == "video" else ""
        raise TcdnError(
            f"--k {k}: the number of clusters must be in [2, {len(clustered)}], the number "
            f"of {unit} to cluster at --level {level}; change --k{hint}"
        )

    def pool(features: np.ndarray) -> np.ndarray:
        if level == "frame":
            return features
        return pool_by_video(replace(index, features=features)).features

    common: dict[str, Any] = {
        "k": k,
        "methods": config.methods,
        "repeats": config.repeats,
        "random_state": config.seed,
        "groups": {
            name: np.asarray(values)
            for name, values in config.group_values(clustered.video.tolist()).items()
        },
    }
    scores: dict[str, dict[str, Score]] = {}
    timings: dict[str, float] = {}
    for name, source in sources.items():
        t0 = time.perf_counter()
        if source.features is None:
            scores[name] = random_assignment_scores(labels, **common)
        else:
            scores[name] = score_clusterings(_repeat_features(source, pool), labels, **common)
        timings[name] = time.perf_counter() - t0
        log.info(
            "%s: %s (%.1f s)",
            name,
            ", ".join(f"{m} {s.mean:.3f}" for m, s in scores[name].items()),
            timings[name],
        )
    return clustered, scores, timings


def _discovery(
    index: FeatureSet,
    sources: dict[str, _Source],
    config: DiscoverConfig,
    **facts: Any,
) -> Discovery:
    """Score ``sources`` on the rows of ``index``: the :class:`Discovery`, with the same
    ``results`` for every path (``facts``: the layer, checkpoint and training config...)."""
    clustered, scores, timings = _score_sources(index, sources, config)
    results = build_results(clustered, scores, timings, config, n_frames=len(index), **facts)
    assignments = {
        f"{s}/{m}": sc.first_assignment
        for s, per in scores.items()
        for m, sc in per.items()
        if sc.first_assignment is not None
    }
    rows = replace(clustered, features=np.zeros((len(clustered), 0), np.float32), meta={})
    return Discovery(results, assignments, rows)


def discover_collection(
    frames: FrameSet,
    checkpoint: dict[str, Any] | None,
    config: DiscoverConfig | None = None,
    *,
    device: str = "cpu",
    progress: bool = True,
) -> Discovery:
    """Cluster the frames (``level="frame"``) or videos (``level="video"``, each the mean of its
    frames' features) of ``frames`` with every feature source, and score the clusters.

    ``checkpoint`` is needed for ``trained`` and gives ``random_init`` its architecture; without
    it ``random_init`` uses the default AlexNet at the frames' size. Features are computed by
    :class:`~tcdn.features.FrameFeaturizer`, as ``tcdn features`` computes them.
    """
    from tcdn.features.extract import FrameFeaturizer  # the networks: only for this path

    config = config or DiscoverConfig()
    sources = config.sources_for(checkpoint is not None)
    frames.frame_labels()  # every video needs a label: say so in the collection's terms
    featurizer = FrameFeaturizer(
        frames,
        frames.rows(config.frame_stride, config.max_per_video),
        checkpoint,
        layer=config.layer,
        seed=config.seed,
        device=device,
        progress=progress,
    )
    # features are computed lazily: every option is checked before the first one

    def source_features(source: str) -> Callable[[int], np.ndarray]:
        return lambda r: featurizer.features(source, r)

    plan = {
        s: _Source(
            None if s == RANDOM_ASSIGNMENT else source_features(s),
            per_repeat=s == "random_init",
        )
        for s in sources
    }
    return _discovery(
        featurizer.index,
        plan,
        config,
        layer=featurizer.layer,
        checkpoint=checkpoint.get("path") if checkpoint else None,
        train_config=featurizer.config.to_dict() if featurizer.config else None,
    )


def discover_features(features: FeatureSet, config: DiscoverConfig | None = None) -> Discovery:
    """Cluster features of any origin and score the clusters: the source ``given`` (the
    features) and ``random_assignment``, as :func:`discover_collection` scores its sources.

    ``frame_stride`` and ``max_per_video`` keep every S-th row of each video, at most M; at
    ``level="video"`` the kept rows of each video are averaged into one.
    """
    config = config or DiscoverConfig()
    sources = config.sources or GIVEN_SOURCES
    unknown = [s for s in sources if s not in GIVEN_SOURCES]
    if unknown:
        raise TcdnError(
            f"given features are scored as {' and '.join(GIVEN_SOURCES)}, not {', '.join(unknown)}"
        )
    subset = features.subset(features.rows(config.frame_stride, config.max_per_video))
    if len(subset) == 0:
        raise TcdnError("the feature set has no rows: there is nothing to cluster")
    given = subset.features
    plan = {s: _Source(None if s == RANDOM_ASSIGNMENT else (lambda _r: given)) for s in sources}
    index = replace(subset, features=np.zeros((len(subset), 0), np.float32))
    meta = features.meta
    return _discovery(
        index,
        plan,
        config,
        layer=meta.get("layer"),
        checkpoint=meta.get("checkpoint"),
        train_config=meta.get("train_config"),
        features=meta,
    )


def discover(
    data: FrameSet | FeatureSet,
    checkpoint: dict[str, Any] | None = None,
    config: DiscoverConfig | None = None,
    *,
    device: str = "cpu",
    progress: bool = True,
) -> Discovery:
    """Discover the classes of ``data``: a collection's frames (:func:`discover_collection`) or
    features of any origin (:func:`discover_features`)."""
    if isinstance(data, FeatureSet):
        if checkpoint is not None:
            raise TcdnError("a checkpoint applies to a collection's frames, not to given features")
        return discover_features(data, config)
    return discover_collection(data, checkpoint, config, device=device, progress=progress)
