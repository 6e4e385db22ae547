"""Discovering actions and scenes: cluster feature rows, score the clusters (SPEC §5).

- :mod:`~tcdn.discovery.config`: :class:`DiscoverConfig` and the names it chooses from;
- :mod:`~tcdn.discovery.metrics`: conditional entropy and the other scores, plain functions;
- :mod:`~tcdn.discovery.graph`: the affinity graphs spectral clustering cuts (the video graph);
- :mod:`~tcdn.discovery.eigen`: their top eigenpairs;
- :mod:`~tcdn.discovery.cluster`: K-means, spectral clustering, K without labels;
- :mod:`~tcdn.discovery.synthetic`: video-structured features with known classes;
- :mod:`~tcdn.discovery.evaluate`: repeated clusterings of a source, scored;
- :mod:`~tcdn.discovery.pipeline`: every source of a collection (or given features), end to end;
- :mod:`~tcdn.discovery.results`: ``results.json``, the table and ``clusters.csv``.

Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcdn._lazy import lazy_exports
from tcdn.discovery.config import LEVELS, METHODS, SOURCES, DiscoverConfig

if TYPE_CHECKING:
    from tcdn.discovery.cluster import KMeans, SpectralClustering
    from tcdn.discovery.metrics import cluster_scores, conditional_entropy
    from tcdn.discovery.pipeline import (
        Discovery,
        discover,
        discover_collection,
        discover_features,
    )
    from tcdn.discovery.results import format_table, write_results

__all__ = [
    "LEVELS",
    "METHODS",
    "SOURCES",
    "DiscoverConfig",
    "Discovery",
    "KMeans",
    "SpectralClustering",
    "cluster_scores",
    "conditional_entropy",
    "discover",
    "discover_collection",
    "discover_features",
    "format_table",
    "write_results",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "KMeans": "tcdn.discovery.cluster",
        "SpectralClustering": "tcdn.discovery.cluster",
        "cluster_scores": "tcdn.discovery.metrics",
        "conditional_entropy": "tcdn.discovery.metrics",
        "Discovery": "tcdn.discovery.pipeline",
        "discover": "tcdn.discovery.pipeline",
        "discover_collection": "tcdn.discovery.pipeline",
        "discover_features": "tcdn.discovery.pipeline",
        "format_table": "tcdn.discovery.results",
        "write_results": "tcdn.discovery.results",
    },
)
