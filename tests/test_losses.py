"""Tests of the temporal-coherence losses (SPEC §1) against slow, obvious references.

Each reference works on Python lists of floats, one sample at a time, with ``math.sqrt``; it
shares no code with :mod:`tcdn.losses`. The vectorised losses must match it over batch size,
dimension, margin and every option.
"""

from __future__ import annotations

import math

import pytest
import torch

from tcdn.losses import (
    ContrastiveLoss,
    QuadrupletLoss,
    RankingLoss,
    SiameseLoss,
    contrastive_loss,
    quadruplet_loss,
    ranking_loss,
    siamese_loss,
)

BATCHES = (1, 3, 17)
DIMS = (1, 8, 64)
MARGINS = (0.1, 0.5, 1.0, 2.0)
REDUCTIONS = ("mean", "sum", "none")


# -- naive references ----------------------------------------------------------------------------
def _rows(t: torch.Tensor) -> list[list[float]]:
    return [[float(v) for v in row] for row in t.detach().cpu().tolist()]


def _norm(x: list[float]) -> float:
    return math.sqrt(sum(v * v for v in x))


def _unit(x: list[float]) -> list[float]:
    n = max(_norm(x), 1e-12)
    return [v / n for v in x]


def _dist(x: list[float], y: list[float], squared: bool = False) -> float:
    s = 0.0
    for xi, yi in zip(x, y, strict=True):
        s += (xi - yi) * (xi - yi)
    return s if squared else math.sqrt(s)


def _reduce(values: list[float], reduction: str) -> list[float] | float:
    if reduction == "mean":
        return sum(values) / len(values)
    if reduction == "sum":
        return sum(values)
    return values


def naive_siamese(a, b, y, margin, squared=False, normalize=False):
    out = []
    for ai, bi, yi in zip(_rows(a), _rows(b), y.tolist(), strict=True):
        if normalize:
            ai, bi = _unit(ai), _unit(bi)
        d = _dist(ai, bi, squared)
        out.append(d if yi else max(0.0, margin - d))
    return out


def naive_quadruplet(q, p, f, o, margin, squared=False, normalize=False):
    out = []
    for qi, pi, fi, oi in zip(_rows(q), _rows(p), _rows(f), _rows(o), strict=True):
        if normalize:
            qi, pi, fi, oi = _unit(qi), _unit(pi), _unit(fi), _unit(oi)
        d_qp = _dist(qi, pi, squared)
        d_qf = _dist(qi, fi, squared)
        d_qo = _dist(qi, oi, squared)
        out.append(d_qp + max(0.0, d_qf - d_qo + margin))
    return out


def naive_contrastive(a, b, y, margin, normalize=False):
    out = []
    for ai, bi, yi in zip(_rows(a), _rows(b), y.tolist(), strict=True):
        if normalize:
            ai, bi = _unit(ai), _unit(bi)
        d = _dist(ai, bi)
        out.append(d * d if yi else max(0.0, margin - d) ** 2)
    return out


def _cos(x: list[float], y: list[float]) -> float:
    return sum(xi * yi for xi, yi in zip(x, y, strict=True)) / (_norm(x) * _norm(y))


def naive_ranking(q, p, o, margin):
    out = []
    for qi, pi, oi in zip(_rows(q), _rows(p), _rows(o), strict=True):
        out.append(max(0.0, (1.0 - _cos(qi, pi)) - (1.0 - _cos(qi, oi)) + margin))
    return out


