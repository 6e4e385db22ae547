"""The number of clusters, chosen without labels.

Two estimates are computed and both are reported with every candidate's score:

- the **best mean silhouette** of K-means (:func:`~tcdn.discovery.cluster.estimate_k_silhouette`):
  K-means is run on the features at each candidate K, and the partition whose frames sit
  closest to their own cluster and farthest from the next one wins;
- on request (``eigengap=True``), the **largest eigengap** of the normalised affinity
  (:func:`~tcdn.discovery.cluster.estimate_k_eigengap`). It is off by default: its sparse
  eigensolver can stall on real features for the number of eigenvalues the candidates need
  (weizmann4 frames, 37 eigenvalues: no answer after 25 minutes), until that solver is replaced.

The silhouette decides. The reason was fixed before any labelled collection was looked at:
the silhouette scores the very partition that is written out (K-means on the features that are
clustered), while the eigengap counts the nearly disconnected groups of a nearest-neighbour
graph of the frames, and in video the tightest such groups are the frames of one video or one
shot (temporal coherence makes consecutive frames each other's nearest neighbours), not the
categories a user is after. The eigengap is kept as a second opinion.

The candidates run from 2 to ``max_k``; by default ``max_k`` is ``sqrt(N / 2)`` (the usual rule
of thumb for the largest sensible K of N points), at least 10, at most 200 and ``N - 1``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tcdn.discovery.cluster import estimate_k_eigengap, estimate_k_silhouette, working_space
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)

#: the estimate that decides K when none is given
K_RULE = "silhouette"
#: the eigengap, a second opinion, is computed up to this many rows (beyond, its sparse
#: eigenproblem for up to 200 eigenvalues costs minutes and decides nothing)
EIGENGAP_MAX_ROWS = 20000


def default_max_k(n_rows: int) -> int:
    """The largest candidate K for ``n_rows`` rows: ``sqrt(n/2)``, at least 10, at most 200 and
    ``n - 1``."""
    return int(min(max(10, round(math.sqrt(n_rows / 2))), 200, n_rows - 1))


@dataclass
class KChoice:
    """A number of clusters chosen without labels, with the evidence for it.

    Attributes
    ----------
    k
        The number chosen (by :attr:`rule`).
    rule
        ``"silhouette"``: the best mean silhouette of K-means.
    silhouette
        Candidate K -> mean silhouette (higher is better).
    k_eigengap
        The K of the largest eigengap (a second opinion); ``None`` if it was not computed.
    eigengaps
        K -> ``λ_K - λ_{K+1}`` of the normalised affinity, for K from 1.
    """

    k: int
    rule: str
    silhouette: dict[int, float]
    k_eigengap: int | None = None
    eigengaps: dict[int, float] = field(default_factory=dict)
    k_silhouette: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "rule": self.rule,
            "k_silhouette": self.k_silhouette,
            "k_eigengap": self.k_eigengap,
            "silhouette": {str(k): v for k, v in self.silhouette.items()},
            "eigengaps": {str(k): v for k, v in self.eigengaps.items()},
        }

    def describe(self) -> str:
        cands = ", ".join(f"{k}: {v:.3f}" for k, v in self.silhouette.items())
        other = f"; the largest eigengap says {self.k_eigengap}" if self.k_eigengap else ""
        return f"K = {self.k} by the best K-means silhouette (candidates {cands}){other}"


def choose_k(
    features: np.ndarray,
    *,
    max_k: int | None = None,
    min_k: int = 2,
    eigengap: bool = False,
    random_state: int = 0,
    videos: np.ndarray | None = None,
) -> KChoice:
    """Choose the number of clusters of ``features`` without labels (see the module's text).

    ``max_k`` defaults to :func:`default_max_k`; ``eigengap=True`` adds the second opinion (up
    to :data:`EIGENGAP_MAX_ROWS` rows), on the video graph when ``videos`` (each row's video)
    are given.
    At scale the candidates are scored where discovery clusters:
    :func:`~tcdn.discovery.cluster.working_space` (nothing to do for features already there).
    Raises :class:`TcdnError` with fewer than 4 rows.
    """
    n = len(features)
    if n < 2:
        raise TcdnError(f"{n} row(s) cannot be clustered: clustering needs at least 2 rows")
    if n < 4:
        raise TcdnError(
            f"{n} rows are too few to choose the number of clusters without labels: give --k "
            f"(from 2 to {n})"
        )
    top = default_max_k(n) if max_k is None else int(min(max_k, n - 1))
    if top < min_k:
        raise TcdnError(f"--max-k {max_k} must be >= {min_k}")
    features = working_space(features)
    k_sil, scores = estimate_k_silhouette(
        features, max_k=top, min_k=min_k, random_state=random_state
    )
    choice = KChoice(k=k_sil, rule=K_RULE, silhouette=scores, k_silhouette=k_sil)
    if eigengap and top + 2 < n <= EIGENGAP_MAX_ROWS:
        k_gap, vals = estimate_k_eigengap(features, max_k=top, min_k=min_k, videos=videos)
        choice.k_eigengap = k_gap
        choice.eigengaps = {i + 1: float(vals[i] - vals[i + 1]) for i in range(len(vals) - 1)}
    log.info("%s", choice.describe())
    return choice
