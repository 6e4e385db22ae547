"""Discovery end to end: the features of every source, clustered and scored the same way.

:func:`discover_collection` scores one collection with four feature sources computed the same way:

- ``trained``: the checkpoint's network (its default feature layer, ``fc6`` for AlexNet);
- ``random_init``: the *same* network with random weights, a fresh initialisation per repeat
  (``DiscoverConfig.random_inits`` of them, 3 by default: each is a forward pass over every frame);
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from tcdn.data.frameset import FrameSet
from tcdn.discovery.choose_k import KChoice, choose_k
from tcdn.discovery.cluster import working_space
from tcdn.discovery.config import GIVEN_SOURCES, RANDOM_ASSIGNMENT, DiscoverConfig
from tcdn.discovery.evaluate import (
    Score,
    _warn_no_information,
    cluster_once,
    no_information,
    random_assignment_scores,
    score_clusterings,
)
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
        The ``N`` rows clustered: their ``video``, ``frame`` (-1 for a whole video), ``time``,
        ``label``, and the features of the primary source (``results["discovered"]["source"]``:
        ``trained``, ``given``, ``raw_pixels`` or ``random_init``, the first present; its first
        repeat), pooled per video at ``level="video"``.

    ``results["discovered"]`` says what the answer is: the primary ``source`` and ``method``
    (``assignments[f"{source}/{method}"]`` are its clusters), ``k`` and ``k_rule`` (given,
    the number of classes, or chosen without labels, with every candidate's score in
    ``k_choice``), and whether the clusters were ``scored`` against labels (only when every row
    has one, of at least two classes; else ``why_unscored``, and only the primary source is
    clustered, by every method, once).
    """

    results: dict[str, Any]
    assignments: dict[str, np.ndarray]
    clustered: FeatureSet


@dataclass
class _Source:
    """How one feature source gives the features of repeat ``r`` (``None``: random assignment)."""

    features: Callable[[int], np.ndarray] | None
    per_repeat: bool = False  # a new array every repeat (random_init); else computed once


#: the source whose clusters are the discovery's answer, by preference
PRIMARY_SOURCES = ("trained", "given", "raw_pixels", "random_init")


def _repeat_features(
    source: _Source, pool: Callable[[np.ndarray], np.ndarray]
) -> Callable[[int], np.ndarray]:
    """``repeat -> pooled features``; a fixed source is computed (and pooled) once, so that
    :func:`score_clusterings` sees the same array and reuses its spectral embedding. Repeat 0 is
    kept either way (the discovery's answer is made of it)."""
    compute = source.features
    assert compute is not None
    cache: dict[int, np.ndarray] = {}

    def features(repeat: int) -> np.ndarray:
        key = repeat if source.per_repeat else 0
        if key == 0 and 0 in cache:
            return cache[0]
        value = pool(compute(key))
        if key == 0:
            cache[0] = value
        return value

    return features


def _unscored_reason(clustered: FeatureSet, unit: str) -> str | None:
    """Why the clusters of ``clustered`` cannot be scored against labels; ``None`` if they can."""
    missing = clustered.label == ""
    if missing.all():
        return "the collection has no labels"
    if missing.any():
        videos = sorted(set(clustered.video[missing].tolist()))
        return (
            f"{int(missing.sum())} of the {len(clustered)} {unit} have no label (e.g. {videos[0]}); "
            "scoring needs a label for every one"
        )
    classes = clustered.class_names
    if len(classes) < 2:
        return f"every one of the {unit} has the label {classes[0]!r}; scoring needs two classes"
    return None


def _number_of_clusters(
    config: DiscoverConfig,
    clustered: FeatureSet,
    primary_space: np.ndarray | None,
    unit: str,
    videos: np.ndarray | None = None,
) -> tuple[int, str, KChoice | None]:
    """K, the rule that gave it, and (chosen without labels) the evidence: ``--k``, else the
    number of classes when the rows are scored (``primary_space`` is ``None``), else chosen on
    the primary features' working space (on the video graph when ``videos`` are given). A K the rows cannot take is a user error."""
    k_choice = None
    if len(clustered) < 2:  # no K helps: say what would
        more = " (or use --level frame)" if config.level == "video" else ""
        raise TcdnError(
            f"{len(clustered)} {unit[:-1] if len(clustered) == 1 else unit} to cluster: clustering "
            f"needs at least 2; give more videos or frames{more}"
        )
    if config.k is not None:
        k, k_rule = config.k, "given (--k)"
    elif primary_space is None:
        k, k_rule = len(clustered.class_names), "the number of classes"
    else:
        t0 = time.perf_counter()
        k_choice = choose_k(
            primary_space, max_k=config.max_k, random_state=config.seed, videos=videos
        )
        k, k_rule = k_choice.k, f"chosen without labels ({k_choice.rule})"
        log.info("chose K in %.1f s", time.perf_counter() - t0)
    if not 2 <= k <= len(clustered):
        level = config.level
        hint = " or use --level frame" if level == "video" else ""
        raise TcdnError(
            f"--k {k}: the number of clusters must be in [2, {len(clustered)}], the number "
            f"of {unit} to cluster at --level {level}; change --k{hint}"
        )
    return k, k_rule, k_choice


