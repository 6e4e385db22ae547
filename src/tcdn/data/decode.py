"""Decoding one video (a file FFmpeg reads, or a folder of frame images) into RGB frames.

Frames are decoded with PyAV (FFmpeg) and scaled by FFmpeg in the same pass. :func:`iter_frames`
is the one decoding routine of tcdn: :func:`decode_video` and the frame store's ingest
(:func:`tcdn.data.store.ingest`) both use it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.data.collection import IMAGE_EXTENSIONS
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)

#: the frame side tcdn decodes to unless told otherwise: the paper's 227x227 (SPEC §4)
DEFAULT_IMAGE_SIZE = 227
RESIZE_MODES = ("squash", "crop")
#: FFmpeg (libswscale) scaling algorithms offered; fast_bilinear is the default: measured faster
#: than bilinear in one pass (benchmarks/bench_ingest.py), within ~1.3 grey levels of it
SCALERS = ("fast_bilinear", "bilinear", "area", "bicubic")

#: the fewest frames tcdn holds in memory at once (the frame store's write buffer; a batch of
#: tuples is as many): a frame size is refused when this many frames exceed the machine's memory
FRAMES_AT_ONCE = 16


def memory_bytes() -> int | None:
    """The machine's physical memory in bytes (``None`` where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def frame_size_problem(side: int | tuple[int, int]) -> str | None:
    """Why frames of ``side`` (a square side or ``(height, width)``) cannot be held, or ``None``:
    :data:`FRAMES_AT_ONCE` of them as RGB bytes must fit in the machine's memory. Checked before
    any work wherever a size is decided (``--size``, a config's or checkpoint's ``image_size``,
    :class:`DecodeSettings`), so that no decoding meets an allocation it cannot make."""
    h, w = (side, side) if isinstance(side, int) else (int(side[0]), int(side[1]))
    need = FRAMES_AT_ONCE * h * w * 3
    total = memory_bytes()
    if total is None or need <= total:
        return None
    fits = math.isqrt(total // (FRAMES_AT_ONCE * 3))
    return (
        f"{FRAMES_AT_ONCE} frames of {w}x{h} take {need / 2**30:,.0f} GiB, more than this "
        f"machine's {total / 2**30:,.0f} GiB of memory: give a side of at most {fits} "
        f"(the paper uses {DEFAULT_IMAGE_SIZE})"
    )


def check_frame_size(side: int | tuple[int, int], what: str) -> None:
    """:class:`TcdnError` naming ``what`` (the option or field) when :func:`frame_size_problem`
    finds one."""
    problem = frame_size_problem(side)
    if problem is not None:
        raise TcdnError(
            f"{what} {side if isinstance(side, int) else 'x'.join(map(str, side))}: {problem}"
        )


@dataclass(frozen=True)
class DecodeSettings:
    """How frames are taken from a video: their size, how they are fitted to it, and which are kept.

    Attributes
    ----------
    size
        Output ``(height, width)``.
    resize
        ``"squash"``: scale the whole frame to ``size`` (aspect not kept, the paper's choice);
        ``"crop"``: scale the shorter side to fit, then keep the centre.
    stride
        Keep every ``stride``-th decoded frame.
    fps
        Keep frames at about this rate (by their timestamps) instead of every ``stride``-th.
    max_frames
        Keep at most this many frames per video.
    scaler
        FFmpeg's scaling algorithm, one of :data:`SCALERS`.
    """

    size: tuple[int, int] = (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
    resize: str = "squash"
    stride: int = 1
    fps: float | None = None
    max_frames: int | None = None
    scaler: str = "fast_bilinear"

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise TcdnError(
                f"resize mode {self.resize!r} is unknown: use one of {', '.join(RESIZE_MODES)}"
            )
        if self.scaler not in SCALERS:
            raise TcdnError(f"scaler {self.scaler!r} is unknown: use one of {', '.join(SCALERS)}")
        if min(self.size) < 1 or self.stride < 1:
            raise TcdnError(f"size {self.size} and stride {self.stride} must be >= 1")
        check_frame_size(self.size, "the frame size")
        if self.fps is not None and self.stride != 1:
            raise TcdnError("give either a frame rate (--fps) or a stride (--stride), not both")
        if self.fps is not None and not self.fps > 0:
            raise TcdnError(f"--fps must be > 0, got {self.fps}")
        if self.max_frames is not None and self.max_frames < 1:
            raise TcdnError(f"--max-frames must be >= 1, got {self.max_frames}")

    @classmethod
    def make(
        cls, size: int | tuple[int, int] = DEFAULT_IMAGE_SIZE, **kwargs: Any
    ) -> DecodeSettings:
        """Settings from an ``int`` (square) or ``(height, width)`` size and the other fields."""
        hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        return cls(size=hw, **kwargs)


class _Keep:
    """Decides, frame by frame, which decoded frames the settings keep."""

    def __init__(self, settings: DecodeSettings) -> None:
        self.s = settings
        self.seen = 0
        self.kept = 0
        self.next_time = 0.0

    def __call__(self, time: float | None) -> bool:
        i = self.seen
        self.seen += 1
        if self.s.fps is not None and time is not None:
            if time + 1e-6 < self.next_time:
                return False
            self.next_time = max(self.next_time + 1.0 / self.s.fps, time)
            return True
        return i % self.s.stride == 0

    @property
    def full(self) -> bool:
        return self.s.max_frames is not None and self.kept >= self.s.max_frames


def _fit(width: int, height: int, settings: DecodeSettings) -> tuple[int, int]:
    """The ``(width, height)`` to scale a frame to before the centre crop (or the final size)."""
    out_h, out_w = settings.size
    if settings.resize == "squash":
        return out_w, out_h
    scale = max(out_w / width, out_h / height)
    return max(out_w, round(width * scale)), max(out_h, round(height * scale))


def _crop(arr: np.ndarray, settings: DecodeSettings) -> np.ndarray:
    out_h, out_w = settings.size
    h, w = arr.shape[:2]
    if (h, w) == (out_h, out_w):
        return arr
    top, left = (h - out_h) // 2, (w - out_w) // 2
    return np.ascontiguousarray(arr[top : top + out_h, left : left + out_w])


def _iter_video_file(
    path: Path, settings: DecodeSettings, threads: bool, stats: dict[str, Any]
) -> Iterator[tuple[np.ndarray, int, float]]:
    import av  # imported here so that `tcdn --help` stays fast
    from av.video.reformatter import Interpolation, VideoReformatter

    # One reformatter for the whole video: FFmpeg scales and converts to RGB in one pass, and the
    # scaling context is built once (``frame.to_ndarray(width=, height=)`` builds one per frame,
    # which costs as much as decoding: see benchmarks/bench_ingest.py).
    reformatter = VideoReformatter()
    interpolation = getattr(Interpolation, settings.scaler.upper())
    keep = _Keep(settings)
    with av.open(str(path)) as container:
        if not container.streams.video:
            if not container.streams:
                raise TcdnError(
                    f"{path} holds no stream at all: it is truncated or not a video; remove or "
                    "replace it"
                )
            raise TcdnError(
                f"{path} has no video stream (audio only?): remove it from the collection"
            )
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        else:
            stream.thread_count = 1  # one process per core already: no extra decoder threads
        every = settings.stride == 1 and settings.fps is None  # the common case: no per-frame test
        crop = settings.resize == "crop"
        src_size: tuple[int, int] = (0, 0)
        w = h = 0
        stats["expected"] = int(stream.frames or 0)  # the container's count; 0: unknown
        stats["decoded"] = 0
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        start: float | None = None  # the first frame's time: a frame's time counts from it
        frames = container.decode(stream)
        index = -1
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                if not keep.kept:
                    raise
                # A file cut short mid-packet: keep what decoded (as a multi-threaded decoder
                # does by itself), and say so (short_of_frames).
                stats["error"] = str(exc).splitlines()[0]
                return
            index += 1
            stats["decoded"] += 1
            t = frame.time
            if t is not None and start is None:
                start = t
            if not every and not keep(t):
                continue
            if t is not None and start is not None:
                seconds = t - start
            else:
                seconds = index / rate if rate else float("nan")
            if (frame.width, frame.height) != src_size:
                src_size = (frame.width, frame.height)
                w, h = _fit(frame.width, frame.height, settings)
            rgb = reformatter.reformat(
                frame, width=w, height=h, format="rgb24", interpolation=interpolation
            ).to_ndarray()
            yield (_crop(rgb, settings) if crop else rgb), index, seconds
            keep.kept += 1
            if keep.full:
                stats["stopped"] = 1  # stopped at max_frames: the rest was not decoded
                return


def _iter_image_folder(
    folder: Path, settings: DecodeSettings
) -> Iterator[tuple[np.ndarray, int, float]]:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    keep = _Keep(settings)
    for index, f in enumerate(files):
        if not keep(None):
            continue
        try:
            with Image.open(f) as img:
                rgb = img.convert("RGB")
                w, h = _fit(rgb.width, rgb.height, settings)
                if (w, h) != rgb.size:
                    rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)
                arr = np.asarray(rgb, dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise TcdnError(f"cannot read frame image {f}: {exc}. Remove or replace it") from exc
        yield _crop(arr, settings), index, float("nan")  # a folder of images has no clock
        keep.kept += 1
        if keep.full:
            return


def iter_frames(
    path: str | Path,
    settings: DecodeSettings,
    *,
    threads: bool = True,
    stats: dict[str, Any] | None = None,
) -> Iterator[np.ndarray]:
    """Yield the kept frames of one video as ``(H, W, 3)`` ``uint8`` RGB arrays, one at a time.

    :func:`iter_positioned_frames` yields each with its place in the video."""
    for arr, _index, _seconds in iter_positioned_frames(
        path, settings, threads=threads, stats=stats
    ):
        yield arr


def iter_positioned_frames(
    path: str | Path,
    settings: DecodeSettings,
    *,
    threads: bool = True,
    stats: dict[str, Any] | None = None,
) -> Iterator[tuple[np.ndarray, int, float]]:
    """Yield ``(frame, index, seconds)`` for the kept frames of one video: the ``(H, W, 3)``
    ``uint8`` RGB frame, its index among all the video's decoded frames (0-based; with
    ``--stride``/``--fps`` the kept ones skip some), and its time in seconds from the first frame
    (NaN for a folder of frame images, which has no clock).

    ``path`` is a video file FFmpeg reads, or a folder of frame images (``.jpg``, ``.png``, ...,
    in file-name order). This is the one decoding routine of tcdn: :func:`decode_video` and the
    frame store (:func:`tcdn.data.store.ingest`) both use it.

    A video file that decodes to clearly fewer frames than its container lists (cut short, or
    damaged part-way: its frames up to the damage are kept) is reported: ``stats``, if given,
    receives ``expected`` (the container's count, 0 when it states none), ``decoded`` and the
    decoder's ``error`` if one stopped it, for the caller to report (see
    :func:`short_of_frames`); without ``stats``, a warning is logged.

    Raises
    ------
    TcdnError
        The file cannot be read, has no video stream, or holds no decodable frame.
    """
    import av

    path = Path(path)
    n = 0
    own = stats is None
    stats = {} if stats is None else stats
    try:
        frames = (
            _iter_image_folder(path, settings)
            if path.is_dir()
            else _iter_video_file(path, settings, threads, stats)
        )
        for item in frames:
            n += 1
            yield item
    except TcdnError:
        raise
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        raise TcdnError(
            f"cannot decode {path}: {exc}. The file is not a video FFmpeg can read, or it is corrupt: "
            "remove or replace it"
        ) from exc
    if n == 0:
        raise TcdnError(f"{path} holds no decodable frame: remove or replace it")
    short = short_of_frames(stats) if own else None
    if short:
        log.warning("%s: %s", path, short)


def short_of_frames(stats: dict[str, Any]) -> str | None:
    """What :func:`iter_frames`' ``stats`` say when a file decoded to clearly fewer frames than
    its container states (a truncated or damaged file); ``None`` otherwise."""
    expected, decoded = stats.get("expected", 0), stats.get("decoded", 0)
    if stats.get("stopped"):
        return None
    why = f" (the decoder stopped: {stats['error']})" if stats.get("error") else ""
    if expected and expected - decoded > max(2, 0.05 * expected):  # slack: edit lists, B-frames
        return (
            f"decoded {decoded} of the {expected} frames its container lists{why}: the file is "
            f"probably truncated or damaged; its {decoded} frames were kept"
        )
    if why:
        return f"decoding stopped after {decoded} frames{why}: its {decoded} frames were kept"
    return None


def decode_video(
    path: str | Path,
    size: int | tuple[int, int] = DEFAULT_IMAGE_SIZE,
    max_frames: int | None = None,
    *,
    resize: str = "squash",
    stride: int = 1,
    fps: float | None = None,
) -> np.ndarray:
    """Decode the frames of a video (or frame-image folder), scaled to ``size`` by FFmpeg in the same pass.

    Parameters
    ----------
    path
        Any file FFmpeg can read, or a folder of frame images.
    size
        Output ``H = W = size``, or ``(height, width)``.
    max_frames, resize, stride, fps
        See :class:`DecodeSettings`; by default every frame, squashed to ``size``.

    Returns
    -------
    numpy.ndarray
        ``(T, H, W, 3)`` ``uint8`` RGB frames.
    """
    settings = DecodeSettings.make(
        size, resize=resize, stride=stride, fps=fps, max_frames=max_frames
    )
    return np.stack(list(iter_frames(path, settings)))
