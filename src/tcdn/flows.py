"""``tcdn discover`` as a function (:func:`discover`): from the paths a user names (a
collection, a feature file or a feature array, a checkpoint) to the discovery and, with ``out``,
``results.json``, ``clusters.csv``, ``videos.csv`` and the report. It writes the report, so it
lives after :mod:`tcdn.report`; the in-memory steps it calls are
:mod:`tcdn.discovery.pipeline`'s.

The other commands' flows live in the room of their work: :func:`tcdn.features.write.write_features`
(``tcdn features``), :func:`search_features` (``tcdn search``, here) and
:func:`tcdn.transfer.run.finetune` (``tcdn finetune``). Each is the command's whole flow: the
command line parses its options, calls it once and prints what it returns. The guards of the
command line apply to a caller of these functions too: the outputs are checked before any work
(:mod:`tcdn.outputs`), and a folder is locked while it is written (:mod:`tcdn.runlock`). Their
messages name the command's flags (``--checkpoint``...): each keyword argument is the flag of
the same name.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet
from tcdn.search import Answer, Query

if TYPE_CHECKING:
    from tcdn.discovery.config import DiscoverConfig
    from tcdn.discovery.pipeline import Discovery

#: the command's messages, under the logger name they have always had
log = logging.getLogger("tcdn")

PathLike = str | Path


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
    on_written: Callable[[Discovery], object] | None = None,
) -> Discovery | None:
    """Discover the classes of a collection or of given features: cluster, score and (with
    ``out``) write the answer, as ``tcdn discover`` does. Under ``torchrun``, a collection given
    by its path with a checkpoint has its network features computed by every process, each on
    its share of the videos (:mod:`tcdn.features.shards`); rank 0 clusters and writes, the other
    ranks return ``None``.

    Parameters
    ----------
    data
        A video folder or frame store (a path), frames already read (a ``FrameSet``) or
        features (a ``FeatureSet``); or none, with ``features`` or ``features_npy`` + ``index``.
    checkpoint
        A checkpoint dict, file or run folder: the ``trained`` network and ``random_init``'s
        architecture; without it, only ``random_init`` and ``raw_pixels``.
    config
        What to cluster and how (:class:`~tcdn.discovery.config.DiscoverConfig`).
    features, features_npy, index
        A feature file (``.npz``, from ``tcdn features``), or an ``(N, D)`` ``.npy`` with a
        ``video,frame[,label]`` CSV of its rows: the features to cluster instead of ``data``.
    out, report
        A folder for ``results.json``, ``clusters.csv``, ``videos.csv`` and (with ``report``,
        the default) ``report.html``; checked before any work and locked while it is written.
        ``None`` (default): nothing is written.
    labels, size, max_frames, skip_bad
        How a collection given by its path is read (:func:`tcdn.open_collection`); the frame
        side defaults to the checkpoint's.
    device, progress
        The torch device of the networks (default: ``auto`` for a collection given by its path,
        ``cpu`` for frames given in memory); progress bars.
    on_written
        Called with the discovery once ``out``'s files are written, before the report.

    Returns
    -------
    Discovery or None
        The scores (``results``), the first repeat's clusters, the rows clustered (``None`` on
        the ranks of a ``torchrun`` job other than 0).
    """
    from tcdn import runlock
    from tcdn.discovery.config import DiscoverConfig

    config = config or DiscoverConfig()
    if out is not None:
        _check_discover_out(Path(out), report)
    shared = {"labels": labels, "size": size, "max_frames": max_frames, "skip_bad": skip_bad}
    main, computed = _ranks_share(data, checkpoint, config, out, shared, device, progress)
    if not main:
        return None  # rank 0 of the torchrun job clusters and writes
    lock = runlock.hold(Path(out)) if out is not None else contextlib.nullcontext()
    with lock:
        given = _given_features(
            data, checkpoint, config, features=features, features_npy=features_npy,
            index=index, collection={"labels": labels, "size": size, "max_frames": max_frames},
            skip_bad=skip_bad, device=device,
        )  # fmt: skip
        if given is not None:
            from tcdn.discovery.pipeline import discover_features

            found = discover_features(given, config)
            frames = _frames_of_features(given) if out is not None and report else None
        else:
            assert not isinstance(data, FeatureSet)
            found, frames = _discover_frames(
                data, checkpoint, config, labels=labels, size=size, max_frames=max_frames,
                skip_bad=skip_bad, device=device, progress=progress, computed=computed,
            )  # fmt: skip
        if out is not None:
            _write_discovery(Path(out), found, frames, report, config.seed, on_written)
        elif on_written is not None:
            on_written(found)
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
        ("--norm", config.norm),
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
    computed: dict[tuple[str, int], Any] | None = None,
) -> tuple[Discovery, FrameSet]:
    """The discovery of a collection's frames (read from ``data``'s path unless given), and
    the frames (``computed``: network features the ranks of a torchrun job computed). Every
    option is checked before the first frame is decoded."""
    from tcdn.data.load import open_collection
    from tcdn.device import resolve_device
    from tcdn.discovery.pipeline import discover_collection
    from tcdn.features.write import check_layer, checkpoint_of, frame_size

    assert data is not None
    if isinstance(data, FrameSet):  # frames in memory: on the CPU unless told, as always
        ckpt = checkpoint_of(checkpoint)
        dev = device or "cpu"
        return discover_collection(data, ckpt, config, device=dev, progress=progress), data
    dev = str(resolve_device(device or "auto"))
    ckpt = checkpoint_of(checkpoint)
    config.sources_for(ckpt is not None)  # a bad --sources fails before decoding
    side = frame_size(size, ckpt)
    check_layer(config.layer, ckpt, side)
    if ckpt is None:
        log.info(
            "no --checkpoint: clustering features of a randomly initialised network "
            "(random_init) and raw pixels only; give --checkpoint RUN to score a trained one"
        )
    frames = open_collection(
        data, side, labels_csv=labels, max_frames=max_frames, skip_bad=skip_bad, progress=progress
    )
    found = discover_collection(
        frames, ckpt, config, device=dev, progress=progress, computed=computed
    )
    found.results["collection"] = str(data)
    return found, frames


def _ranks_share(
    data: FrameSet | FeatureSet | PathLike | None,
    checkpoint: dict[str, Any] | PathLike | None,
    config: DiscoverConfig,
    out: PathLike | None,
    collection: dict[str, Any],
    device: str | None,
    progress: bool,
) -> tuple[bool, dict[tuple[str, int], Any] | None]:
    """Under ``torchrun``, with a collection given by its path and a checkpoint: the network
    features every rank computed (:func:`_sharded_features`) and whether this is rank 0.
    Otherwise ``(True, None)``: this process does everything."""
    from tcdn.features.shards import world_size

    if world_size() == 1 or not isinstance(data, str | Path) or checkpoint is None:
        return True, None
    if out is None:
        raise TcdnError("under torchrun, discover needs --out (its ranks share work there)")
    computed = _sharded_features(data, checkpoint, config, Path(out), collection, device, progress)
    return computed is not None, computed


def _sharded_features(
    data: PathLike,
    checkpoint: dict[str, Any] | PathLike,
    config: DiscoverConfig,
    out: Path,
    collection: dict[str, Any],
    device: str | None,
    progress: bool,
) -> dict[tuple[str, int], Any] | None:
    """The network features a discovery needs (``trained``, each ``random_init`` repeat), computed
    by the processes of a torchrun job (:func:`tcdn.features.shards.sharded_jobs`); rank 0 gets
    them, the other ranks ``None``."""
    from tcdn.device import resolve_device
    from tcdn.features.shards import ShardOptions, sharded_jobs
    from tcdn.features.write import checkpoint_of, frame_size

    ckpt = checkpoint_of(checkpoint)
    assert ckpt is not None
    sources = config.sources_for(True)
    jobs = [("trained", 0)] if "trained" in sources else []
    if "random_init" in sources:
        jobs += [("random_init", r) for r in range(config.random_init_repeats)]
    labels = collection["labels"]
    options = ShardOptions(
        frame_size(collection["size"], ckpt),
        Path(labels) if labels is not None else None,
        collection["max_frames"],
        collection["skip_bad"],
        config.frame_stride,
        config.max_per_video,
        config.layer,
        config.seed,
        str(resolve_device(device or "auto")),
        progress,
        norm=config.norm,
    )
    done = sharded_jobs(data, jobs, ckpt, out / "features.npz", options)
    return None if done is None else {job: fs.features for job, fs in done.jobs.items()}


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
    out: Path,
    found: Discovery,
    frames: FrameSet | None,
    report: bool,
    seed: int,
    on_written: Callable[[Discovery], object] | None,
) -> None:
    """``results.json``, ``clusters.csv``, ``videos.csv`` and (with ``report``) the report."""
    from tcdn.discovery.results import write_results

    write_results(out, found.clustered, found.results, found.assignments)
    if on_written is not None:
        on_written(found)
    log.info("wrote %s, clusters.csv and videos.csv", out / "results.json")
    if report:
        from tcdn.report.prepare import write_report

        page = write_report(out, found, frames, seed=seed)
        log.info("the report: open %s", page.resolve().as_uri())
    else:
        from tcdn.report.files import remove_report

        if remove_report(out):  # it described the results just replaced
            log.info("removed the earlier report in %s (it described other results)", out)


@dataclass
class SearchResult:
    """What :func:`search_features` found: the query, the nearest frames and videos, and the
    feature set searched (``path``: its file)."""

    query: Query
    answer: Answer
    features: FeatureSet
    path: Path
    #: the approximate index that answered (``None``: an exact scan of every row)
    index: Path | None = None

    def table(self) -> str:
        """The answer as ``tcdn search`` prints it: the nearest frames, then the nearest videos."""

        def seconds(t: float) -> str:
            return "" if not math.isfinite(t) else f"{t:.2f}"

        fs = self.features
        lines = [
            f"query: {self.query.description}; {len(fs)} rows of {fs.meta.get('layer') or ''} "
            f"features in {self.path}; "
            + ("exact scan" if self.index is None else f"approximate index {self.index}"),
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
    features: str | Path,
    query: str | Path | None = None,
    *,
    row: int | None = None,
    at: float | None = None,
    k: int = 10,
    checkpoint: str | Path | None = None,
    montage: str | Path | None = "search.png",
    device: str | None = None,
    exact: bool = False,
    index: bool = False,
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
    exact, index
        Scan every row; or use (and build, if missing or stale) the approximate index saved
        beside the feature file (:mod:`tcdn.search_index`). By default the index is used when
        it exists or the file has :data:`~tcdn.search_index.AUTO_INDEX_ROWS` rows or more.

    Returns
    -------
    SearchResult
        The query and the answer; :meth:`SearchResult.table` prints it.
    """
    from tcdn.device import resolve_device
    from tcdn.report.montage import check_writable, save_montage
    from tcdn.search import hit, hit_frames, media_query, nearest, row_query
    from tcdn.search_index import (
        AUTO_INDEX_ROWS,
        approximate_nearest,
        index_path,
        open_features,
        open_index,
    )

    if (query is None) == (row is None):
        raise TcdnError("give one query: an image or video file, or --row N of the feature file")
    if row is not None and at is not None:
        raise TcdnError("--at applies to a video query, not to --row")
    if row is not None and checkpoint is not None:
        raise TcdnError("--checkpoint embeds an image or video query; --row needs none: drop it")
    if montage is not None:
        check_writable(Path(montage))
    if exact and index:
        raise TcdnError("--exact and --index contradict each other: give one")
    fs = open_features(features)  # memory-mapped: a query reads few of its rows
    idx = None if exact else open_index(features, fs, build=index or len(fs) >= AUTO_INDEX_ROWS)
    if row is not None:
        q = row_query(fs, row)
    else:
        assert query is not None
        q = media_query(
            Path(query),
            fs.meta,
            at=at,
            checkpoint=checkpoint,
            device=str(resolve_device(device or "auto")),
        )
    if idx is None:
        found = SearchResult(q, nearest(fs, q.vector, k, exclude=row), fs, Path(features))
    else:
        answer = approximate_nearest(fs, idx, q.vector, k, exclude=row)
        found = SearchResult(q, answer, fs, Path(features), index_path(features))
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
