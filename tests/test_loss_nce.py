"""Temporal InfoNCE (``loss: nce``) against a slow, obvious reference: a loop over queries and
candidates on Python floats, sharing no code with :mod:`tcdn.losses`."""

from __future__ import annotations

import math

import pytest
import torch

from tcdn.losses import TemporalInfoNCELoss, cross_stream_info_nce, temporal_info_nce


def _unit(x: list[float]) -> list[float]:
    n = max(math.sqrt(sum(v * v for v in x)), 1e-12)
    return [v / n for v in x]


def _cos(x: list[float], y: list[float]) -> float:
    return sum(a * b for a, b in zip(_unit(x), _unit(y), strict=True))


def naive_nce(q, p, f, o, videos, tau, far_positive) -> list[float]:
    """Per-query loss: for each positive, -log(exp(s+) / (exp(s+) + sum over other-video frames))."""
    tuples = [t.tolist() for t in (q, p, f, o)]
    frames = [row for member in tuples for row in member]  # column-major: all q, all p, ...
    vids = [int(v) for v in videos]
    out = []
    for i, query in enumerate(tuples[0]):
        terms = []
        for pos in [tuples[1][i]] + ([tuples[2][i]] if far_positive else []):
            s_pos = _cos(query, pos) / tau
            denom = math.exp(s_pos)
            for j, cand in enumerate(frames):
                if vids[j] != vids[i]:
                    denom += math.exp(_cos(query, cand) / tau)
            terms.append(-(s_pos - math.log(denom)))
        out.append(sum(terms) / len(terms))
    return out


def _batch(b: int, d: int, seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q, p, f, o = torch.randn(4, b, d, generator=g, dtype=dtype)
    own = torch.arange(b) % 3  # several tuples share a video: not every frame is a negative
    other = (own + 1 + torch.randint(0, 2, (b,), generator=g)) % 4
    videos = torch.cat([own, own, own, other])
    return q, p, f, o, videos


@pytest.mark.parametrize("b", [1, 3, 9])
@pytest.mark.parametrize("d", [2, 16])
@pytest.mark.parametrize("tau", [0.1, 1.0])
@pytest.mark.parametrize("far_positive", [True, False])
def test_nce_matches_naive(b: int, d: int, tau: float, far_positive: bool) -> None:
    q, p, f, o, videos = _batch(b, d, seed=b * 100 + d)
    got = temporal_info_nce(q, p, f, o, videos, tau, far_positive=far_positive, reduction="none")
    want = naive_nce(q, p, f, o, videos, tau, far_positive)
    assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-9)
    mean = temporal_info_nce(q, p, f, o, videos, tau, far_positive=far_positive)
    assert float(mean) == pytest.approx(sum(want) / len(want), rel=1e-9)


def test_nce_gradients_match_the_naive_reference_and_gradcheck() -> None:
    q, p, f, o, videos = _batch(5, 6, seed=3)
    leaves = [t.clone().requires_grad_(True) for t in (q, p, f, o)]
    torch.autograd.gradcheck(
        lambda a, b, c, e: temporal_info_nce(a, b, c, e, videos, 0.2), tuple(leaves)
    )
    loss = temporal_info_nce(*leaves, videos, 0.2)
    loss.backward()
    # central differences of the naive reference on a few coordinates
    eps = 1e-6
    for member, (i, k) in [(0, (0, 0)), (1, (2, 3)), (2, (4, 5)), (3, (1, 1))]:
        base = [t.detach().clone() for t in (q, p, f, o)]
        up = [t.clone() for t in base]
        down = [t.clone() for t in base]
        up[member][i, k] += eps
        down[member][i, k] -= eps
        num = (
            sum(naive_nce(*up, videos, 0.2, True)) - sum(naive_nce(*down, videos, 0.2, True))
        ) / (2 * eps * 5)
        assert leaves[member].grad[i, k].item() == pytest.approx(num, rel=1e-5, abs=1e-7)


def test_nce_without_negatives_is_zero_and_finite() -> None:
    q, p, f, o = torch.randn(4, 3, 4, dtype=torch.float64)
    videos = torch.zeros(12, dtype=torch.long)
    loss = temporal_info_nce(q, p, f, o, videos, 0.1, reduction="none")
    assert torch.equal(loss, torch.zeros(3, dtype=torch.float64))


