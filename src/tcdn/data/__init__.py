"""Videos -> frame store -> tuple samplers, plus dataset readers and the built-in synthetic videos.

The rooms, in the order data flows through them: :mod:`~tcdn.data.collection` (find the videos and
their labels), :mod:`~tcdn.data.decode` (one video -> RGB frames), :mod:`~tcdn.data.store` (decode a
collection once into a frame store, read it on demand), :mod:`~tcdn.data.frameset` (a collection's
frames with their index), :mod:`~tcdn.data.load` (a folder or a store -> a frame set) and
:mod:`~tcdn.data.samplers` (frame indices of training tuples). :mod:`~tcdn.data.datasets` reads the
paper's datasets in their official layouts; :mod:`~tcdn.data.synthetic` writes the demo's videos.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcdn._lazy import lazy_exports

if TYPE_CHECKING:
    from tcdn.data.collection import VideoEntry, find_videos
    from tcdn.data.decode import DecodeSettings, decode_video, iter_frames
    from tcdn.data.frameset import FrameSet
    from tcdn.data.load import load_frames, open_collection
    from tcdn.data.samplers import (
        PairSampler,
        QuadrupletSampler,
        SFAPairSampler,
        TripletSampler,
        Tuples,
    )
    from tcdn.data.store import IngestReport, StoreSettings, ingest, is_store, open_store

__all__ = [
    "DecodeSettings",
    "FrameSet",
    "IngestReport",
    "PairSampler",
    "QuadrupletSampler",
    "SFAPairSampler",
    "StoreSettings",
    "TripletSampler",
    "Tuples",
    "VideoEntry",
    "decode_video",
    "find_videos",
    "ingest",
    "is_store",
    "iter_frames",
    "load_frames",
    "open_collection",
    "open_store",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "VideoEntry": "tcdn.data.collection",
        "find_videos": "tcdn.data.collection",
        "DecodeSettings": "tcdn.data.decode",
        "decode_video": "tcdn.data.decode",
        "iter_frames": "tcdn.data.decode",
        "FrameSet": "tcdn.data.frameset",
        "load_frames": "tcdn.data.load",
        "open_collection": "tcdn.data.load",
        "PairSampler": "tcdn.data.samplers",
        "QuadrupletSampler": "tcdn.data.samplers",
        "SFAPairSampler": "tcdn.data.samplers",
        "TripletSampler": "tcdn.data.samplers",
        "Tuples": "tcdn.data.samplers",
        "IngestReport": "tcdn.data.store",
        "StoreSettings": "tcdn.data.store",
        "ingest": "tcdn.data.store",
        "is_store": "tcdn.data.store",
        "open_store": "tcdn.data.store",
    },
)
