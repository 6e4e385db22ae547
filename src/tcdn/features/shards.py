"""Feature extraction shared by the processes of a ``torchrun`` job (gloo on CPU, NCCL on GPU).

``torchrun --nproc_per_node=P -m tcdn features VIDEOS --checkpoint R --out F.npz`` runs
:func:`sharded_frame_features` in every process (a *rank*):

1. **Plan.** Every rank lists the collection's videos and cuts the list into ``P`` contiguous
   shares of about equal frame counts (read from each file's header, :func:`estimated_frames`).
   A frame store is cut by rows instead: its frames need no decoding.
2. **Decode.** Each rank decodes only its share. The ranks then exchange their row counts, which
   places every rank's rows in the order one process would have them.
3. **Embed.** The rows are put through the network in the batches of one process: batch ``j``
   is rows ``[j*B, (j+1)*B)`` of the whole collection (``B`` =
   :data:`~tcdn.features.extract.BATCH_SIZE`), embedded by the rank that holds its first row,
   which receives the batch's other rows (and, for motion input, their successors) from the
   next ranks. Same frames in the same batches: the same bits as one process.
4. **Shards.** Each rank writes its features and its rows' index to
   ``.F.npz.shards/RUN-rankRofP.npz`` beside the output, atomically. ``RUN`` is a digest of the
   plan (collection, checkpoint, options, cuts) and a number rank 0 draws for this run, so a
   shard left by a killed or earlier run is never taken for this run's: it is recomputed.
5. **Merge.** Rank 0 alone checks every shard (this run, its rank, its rows, the zip's CRC-32s)
   and joins them into the feature set one process computes; the caller writes the one file.
   Other ranks never touch the output. Rank 0 then removes the shard files (only files with a
   shard's name, in the shard folder).

Sources that need every frame at once (``raw_pixels``'s PCA, ``random_init`` without a
checkpoint, whose input mean is taken over all frames) are computed by rank 0 alone.

Several machines: the same command on each, with ``--nnodes``, ``--node-rank`` and a rendezvous
(``--rdzv-backend=c10d --rdzv-endpoint=HOST:PORT``); the collection and ``--out``'s folder must
be visible to every machine at the same path (shards are merged through it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.features.extract import BATCH_SIZE, FrameFeaturizer
from tcdn.features.featureset import FeatureSet
from tcdn.features.npzfile import write_npz
from tcdn.features.shardplan import (
    Joined,
    align_up,
    estimated_frames,
    owned_rows,
    split_by_weight,
)
from tcdn.outputs import atomic_writer

log = logging.getLogger(__name__)

SHARD_FORMAT = "tcdn-feature-shard-1"
_SHARD_NAME = re.compile(r"^[0-9a-f]{16}-rank\d+of\d+\.npz$")


@dataclass
class Extracted:
    """What rank 0 gets back: the merged feature set, the videos skipped, how many were read;
    with :func:`sharded_jobs`, every job's feature set."""

    features: FeatureSet
    skipped: list[str]
    n_videos: int
    jobs: dict[tuple[str, int], FeatureSet] = field(default_factory=dict)


def world_size() -> int:
    """The number of processes of the ``torchrun`` job this process belongs to (1 outside one)."""
    from tcdn.training.distributed import env_int

    return env_int("WORLD_SIZE", 1)


def shard_folder(out: str | Path) -> Path:
    """Where the shards of the feature file ``out`` are written: ``.NAME.shards`` beside it."""
    out = Path(out)
    return out.with_name(f".{out.name}.shards")


# -- the job ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShardOptions:
    """What a rank needs to compute its share, besides the checkpoint."""

    size: int
    labels_csv: Path | None = None
    max_frames: int | None = None
    skip_bad: bool = False
    stride: int = 1
    max_per_video: int | None = None
    layer: str | None = None
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    dtype: str = "float32"
    norm: str | None = None  # the networks' features as the layer gives them, or l2

    def open(self, collection: str | Path, progress: bool | None = None) -> FrameSet:
        """The collection's frames read as these options say (``progress``: else :attr:`progress`)."""
        from tcdn.data.load import open_collection

        return open_collection(
            collection,
            self.size,
            labels_csv=self.labels_csv,
            max_frames=self.max_frames,
            skip_bad=self.skip_bad,
            progress=self.progress if progress is None else progress,
        )


