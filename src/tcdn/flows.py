"""What the commands do, as functions: from the paths a user names to the files written.

Each function is one command's flow, and the command line only parses its options, calls it once
and prints what it returns:

- :func:`discover` (``tcdn discover``): a collection's frames (or videos), a feature file or a
  feature array, clustered and scored; with ``out``, ``results.json``, ``clusters.csv``,
  ``videos.csv`` and the report written there;
- :func:`write_features` (``tcdn features``): one feature source of a collection's frames, saved
  as a feature file;
- :func:`search_features` (``tcdn search``): the frames and videos of a feature file nearest an
  image, a video or a row, and their montage;
- :func:`finetune` (``tcdn finetune``): the transfer experiment, its runs and ``results.json``.

The guards of the command line apply to a caller of these functions too: the outputs are checked
before any work (:mod:`tcdn.outputs`), and a folder is locked while it is written
(:mod:`tcdn.runlock`). Their messages name the command's flags (``--checkpoint``...): each
keyword argument is the flag of the same name.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcdn.data.decode import DEFAULT_IMAGE_SIZE
from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet

if TYPE_CHECKING:
    from tcdn.discovery.config import DiscoverConfig
    from tcdn.discovery.pipeline import Discovery
    from tcdn.search import Answer, Query
    from tcdn.transfer.config import FinetuneConfig

#: the commands' messages, under the logger name they have always had
log = logging.getLogger("tcdn")

PathLike = str | Path


def _device(name: str | None) -> str:
    """The torch device ``name`` names (``None``: ``auto``, a GPU when there is one), checked
    by :func:`tcdn.device.resolve_device`: resolved before anything is decoded."""
    from tcdn.device import resolve_device

    return str(resolve_device(name or "auto"))


def frame_size(size: int | None, checkpoint: dict[str, Any] | None) -> int:
    """The side of the frames to decode: ``size`` (``--size``), else the checkpoint's
    ``image_size``, else the paper's :data:`~tcdn.data.decode.DEFAULT_IMAGE_SIZE`."""
    if size is not None:
        return size
    if checkpoint is not None:
        return int(checkpoint["config"]["image_size"])
    return DEFAULT_IMAGE_SIZE


def check_layer(layer: str | None, checkpoint: dict[str, Any] | None, size: int) -> None:
    """``layer`` (``--layer``) must name a layer of the network (the checkpoint's, else the
    default AlexNet): checked before decoding, on a network built without memory (the meta
    device)."""
    if layer is None:
        return
    import torch

    from tcdn.training.config import TrainConfig

    cfg = (
        TrainConfig.from_dict(checkpoint["config"])
        if checkpoint is not None
        else TrainConfig(image_size=max(size, 32))
    )
    with torch.device("meta"):
        model = cfg.build_model()
    if layer not in model.layer_names:
        raise TcdnError(
            f"--layer {layer!r}: the network ({cfg.model}) has no such layer; choose one of "
            f"{', '.join(model.layer_names)}"
        )


def _open_collection(
    videos: PathLike,
    size: int,
    *,
    labels: PathLike | None,
    max_frames: int | None,
    skip_bad: bool,
    progress: bool,
) -> FrameSet:
    from tcdn.data.load import open_collection

    return open_collection(
        videos,
        size,
        labels_csv=labels,
        max_frames=max_frames,
        skip_bad=skip_bad,
        progress=progress,
    )


def _checkpoint(checkpoint: dict[str, Any] | PathLike | None) -> dict[str, Any] | None:
    """A checkpoint dict as it is, or the one a checkpoint file or run folder holds."""
    if checkpoint is None or isinstance(checkpoint, dict):
        return checkpoint
    from tcdn.training.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint)


# -- discover ------------------------------------------------------------------------------------


