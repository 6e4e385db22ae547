"""Videos -> frame store -> tuple samplers, plus dataset readers and the built-in synthetic videos."""

from tcdn.data.samplers import PairSampler, QuadrupletSampler
from tcdn.data.store import IngestReport, StoreSettings, ingest, is_store, open_store
from tcdn.data.video import (
    DecodeSettings,
    FrameSet,
    VideoEntry,
    decode_video,
    find_videos,
    iter_frames,
    load_frames,
)

__all__ = [
    "DecodeSettings",
    "FrameSet",
    "IngestReport",
    "PairSampler",
    "QuadrupletSampler",
    "StoreSettings",
    "VideoEntry",
    "decode_video",
    "find_videos",
    "ingest",
    "is_store",
    "iter_frames",
    "load_frames",
    "open_store",
]
