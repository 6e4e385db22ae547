"""Seeded synthetic labelled videos: tcdn's built-in data.

A *category* is a scene that every video of it shares and that a single frame shows: a
background texture (stripe orientation and spacing) and three objects of given shapes in a given
arrangement, one of which moves in a category-specific way (an "action"). Each *video* adds its own
nuisance, weaker than the category but strong enough that raw pixels are not the best features:
its colours (a hue shift around a shared palette), the placement and size of the scene, the speed
of the motion, and a slow camera drift, zoom and lighting change within the video. Adjacent
frames change slowly.

The videos are written as real files (H.264 mp4 through PyAV), one sub-folder per category, with
a ``labels.csv`` (``video,label,frames``) beside them, so the rest of the pipeline reads them
exactly as it reads a user's folder.
"""

from __future__ import annotations

import colorsys
import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tcdn.errors import TcdnError
from tcdn.outputs import atomic_writer, check_output_folder, claim_folder, guard_file, write_atomic

log = logging.getLogger(__name__)

SHAPES = ("disc", "square", "triangle", "cross", "ring", "bar")


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. The defaults are the demo's collection."""

    n_classes: int = 6
    videos_per_class: int = 10
    min_frames: int = 60
    max_frames: int = 120
    size: int = 64
    fps: int = 25
    seed: int = 0
    #: per-video colour nuisance: hue shift of up to ± this fraction of the colour wheel. At 0.5
    #: (any hue) colour tells the videos apart more strongly than the category does, and
    #: temporal coherence learns *which video* rather than *which category*.
    hue_spread: float = 0.1

    def validate(self) -> None:
        if self.n_classes < 2:
            raise TcdnError(f"n_classes (--classes) must be >= 2, got {self.n_classes}")
        if self.videos_per_class < 1:
            raise TcdnError(
                f"videos_per_class (--videos-per-class) must be >= 1, got {self.videos_per_class}"
            )
        if not 3 <= self.min_frames <= self.max_frames:
            raise TcdnError(
                f"need 3 <= min_frames <= max_frames (--min-frames, --max-frames), got {self.min_frames}, {self.max_frames}"
            )
        if not 0 <= self.hue_spread <= 0.5:
            raise TcdnError(f"hue_spread (--hue-spread) must be in [0, 0.5], got {self.hue_spread}")
        if self.size < 16 or self.size % 2:
            raise TcdnError(f"size (--size) must be an even number >= 16, got {self.size}")
        from tcdn.data.decode import check_frame_size

        check_frame_size(self.size, "size (--size)")  # a video's frames are held at once


@dataclass(frozen=True)
class _Category:
    stripe_angle: float
    stripe_period: float
    shapes: tuple[int, int, int]
    positions: np.ndarray  # (3, 2) in a unit layout centred on 0
    radii: np.ndarray  # (3,)
    mover: int  # which object moves
    motion: np.ndarray  # (2,) direction of the motion (unit layout units)
    motion_kind: int  # 0 = oscillate along a line, 1 = circle, 2 = pulse in size


def _categories(n: int, rng: np.random.Generator) -> list[_Category]:
    cats = []
    for k in range(n):
        # Spread the stripe orientations so that categories differ in texture as well as layout.
        angle = np.pi * (k / n) + rng.uniform(-0.1, 0.1)
        shapes = tuple(int(s) for s in rng.choice(len(SHAPES), size=3, replace=False))
        positions = rng.uniform(-0.55, 0.55, size=(3, 2))
        cats.append(
            _Category(
                stripe_angle=float(angle),
                stripe_period=float(rng.uniform(0.25, 0.6)),
                shapes=(shapes[0], shapes[1], shapes[2]),
                positions=positions,
                radii=rng.uniform(0.16, 0.3, size=3),
                mover=int(rng.integers(3)),
                motion=rng.normal(size=2) / 1.5,
                motion_kind=int(rng.integers(3)),
            )
        )
    return cats