@dataclass
class _Share:
    """One rank's part of the collection: its frames, the rows of them it holds, what it skipped."""

    featurizer: FrameFeaturizer
    n_rows: int
    skipped: list[str]
    n_videos: int
    names: list[str]  # every video of the collection (a store: its videos), for the plan digest
    store: bool


def sharded_frame_features(
    collection: str | Path,
    source: str,
    checkpoint: dict[str, Any] | None,
    out: str | Path,
    options: ShardOptions,
) -> Extracted | None:
    """Features of ``source`` for the frames of ``collection``, computed by every process of the
    ``torchrun`` job that runs this (see the module's text); the same feature set as
    :func:`~tcdn.features.extract.frame_features` in one process, in the same row order, bit for
    bit. Rank 0 gets it back (the caller writes ``out``); the other ranks get ``None``."""
    from tcdn.training.distributed import env_int

    rank = env_int("RANK", 0)
    if source == "raw_pixels" or checkpoint is None:
        if rank != 0:
            log.info(
                "rank %d: %s features need every frame at once: rank 0 computes them", rank, source
            )
            return None
        return _single(collection, source, checkpoint, options)
    return sharded_jobs(collection, [(source, 0)], checkpoint, out, options)


Job = tuple[str, int]  # a feature source and its repeat (random_init: which random network)


def sharded_jobs(
    collection: str | Path,
    jobs: Sequence[Job],
    checkpoint: dict[str, Any],
    out: str | Path,
    options: ShardOptions,
) -> Extracted | None:
    """Like :func:`sharded_frame_features`, for several network sources at once (e.g. ``trained``
    and every ``random_init`` repeat of a discovery): the frames are decoded once, each job is
    embedded, sharded and merged in turn. Rank 0 gets every job's feature set in
    :attr:`Extracted.jobs` (the first also as :attr:`Extracted.features`); the others ``None``."""
    folder = shard_folder(out)
    done: dict[Job, FeatureSet] = {}
    skipped: list[str] = []
    n_videos = 0
    with _process_group(options.device) as ddp:
        cuts = _video_cuts(collection, options, ddp)
        share = _guarded(ddp, _local_share, collection, checkpoint, options, ddp, cuts)
        assert share is not None
        counts = [int(c) for c in _gather(ddp, share.n_rows)]
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(int).tolist()
        run = _run_id(ddp, share, checkpoint, jobs, options, starts)
        _guarded(ddp, _prepare_folder, folder)
        lent = _gather(ddp, lent_rows(share.featurizer, starts, ddp.rank))
        borrow_rows(share.featurizer, starts, ddp.rank, lent)
        a, b = owned_rows(starts, ddp.rank, BATCH_SIZE)
        log.info("rank %d of %d: embedding rows %d-%d of %d", ddp.rank, ddp.world, a, b, starts[-1])
        for source, repeat in jobs:
            job = hashlib.sha256(f"{run}:{source}:{repeat}".encode()).hexdigest()[:16]
            _guarded(ddp, _write_shard, folder, job, share, (source, repeat), starts, ddp)
            if ddp.main:  # every shard of the job is written: the gather above waited for them
                try:
                    merged, skipped, n_videos = merge_shards(
                        folder, job, ddp.world, starts, np.dtype(options.dtype)
                    )
                finally:
                    remove_shards(folder, job)
                merged.meta = share.featurizer.meta(source, repeat)
                done[(source, repeat)] = merged
        if not ddp.main:
            return None
    remove_shards(folder)  # and any left by a killed run
    return Extracted(done[jobs[0]], skipped, n_videos, done)


#: how long a rank waits in a collective for the others: a share's extraction can take hours at
#: scale, and the shares' frame counts are estimates (torch's default is 30 minutes)
COLLECTIVE_TIMEOUT = timedelta(hours=24)


@contextmanager
def _process_group(device: str) -> Iterator[Any]:
    """Join the process group torchrun describes (NCCL on GPUs, gloo on CPUs), with
    :data:`COLLECTIVE_TIMEOUT`; a :class:`~tcdn.training.distributed.Dist` for this process."""
    import torch
    import torch.distributed as dist

    from tcdn.training.distributed import Dist, env_int

    owns = not dist.is_initialized()
    if owns:
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(env_int("LOCAL_RANK", 0))
        dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)
    try:
        yield Dist(dist.get_rank(), dist.get_world_size(), env_int("LOCAL_RANK", 0), owns)
    finally:
        if owns and dist.is_initialized():
            dist.destroy_process_group()