def test_nce_module_and_active() -> None:
    q, p, f, o, videos = _batch(6, 8, seed=1, dtype=torch.float32)
    loss = TemporalInfoNCELoss(0.5, far_positive=False)
    assert torch.allclose(
        loss(q, p, f, o, videos), temporal_info_nce(q, p, f, o, videos, 0.5, far_positive=False)
    )
    assert loss.active(q, p, f, o, videos).shape == (6,)
    assert TemporalInfoNCELoss().active(q, p, f, o, videos).shape == (12,)
    # identical positives and far-away negatives: nothing outranks a positive
    z = torch.nn.functional.one_hot(torch.arange(4), 8).float()
    own = torch.arange(4)
    videos = torch.cat([own, own, own, (own + 1) % 4])
    assert not TemporalInfoNCELoss().active(z, z, z, -z, videos).any()


@pytest.mark.parametrize("tau", [0.0, -1.0, float("inf"), float("nan")])
def test_nce_rejects_bad_temperature(tau: float) -> None:
    with pytest.raises(ValueError, match="temperature"):
        TemporalInfoNCELoss(tau)


def test_nce_rejects_bad_video_shape() -> None:
    q = torch.randn(3, 4)
    with pytest.raises(ValueError, match="videos must have shape"):
        temporal_info_nce(q, q, q, q, torch.zeros(9, dtype=torch.long))


def naive_cross(q, p, f, o, videos, tau, far_positive) -> list[float]:
    """Per-query cross-stream loss: each half of the query against the *other* half of every
    frame; positives the other half of the query itself, of p and (far_positive) of f."""
    tuples = [t.tolist() for t in (q, p, f, o)]
    h = len(tuples[0][0]) // 2
    frames = [row for member in tuples for row in member]
    vids = [int(v) for v in videos]
    out = []
    for i in range(len(tuples[0])):
        terms = []
        for mine, theirs in ((slice(0, h), slice(h, 2 * h)), (slice(h, 2 * h), slice(0, h))):
            query = tuples[0][i][mine]
            positives = [tuples[0][i], tuples[1][i]] + ([tuples[2][i]] if far_positive else [])
            for pos in positives:
                s_pos = _cos(query, pos[theirs]) / tau
                denom = math.exp(s_pos)
                for j, cand in enumerate(frames):
                    if vids[j] != vids[i]:
                        denom += math.exp(_cos(query, cand[theirs]) / tau)
                terms.append(math.log(denom) - s_pos)
        out.append(sum(terms) / len(terms))
    return out


@pytest.mark.parametrize("b", [1, 4])
@pytest.mark.parametrize("tau", [0.1, 0.5])
@pytest.mark.parametrize("far_positive", [True, False])
def test_cross_stream_matches_naive(b: int, tau: float, far_positive: bool) -> None:
    q, p, f, o, videos = _batch(b, 6, seed=b + 7)
    got = cross_stream_info_nce(
        q, p, f, o, videos, tau, far_positive=far_positive, reduction="none"
    )
    want = naive_cross(q, p, f, o, videos, tau, far_positive)
    assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-9)
    leaves = [t.clone().requires_grad_(True) for t in (q, p, f, o)]
    torch.autograd.gradcheck(
        lambda a, b_, c, e: cross_stream_info_nce(a, b_, c, e, videos, tau), tuple(leaves)
    )


def test_cross_stream_ignores_the_scale_of_each_half_and_needs_two_halves() -> None:
    q, p, f, o, videos = _batch(3, 8, seed=2)
    scale = torch.tensor([3.0] * 4 + [0.25] * 4, dtype=torch.float64)  # one scale per stream
    a = cross_stream_info_nce(q, p, f, o, videos)
    b = cross_stream_info_nce(q * scale, p * scale, f * scale, o * scale, videos)
    assert float(a) == pytest.approx(float(b), rel=1e-12)
    odd = torch.randn(3, 5)
    with pytest.raises(ValueError, match="even width"):
        cross_stream_info_nce(odd, odd, odd, odd, videos)


def test_nce_module_adds_the_weighted_cross_stream_term() -> None:
    q, p, f, o, videos = _batch(5, 8, seed=4, dtype=torch.float32)
    plain = temporal_info_nce(q, p, f, o, videos, 0.5)
    cross = cross_stream_info_nce(q, p, f, o, videos, 0.5)
    got = TemporalInfoNCELoss(0.5, cross_stream=0.7)(q, p, f, o, videos)
    assert float(got) == pytest.approx(float(plain + 0.7 * cross), rel=1e-6)
    assert float(TemporalInfoNCELoss(0.5)(q, p, f, o, videos)) == pytest.approx(float(plain))
    for bad in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="cross_stream"):
            TemporalInfoNCELoss(cross_stream=bad)
