"""Videos -> frames -> tuple samplers, plus the built-in synthetic videos."""

from tcdn.data.samplers import PairSampler, QuadrupletSampler
from tcdn.data.video import FrameSet, VideoEntry, decode_video, find_videos, load_frames

__all__ = [
    "FrameSet",
    "PairSampler",
    "QuadrupletSampler",
    "VideoEntry",
    "decode_video",
    "find_videos",
    "load_frames",
]