def _single(
    collection: str | Path,
    source: str,
    checkpoint: dict[str, Any] | None,
    options: ShardOptions,
) -> Extracted:
    """Rank 0 alone, as one process would: for the sources that need every frame at once."""
    from tcdn.features.extract import frame_features

    frames = options.open(collection)
    feats = frame_features(
        frames,
        source,
        checkpoint,
        rows=frames.rows(options.stride, options.max_per_video),
        layer=options.layer,
        norm=options.norm,
        seed=options.seed,
        device=options.device,
        progress=options.progress,
        dtype=np.dtype(options.dtype),
    )
    return Extracted(feats, list(frames.skipped), len(frames.videos))


def _gather(ddp: Any, value: Any) -> list[Any]:
    """Every rank's ``value`` (collective: every rank calls it)."""
    if ddp.world == 1:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * ddp.world
    dist.all_gather_object(out, value)
    return out


def _guarded(ddp: Any, step: Any, *args: Any) -> Any:
    """``step()`` on every rank; when it fails on any, every rank stops with the first rank's
    error (instead of the others waiting for it in the next collective)."""
    result, error = None, None
    try:
        result = step(*args)
    except TcdnError as exc:
        error = str(exc)
    errors = _gather(ddp, error)
    for r, e in enumerate(errors):
        if e:
            raise TcdnError(e if ddp.world == 1 else f"rank {r} of {ddp.world}: {e}")
    return result


def _video_cuts(collection: str | Path, options: ShardOptions, ddp: Any) -> list[int] | None:
    """Where a folder's list of videos is cut into the ranks' shares (``None`` for a store): each
    rank reads the headers of every ``world``-th video, and they pool the frame counts."""
    from tcdn.data.collection import find_videos
    from tcdn.data.store import is_store

    if is_store(collection):
        return None
    entries = _guarded(ddp, find_videos, collection, options.labels_csv)
    probed = _gather(
        ddp, [estimated_frames(e, options.max_frames) for e in entries[ddp.rank :: ddp.world]]
    )
    weights = [0.0] * len(entries)
    for q, counts in enumerate(probed):
        weights[q :: ddp.world] = counts
    return _guarded(ddp, split_by_weight, weights, ddp.world)