def discover(
    data: FrameSet | FeatureSet | PathLike | None = None,
    checkpoint: dict[str, Any] | PathLike | None = None,
    config: DiscoverConfig | None = None,
    *,
    features: PathLike | None = None,
    features_npy: PathLike | None = None,
    index: PathLike | None = None,
    out: PathLike | None = None,
    report: bool = True,
    labels: PathLike | None = None,
    size: int | None = None,
    max_frames: int | None = None,
    skip_bad: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> Discovery:
    """Discover the classes of a collection or of given features: cluster, score and (with
    ``out``) write the answer, as ``tcdn discover`` does.

    Parameters
    ----------
    data
        The frames to cluster: a video folder or a frame store (a path), or frames already
        read (a :class:`~tcdn.data.FrameSet`); or features already computed (a
        :class:`~tcdn.features.FeatureSet`). Leave it out to give ``features`` or
        ``features_npy`` with ``index`` instead.
    checkpoint
        A checkpoint dict (:func:`tcdn.load_checkpoint`), a checkpoint file or a run folder (its
        last checkpoint): the ``trained`` network, and the architecture of ``random_init``.
        Without it, a collection is scored with ``random_init`` and ``raw_pixels`` only.
    config
        What to cluster and how (:class:`~tcdn.discovery.config.DiscoverConfig`).
    features, features_npy, index
        A feature file (``.npz``, from ``tcdn features``), or an ``(N, D)`` ``.npy`` with a
        ``video,frame[,label]`` CSV of its rows: the features to cluster instead of ``data``.
    out
        A folder for ``results.json``, ``clusters.csv``, ``videos.csv`` and (with ``report``)
        ``report.html``; checked before any work and locked while it is written. ``None``
        (default): nothing is written.
    report
        With ``out``: write the HTML report too.
    labels, size, max_frames, skip_bad
        How a collection given by its path is read (:func:`tcdn.open_collection`); the frame
        side defaults to the checkpoint's.
    device
        The torch device of the networks (default: ``auto``, a GPU when there is one, for a
        collection given by its path; ``cpu`` for frames given in memory).
    progress
        Show progress bars.

    Returns
    -------
    Discovery
        The scores (``results``), the first repeat's clusters (``assignments``) and the rows
        clustered (``clustered``).
    """
    from tcdn import runlock
    from tcdn.discovery.config import DiscoverConfig

    config = config or DiscoverConfig()
    if out is not None:
        _check_discover_out(Path(out), report)
    lock = runlock.hold(Path(out)) if out is not None else contextlib.nullcontext()
    with lock:
        given = _given_features(
            data,
            checkpoint,
            config,
            features=features,
            features_npy=features_npy,
            index=index,
            collection={"labels": labels, "size": size, "max_frames": max_frames},
            skip_bad=skip_bad,
            device=device,
        )
        if given is not None:
            from tcdn.discovery.pipeline import discover_features

            found = discover_features(given, config)
            frames = _frames_of_features(given) if out is not None and report else None
        else:
            assert not isinstance(data, FeatureSet)
            found, frames = _discover_frames(
                data,
                checkpoint,
                config,
                labels=labels,
                size=size,
                max_frames=max_frames,
                skip_bad=skip_bad,
                device=device,
                progress=progress,
            )
        if out is not None:
            _write_discovery(Path(out), found, frames, report=report, seed=config.seed)
    return found


def _check_discover_out(out: Path, report: bool) -> None:
    """``out`` can take results.json, clusters.csv, videos.csv and (with ``report``) the report
    (any there already being tcdn's): checked before any work."""
    from tcdn.discovery.results import RESULT_FILES, is_result_file
    from tcdn.outputs import check_output_files

    check_output_files(out, dict.fromkeys(RESULT_FILES, is_result_file))
    if report:
        from tcdn.report.files import check_report_dir

        check_report_dir(out)


def _given_features(
    data: FrameSet | FeatureSet | PathLike | None,
    checkpoint: dict[str, Any] | PathLike | None,
    config: DiscoverConfig,
    *,
    features: PathLike | None,
    features_npy: PathLike | None,
    index: PathLike | None,
    collection: dict[str, Any],
    skip_bad: bool,
    device: str | None,
) -> FeatureSet | None:
    """The feature set given by ``data`` (a FeatureSet), ``features`` or ``features_npy`` with
    ``index``; ``None`` for a collection's frames. Exactly one input must be given, and none of
    the options that only apply to a collection."""
    if isinstance(data, FeatureSet) and features is None and features_npy is None and index is None:
        if checkpoint is not None:
            raise TcdnError("a checkpoint applies to a collection's frames, not to given features")
        return data
    inputs = [
        name
        for name, given in (
            ("VIDEOS", data is not None),
            ("--features", features is not None),
            ("--features-npy/--index", features_npy is not None or index is not None),
        )
        if given
    ]
    if len(inputs) != 1:
        raise TcdnError(
            "give exactly one input: a VIDEOS folder, --features FILE.npz, or --features-npy X.npy "
            f"with --index CSV (got {' and '.join(inputs) or 'none'})"
        )
    if inputs[0] == "VIDEOS":
        return None
    for flag, value in (
        ("--checkpoint", checkpoint),
        ("--sources", config.sources),
        ("--layer", config.layer),
        ("--labels", collection["labels"]),
        ("--size", collection["size"]),
        ("--max-frames", collection["max_frames"]),
        ("--skip-bad", skip_bad or None),
        ("--device", device),
    ):
        if value is not None:
            raise TcdnError(
                f"{flag} applies to a VIDEOS folder, but {inputs[0]} gives the features: drop {flag}"
            )
    if features is not None:
        return FeatureSet.load(features)
    if features_npy is None or index is None:
        missing, given = (
            ("--index", "--features-npy") if index is None else ("--features-npy", "--index")
        )
        raise TcdnError(
            f"{given} needs {missing}: a .npy of (N, D) features and a video,frame[,label] CSV of its N rows"
        )
    return FeatureSet.from_arrays(features_npy, index)


def _discover_frames(
    data: FrameSet | PathLike | None,
    checkpoint: dict[str, Any] | PathLike | None,
    config: DiscoverConfig,
    *,
    labels: PathLike | None,
    size: int | None,
    max_frames: int | None,
    skip_bad: bool,
    device: str | None,
    progress: bool,
) -> tuple[Discovery, FrameSet]:
    """The discovery of a collection's frames (read from ``data``'s path unless given), and
    the frames. Every option is checked before the first frame is decoded."""
    from tcdn.discovery.pipeline import discover_collection

    assert data is not None
    if isinstance(data, FrameSet):  # frames in memory: on the CPU unless told, as always
        ckpt = _checkpoint(checkpoint)
        dev = device or "cpu"
        return discover_collection(data, ckpt, config, device=dev, progress=progress), data
    dev = _device(device)
    ckpt = _checkpoint(checkpoint)
    config.sources_for(ckpt is not None)  # a bad --sources fails before decoding
    side = frame_size(size, ckpt)
    check_layer(config.layer, ckpt, side)
    if ckpt is None:
        log.info(
            "no --checkpoint: clustering features of a randomly initialised network "
            "(random_init) and raw pixels only; give --checkpoint RUN to score a trained one"
        )
    frames = _open_collection(
        data, side, labels=labels, max_frames=max_frames, skip_bad=skip_bad, progress=progress
    )
    found = discover_collection(frames, ckpt, config, device=dev, progress=progress)
    found.results["collection"] = str(data)
    return found, frames


def _frames_of_features(feats: FeatureSet) -> FrameSet | None:
    """The frames given features came from, for the report's montages: the frame store their
    meta names (a video folder is not decoded again just for pictures); ``None`` otherwise."""
    from tcdn.data.store import is_store, open_store

    collection = feats.meta.get("collection")
    if collection and is_store(collection):
        try:
            return open_store(collection)
        except TcdnError as exc:
            log.warning("the report shows no frames: %s", exc)
            return None
    log.info(
        "the report names the sample frames without showing them: the features' collection %s "
        "is not a frame store",
        collection,
    )
    return None


def _write_discovery(
    out: Path, found: Discovery, frames: FrameSet | None, *, report: bool, seed: int
) -> None:
    """``results.json``, ``clusters.csv``, ``videos.csv`` and (with ``report``) the report."""
    from tcdn.discovery.results import write_results

    write_results(out, found.clustered, found.results, found.assignments)
    log.info("wrote %s, clusters.csv and videos.csv", out / "results.json")
    if report:
        from tcdn.report.prepare import write_report

        page = write_report(out, found, frames, seed=seed)
        log.info("the report: open %s", page.resolve().as_uri())


# -- features ------------------------------------------------------------------------------------


def write_features(
    videos: PathLike,
    out: PathLike,
    *,
    source: str = "trained",
    checkpoint: dict[str, Any] | PathLike | None = None,
    layer: str | None = None,
    frame_stride: int = 1,
    max_per_video: int | None = None,
    seed: int = 0,
    float16: bool = False,
    labels: PathLike | None = None,
    size: int | None = None,
    max_frames: int | None = None,
    skip_bad: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> FeatureSet:
    """Compute one feature source of a collection's frames and save it as a feature file, as
    ``tcdn features`` does.

    Parameters
    ----------
    videos
        A video folder or a frame store.
    out
        The feature file (``.npz``) to write: checked before any work (a feature file tcdn wrote
        there before is replaced atomically; any other file is left alone).
    source
        ``trained`` (the checkpoint's network), ``random_init`` (the same network with random
        weights, seeded by ``seed``) or ``raw_pixels`` (the pixels reduced by PCA).
    checkpoint
        A checkpoint dict, file or run folder: needed by ``trained``, and gives ``random_init``
        its architecture.
    layer
        The layer whose output is the feature (default: the network's own).
    frame_stride, max_per_video
        Keep every S-th frame of each video, at most M.
    seed
        Seed of the random-init network and of the PCA.
    float16
        Store the features as float16 (half the memory and file size).
    labels, size, max_frames, skip_bad
        How the collection is read (:func:`tcdn.open_collection`); the frame side defaults to
        the checkpoint's.
    device, progress
        The torch device (default ``auto``) and whether to show progress bars.

    Returns
    -------
    FeatureSet
        The features saved, with the collection and the row selection in their ``meta``.
    """
    import numpy as np

    from tcdn.features.extract import frame_features
    from tcdn.features.featureset import is_feature_file
    from tcdn.outputs import check_output_file

    check_output_file(out, ours=is_feature_file)
    if source == "trained" and checkpoint is None:
        raise TcdnError(
            "--source trained (the default) needs --checkpoint; or choose --source random_init or raw_pixels"
        )
    dev = _device(device)
    ckpt = _checkpoint(checkpoint)
    side = frame_size(size, ckpt)
    if source != "raw_pixels":
        check_layer(layer, ckpt, side)
    frames = _open_collection(
        videos, side, labels=labels, max_frames=max_frames, skip_bad=skip_bad, progress=progress
    )
    feats = frame_features(
        frames,
        source,
        ckpt,
        rows=frames.rows(frame_stride, max_per_video),
        layer=layer,
        seed=seed,
        device=dev,
        progress=progress,
        dtype=np.float16 if float16 else np.float32,
    )
    feats.meta.update(
        collection=str(videos),
        frame_stride=frame_stride,
        max_per_video=max_per_video,
        skipped=frames.skipped,
    )
    path = feats.save(out)
    log.info(
        "wrote %d x %d %s features of %d videos to %s",
        *feats.features.shape,
        source,
        len(frames.videos),
        path,
    )
    return feats


# -- search --------------------------------------------------------------------------------------


@dataclass
class SearchResult:
    """What :func:`search_features` found: the query, the nearest frames and videos, and the
    feature set searched (``path``: its file)."""

    query: Query
    answer: Answer
    features: FeatureSet
    path: Path

    def table(self) -> str:
        """The answer as ``tcdn search`` prints it: the nearest frames, then the nearest videos."""
        import math

        def seconds(t: float) -> str:
            return "" if not math.isfinite(t) else f"{t:.2f}"

        fs = self.features
        lines = [
            f"query: {self.query.description}; {len(fs)} rows of {fs.meta.get('layer') or ''} "
            f"features in {self.path}",
            "",
            "nearest frames:",
            f"{'rank':>4}  {'distance':>10}  {'frame':>6}  {'time':>7}  video  (label)",
        ]
        for i, h in enumerate(self.answer.frames, 1):
            label = f"  ({h.label})" if h.label else ""
            lines.append(
                f"{i:>4}  {h.distance:>10.4f}  {h.frame:>6}  {seconds(h.time):>7}  {h.video}{label}"
            )
        lines += ["", "nearest videos (by their nearest frame):"]
        lines.append(f"{'rank':>4}  {'distance':>10}  {'frame':>6}  video  (label)")
        for i, h in enumerate(self.answer.videos, 1):
            label = f"  ({h.label})" if h.label else ""
            lines.append(f"{i:>4}  {h.distance:>10.4f}  {h.frame:>6}  {h.video}{label}")
        return "\n".join(lines)


def search_features(
    features: PathLike,
    query: PathLike | None = None,
    *,
    row: int | None = None,
    at: float | None = None,
    k: int = 10,
    checkpoint: PathLike | None = None,
    montage: PathLike | None = "search.png",
    device: str | None = None,
) -> SearchResult:
    """Find the frames and videos of a feature file nearest a query, and write their montage,
    as ``tcdn search`` does.

    Parameters
    ----------
    features
        The feature file (from ``tcdn features``).
    query
        An image, or a video (its frames' features averaged, or the frame at ``at`` seconds);
        leave it out to query with ``row`` of the feature file.
    row, at
        The row of the feature file to query with; the time of a video query's frame.
    k
        How many frames and videos.
    checkpoint
        The network that embeds an image or video (default: the one the feature file names).
    montage
        The PNG of the query and the nearest frames (checked before any work; an existing file
        is replaced only if tcdn wrote it); ``None``: none.
    device
        The torch device that embeds an image or video query (default ``auto``).

    Returns
    -------
    SearchResult
        The query and the answer; :meth:`SearchResult.table` prints it.
    """
    from tcdn.report.montage import check_writable, save_montage
    from tcdn.search import hit, hit_frames, media_query, nearest, row_query

    if (query is None) == (row is None):
        raise TcdnError("give one query: an image or video file, or --row N of the feature file")
    if row is not None and at is not None:
        raise TcdnError("--at applies to a video query, not to --row")
    if row is not None and checkpoint is not None:
        raise TcdnError("--checkpoint embeds an image or video query; --row needs none: drop it")
    if montage is not None:
        check_writable(Path(montage))
    fs = FeatureSet.load(features)
    if row is not None:
        q = row_query(fs, row)
    else:
        assert query is not None
        q = media_query(Path(query), fs.meta, at=at, checkpoint=checkpoint, device=_device(device))
    found = SearchResult(q, nearest(fs, q.vector, k, exclude=row), fs, Path(features))
    if montage is not None:
        pictures = hit_frames(found.answer.frames, fs.meta)
        if row is not None:
            pictures = [*hit_frames([hit(fs, row, 0.0)], fs.meta), *pictures]
        else:
            pictures = [q.picture, *pictures]
        captions = ["query"] + [
            f"{i}. {h.distance:.3f}\n{Path(h.video).name}\n{h.label}"
            for i, h in enumerate(found.answer.frames, 1)
        ]
        save_montage(pictures, captions, Path(montage))
        log.info("wrote the montage %s", montage)
    return found


# -- finetune ------------------------------------------------------------------------------------

#: the kind of folder ``tcdn finetune --out`` is, in its marker file (tcdn.outputs.claim_folder)
FINETUNE_KIND = "finetune"


def finetune(
    data: PathLike,
    checkpoint: dict[str, Any] | PathLike,
    config: FinetuneConfig,
    out: PathLike,
    *,
    labels: PathLike | None = None,
    max_frames: int | None = None,
    size: int | None = None,
    threads: int | None = None,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune and probe a classifier initialised with ``checkpoint``'s weights against the
    same network randomly initialised, and write ``OUT/results.json``, as ``tcdn finetune``
    does (:func:`tcdn.transfer.run_transfer`).

    Parameters
    ----------
    data
        The labelled images, in the layout ``config.dataset`` names (for ``videos``: a video
        folder or a frame store).
    checkpoint
        The learned init: a checkpoint dict, file or run folder.
    config
        The protocols and their options (:class:`~tcdn.transfer.config.FinetuneConfig`).
    out
        The folder of ``results.json`` and the fine-tuning ``runs/``: checked before any work
        (a folder of other files is refused), claimed and locked while it is written.
    labels, max_frames
        ``dataset="videos"`` only: a video,label CSV; the frames kept per video.
    size
        The image side (default: the checkpoint's ``image_size``).
    threads
        Torch's CPU threads (default: torch's choice).
    resume
        Continue the runs in ``out``: completed ones are read back, interrupted ones go on.
    device, progress
        The torch device (default ``auto``) and whether to show progress bars.

    Returns
    -------
    dict
        The ``results.json`` record (:func:`tcdn.transfer.format_table` prints it).
    """
    from tcdn import runlock
    from tcdn.outputs import check_output_folder, claim_folder

    if config.dataset != "videos":
        for flag, value in (("--labels", labels), ("--max-frames", max_frames)):
            if value is not None:
                raise TcdnError(f"{flag} applies to --dataset videos only: drop it")
    dev = _device(device)
    folder = check_output_folder(  # before any work: a folder of the user's own files is refused
        Path(out),
        FINETUNE_KIND,
        recognise=lambda p: (p / "results.json").is_file() or (p / "runs").is_dir(),
        what="fine-tuning folder",
    )
    with runlock.hold(folder):
        claim_folder(folder, FINETUNE_KIND)
        return _finetune(
            data,
            checkpoint,
            config,
            Path(out),
            labels=labels,
            max_frames=max_frames,
            size=size,
            threads=threads,
            resume=resume,
            device=dev,
            progress=progress,
        )


def _finetune(
    data: PathLike,
    checkpoint: dict[str, Any] | PathLike,
    config: FinetuneConfig,
    out: Path,
    *,
    labels: PathLike | None,
    max_frames: int | None,
    size: int | None,
    threads: int | None,
    resume: bool,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    import torch

    from tcdn.transfer.images import read_dataset, video_frames
    from tcdn.transfer.protocol import run_transfer
    from tcdn.transfer.results import write_results

    if threads:
        torch.set_num_threads(threads)
    ckpt = _checkpoint(checkpoint)
    assert ckpt is not None
    side = size or int(ckpt["config"]["image_size"])
    if config.dataset == "videos":
        frames = _open_collection(
            data, side, labels=labels, max_frames=max_frames, skip_bad=False, progress=progress
        )
        images = video_frames(frames, str(data))
    else:
        images = read_dataset(config.dataset, data, side)
    results = run_transfer(
        images, ckpt, config, out, resume=resume, device=device, progress=progress
    )
    path = write_results(out, results)
    log.info("wrote %s", path)
    return results
