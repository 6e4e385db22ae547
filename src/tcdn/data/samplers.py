"""Tuple samplers for temporal-coherence training (SPEC §2).

A sampler sees a collection only through the lengths of its videos (frames of video ``v`` are
the global rows ``offsets[v] .. offsets[v + 1] - 1``) and returns global frame indices (a
:class:`Tuples`, whatever the loss). It owns a
seeded :class:`numpy.random.Generator`, so a run is reproducible whatever loads the frames, and
its state can be saved in a checkpoint and restored.

- :class:`QuadrupletSampler` for Lq: ``(q, p, f, o) = (V_i[t], V_i[t + w], V_i[t + n], V_j[t'])``.
- :class:`PairSampler` for Ls: ``(V_i[t], V_i[t + w])`` with ``y = 1`` or ``(V_i[t], V_j[t'])`` with ``y = 0``.
- :class:`SFAPairSampler` for the SFA contrastive baseline: ``(V_i[t], V_i[t + w])`` with ``y = 1``
  or ``(V_i[t], V_i[t'])``, ``|t' - t| >= n``, with ``y = 0`` (non-contiguous frames of the same video).
- :class:`TripletSampler` for Ld: ``(V_i[t], V_i[t + w], V_j[t'])``.

In the MU view ("more unsupervised", SPEC §2) the videos are concatenated in a seeded random
order into one long stream; positives may straddle the join of two videos and negatives are any
frame farther than ``n`` (Lq, SFA) or ``w`` (Ls, Ld) from the query.

Sharding across distributed ranks (:func:`shard_rows`): every rank draws the *global* batch from
the same seeded generator and keeps its own contiguous block of rows. Ranks therefore never
share a tuple, their union is exactly the batch a single process would draw, and the sampler
state is the same on every rank (so any rank's checkpoint resumes all of them). Drawing the
whole batch costs microseconds, nothing next to a training step. No data-loader worker draws
indices, so the tuples never depend on the number of workers either.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tcdn.errors import TcdnError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tuples:
    """A batch of training tuples, as every sampler returns it.

    Attributes
    ----------
    indices
        ``(B, k)`` global frame indices, one column per member of the tuple (``q, p, f, o`` for
        Lq; the two frames of a pair; ``q, p, o`` for Ld).
    labels
        ``(B,)`` pair labels ``y`` (1: a positive pair) for the pair losses (Ls, SFA); ``None``
        for the others.
    """

    indices: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def take(self, rows: slice) -> Tuples:
        """The tuples of ``rows`` (e.g. a distributed rank's block, :func:`shard_rows`)."""
        return Tuples(self.indices[rows], None if self.labels is None else self.labels[rows])


def shard_rows(batch: int, rank: int = 0, world_size: int = 1) -> slice:
    """The rows of a global batch of ``batch`` tuples that rank ``rank`` of ``world_size`` trains on.

    Rank ``r`` takes rows ``r * b .. (r + 1) * b - 1`` with ``b = batch / world_size``: equal,
    disjoint blocks whose union is the whole batch. Equal blocks matter because data-parallel
    training averages the ranks' gradients, which equals the gradient of the global batch mean
    only when every rank holds the same number of tuples.

    Raises
    ------
    TcdnError
        If ``batch`` is not a multiple of ``world_size`` or ``rank`` is out of range.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise TcdnError(f"rank {rank} is not in 0..{world_size - 1} (world size {world_size})")
    if batch % world_size:
        raise TcdnError(
            f"batch_size={batch} tuples cannot be split evenly over {world_size} processes: "
            f"choose a batch size divisible by {world_size}"
        )
    b = batch // world_size
    return slice(rank * b, (rank + 1) * b)


def _check_offsets(
    window: int,
    far: int | None = None,
    negative_share: float | None = None,
    *,
    far_name: str = "far offset",
) -> None:
    """Reject offsets no sampler can use: ``w >= 1``, ``n > w``, a share in ``[0, 1]``."""
    if window < 1:
        raise TcdnError(f"window (w) must be >= 1, got {window}")
    if far is not None and far <= window:
        raise TcdnError(
            f"{far_name} (n) must be larger than the window (w): got n={far}, w={window}"
        )
    if negative_share is not None and not 0.0 <= negative_share <= 1.0:
        raise TcdnError(f"negative share must be in [0, 1], got {negative_share}")


def _pair_labels(batch: int, negative_share: float) -> np.ndarray:
    """``(batch,)`` pair labels, ``round(batch * share)`` of them 0 (negative), spread evenly over
    the batch, so that every block of rows a distributed rank keeps gets its share of negatives."""
    n_neg = round(batch * negative_share)
    y = np.ones(batch, dtype=np.int64)
    if n_neg:
        y[np.round(np.arange(n_neg) * (batch / n_neg)).astype(np.int64)] = 0
    return y


class _TupleSampler:
    """Shared machinery: video lengths, usable videos, the generator and its state."""

    #: the fewest frames a video needs to give a tuple; set by subclasses
    min_length: int = 2
    #: whether a tuple needs a frame of another video (False for SFA, whose negatives are in-video)
    _needs_other_video: bool = True

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        *,
        reach: int,
        seed: int = 0,
        mu: bool = False,
        names: Sequence[str] | None = None,
    ) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1 or len(self.lengths) == 0:
            raise TcdnError("a sampler needs at least one video")
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.names = (
            list(names) if names is not None else [f"video {i}" for i in range(len(self.lengths))]
        )
        self.reach = int(reach)
        self.mu = bool(mu)
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self.n_frames = int(self.offsets[-1])

        if self.mu:
            order = np.random.default_rng([self.seed, 1]).permutation(len(self.lengths))
            self.stream = np.concatenate(
                [np.arange(self.offsets[v], self.offsets[v + 1]) for v in order]
            )
            if self.n_frames < 2 * self.reach + 2:
                raise TcdnError(
                    f"the MU stream has {self.n_frames} frames, too few for tuples reaching {self.reach} frames "
                    "ahead with a negative outside that window: add videos or lower --far"
                )
            return

        short = np.flatnonzero(self.lengths < self.min_length)
        for v in short:
            log.warning(
                "skipping %s: %d frame(s), fewer than the %d a tuple needs",
                self.names[v],
                self.lengths[v],
                self.min_length,
            )
        self.usable = np.flatnonzero(self.lengths >= self.min_length)
        if len(self.usable) == 0:
            raise TcdnError(
                f"no video has the {self.min_length} frames a tuple needs "
                f"(longest: {int(self.lengths.max())} frames): use longer videos"
            )
        if self._needs_other_video and len(self.usable) < 2:
            only = self.names[int(self.usable[0])]
            skipped = f" ({len(short)} shorter one(s) skipped)" if len(short) else ""
            raise TcdnError(
                f"the collection holds one video long enough for a tuple ({only}){skipped}, so no "
                "negative (a frame of another video) exists: add videos, or pass --mu to treat the "
                "video as one untrimmed stream"
            )
        # negatives come from the usable videos only: a skipped video is never drawn from
        self.usable_offsets = np.concatenate([[0], np.cumsum(self.lengths[self.usable])])
        self.compact = np.full(len(self.lengths), -1, dtype=np.int64)
        self.compact[self.usable] = np.arange(len(self.usable))
        # Reach of each video: clamp to what the video has (SPEC §2).
        self.video_reach = np.minimum(self.reach, self.lengths - 1)
        clamped = np.flatnonzero(
            (self.video_reach < self.reach) & (self.lengths >= self.min_length)
        )
        self.n_clamped = len(clamped)
        if self.n_clamped:
            log.warning(
                "%d of %d videos are shorter than %d frames: their far frame is clamped to the last frame "
                "(e.g. %s, %d frames)",
                self.n_clamped,
                len(self.lengths),
                self.reach + 1,
                self.names[clamped[0]],
                self.lengths[clamped[0]],
            )

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["seed"]) != self.seed:
            raise TcdnError(
                f"sampler state was saved with seed {state['seed']}, this run uses {self.seed}"
            )
        self.rng.bit_generator.state = state["bit_generator"]

    # -- helpers -----------------------------------------------------------------------------
    def _queries(self, batch: int, reach: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Pick ``batch`` query frames: a usable video uniformly, then a start ``t`` with ``t + reach`` inside it.

        Returns the global index of the query and the video of each query.
        """
        videos = self.usable[self.rng.integers(0, len(self.usable), size=batch)]
        span = self.lengths[videos] - (reach[videos] if isinstance(reach, np.ndarray) else reach)
        t = (self.rng.random(batch) * span).astype(np.int64)
        return self.offsets[videos] + t, videos

    def _negatives_other_video(self, videos: np.ndarray) -> np.ndarray:
        """A frame drawn uniformly over all frames of the collection outside each query's video."""
        lo, n = self.usable_offsets[self.compact[videos]], self.lengths[videos]
        total = int(self.usable_offsets[-1])
        r = (self.rng.random(len(videos)) * (total - n)).astype(np.int64)
        pos = np.where(r < lo, r, r + n)  # among the usable videos' frames, end to end
        k = np.searchsorted(self.usable_offsets, pos, side="right") - 1
        return self.offsets[self.usable[k]] + (pos - self.usable_offsets[k])

    def _mu_queries(self, batch: int, reach: int) -> np.ndarray:
        """Positions in the MU stream of ``batch`` queries with ``pos + reach`` inside the stream."""
        return self.rng.integers(0, self.n_frames - reach, size=batch)

    def _mu_negatives(self, pos: np.ndarray, window: int) -> np.ndarray:
        """Stream positions uniformly outside ``[pos - window, pos + window]``."""
        lo = np.maximum(pos - window, 0)
        hi = np.minimum(pos + window, self.n_frames - 1)
        excluded = hi - lo + 1
        r = (self.rng.random(len(pos)) * (self.n_frames - excluded)).astype(np.int64)
        return np.where(r < lo, r, r + excluded)


class QuadrupletSampler(_TupleSampler):
    """Quadruplets ``(q, p, f, o)`` for the Quadruplet loss Lq.

    ``q = V_i[t]``, ``p = V_i[t + w]``, ``f = V_i[t + n]`` (``n`` clamped to the video's length),
    ``o`` = a frame of another video drawn uniformly over the collection.

    Parameters
    ----------
    lengths
        Number of frames of each video.
    window
        ``w``, the offset of the positive (1 in the paper).
    far
        ``n``, the offset of the far frame (20 in the paper). Must exceed ``window``.
    seed
        Seed of the sampler's own generator.
    mu
        Sample from the MU stream instead of from separate videos.
    names
        Video names, for messages.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        *,
        window: int = 1,
        far: int = 20,
        seed: int = 0,
        mu: bool = False,
        names: Sequence[str] | None = None,
    ) -> None:
        _check_offsets(window, far)
        self.window = int(window)
        self.far = int(far)
        # q, p = q + w and a far frame at least one past p: the shortest usable video.
        self.min_length = self.window + 2
        super().__init__(lengths, reach=far, seed=seed, mu=mu, names=names)

    def sample(self, batch: int) -> Tuples:
        """``batch`` quadruplets: ``(batch, 4)`` global frame indices, columns ``q, p, f, o``."""
        if self.mu:
            pos = self._mu_queries(batch, self.far)
            neg = self._mu_negatives(pos, self.far)
            cols = [pos, pos + self.window, pos + self.far, neg]
            return Tuples(np.stack([self.stream[c] for c in cols], axis=1))
        q, videos = self._queries(batch, self.video_reach)
        far = self.video_reach[videos]
        return Tuples(
            np.stack([q, q + self.window, q + far, self._negatives_other_video(videos)], axis=1)
        )


class PairSampler(_TupleSampler):
    """Pairs for the Siamese loss Ls: ``(V_i[t], V_i[t + w])`` with ``y = 1``, or ``(V_i[t], V_j[t'])`` with ``y = 0``.

    Parameters
    ----------
    negative_share
        Fraction of the pairs in a batch that are negatives (SPEC §2: 0.5 by default).
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        *,
        window: int = 1,
        negative_share: float = 0.5,
        seed: int = 0,
        mu: bool = False,
        names: Sequence[str] | None = None,
    ) -> None:
        _check_offsets(window, negative_share=negative_share)
        self.window = int(window)
        self.negative_share = float(negative_share)
        self.min_length = self.window + 1
        super().__init__(lengths, reach=window, seed=seed, mu=mu, names=names)

    def sample(self, batch: int) -> Tuples:
        """``batch`` pairs: ``(batch, 2)`` global frame indices and ``(batch,)`` labels ``y``
        (1 = same video, adjacent)."""
        y = _pair_labels(batch, self.negative_share)
        if self.mu:
            pos = self._mu_queries(batch, self.window)
            other = np.where(y == 1, pos + self.window, self._mu_negatives(pos, self.window))
            return Tuples(np.stack([self.stream[pos], self.stream[other]], axis=1), y)
        q, videos = self._queries(batch, self.window)
        other = np.where(y == 1, q + self.window, self._negatives_other_video(videos))
        return Tuples(np.stack([q, other], axis=1), y)


class SFAPairSampler(_TupleSampler):
    """Pairs for the SFA contrastive baseline (SPEC §1; Mobahi et al. 2009): both frames of one video.

    ``y = 1``: contiguous frames ``(V_i[t], V_i[t + w])``; ``y = 0``: non-contiguous frames
    ``(V_i[t], V_i[t'])`` with ``|t' - t| >= n``. ``n`` is clamped to what a short video has
    (``L - 1``, reported like the Lq far frame); a negative pair is drawn by picking a direction
    (ahead or behind) with equal chance, a query with a partner that far in that direction
    uniformly, then the partner uniformly among those.

    Parameters
    ----------
    lengths
        Number of frames of each video.
    window
        ``w``, the offset of the positive (1).
    far
        ``n``, the least distance between the two frames of a negative pair (20). Must exceed ``window``.
    negative_share
        Fraction of negative pairs in a batch (0.5).
    seed, mu, names
        As for :class:`QuadrupletSampler`. In the MU view a negative is any stream position at least
        ``n`` away from the query, whichever video it comes from.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        *,
        window: int = 1,
        far: int = 20,
        negative_share: float = 0.5,
        seed: int = 0,
        mu: bool = False,
        names: Sequence[str] | None = None,
    ) -> None:
        _check_offsets(window, far, negative_share, far_name="negative distance")
        self.window = int(window)
        self.far = int(far)
        self.negative_share = float(negative_share)
        # a positive (t, t + w) and a negative at distance > w: at least w + 2 frames
        self.min_length = self.window + 2
        self._needs_other_video = False
        super().__init__(lengths, reach=far, seed=seed, mu=mu, names=names)

    def sample(self, batch: int) -> Tuples:
        """``batch`` pairs: ``(batch, 2)`` global frame indices and ``(batch,)`` labels ``y``
        (1 = contiguous)."""
        y = _pair_labels(batch, self.negative_share)
        if self.mu:
            pos = self._mu_queries(batch, self.window)
            neg = self._mu_negatives(pos, self.far - 1)  # outside [pos - n + 1, pos + n - 1]
            other = np.where(y == 1, pos + self.window, neg)
            return Tuples(np.stack([self.stream[pos], self.stream[other]], axis=1), y)
        q, videos = self._queries(batch, self.window)
        # Negatives: redraw query and partner inside the query's video.
        length, reach = self.lengths[videos], self.video_reach[videos]
        span = length - reach  # queries with a partner >= reach ahead (or behind): span of them
        ahead = self.rng.random(batch) < 0.5
        u = (self.rng.random(batch) * span).astype(np.int64)
        t = np.where(ahead, u, reach + u)
        room = np.where(ahead, length - (t + reach), t - reach + 1)  # partners in that direction
        v = (self.rng.random(batch) * room).astype(np.int64)
        t_other = np.where(ahead, t + reach + v, v)
        start = self.offsets[videos]
        first = np.where(y == 1, q, start + t)
        other = np.where(y == 1, q + self.window, start + t_other)
        return Tuples(np.stack([first, other], axis=1), y)


class TripletSampler(_TupleSampler):
    """Triplets ``(q, p, o)`` for the ranking loss Ld (Wang & Gupta 2015).

    ``q = V_i[t]``, ``p = V_i[t + w]``, ``o`` = a frame of another video drawn uniformly over the
    collection. In the MU view ``o`` is any stream position farther than ``w`` from the query.

    Parameters are those of :class:`PairSampler` without ``negative_share``.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        *,
        window: int = 1,
        seed: int = 0,
        mu: bool = False,
        names: Sequence[str] | None = None,
    ) -> None:
        _check_offsets(window)
        self.window = int(window)
        self.min_length = self.window + 1
        super().__init__(lengths, reach=window, seed=seed, mu=mu, names=names)

    def sample(self, batch: int) -> Tuples:
        """``batch`` triplets: ``(batch, 3)`` global frame indices, columns ``q, p, o``."""
        if self.mu:
            pos = self._mu_queries(batch, self.window)
            neg = self._mu_negatives(pos, self.window)
            return Tuples(np.stack([self.stream[c] for c in (pos, pos + self.window, neg)], axis=1))
        q, videos = self._queries(batch, self.window)
        return Tuples(np.stack([q, q + self.window, self._negatives_other_video(videos)], axis=1))