def _local_share(
    collection: str | Path,
    checkpoint: dict[str, Any],
    options: ShardOptions,
    ddp: Any,
    cuts: list[int] | None = None,
) -> _Share:
    """Decode this rank's share of a folder of videos (whole videos, about equal frame counts),
    or take its rows of a frame store (cut on batch boundaries). ``cuts``: the videos' cut
    points, if the ranks worked them out together (:func:`_video_cuts`)."""
    from tcdn.data.collection import find_videos
    from tcdn.data.load import load_frames
    from tcdn.data.store import is_store

    r, world = ddp.rank, ddp.world
    shown = options.progress and ddp.main
    if is_store(collection):
        frames = options.open(collection, shown)
        rows = frames.rows(options.stride, options.max_per_video)
        n = len(rows)
        cuts = [min(n, align_up(n * q // world, BATCH_SIZE)) for q in range(world + 1)]
        mine = rows[cuts[r] : cuts[r + 1]]
        names = [v.name for v in frames.videos]
        skipped, n_videos = (list(frames.skipped), len(names)) if ddp.main else ([], 0)
    else:
        entries = find_videos(collection, options.labels_csv)
        if cuts is None:
            cuts = split_by_weight(
                [estimated_frames(e, options.max_frames) for e in entries], world
            )
        frames = load_frames(
            collection,
            size=options.size,
            labels_csv=options.labels_csv,
            max_frames=options.max_frames,
            skip_bad=options.skip_bad,
            progress=shown,
            videos=entries[cuts[r] : cuts[r + 1]],
        )
        mine = frames.rows(options.stride, options.max_per_video)
        names = [e.name for e in entries]
        skipped, n_videos = list(frames.skipped), len(frames.videos)
    featurizer = FrameFeaturizer(
        frames,
        mine,
        checkpoint,
        layer=options.layer,
        norm=options.norm,
        seed=options.seed,
        device=options.device,
        progress=shown,
        dtype=np.dtype(options.dtype),
    )
    featurizer.batch_size = BATCH_SIZE
    return _Share(featurizer, len(mine), skipped, n_videos, names, is_store(collection))


def _run_id(
    ddp: Any,
    share: _Share,
    checkpoint: dict[str, Any],
    jobs: Sequence[tuple[str, int]],
    options: ShardOptions,
    starts: list[int],
) -> str:
    """This run's name: a digest of the plan every rank must share (checked) and a number rank 0
    draws, so that no shard of another run, killed or finished, is ever taken for this one's."""
    ckpt_path = checkpoint.get("path")
    try:
        stat = os.stat(ckpt_path) if ckpt_path else None
        ckpt = [str(ckpt_path), stat.st_size if stat else None, stat.st_mtime_ns if stat else None]
    except OSError:
        ckpt = [str(ckpt_path), None, None]
    plan = {
        "format": SHARD_FORMAT,
        "videos": hashlib.sha256("\n".join(share.names).encode()).hexdigest(),
        "checkpoint": ckpt,
        "jobs": [list(j) for j in jobs],
        "options": {k: str(v) for k, v in vars(options).items() if k not in ("progress",)},
        "world": ddp.world,
        "batch": BATCH_SIZE,
        "starts": starts,
    }
    digest = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()
    digests = _gather(ddp, digest)
    if len(set(digests)) > 1:
        raise TcdnError(
            "the processes of this torchrun job do not agree on the job (videos, checkpoint or "
            "options differ between them): start every process with the same command, on the "
            "same files"
        )
    nonce = _gather(ddp, os.urandom(8).hex())[0]
    return hashlib.sha256(f"{digest}:{nonce}".encode()).hexdigest()[:16]


def shard_name(run: str, rank: int, world: int) -> str:
    return f"{run}-rank{rank}of{world}.npz"


def _prepare_folder(folder: Path) -> None:
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise TcdnError(
            f"{folder} (where the shards of a sharded extraction go) is a link or a file: "
            "remove it, or write --out elsewhere"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TcdnError(f"cannot make the shard folder {folder}: {exc}") from exc


def _tail(rows: Any, skip: int) -> Any:
    """``rows[skip:]``, still lazy for a store's frames."""
    from tcdn.data.frameset import FrameRows

    if isinstance(rows, FrameRows):
        return FrameRows(rows.frames, rows.rows[skip:])
    return rows[skip:]


Head = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


def lent_rows(fz: FrameFeaturizer, starts: list[int], rank: int) -> Head:
    """The first rows ``rank`` holds that fall in an earlier rank's last batch (frames,
    successors for motion input, signs), which it lends to that rank."""
    n_r = starts[rank + 1] - starts[rank]
    skip = min(n_r, owned_rows(starts, rank, BATCH_SIZE)[0] - starts[rank])
    return (
        np.asarray(fz.x[0:skip]),
        None if fz.x_next is None else np.asarray(fz.x_next[0:skip]),
        None if fz.sign is None else fz.sign[:skip],
    )


def borrow_rows(fz: FrameFeaturizer, starts: list[int], rank: int, lent: Sequence[Head]) -> None:
    """Point ``fz`` at the rows ``rank`` embeds: its own less those it lends, plus the rows
    ``lent`` by the next ranks (every rank's :func:`lent_rows`) that complete its last batch."""
    n_r = starts[rank + 1] - starts[rank]
    a, b = owned_rows(starts, rank, BATCH_SIZE)
    skip = min(n_r, a - starts[rank])
    lenders = [q for q in range(rank + 1, len(starts) - 1) if a < b and starts[q] < b]
    if skip == 0 and not lenders:
        return
    fz.x = Joined([_tail(fz.x, skip)] + [lent[q][0] for q in lenders])
    if fz.x_next is not None:
        fz.x_next = Joined([_tail(fz.x_next, skip)] + [lent[q][1] for q in lenders])
    if fz.sign is not None:
        fz.sign = np.concatenate([fz.sign[skip:]] + [lent[q][2] for q in lenders])


def _write_shard(
    folder: Path, run: str, share: _Share, job: tuple[str, int], starts: list[int], ddp: Any
) -> None:
    """Embed this rank's rows for ``job`` (source, repeat) and write its shard: its features and
    the index of the rows it holds."""
    features = share.featurizer.features(*job)
    index = share.featurizer.index
    a, b = owned_rows(starts, ddp.rank, BATCH_SIZE)
    info = {
        "format": SHARD_FORMAT,
        "run": run,
        "rank": ddp.rank,
        "world": ddp.world,
        "rows": [a, b],
        "held": [starts[ddp.rank], starts[ddp.rank + 1]],
        "skipped": share.skipped,
        "n_videos": share.n_videos,
    }
    with atomic_writer(folder / shard_name(run, ddp.rank, ddp.world)) as fh:
        write_npz(
            fh,
            features=features,
            video=index.video,
            frame=index.frame,
            label=index.label,
            time=index.seconds,
            shard=np.array(json.dumps(info)),
        )


_INDEX = ("video", "frame", "label", "time")


def merge_shards(
    folder: Path, run: str, world: int, starts: list[int], dtype: np.dtype
) -> tuple[FeatureSet, list[str], int]:
    """Join the shards of the run ``run`` into one feature set (no ``meta``), after checking that
    each is this run's, of its rank, with the rows the plan gives it; with the videos skipped
    and the number of videos read."""
    feats: list[np.ndarray] = []
    cols: dict[str, list[np.ndarray]] = {k: [] for k in _INDEX}
    skipped: list[str] = []
    n_videos = 0
    for q in range(world):
        path = folder / shard_name(run, q, world)
        a, b = owned_rows(starts, q, BATCH_SIZE)
        held = starts[q + 1] - starts[q]
        if path.is_symlink() or not path.is_file():
            raise TcdnError(
                f"the shard of rank {q} ({path}) is missing: that process stopped before writing "
                "it; run the command again (every shard is computed again)"
            )
        try:
            with np.load(path, allow_pickle=False) as npz:
                info = json.loads(str(npz["shard"]))
                expect = {"format": SHARD_FORMAT, "run": run, "rank": q, "world": world}
                expect |= {"rows": [a, b], "held": [starts[q], starts[q + 1]]}
                wrong = sorted(k for k, v in expect.items() if info.get(k) != v)
                if wrong:
                    raise TcdnError(f"its {', '.join(wrong)} are not this run's")
                f = npz["features"]
                if b > a:
                    if (
                        f.shape[0] != b - a
                        or f.dtype != dtype
                        or (feats and f.shape[1:] != feats[0].shape[1:])
                    ):
                        raise TcdnError(
                            f"it holds {f.shape} {f.dtype} features, not {b - a} rows of {dtype}"
                        )
                    feats.append(f)
                for k in _INDEX:
                    col = npz[k]
                    if len(col) != held:
                        raise TcdnError(f"its '{k}' has {len(col)} rows, not {held}")
                    cols[k].append(col)
        except TcdnError as exc:
            raise TcdnError(
                f"the shard {path} cannot be used: {exc}; run the command again"
            ) from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise TcdnError(f"the shard {path} is damaged ({exc}); run the command again") from exc
        skipped += [str(v) for v in info.get("skipped", [])]
        n_videos += int(info.get("n_videos", 0))
    features = np.concatenate(feats) if feats else np.zeros((0, 0), dtype)
    video, frame, label, time = (np.concatenate(cols[k]) for k in _INDEX)
    return FeatureSet(features, video, frame, label, time=time), skipped, n_videos


def remove_shards(folder: Path, run: str | None = None) -> None:
    """Remove the shard files of ``run`` (by their names; default: every shard file, then the
    folder if that leaves it empty) from the shard folder; nothing else is touched."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for p in folder.iterdir():
        name = p.name.removeprefix(".").removesuffix(".partial")
        if not _SHARD_NAME.match(name) or (run is not None and not name.startswith(f"{run}-")):
            continue
        if p.is_file() or p.is_symlink():
            p.unlink(missing_ok=True)
    if run is None:
        try:
            folder.rmdir()
        except OSError:
            pass  # something else is in it: left alone
