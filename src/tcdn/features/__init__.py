"""Features of frames, and the feature set that carries them to discovery.

- :mod:`~tcdn.features.featureset`: :class:`FeatureSet` (features joined to videos, frames and
  labels) and its ``.npz`` file; no torch;
- :mod:`~tcdn.features.extract`: features of a frame set from a trained network, the same network
  with random weights, or raw pixels (:func:`frame_features`);
- :mod:`~tcdn.features.write`: ``tcdn features`` as a function (:func:`write_features`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcdn._lazy import lazy_exports
from tcdn.features.featureset import FRAME_SOURCES, GIVEN, WHOLE_VIDEO, FeatureSet, pool_by_video

if TYPE_CHECKING:
    from tcdn.features.extract import (
        FrameFeaturizer,
        extract_features,
        frame_features,
        raw_pixel_features,
    )
    from tcdn.features.write import write_features

__all__ = [
    "FRAME_SOURCES",
    "GIVEN",
    "WHOLE_VIDEO",
    "FeatureSet",
    "FrameFeaturizer",
    "extract_features",
    "frame_features",
    "pool_by_video",
    "raw_pixel_features",
    "write_features",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **{
            name: "tcdn.features.extract"
            for name in (
                "FrameFeaturizer",
                "extract_features",
                "frame_features",
                "raw_pixel_features",
            )
        },
        "write_features": "tcdn.features.write",
    },
)