def _score_sources(
    index: FeatureSet, sources: dict[str, _Source], config: DiscoverConfig
) -> tuple[FeatureSet, dict[str, dict[str, Score]], dict[str, float], dict[str, Any]]:
    """Cluster the rows of ``index`` (pooled per video at ``level="video"``) with each source's
    features and, when every row is labelled, score them. Returns the rows clustered (with the
    primary source's features), the scores, the seconds per source, and what was discovered:
    the primary source and method, K and how it was chosen, the primary clusters."""
    level = config.level
    clustered = pool_by_video(index) if level == "video" else index
    unit = "videos" if level == "video" else "frames"
    unscored = _unscored_reason(clustered, unit)
    primary = next((s for s in PRIMARY_SOURCES if s in sources), None)
    if primary is None:
        raise TcdnError(
            "no feature source to cluster: --sources names only random_assignment; add trained, "
            "raw_pixels or random_init"
        )
    if unscored is not None:  # no labels at all is the usual case; some is likely a mistake
        level_of = logging.INFO if (clustered.label == "").all() else logging.WARNING
        log.log(level_of, "the clusters are not scored: %s", unscored)
        sources = {primary: sources[primary]}  # the baselines are only there to be scored against

    def pool(features: np.ndarray) -> np.ndarray:
        if level == "frame":
            return features
        return pool_by_video(replace(index, features=features)).features

    plan = {
        name: None if src.features is None else _repeat_features(src, pool)
        for name, src in sources.items()
    }
    primary_features = plan[primary]
    assert primary_features is not None
    # Unscored, the primary features are clustered once per method: reduced once (at scale) for
    # the choice of K and every method.
    primary_space = None if unscored is None else working_space(primary_features(0))
    # the video graph needs each row's video; at level 'video' every row is a whole video
    videos = clustered.video if level == "frame" else None
    k, k_rule, k_choice = _number_of_clusters(config, clustered, primary_space, unit, videos)

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
    first: dict[str, np.ndarray] = {}
    for name, features in plan.items():
        t0 = time.perf_counter()
        if unscored is not None:
            assert primary_space is not None and name == primary
            if no_information(primary_space):
                _warn_no_information(primary_space, f"the {name} features")
            for m in config.methods:  # spectral's decomposition (and its warning) happens once
                first[f"{name}/{m}"] = cluster_once(
                    primary_space, k, m, random_state=config.seed, videos=videos
                )
        else:
            labels = clustered.label_codes()
            if features is None:
                scores[name] = random_assignment_scores(labels, **common)
            elif sources[name].per_repeat:  # a new network per repeat: fewer by default
                options = {**common, "repeats": config.random_init_repeats}
                scores[name] = score_clusterings(
                    features, labels, videos=videos, **options, what=f"the {name} features"
                )
            else:
                scores[name] = score_clusterings(
                    features, labels, videos=videos, **common, what=f"the {name} features"
                )
        timings[name] = time.perf_counter() - t0
        log.info(
            "%s: %s in %.1f s",
            name,
            ", ".join(f"{m} {s.mean:.3f}" for m, s in scores.get(name, {}).items()) or "clustered",
            timings[name],
        )
    for s, per in scores.items():
        for m, sc in per.items():
            if sc.first_assignment is not None:
                first[f"{s}/{m}"] = sc.first_assignment
    _warn_empty_clusters(first, k)
    _warn_tiny_spectral_clusters(first, k)
    discovered: dict[str, Any] = {
        "source": primary,
        "method": config.primary_method,
        "k": k,
        "k_rule": k_rule,
        "k_choice": k_choice.to_dict() if k_choice else None,
        "scored": unscored is None,
        "why_unscored": unscored,
        "assignments": first,
    }
    return replace(clustered, features=primary_features(0)), scores, timings, discovered


