"""``tcdn discover`` as a function (:func:`discover`): from the paths a user names (a
collection, a feature file or a feature array, a checkpoint) to the discovery and, with ``out``,
``results.json``, ``clusters.csv``, ``videos.csv`` and the report. It writes the report, so it
lives after :mod:`tcdn.report`; the in-memory steps it calls are
:mod:`tcdn.discovery.pipeline`'s.

The other commands' flows live in the room of their work: :func:`tcdn.features.write.write_features`
(``tcdn features``), :func:`tcdn.search.search_features` (``tcdn search``) and
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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet

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
        Called with the discovery once ``out``'s files are written, before the report (the
        command prints the table then).

    Returns
    -------
    Discovery
        The scores (``results``), the first repeat's clusters, the rows clustered.
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
