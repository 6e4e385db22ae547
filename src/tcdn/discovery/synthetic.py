"""Synthetic video-structured features with known classes, for checks and benchmarks of discovery.

:func:`video_structured_features` makes issue 20's set: classes of many videos, each video a tight
cloud of frames around its own centre. K-means finds the classes; a nearest-neighbour graph of
the frames falls into one piece per video.
"""

from __future__ import annotations

import numpy as np


def video_structured_features(
    n_videos: int = 320,
    frames: int = 100,
    k: int = 2,
    dim: int = 512,
    *,
    video_spread: float = 1.0,
    frame_noise: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``k`` class centres ``c ~ N(0, I)``; video ``v`` is of class ``v mod k`` and has centre
    ``c + video_spread N(0, I)``; each of its ``frames`` frames is
    ``max(0, centre + frame_noise N(0, I))``. The defaults are the 32,000-row set of issue 20
    (320 videos of 100 frames, K = 2, 512 dims, seed 0).

    Returns ``(n_videos * frames, dim)`` float32 features, the class and the video of each row
    (rows of a video consecutive, in frame order).
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim))
    video_class = np.arange(n_videos) % k
    video_centres = centres[video_class] + video_spread * rng.standard_normal((n_videos, dim))
    x = np.empty((n_videos * frames, dim), dtype=np.float32)
    for v in range(n_videos):  # video by video: a million rows never hold a float64 copy
        noise = rng.standard_normal((frames, dim))
        x[v * frames : (v + 1) * frames] = np.maximum(video_centres[v] + frame_noise * noise, 0)
    return x, np.repeat(video_class, frames), np.repeat(np.arange(n_videos), frames)