def _warn_empty_clusters(assignments: dict[str, np.ndarray], k: int) -> None:
    """A warning for each clustering (``source/method``) that left some of its K clusters empty:
    it found fewer groups than asked for, and its table row says less than it seems."""
    for name, clusters in assignments.items():
        used = len(np.unique(clusters))
        if used < k:
            log.warning(
                "%s: %d of the K=%d clusters are empty (the rows fall into %d); fewer groups "
                "than asked for were found: the features may not separate them, or K is too large",
                name,
                k - used,
                k,
                used,
            )


#: a spectral cluster under this fraction of an even share (N / K rows) is called tiny
TINY_SHARE = 0.1


def _warn_tiny_spectral_clusters(assignments: dict[str, np.ndarray], k: int) -> None:
    """A warning for each spectral clustering (``source/spectral``) with a cluster of fewer than
    ``TINY_SHARE x N / K`` rows (and at least one). Near-duplicate frames of several videos
    (one studio in many clips) have tiny local scales in the video graph, their links out weigh
    almost nothing, and the cut spends a cluster on them: genre3 at every 2nd frame gave 16,596 /
    415 / 20 frames (README, "Tight groups in the video graph")."""
    for name, clusters in assignments.items():
        if not name.endswith("/spectral"):
            continue
        sizes = np.bincount(clusters, minlength=k)
        tiny = sorted(int(n) for n in sizes if 0 < n < TINY_SHARE * len(clusters) / k)
        if tiny:
            log.warning(
                "%s: %d of the K=%d clusters hold only %s of the %d rows: spectral clustering "
                "may have cut off a tight group of near-duplicate frames rather than found a "
                "class; compare the K-means clusters (clusters.csv's *_kmeans columns)",
                name,
                len(tiny),
                k,
                ", ".join(map(str, tiny)),
                len(clusters),
            )


def _discovery(
    index: FeatureSet,
    sources: dict[str, _Source],
    config: DiscoverConfig,
    **facts: Any,
) -> Discovery:
    """Score ``sources`` on the rows of ``index``: the :class:`Discovery`, with the same
    ``results`` for every path (``facts``: the layer, checkpoint and training config...)."""
    clustered, scores, timings, discovered = _score_sources(index, sources, config)
    assignments = discovered.pop("assignments")
    answer = assignments[f"{discovered['source']}/{discovered['method']}"]
    discovered["sizes"] = np.bincount(answer, minlength=discovered["k"]).tolist()
    results = build_results(clustered, scores, timings, config, n_frames=len(index), **facts)
    results["discovered"] = discovered
    return Discovery(results, assignments, clustered)


def discover_collection(
    frames: FrameSet,
    checkpoint: dict[str, Any] | None,
    config: DiscoverConfig | None = None,
    *,
    device: str = "cpu",
    progress: bool = True,
    computed: Mapping[tuple[str, int], np.ndarray] | None = None,
) -> Discovery:
    """Cluster the frames (``level="frame"``) or videos (``level="video"``, each the mean of its
    frames' features) of ``frames`` with every feature source, and score the clusters.
    ``computed``: features already computed, by ``(source, repeat)`` (e.g. by the processes of a
    ``torchrun`` job, :func:`tcdn.features.shards.sharded_jobs`), used instead of computing them.

    ``checkpoint`` is needed for ``trained`` and gives ``random_init`` its architecture; without
    it ``random_init`` uses the default AlexNet at the frames' size. Features are computed by
    :class:`~tcdn.features.FrameFeaturizer`, as ``tcdn features`` computes them.
    """
    from tcdn.features.extract import FrameFeaturizer  # the networks: only for this path

    config = config or DiscoverConfig()
    sources = config.sources_for(checkpoint is not None)
    featurizer = FrameFeaturizer(
        frames,
        frames.rows(config.frame_stride, config.max_per_video),
        checkpoint,
        layer=config.layer,
        norm=config.norm,
        seed=config.seed,
        device=device,
        progress=progress,
    )
    # features are computed lazily: every option is checked before the first one

    def source_features(source: str) -> Callable[[int], np.ndarray]:
        given = computed or {}
        return lambda r: (
            given[(source, r)] if (source, r) in given else featurizer.features(source, r)
        )

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
        norm=featurizer.norm,
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
        norm=meta.get("norm"),
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