# -- data ----------------------------------------------------------------------------------------
def _near(x: torch.Tensor, scales: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """``x`` moved by a random direction of length ``scales[i]`` in row ``i``."""
    u = torch.randn(x.shape, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    return x + scales[:, None] * u


def _data(batch: int, dim: int, seed: int = 0):
    """Anchors and companions at distances spanning every margin: hinges both on and off."""
    g = torch.Generator().manual_seed(seed * 1000 + batch * 100 + dim)
    x = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    spread = torch.linspace(0.05, 3.0, batch, dtype=torch.float64)
    perm = [torch.randperm(batch, generator=g) for _ in range(3)]
    near = _near(x, 0.3 * torch.rand(batch, generator=g, dtype=torch.float64), g)
    c1, c2, c3 = (_near(x, spread[pm], g) for pm in perm)
    y = (torch.arange(batch) % 2).bool()[torch.randperm(batch, generator=g)]
    return x, near, c1, c2, c3, y


def _check(result: torch.Tensor, expected, reduction: str) -> None:
    want = torch.tensor(_reduce(expected, reduction), dtype=torch.float64)
    assert result.shape == want.shape
    torch.testing.assert_close(result, want, rtol=1e-10, atol=1e-12)


# -- against the naive references ----------------------------------------------------------------
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("batch", BATCHES)
def test_siamese_matches_naive(batch, dim, margin, squared, normalize):
    a, _, b, _, _, y = _data(batch, dim)
    expected = naive_siamese(a, b, y, margin, squared, normalize)
    for reduction in REDUCTIONS:
        out = siamese_loss(
            a, b, y, margin, squared=squared, normalize=normalize, reduction=reduction
        )
        _check(out, expected, reduction)
    # 0/1 integer labels mean the same as bools
    torch.testing.assert_close(
        siamese_loss(a, b, y.long(), margin, squared=squared, normalize=normalize),
        siamese_loss(a, b, y, margin, squared=squared, normalize=normalize),
    )


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("batch", BATCHES)
def test_quadruplet_matches_naive(batch, dim, margin, squared, normalize):
    q, p, f, o, _, _ = _data(batch, dim)
    expected = naive_quadruplet(q, p, f, o, margin, squared, normalize)
    for reduction in REDUCTIONS:
        out = quadruplet_loss(
            q, p, f, o, margin, squared=squared, normalize=normalize, reduction=reduction
        )
        _check(out, expected, reduction)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("batch", BATCHES)
def test_contrastive_matches_naive(batch, dim, margin, normalize):
    a, _, b, _, _, y = _data(batch, dim)
    expected = naive_contrastive(a, b, y, margin, normalize)
    for reduction in REDUCTIONS:
        out = contrastive_loss(a, b, y, margin, normalize=normalize, reduction=reduction)
        _check(out, expected, reduction)


@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("batch", BATCHES)
def test_ranking_matches_naive(batch, dim, margin):
    q, p, _, o, _, _ = _data(batch, dim)
    expected = naive_ranking(q, p, o, margin)
    for reduction in REDUCTIONS:
        _check(ranking_loss(q, p, o, margin, reduction=reduction), expected, reduction)


def test_data_exercises_both_sides_of_every_hinge():
    """The references above are only worth as much as the data: both hinge branches must occur."""
    a, _, b, f, o, y = _data(17, 8)
    d_ab = [_dist(x, z) for x, z in zip(_rows(a), _rows(b), strict=True)]
    negatives = [d for d, yi in zip(d_ab, y.tolist(), strict=True) if not yi]
    assert any(d < 1.0 for d in negatives) and any(d > 1.0 for d in negatives)
    args = [
        _dist(x, fi) - _dist(x, oi) + 0.5
        for x, fi, oi in zip(_rows(a), _rows(f), _rows(o), strict=True)
    ]
    assert any(v > 0 for v in args) and any(v < 0 for v in args)


def test_float32_close_to_float64_reference():
    a, p, b, o, _, y = _data(17, 8)
    expected = naive_siamese(a, b, y, 1.0)
    out = siamese_loss(a.float(), b.float(), y, 1.0, reduction="none")
    assert out.dtype == torch.float32
    tol = {"rtol": 1e-5, "atol": 1e-6}  # the inputs themselves are rounded to float32
    torch.testing.assert_close(out.double(), torch.tensor(expected, dtype=torch.float64), **tol)
    expected_q = naive_quadruplet(a, p, b, o, 0.5)
    out_q = quadruplet_loss(a.float(), p.float(), b.float(), o.float(), reduction="none")
    torch.testing.assert_close(out_q.double(), torch.tensor(expected_q, dtype=torch.float64), **tol)


# -- hand-computed examples ----------------------------------------------------------------------
def test_siamese_hand_computed():
    # margin δ = 1
    # pair 1: a=(0,0), b=(3,4), y=1:   d = 5                   -> loss d = 5
    # pair 2: a=(0,0), b=(0.3,0.4), y=0: d = 0.5               -> max(0, 1 - 0.5) = 0.5
    # pair 3: a=(1,1), b=(1,3), y=0:   d = 2                   -> max(0, 1 - 2) = 0
    # none = [5, 0.5, 0], sum = 5.5, mean = 5.5 / 3
    # squared: d² = 25, 0.25, 4 -> [25, 1 - 0.25 = 0.75, 0], sum 25.75
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[3.0, 4.0], [0.3, 0.4], [1.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([1, 0, 0])
    d64 = torch.float64
    torch.testing.assert_close(
        siamese_loss(a, b, y, 1.0, reduction="none"), torch.tensor([5.0, 0.5, 0.0], dtype=d64)
    )
    assert siamese_loss(a, b, y, 1.0, reduction="sum").item() == pytest.approx(5.5)
    assert siamese_loss(a, b, y).item() == pytest.approx(5.5 / 3)  # δ = 1 is the default
    torch.testing.assert_close(
        siamese_loss(a, b, y, 1.0, squared=True, reduction="none"),
        torch.tensor([25.0, 0.75, 0.0], dtype=d64),
    )
    assert SiameseLoss(squared=True, reduction="sum")(a, b, y).item() == pytest.approx(25.75)


def test_quadruplet_hand_computed():
    # margin α = 0.5
    # 1: q=(0,0), p=(0.6,0.8) d=1; f=(3,4) d=5; o=(0,2) d=2   -> 1 + max(0, 5 - 2 + 0.5) = 4.5
    # 2: q=(1,0), p=(1,0) d=0;     f=(1,1) d=1; o=(1,-3) d=3  -> 0 + max(0, 1 - 3 + 0.5) = 0
    # 3: q=(0,0), p=(0,0.5) d=0.5; f=(1.2,1.6) d=2; o=(1.8,0) d=1.8
    #                                                         -> 0.5 + max(0, 2 - 1.8 + 0.5) = 1.2
    # none = [4.5, 0, 1.2], sum = 5.7, mean = 1.9
    q = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    p = torch.tensor([[0.6, 0.8], [1.0, 0.0], [0.0, 0.5]], dtype=torch.float64)
    f = torch.tensor([[3.0, 4.0], [1.0, 1.0], [1.2, 1.6]], dtype=torch.float64)
    o = torch.tensor([[0.0, 2.0], [1.0, -3.0], [1.8, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(
        quadruplet_loss(q, p, f, o, 0.5, reduction="none"),
        torch.tensor([4.5, 0.0, 1.2], dtype=torch.float64),
    )
    assert quadruplet_loss(q, p, f, o, reduction="sum").item() == pytest.approx(5.7)
    assert quadruplet_loss(q, p, f, o).item() == pytest.approx(1.9)  # α = 0.5 is the default
    assert QuadrupletLoss()(q, p, f, o).item() == pytest.approx(1.9)


# -- gradients -----------------------------------------------------------------------------------
def _leaf(*ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(t.detach().clone().requires_grad_(True) for t in ts)


def _grad_data(seed: int = 7):
    """Small float64 tuples with every distance well above 0 (B=4, D=5)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(4, 5, generator=g, dtype=torch.float64)
    p = _near(q, torch.tensor([0.2, 0.4, 0.6, 0.3], dtype=torch.float64), g)
    f = _near(q, torch.tensor([0.5, 2.5, 1.5, 0.8], dtype=torch.float64), g)
    o = _near(q, torch.tensor([2.2, 0.6, 3.0, 2.0], dtype=torch.float64), g)
    return q, p, f, o


def _assert_away_from_kink(values: list[float]) -> None:
    assert all(v > 1e-3 for v in values), "gradcheck data lies on a kink: change the seed"


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("squared", [False, True])
def test_siamese_gradcheck(squared, normalize):
    q, _, f, _ = _grad_data()
    y = torch.tensor([1, 0, 0, 1])
    margin = 1.0
    dists = [
        _dist(_unit(a) if normalize else a, _unit(b) if normalize else b, squared)
        for a, b in zip(_rows(q), _rows(f), strict=True)
    ]
    _assert_away_from_kink(dists + [abs(margin - d) for d in dists])
    a, b = _leaf(q, f)
    assert torch.autograd.gradcheck(
        lambda a, b: siamese_loss(a, b, y, margin, squared=squared, normalize=normalize), (a, b)
    )


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("squared", [False, True])
def test_quadruplet_gradcheck(squared, normalize):
    q, p, f, o = _grad_data()
    margin = 0.5
    rows = [_rows(t) for t in (q, p, f, o)]
    if normalize:
        rows = [[_unit(r) for r in t] for t in rows]
    d = {
        name: [_dist(a, b, squared) for a, b in zip(rows[0], rows[i], strict=True)]
        for i, name in ((1, "p"), (2, "f"), (3, "o"))
    }
    hinge = [abs(df - do + margin) for df, do in zip(d["f"], d["o"], strict=True)]
    _assert_away_from_kink(d["p"] + d["f"] + d["o"] + hinge)
    assert torch.autograd.gradcheck(
        lambda *t: quadruplet_loss(*t, margin, squared=squared, normalize=normalize),
        _leaf(q, p, f, o),
    )


def test_contrastive_gradcheck():
    q, _, f, _ = _grad_data()
    y = torch.tensor([1, 0, 0, 1])
    dists = [_dist(a, b) for a, b in zip(_rows(q), _rows(f), strict=True)]
    _assert_away_from_kink(dists + [abs(1.0 - d) for d in dists])
    assert torch.autograd.gradcheck(lambda a, b: contrastive_loss(a, b, y, 1.0), _leaf(q, f))
    unit = [_dist(_unit(a), _unit(b)) for a, b in zip(_rows(q), _rows(f), strict=True)]
    _assert_away_from_kink(unit + [abs(0.5 - d) for d in unit])
    assert torch.autograd.gradcheck(
        lambda a, b: contrastive_loss(a, b, y, 0.5, normalize=True), _leaf(q, f)
    )


def test_ranking_gradcheck():
    q, p, _, o = _grad_data()
    margin = 0.5
    args = [
        abs((1 - _cos(a, b)) - (1 - _cos(a, c)) + margin)
        for a, b, c in zip(_rows(q), _rows(p), _rows(o), strict=True)
    ]
    _assert_away_from_kink(args)
    assert torch.autograd.gradcheck(lambda *t: ranking_loss(*t, margin), _leaf(q, p, o))


def _finite_grads(loss: torch.Tensor, leaves) -> None:
    loss.backward()
    assert torch.isfinite(loss)
    for t in leaves:
        assert t.grad is not None
        assert torch.isfinite(t.grad).all()


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("label", [0, 1])
def test_siamese_zero_distance_has_finite_gradient(label, squared, normalize):
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a, b = _leaf(x, x)
    y = torch.full((3,), label)
    loss = siamese_loss(a, b, y, 1.0, squared=squared, normalize=normalize)
    _finite_grads(loss, (a, b))
    assert loss.item() == pytest.approx(0.0 if label else 1.0)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("squared", [False, True])
def test_quadruplet_zero_distance_has_finite_gradient(squared, normalize):
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    # q == p, and also q == f == o: every distance is 0
    q, p, f, o = _leaf(x, x, x, x)
    loss = quadruplet_loss(q, p, f, o, 0.5, squared=squared, normalize=normalize)
    _finite_grads(loss, (q, p, f, o))
    assert loss.item() == pytest.approx(0.5)


def test_contrastive_and_ranking_zero_distance_have_finite_gradient():
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for label in (0, 1):
        for normalize in (False, True):
            a, b = _leaf(x, x)
            y = torch.full((3,), label)
            _finite_grads(contrastive_loss(a, b, y, 1.0, normalize=normalize), (a, b))
    q, p, o = _leaf(x, x, -x)
    _finite_grads(ranking_loss(q, p, o, 0.5), (q, p, o))


# -- modules -------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("squared", [False, True])
def test_modules_equal_functions(squared, normalize, reduction):
    q, p, f, o, _, y = _data(17, 8)
    kw = {"squared": squared, "normalize": normalize, "reduction": reduction}
    assert torch.equal(SiameseLoss(0.7, **kw)(q, f, y), siamese_loss(q, f, y, 0.7, **kw))
    assert torch.equal(
        QuadrupletLoss(0.3, **kw)(q, p, f, o), quadruplet_loss(q, p, f, o, 0.3, **kw)
    )
    assert torch.equal(
        ContrastiveLoss(0.7, reduction=reduction)(q, f, y),
        contrastive_loss(q, f, y, 0.7, reduction=reduction),
    )
    assert torch.equal(
        RankingLoss(0.3, reduction=reduction)(q, p, o),
        ranking_loss(q, p, o, 0.3, reduction=reduction),
    )


def test_module_defaults_follow_the_paper():
    assert SiameseLoss().margin == 1.0  # δ
    assert QuadrupletLoss().margin == 0.5  # α
    assert RankingLoss().margin == 0.5  # M
    for m in (SiameseLoss(), QuadrupletLoss(), ContrastiveLoss(), RankingLoss()):
        assert m.reduction == "mean"
    for m in (SiameseLoss(), QuadrupletLoss()):
        assert not m.squared and not m.normalize


MODULES = (SiameseLoss, QuadrupletLoss, ContrastiveLoss, RankingLoss)


@pytest.mark.parametrize("margin", [0.0, -0.5, float("nan"), float("inf")])
@pytest.mark.parametrize("cls", MODULES)
def test_module_rejects_bad_margin(cls, margin):
    with pytest.raises(ValueError, match="margin"):
        cls(margin)


@pytest.mark.parametrize("cls", MODULES)
def test_module_rejects_bad_reduction(cls):
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction="avg")


def test_function_rejects_bad_reduction():
    q, p, f, o, _, y = _data(3, 4)
    with pytest.raises(ValueError, match="reduction"):
        siamese_loss(q, p, y, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        quadruplet_loss(q, p, f, o, reduction="avg")


# -- shapes --------------------------------------------------------------------------------------
def _t(*shape: int) -> torch.Tensor:
    return torch.ones(*shape)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: siamese_loss(_t(3, 4), _t(3, 5), _t(3)), id="siamese-dim"),
        pytest.param(lambda: siamese_loss(_t(3, 4), _t(2, 4), _t(3)), id="siamese-batch"),
        pytest.param(lambda: siamese_loss(_t(4), _t(4), _t(1)), id="siamese-1d"),
        pytest.param(lambda: siamese_loss(_t(3, 4), _t(3, 4), _t(2)), id="siamese-labels"),
        pytest.param(lambda: siamese_loss(_t(3, 4), _t(3, 4), _t(3, 1)), id="siamese-labels-2d"),
        pytest.param(lambda: quadruplet_loss(_t(3, 4), _t(3, 5), _t(3, 4), _t(3, 4)), id="q-p"),
        pytest.param(lambda: quadruplet_loss(_t(3, 4), _t(3, 4), _t(2, 4), _t(3, 4)), id="q-f"),
        pytest.param(lambda: quadruplet_loss(_t(3, 4), _t(3, 4), _t(3, 4), _t(3, 2)), id="q-o"),
        pytest.param(lambda: quadruplet_loss(_t(2, 3, 4), *[_t(2, 3, 4)] * 3), id="q-3d"),
        pytest.param(lambda: contrastive_loss(_t(3, 4), _t(4, 4), _t(3)), id="contrastive"),
        pytest.param(lambda: ranking_loss(_t(3, 4), _t(3, 5), _t(3, 4)), id="ranking-p"),
        pytest.param(lambda: ranking_loss(_t(3, 4), _t(3, 4), _t(2, 4)), id="ranking-o"),
    ],
)
def test_shape_mismatch_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_contrastive_rejects_label_shape_mismatch():
    with pytest.raises(ValueError):
        contrastive_loss(_t(3, 4), _t(3, 4), torch.ones(3, 1))