def _shape_mask(kind: int, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of a shape of radius ``r`` centred at 0 in coordinates ``x, y``."""
    ax, ay = np.abs(x), np.abs(y)
    name = SHAPES[kind]
    if name == "disc":
        return x * x + y * y <= r * r
    if name == "square":
        return np.maximum(ax, ay) <= r * 0.85
    if name == "triangle":
        return (y <= r * 0.8) & (y >= 1.7 * ax - r)
    if name == "cross":
        return ((ax <= r * 0.3) & (ay <= r)) | ((ay <= r * 0.3) & (ax <= r))
    if name == "ring":
        d2 = x * x + y * y
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    return (ax <= r) & (ay <= r * 0.35)  # bar


def _palette(rng: np.random.Generator, hue_spread: float) -> np.ndarray:
    """Four colours (background light / dark stripe, objects): the video's colours.

    Their hue is a shared base hue shifted by up to ``± hue_spread`` (a fraction of the colour
    wheel) per video, each colour jittered by up to ± 0.05 more.
    """
    hue = 0.55 + rng.uniform(-hue_spread, hue_spread)
    cols = []
    for dh, s, v in ((0.0, 0.35, 0.75), (0.0, 0.45, 0.5), (0.33, 0.8, 0.95), (0.6, 0.8, 0.3)):
        cols.append(colorsys.hsv_to_rgb((hue + dh + rng.uniform(-0.05, 0.05)) % 1.0, s, v))
    return np.asarray(cols, dtype=np.float32)


def render_video(
    cat: _Category, n_frames: int, size: int, rng: np.random.Generator, hue_spread: float = 0.1
) -> np.ndarray:
    """``(n_frames, size, size, 3)`` uint8 frames of one video of category ``cat``."""
    pal = _palette(rng, hue_spread)
    obj_colours = [pal[2], pal[3], pal[2] * 0.5 + pal[3] * 0.5]
    scale = rng.uniform(0.8, 1.15)  # size of the scene in this video
    centre = rng.uniform(-0.2, 0.2, size=2)  # placement
    speed = rng.uniform(0.6, 1.6)  # speed of the action
    phase = rng.uniform(0, 2 * np.pi)
    drift = rng.normal(size=2) * 0.25  # camera drift over the whole video
    zoom = rng.uniform(-0.12, 0.12)  # zoom over the whole video
    light = rng.uniform(-0.2, 0.2)  # lighting change over the whole video

    lin = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    gx, gy = np.meshgrid(lin, lin)
    stripe_dir = np.array([np.cos(cat.stripe_angle), np.sin(cat.stripe_angle)], dtype=np.float32)
    frames = np.empty((n_frames, size, size, 3), dtype=np.uint8)
    for t in range(n_frames):
        u = t / max(n_frames - 1, 1)
        s = scale * (1 + zoom * u)
        c = centre + drift * u
        # Scene coordinates of every pixel.
        x, y = (gx - c[0]) / s, (gy - c[1]) / s
        stripes = (
            np.sin(2 * np.pi * (x * stripe_dir[0] + y * stripe_dir[1]) / cat.stripe_period) > 0
        )
        img = np.where(stripes[..., None], pal[0], pal[1])
        omega = 2 * np.pi * speed * t / 25.0 + phase
        for j in range(3):
            pos = cat.positions[j].copy()
            r = float(cat.radii[j])
            if j == cat.mover:
                if cat.motion_kind == 0:
                    pos = pos + cat.motion * np.sin(omega) * 0.4
                elif cat.motion_kind == 1:
                    pos = pos + 0.3 * np.array([np.cos(omega), np.sin(omega)])
                else:
                    r = r * (1 + 0.45 * np.sin(omega))
            mask = _shape_mask(cat.shapes[j], x - pos[0], y - pos[1], r)
            img = np.where(mask[..., None], obj_colours[j], img)
        img = img * (1 + light * (2 * u - 1))
        frames[t] = np.clip(img * 255 + rng.normal(0, 3, size=img.shape), 0, 255).astype(np.uint8)
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = 25) -> None:
    """Encode ``(T, H, W, 3)`` uint8 frames as an H.264 mp4 (MPEG-4 part 2 if x264 is missing).

    The file is written under a temporary name and renamed, so a crash never leaves a half-written
    video that looks complete. The same frames give the same bytes (with one x264 build): they are
    converted to YUV 4:2:0 here (:func:`rgb_to_yuv420`), each frame has its timestamp, and x264
    runs in one thread (its bitstream depends on the number of threads, i.e. the machine's cores)
    without its macroblock-tree rate control (``mbtree=0``): with it, identical frames encoded
    twice in one process gave different bytes (measured: 5 of 5 encodes differed; none with
    ``mbtree=0``, at 32, 64 and 128 pixels, on one core or two)."""
    from fractions import Fraction

    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    guard_file(path)  # never through, or over, a symbolic link
    if tmp.is_symlink():
        guard_file(tmp)
    with av.open(str(tmp), mode="w") as container:
        stream: Any = container.add_stream(codec, rate=fps)  # a VideoStream
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "fast", "x264-params": "threads=1:mbtree=0"}
        even = frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0
        for i, arr in enumerate(frames):
            frame = (
                av.VideoFrame.from_ndarray(rgb_to_yuv420(arr), format="yuv420p")
                if even
                else av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            )
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def rgb_to_yuv420(rgb: np.ndarray) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 RGB frame (``H``, ``W`` even) as the ``(3H/2, W)`` planes of a
    ``yuv420p`` frame (Y, then U and V): BT.601 at limited range, as swscale converts by
    default, chroma averaged over each 2x2 block; the same input always gives the same output."""
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    h, w = y.shape

    def half(c: np.ndarray) -> np.ndarray:
        return c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    planes = [y.ravel(), half(u).ravel(), half(v).ravel()]
    out = np.clip(np.rint(np.concatenate(planes)), 0, 255).astype(np.uint8)
    return out.reshape(h * 3 // 2, w)


#: the kind of folder :func:`generate` writes, in its marker file
SYNTHETIC_KIND = "synthetic-collection"


def generate(
    out_dir: str | Path, config: SyntheticConfig | None = None, progress: bool = True
) -> Path:
    """Write a synthetic labelled collection to ``out_dir``; return the path of its ``labels.csv``.

    The output is a function of ``config`` alone (seeded). An existing complete collection with
    the same config is reused.
    """
    cfg = config or SyntheticConfig()
    cfg.validate()
    out = Path(out_dir)
    labels_path = out / "labels.csv"
    stamp = out / ".tcdn-synthetic"
    if labels_path.is_file() and stamp.is_file() and stamp.read_text() == repr(cfg):
        log.info("reusing synthetic videos in %s", out)
        return labels_path
    # only into a new or empty folder, or one this function wrote: its files are overwritten
    check_output_folder(
        out,
        SYNTHETIC_KIND,
        recognise=lambda p: (p / ".tcdn-synthetic").is_file(),
        what="synthetic collection",
    )
    claim_folder(out, SYNTHETIC_KIND)
    stale = _listed_videos(out) if stamp.is_file() else set()
    stamp.unlink(missing_ok=True)  # the folder is not a complete collection until it is back
    rng = np.random.default_rng(cfg.seed)
    cats = _categories(cfg.n_classes, rng)
    rows = []
    jobs = [(k, i) for k in range(cfg.n_classes) for i in range(cfg.videos_per_class)]
    for k, i in tqdm(jobs, desc="writing synthetic videos", unit="video", disable=not progress):
        vrng = np.random.default_rng([cfg.seed, k, i])
        n_frames = int(vrng.integers(cfg.min_frames, cfg.max_frames + 1))
        frames = render_video(cats[k], n_frames, cfg.size, vrng, cfg.hue_spread)
        label = f"class{k:02d}"
        rel = Path(label) / f"{label}_v{i:02d}.mp4"
        (out / label).mkdir(exist_ok=True)
        write_video(out / rel, frames, fps=cfg.fps)
        rows.append((rel.as_posix(), label, n_frames))
    _remove_videos(out, stale - {r[0] for r in rows})
    with atomic_writer(labels_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video", "label", "frames"])
        writer.writerows(rows)
    write_atomic(stamp, repr(cfg))
    log.info("wrote %d synthetic videos (%d classes) to %s", len(rows), cfg.n_classes, out)
    return labels_path


def _listed_videos(out: Path) -> set[str]:
    """The videos the ``labels.csv`` of an earlier :func:`generate` into ``out`` lists."""
    try:
        with (out / "labels.csv").open(newline="", encoding="utf-8") as fh:
            return {row["video"] for row in csv.DictReader(fh) if row.get("video")}
    except (OSError, UnicodeDecodeError, KeyError, csv.Error):
        return set()


def _remove_videos(out: Path, names: set[str]) -> None:
    """Remove the videos an earlier :func:`generate` wrote that this one did not (so that the
    folder holds exactly what ``labels.csv`` lists), and their category folders once empty. Only
    names of the form ``classNN/classNN_vNN.mp4`` are removed: those are tcdn's."""
    import re

    pattern = re.compile(r"class\d+/class\d+_v\d+\.mp4")
    for name in sorted(names):
        path = out / name
        if pattern.fullmatch(name) and path.is_file() and not path.is_symlink():
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
    if names:
        log.info("removed %d videos of an earlier collection from %s", len(names), out)
