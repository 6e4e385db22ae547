"""What a discovery run compares and how: one validated dataclass, and the names it chooses from.

This module imports no torch and no scikit-learn, so the command line reads its choices quickly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tcdn.errors import TcdnError
from tcdn.features.featureset import FRAME_SOURCES, GIVEN
from tcdn.training.config import FEATURE_NORMS

#: how a network's features are normalised before they are clustered (DiscoverConfig.norm)
NORMS = FEATURE_NORMS
#: the clustering methods (SPEC §5)
METHODS = ("kmeans", "spectral")
#: what a row to cluster stands for: one frame, or one video (the mean of its frames' features)
LEVELS = ("frame", "video")
#: the baseline that needs no features: every row in a uniformly random cluster
RANDOM_ASSIGNMENT = "random_assignment"
#: the feature sources of a discovery on a collection, and of one on given features
SOURCES = (*FRAME_SOURCES, RANDOM_ASSIGNMENT)
GIVEN_SOURCES = (GIVEN, RANDOM_ASSIGNMENT)
#: fresh random networks of the ``random_init`` baseline by default (at most ``repeats``): each one
#: is a whole forward pass over every frame, the dearest step of a discovery on a CPU
RANDOM_INITS = 3


@dataclass(frozen=True)
class DiscoverConfig:
    r"""Everything that decides a discovery's scores, checked when it is made.

    Attributes
    ----------
    sources
        Feature sources to compare (of :data:`SOURCES`); ``None``: every source the input
        allows (``trained`` needs a checkpoint; given features are scored as ``given``).
    methods
        Clustering methods (of :data:`METHODS`).
    layer
        The network layer whose features are clustered; ``None``: the network's own default.
    norm
        ``"l2"``: each frame's network feature (trained and random init) divided by its length
        before it is clustered (K-means then compares directions, as the cosine losses do);
        ``"none"``: as the layer gives it. ``None``: as the checkpoint's recipe says
        (``TrainConfig.feature_norm``; ``"none"`` without a checkpoint). Raw pixels are never
        normalised (the baseline is raw pixels + PCA, whatever the networks' features).
    repeats
        Clusterings per source and method, for mean ± std (SPEC §5: 10).
    random_inits
        Clusterings of the ``random_init`` baseline per method, each with its own freshly
        initialised network (one forward pass over every frame each) and its own K-means seed,
        so that its ± spans both; ``None``: ``min(repeats, RANDOM_INITS)`` (3).
    seed
        Repeat ``r`` of K-means is seeded ``seed + r``; the random-init networks ``seed + 1000 + r``.
    k
        Number of clusters; ``None``: the number of classes when every row is labelled, else
        chosen without labels (:func:`~tcdn.discovery.choose_k.choose_k`).
    max_k
        Without ``k`` or labels: the largest number of clusters considered (default: see
        :func:`~tcdn.discovery.choose_k.default_max_k`).
    frame_stride, max_per_video
        Cluster every S-th frame (or feature row) of each video, at most M per video.
    level
        ``"frame"`` or ``"video"`` (each video's rows averaged into one).
    groups
        Attributes of the videos to score the clusters against besides the class, each a
        regular expression whose first group, searched in a video's name, is the video's value:
        ``{"performer": r"_(\d+)\.mp4$"}`` adds ``nmi_performer`` (do the clusters follow who
        is in the video rather than what happens?).
    """

    sources: tuple[str, ...] | None = None
    methods: tuple[str, ...] = METHODS
    layer: str | None = None
    norm: str | None = None
    repeats: int = 10
    random_inits: int | None = None
    seed: int = 0
    k: int | None = None
    max_k: int | None = None
    frame_stride: int = 1
    max_per_video: int | None = None
    level: str = "frame"
    groups: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sources is not None:
            object.__setattr__(self, "sources", tuple(self.sources))
            if not self.sources:
                raise TcdnError(f"--sources names no source; choose from {', '.join(SOURCES)}")
            _check_names(self.sources, (*SOURCES, GIVEN), "feature source")
        object.__setattr__(self, "methods", tuple(self.methods))
        _check_names(self.methods, METHODS, "clustering method")
        if not self.methods:
            raise TcdnError(f"--methods names no method; choose from {', '.join(METHODS)}")
        if self.norm is not None and self.norm not in NORMS:
            raise TcdnError(f"--norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.level not in LEVELS:
            raise TcdnError(f"--level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if not 0 <= self.seed < 2**63:
            raise TcdnError(f"--seed must be a whole number >= 0, got {self.seed}")
        if self.repeats < 1:
            raise TcdnError(f"--repeats must be >= 1, got {self.repeats}")
        if self.random_inits is not None and self.random_inits < 1:
            raise TcdnError(f"--random-inits must be >= 1, got {self.random_inits}")
        if self.k is not None and self.k < 2:
            raise TcdnError(f"--k must be >= 2, got {self.k}")
        if self.max_k is not None and self.max_k < 2:
            raise TcdnError(f"--max-k must be >= 2, got {self.max_k}")
        if self.frame_stride < 1:
            raise TcdnError(f"--frame-stride must be >= 1, got {self.frame_stride}")
        if self.max_per_video is not None and self.max_per_video < 1:
            raise TcdnError(f"--max-per-video must be >= 1, got {self.max_per_video}")
        for name, pattern in self.groups.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise TcdnError(f"--group {name}=...: the name must be a word (letters, digits, _)")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise TcdnError(
                    f"--group {name}={pattern!r} is not a regular expression: {exc}"
                ) from None
            if compiled.groups < 1:
                raise TcdnError(
                    f"--group {name}={pattern!r} needs a (group) that captures the value, "
                    r"e.g. '_(\d+)\.mp4$'"
                )

    def group_values(self, videos: Sequence[str]) -> dict[str, list[str]]:
        """Each group's value for each of ``videos`` (names); :class:`TcdnError` names a video
        that a group's pattern does not match."""
        out: dict[str, list[str]] = {}
        for name, pattern in self.groups.items():
            compiled, values = re.compile(pattern), []
            for video in videos:
                m = compiled.search(video)
                if m is None:
                    raise TcdnError(
                        f"--group {name}={pattern!r} does not match the video {video!r}: "
                        "fix the pattern so that it matches every video's name"
                    )
                values.append(m.group(1))
            out[name] = values
        return out

    def n_clusters(self, n_classes: int) -> int:
        """The number of clusters: ``k``, or by default the number of classes."""
        return self.k or n_classes

    @property
    def random_init_repeats(self) -> int:
        """Clusterings of the ``random_init`` baseline per method: :attr:`random_inits`, or
        ``min(repeats, RANDOM_INITS)``."""
        return self.random_inits or min(self.repeats, RANDOM_INITS)

    @property
    def primary_method(self) -> str:
        """The method whose clusters are the discovery's answer (clusters.csv's ``cluster``,
        the per-video summary, the report): the first of :attr:`methods`."""
        return self.methods[0]

    def sources_for(self, have_checkpoint: bool) -> tuple[str, ...]:
        """The sources of a discovery on a collection: :attr:`sources`, or every source of
        :data:`SOURCES` the input allows (``trained`` only with a checkpoint)."""
        if self.sources is not None:
            if GIVEN in self.sources:
                raise TcdnError(f"the source {GIVEN!r} is for given features (--features)")
            if "trained" in self.sources and not have_checkpoint:
                raise TcdnError("--sources includes 'trained' but no --checkpoint was given")
            return self.sources
        return tuple(s for s in SOURCES if have_checkpoint or s != "trained")

    @classmethod
    def parse_list(cls, text: str | None) -> tuple[str, ...] | None:
        """A comma-separated option (``--sources``, ``--methods``) as a tuple; ``None`` stays."""
        return None if text is None else tuple(s.strip() for s in text.split(",") if s.strip())


def _check_names(names: Sequence[str], known: Sequence[str], what: str) -> None:
    """Raise :class:`TcdnError` naming the first of ``names`` not in ``known``."""
    for name in names:
        if name not in known:
            raise TcdnError(f"unknown {what} {name!r}; choose from {', '.join(known)}")
