"""The frame store: every video of a collection decoded once, kept on disk for fast random reads.

Training draws millions of frame tuples at random from thousands of videos; decoding a video per
tuple is hopeless (about 75 frames/s) and holding every frame in RAM does not scale (UCF101 is
about 2.5 million frames, 390 GB as raw 227x227 ``uint8``). :func:`ingest` decodes each video once,
in parallel processes, into one file per video; :func:`open_store` opens the store as a
:class:`~tcdn.data.frameset.FrameSet` whose ``frames`` read only what is indexed.

Layout of a store folder::

    STORE/.tcdn                  marker: this folder is a tcdn frame store
    STORE/manifest.json          format, version, decode settings, storage, per-video entries
                                 (with each data file's size and CRC-32)
    STORE/journal.jsonl          while an ingest runs: each video finished, one line each
    STORE/.tcdn.lock             while an ingest runs: its pid and host (tcdn.runlock)
    STORE/data/<key>.u8          raw: the video's frames, (n, H, W, 3) uint8, C order
    STORE/data/<key>.jpg         jpeg: the video's frames as concatenated JPEG images ...
    STORE/data/<key>.jpg.idx     ... and their n + 1 byte offsets (little-endian int64)

``<key>`` is a hash of the video's name, so a video keeps its file when others come and go.
Every data file is written under a temporary name and renamed; the manifest is written the same
way, after the data, and says ``"complete": true`` only when an ingest finished. An interrupted
ingest (killed at any moment) leaves a manifest marked incomplete and a journal that together list
the videos already done: running the same ingest again skips them (a video is redone when its
source's size or modification time changed, or when its data file does not have the size the
manifest records; with ``--verify``, the CRC-32 too). Opening a store checks every data file's
size. An ingest only writes into a new or empty folder or a store, and only ever deletes files
with the names it gives its own files.

Storage options, bytes per frame at 227x227:

- ``raw``: 154,587 bytes (227 x 227 x 3); read through ``mmap``, no decoding, the fastest.
- ``jpeg``: JPEG per frame (libjpeg-turbo through ``simplejpeg``, 4:2:0, quality 90 by default):
  typically 10-20 kB on real video (about 1/8-1/15 of raw); decoded in threads on read.

``--stride`` / ``--fps`` subsample frames and divide either size further.

The rooms: :mod:`~tcdn.data.store.manifest` (the settings and the manifest file),
:mod:`~tcdn.data.store.writer` (writing a store) and :mod:`~tcdn.data.store.reader` (reading one).
"""

from tcdn.data.store.manifest import STORAGES, StoreSettings, is_store, read_manifest
from tcdn.data.store.reader import StoreFrames, open_store, store_problems
from tcdn.data.store.writer import IngestReport, check_store_folder, ingest

__all__ = [
    "STORAGES",
    "IngestReport",
    "StoreFrames",
    "StoreSettings",
    "check_store_folder",
    "ingest",
    "is_store",
    "open_store",
    "read_manifest",
    "store_problems",
]
