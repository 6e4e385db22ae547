"""Temporal-coherence losses (SPEC §1): the math in plain functions, ``nn.Module`` wrappers on top.

Besides the paper's losses, :func:`temporal_info_nce` (TCE, Knights et al. 2020) is an option:
the quadruplets' frames ranked by a softmax against every in-batch frame of another video.

Every loss is computed per sample and averaged over the batch (``reduction="mean"``), with
Euclidean distances ``d(a, b) = ||a - b||_2`` unless stated. The options the authors' release
used, squared distances and L2-normalised embeddings, are available but off by default. The
release's hinge taken once over distances summed across the batch is a bug and is not offered.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def euclidean_distance(a: Tensor, b: Tensor, squared: bool = False) -> Tensor:
    """Row-wise distance between ``a`` and ``b`` (both ``(B, D)``) -> ``(B,)``.

    The gradient at zero distance is zero (not NaN): the square root is taken through a
    ``where`` that never differentiates ``sqrt`` at 0.
    """
    sq = (a - b).pow(2).sum(dim=-1)
    if squared:
        return sq
    positive = sq > 0
    safe = torch.where(positive, sq, torch.ones_like(sq))
    return torch.where(positive, safe.sqrt(), torch.zeros_like(sq))


def _check_pair(a: Tensor, b: Tensor, names: str) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"{names} must be (B, D) tensors of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def siamese_loss(
    a: Tensor,
    b: Tensor,
    same_video: Tensor,
    margin: float = 1.0,
    *,
    squared: bool = False,
    normalize: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """Siamese loss Ls (paper eq. 2).

    ``y = 1`` (adjacent frames of one video): ``d(a, b)``; ``y = 0`` (frames of different videos):
    ``max(0, margin - d(a, b))``.

    Parameters
    ----------
    a, b
        ``(B, D)`` embeddings of the two frames of each pair.
    same_video
        ``(B,)`` bool or 0/1: ``y``, whether the pair is a positive.
    margin
        ``δ`` (1 in the paper).
    squared
        Use ``d²`` instead of ``d`` (the authors' release).
    normalize
        L2-normalise the embeddings first (the authors' release).
    """
    _check_pair(a, b, "a and b")
    if same_video.shape != a.shape[:1]:
        raise ValueError(
            f"same_video must have shape ({a.shape[0]},), got {tuple(same_video.shape)}"
        )
    if normalize:
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    d = euclidean_distance(a, b, squared=squared)
    y = same_video.to(dtype=torch.bool)
    loss = torch.where(y, d, F.relu(margin - d))
    return _reduce(loss, reduction)


def quadruplet_loss(
    q: Tensor,
    p: Tensor,
    f: Tensor,
    o: Tensor,
    margin: float = 0.5,
    *,
    squared: bool = False,
    normalize: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """Quadruplet loss Lq (paper eq. 3): ``d(q, p) + max(0, d(q, f) - d(q, o) + margin)``.

    Parameters
    ----------
    q
        ``(B, D)`` embeddings of the query frames ``V_i[t]``.
    p
        ``(B, D)`` embeddings of the positives ``V_i[t + w]``.
    f
        ``(B, D)`` embeddings of the far frames ``V_i[t + n]`` of the same video.
    o
        ``(B, D)`` embeddings of frames of other videos.
    margin
        ``α`` (0.5 in the paper).
    """
    for name, t in (("p", p), ("f", f), ("o", o)):
        _check_pair(q, t, f"q and {name}")
    if normalize:
        q, p, f, o = (F.normalize(t, dim=-1) for t in (q, p, f, o))
    d_qp = euclidean_distance(q, p, squared)
    d_qf = euclidean_distance(q, f, squared)
    d_qo = euclidean_distance(q, o, squared)
    loss = d_qp + F.relu(d_qf - d_qo + margin)
    return _reduce(loss, reduction)


def contrastive_loss(
    a: Tensor,
    b: Tensor,
    same: Tensor,
    margin: float = 1.0,
    *,
    normalize: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """SFA-style contrastive loss (Hadsell et al. 2006): ``y d² + (1 - y) max(0, margin - d)²``.

    In the SFA baseline positives are contiguous frames and negatives non-contiguous frames of
    the same video. The loss is already in squared distances, so it has no ``squared`` option.

    Parameters
    ----------
    a, b
        ``(B, D)`` embeddings of the two frames of each pair.
    same
        ``(B,)`` bool or 0/1: ``y``, whether the frames are contiguous.
    margin
        ``m`` (1 by default; the paper does not state it).
    normalize
        L2-normalise the embeddings first.
    """
    _check_pair(a, b, "a and b")
    if same.shape != a.shape[:1]:
        raise ValueError(f"same must have shape ({a.shape[0]},), got {tuple(same.shape)}")
    if normalize:
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    d = euclidean_distance(a, b)
    y = same.to(dtype=torch.bool)
    loss = torch.where(y, d.pow(2), F.relu(margin - d).pow(2))
    return _reduce(loss, reduction)


def ranking_loss(
    q: Tensor, p: Tensor, o: Tensor, margin: float = 0.5, *, reduction: str = "mean"
) -> Tensor:
    """Ld (Wang & Gupta 2015): ``max(0, D(q, p) - D(q, o) + margin)``, ``D = 1 - cosine similarity``."""
    _check_pair(q, p, "q and p")
    _check_pair(q, o, "q and o")
    d_qp = 1.0 - F.cosine_similarity(q, p, dim=-1)
    d_qo = 1.0 - F.cosine_similarity(q, o, dim=-1)
    return _reduce(F.relu(d_qp - d_qo + margin), reduction)


def _nce_terms(
    zq: Tensor, z: Tensor, cols: tuple[int, ...], videos: Tensor, temperature: float
) -> Tensor:
    """``(len(cols), B)`` InfoNCE terms of unit queries ``zq`` ``(B, D)`` against the unit
    candidates ``z`` ``(4, B, D)`` (q, p, f, o): for each positive column ``c``, query ``i``'s
    ``-log(exp(s(zq_i, z_ci)) / (exp(s(zq_i, z_ci)) + sum_n exp(s(zq_i, n))))``, ``n`` every
    candidate of a video other than query ``i``'s, ``s`` the cosine / ``temperature``."""
    b = zq.shape[0]
    sim = zq @ z.reshape(4 * b, -1).T / temperature  # (B, 4B)
    other = videos[:b, None] != videos[None, :]
    neg = sim.masked_fill(~other, float("-inf"))
    terms = []
    for col in cols:
        pos = (zq * z[col]).sum(-1) / temperature
        logits = torch.cat([pos[:, None], neg], dim=1)
        terms.append(torch.logsumexp(logits, dim=1) - pos)
    return torch.stack(terms)


def _check_quadruplet(q: Tensor, p: Tensor, f: Tensor, o: Tensor, videos: Tensor) -> None:
    for name, t in (("p", p), ("f", f), ("o", o)):
        _check_pair(q, t, f"q and {name}")
    b = q.shape[0]
    if videos.shape != (4 * b,):
        raise ValueError(f"videos must have shape ({4 * b},), got {tuple(videos.shape)}")


def temporal_info_nce(
    q: Tensor,
    p: Tensor,
    f: Tensor,
    o: Tensor,
    videos: Tensor,
    temperature: float = 0.1,
    *,
    far_positive: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Temporal InfoNCE (TCE, Knights et al. 2020) on quadruplets.

    Similarities are cosines divided by ``temperature``. For query ``i`` and a positive ``x_i``
    (its ``p``, and with ``far_positive`` also its ``f``, each in its own softmax, as Lq ranks
    ``f`` before ``o``) the loss is ``-log(exp(s(q_i, x_i)) / (exp(s(q_i, x_i)) + sum_n
    exp(s(q_i, n))))``, ``n`` every frame of the batch (``q``, ``p``, ``f`` and ``o`` of every
    tuple) from a video other than query ``i``'s. A sample's loss is the mean over its positives.

    Parameters
    ----------
    q, p, f, o
        ``(B, D)`` embeddings of the query, positive, far and other-video frames.
    videos
        ``(4 B,)`` the video of each frame of ``cat([q, p, f, o])``: who is a negative of whom.
    temperature
        ``tau`` (0.1).
    far_positive
        Whether ``f`` is a second positive (otherwise it is only a candidate of other queries).
    """
    _check_quadruplet(q, p, f, o, videos)
    z = F.normalize(torch.stack([q, p, f, o]), dim=-1)
    cols = (1, 2) if far_positive else (1,)
    return _reduce(_nce_terms(z[0], z, cols, videos, temperature).mean(0), reduction)


def cross_stream_info_nce(
    q: Tensor,
    p: Tensor,
    f: Tensor,
    o: Tensor,
    videos: Tensor,
    temperature: float = 0.1,
    *,
    far_positive: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Cross-stream temporal InfoNCE (after CMC, Tian et al. 2019) on two-stream embeddings.

    Each ``(B, 2 D)`` embedding is two streams side by side (``[a, m]``, as
    :class:`~tcdn.models.two_stream.TwoStream` joins appearance and motion). A query frame's
    appearance half is ranked against the *motion* halves of the batch, and its motion half
    against the appearance halves: the positives are the other stream of the same frame, of its
    ``p`` and (with ``far_positive``) of its ``f``, each in its own softmax; the negatives are the
    other stream of every frame of another video, as in :func:`temporal_info_nce`. A stream can
    then only score by what the other stream of the same video also shows (for appearance: the
    pose and the scene that go with a motion, not who performs it alone). A sample's loss is the
    mean over both directions and its positives.
    """
    _check_quadruplet(q, p, f, o, videos)
    d = q.shape[-1]
    if d % 2:
        raise ValueError(f"two-stream embeddings have an even width (two halves), got {d}")
    z = torch.stack([q, p, f, o])
    halves = [F.normalize(z[..., : d // 2], dim=-1), F.normalize(z[..., d // 2 :], dim=-1)]
    cols = (0, 1, 2) if far_positive else (0, 1)
    terms = [_nce_terms(halves[s][0], halves[1 - s], cols, videos, temperature) for s in (0, 1)]
    return _reduce(torch.cat(terms).mean(0), reduction)


def _check_margin(margin: float) -> float:
    margin = float(margin)
    if not margin > 0 or margin != margin or margin == float("inf"):
        raise ValueError(f"margin must be a positive finite number, got {margin}")
    return margin


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _hinge_margins(
    kind: str, emb: tuple[Tensor, ...], margin: float, squared: bool, normalize: bool
) -> Tensor:
    """The argument of each sample's hinge ``max(0, .)``: ``(B,)``; for the pair losses every
    pair's ``margin - d`` (only the negatives' count)."""
    if normalize:
        emb = tuple(F.normalize(e, dim=-1) for e in emb)
    if kind == "quadruplet":
        q, _, f, o = emb
        return euclidean_distance(q, f, squared) - euclidean_distance(q, o, squared) + margin
    if kind == "ranking":
        q, p, o = emb
        return F.cosine_similarity(q, o, dim=-1) - F.cosine_similarity(q, p, dim=-1) + margin
    a, b = emb
    return margin - euclidean_distance(a, b, squared)


class SiameseLoss(nn.Module):
    """Ls as a module; see :func:`siamese_loss`. ``forward(a, b, same_video)``."""

    def __init__(
        self,
        margin: float = 1.0,
        *,
        squared: bool = False,
        normalize: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.margin = _check_margin(margin)
        self.squared, self.normalize = bool(squared), bool(normalize)
        self.reduction = _check_reduction(reduction)

    def forward(self, a: Tensor, b: Tensor, same_video: Tensor) -> Tensor:
        """``a``, ``b``: ``(B, D)``; ``same_video``: ``(B,)``. Returns a scalar (or ``(B,)``)."""
        return siamese_loss(
            a,
            b,
            same_video,
            self.margin,
            squared=self.squared,
            normalize=self.normalize,
            reduction=self.reduction,
        )

    def active(self, a: Tensor, b: Tensor, same_video: Tensor) -> Tensor:
        """Which hinge terms are active (``margin - d > 0``): a bool for each negative pair."""
        hinge = _hinge_margins("pair", (a, b), self.margin, self.squared, self.normalize)
        return hinge[~same_video.to(dtype=torch.bool)] > 0


class QuadrupletLoss(nn.Module):
    """Lq as a module; see :func:`quadruplet_loss`. ``forward(q, p, f, o)``."""

    def __init__(
        self,
        margin: float = 0.5,
        *,
        squared: bool = False,
        normalize: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.margin = _check_margin(margin)
        self.squared, self.normalize = bool(squared), bool(normalize)
        self.reduction = _check_reduction(reduction)

    def forward(self, q: Tensor, p: Tensor, f: Tensor, o: Tensor) -> Tensor:
        """``q, p, f, o``: ``(B, D)`` embeddings of query, positive, far and other-video frames."""
        return quadruplet_loss(
            q,
            p,
            f,
            o,
            self.margin,
            squared=self.squared,
            normalize=self.normalize,
            reduction=self.reduction,
        )

    def active(self, q: Tensor, p: Tensor, f: Tensor, o: Tensor) -> Tensor:
        """Which hinge terms are active (``d(q, f) - d(q, o) + margin > 0``): ``(B,)`` bool."""
        return (
            _hinge_margins("quadruplet", (q, p, f, o), self.margin, self.squared, self.normalize)
            > 0
        )


class ContrastiveLoss(nn.Module):
    """SFA contrastive loss as a module; see :func:`contrastive_loss`."""

    def __init__(
        self, margin: float = 1.0, *, normalize: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.margin = _check_margin(margin)
        self.normalize = bool(normalize)
        self.reduction = _check_reduction(reduction)

    def forward(self, a: Tensor, b: Tensor, same: Tensor) -> Tensor:
        """``a``, ``b``: ``(B, D)``; ``same``: ``(B,)``. Returns a scalar (or ``(B,)``)."""
        return contrastive_loss(
            a, b, same, self.margin, normalize=self.normalize, reduction=self.reduction
        )

    def active(self, a: Tensor, b: Tensor, same: Tensor) -> Tensor:
        """Which hinge terms are active (``margin - d > 0``): a bool for each negative pair."""
        hinge = _hinge_margins("pair", (a, b), self.margin, False, self.normalize)
        return hinge[~same.to(dtype=torch.bool)] > 0


class RankingLoss(nn.Module):
    """Ld as a module; see :func:`ranking_loss`."""

    def __init__(self, margin: float = 0.5, *, reduction: str = "mean") -> None:
        super().__init__()
        self.margin = _check_margin(margin)
        self.reduction = _check_reduction(reduction)

    def forward(self, q: Tensor, p: Tensor, o: Tensor) -> Tensor:
        """``q, p, o``: ``(B, D)`` embeddings of query, positive and other-video frames."""
        return ranking_loss(q, p, o, self.margin, reduction=self.reduction)

    def active(self, q: Tensor, p: Tensor, o: Tensor) -> Tensor:
        """Which hinge terms are active (``D(q, p) - D(q, o) + margin > 0``): ``(B,)`` bool."""
        return _hinge_margins("ranking", (q, p, o), self.margin, False, False) > 0


class TemporalInfoNCELoss(nn.Module):
    """Temporal InfoNCE as a module; see :func:`temporal_info_nce`.
    ``forward(q, p, f, o, videos)``. With ``cross_stream`` > 0 (two-stream embeddings only), the
    loss adds ``cross_stream`` times :func:`cross_stream_info_nce`."""

    def __init__(
        self,
        temperature: float = 0.1,
        *,
        far_positive: bool = True,
        cross_stream: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        temperature = float(temperature)
        if not 0 < temperature < float("inf"):
            raise ValueError(f"temperature must be a positive finite number, got {temperature}")
        cross_stream = float(cross_stream)
        if not 0 <= cross_stream < float("inf"):
            raise ValueError(f"cross_stream must be a finite number >= 0, got {cross_stream}")
        self.temperature, self.far_positive = temperature, bool(far_positive)
        self.cross_stream = cross_stream
        self.reduction = _check_reduction(reduction)

    def forward(self, q: Tensor, p: Tensor, f: Tensor, o: Tensor, videos: Tensor) -> Tensor:
        """``q, p, f, o``: ``(B, D)``; ``videos``: ``(4 B,)``. Returns a scalar (or ``(B,)``)."""
        tau, far, red = self.temperature, self.far_positive, self.reduction
        loss = temporal_info_nce(q, p, f, o, videos, tau, far_positive=far, reduction=red)
        if self.cross_stream:
            cross = cross_stream_info_nce(q, p, f, o, videos, tau, far_positive=far, reduction=red)
            loss = loss + self.cross_stream * cross
        return loss

    def active(self, q: Tensor, p: Tensor, f: Tensor, o: Tensor, videos: Tensor) -> Tensor:
        """The equivalent of an active hinge: for each (query, positive), whether some negative
        is at least as similar to the query as the positive is (``(B,)`` or ``(2 B,)`` bool)."""
        b = q.shape[0]
        z = F.normalize(torch.stack([q, p, f, o]), dim=-1)
        sim = z[0] @ z.reshape(4 * b, -1).T
        other = videos[:b, None] != videos[None, :]
        best = sim.masked_fill(~other, float("-inf")).max(dim=1).values
        cols = (1, 2) if self.far_positive else (1,)
        return torch.cat([best >= (z[0] * z[c]).sum(-1) for c in cols])
