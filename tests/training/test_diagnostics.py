"""Training diagnostics (``tcdn.training.diagnostics``) against slow, obvious references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tcdn.losses import ContrastiveLoss, QuadrupletLoss, RankingLoss, SiameseLoss
from tcdn.models import build_model
from tcdn.training.diagnostics import embedding_diagnostics, grad_norms, hinge_active_share


def _naive(emb: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
    k, b, d = emb.shape
    rows = [emb[i, j] for i in range(k) for j in range(b)]
    spread = sum(torch.tensor([float(r[c]) for r in rows]).std().item() for c in range(d)) / d
    units = [r / r.norm() for r in rows]
    rel = sum(torch.tensor([float(u[c]) for u in units]).std().item() for c in range(d)) / d
    q = [emb[0, j] / emb[0, j].norm() for j in range(b)]
    p = [emb[1, j] / emb[1, j].norm() for j in range(b)]
    pos = [j for j in range(b) if labels is None or labels[j]]
    align = sum(float(((q[j] - p[j]) ** 2).sum()) for j in pos) / len(pos)
    pairs = [(i, j) for i in range(b) for j in range(i + 1, b)]
    unif = math.log(
        sum(math.exp(-2 * float(((q[i] - q[j]) ** 2).sum())) for i, j in pairs) / len(pairs)
    )
    return {
        "embedding_spread": spread,
        "relative_spread": rel * math.sqrt(d),
        "alignment": align,
        "uniformity": unif,
    }


@pytest.mark.parametrize("pairs", [False, True])
def test_embedding_diagnostics_match_a_naive_loop(pairs: bool) -> None:
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(2 if pairs else 4, 7, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([1, 0, 1, 1, 0, 0, 1]) if pairs else None
    got = embedding_diagnostics(emb, labels)
    want = _naive(emb, labels)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-5), key


def test_relative_spread_tells_spread_from_collapsed_directions() -> None:
    g = torch.Generator().manual_seed(1)
    spread_out = torch.randn(4, 200, 64, generator=g)
    assert embedding_diagnostics(spread_out)["relative_spread"] == pytest.approx(1.0, abs=0.1)
    # large raw spread, but every row points nearly the same way: what a normalised loss sees
    one_way = 100.0 + 1e-3 * torch.randn(4, 200, 64, generator=g)
    one_way = one_way * torch.rand(4, 200, 1, generator=g) * 50
    found = embedding_diagnostics(one_way)
    assert found["embedding_spread"] > 100 and found["relative_spread"] < 0.01
    assert found["uniformity"] == pytest.approx(0.0, abs=1e-4)  # collapsed on the sphere


def _naive_active(kind: str, emb: torch.Tensor, y: torch.Tensor | None, margin: float) -> float:
    flags = []
    for j in range(emb.shape[1]):
        if kind == "lq":
            q, _, f, o = (F.normalize(emb[i, j], dim=0) for i in range(4))
            flags.append(float((q - f).norm() ** 2 - (q - o).norm() ** 2 + margin) > 0)
        elif kind == "ld":
            q, p, o = emb[0, j], emb[1, j], emb[2, j]
            cos = F.cosine_similarity
            flags.append(float((1 - cos(q, p, dim=0)) - (1 - cos(q, o, dim=0)) + margin) > 0)
        elif y is not None and not y[j]:
            flags.append(float(margin - (emb[0, j] - emb[1, j]).norm()) > 0)
    return sum(flags) / len(flags)


@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
def test_hinge_active_share_matches_a_naive_loop(margin: float) -> None:
    g = torch.Generator().manual_seed(2)
    quads = torch.randn(4, 30, 6, generator=g, dtype=torch.float64)
    lq = QuadrupletLoss(margin, squared=True, normalize=True)
    assert hinge_active_share(lq, quads) == pytest.approx(_naive_active("lq", quads, None, margin))
    trip = torch.randn(3, 30, 6, generator=g, dtype=torch.float64)
    assert hinge_active_share(RankingLoss(margin), trip) == pytest.approx(
        _naive_active("ld", trip, None, margin)
    )
    pairs = torch.randn(2, 30, 6, generator=g, dtype=torch.float64)
    y = torch.arange(30) % 3 == 0
    for loss in (SiameseLoss(margin), ContrastiveLoss(margin)):
        assert hinge_active_share(loss, pairs, y) == pytest.approx(
            _naive_active("ls", pairs, y, margin)
        )
    assert math.isnan(hinge_active_share(SiameseLoss(margin), pairs, torch.ones(30)))


def test_grad_norms_per_stage_add_up_to_the_whole() -> None:
    torch.manual_seed(0)
    model = build_model("alexnet", embed_dim=8, fc6_dim=16)
    model(torch.randn(2, 3, 40, 40)).pow(2).sum().backward()
    found = grad_norms(model)
    for name, stage in model.stages.items():
        grads = [p.grad.flatten() for p in stage.parameters() if p.grad is not None]
        want = torch.cat(grads).norm().item() if grads else 0.0
        assert found[f"grad_norm/{name}"] == pytest.approx(want, rel=1e-4)  # float32 sums
    total = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
    assert found["grad_norm"] == pytest.approx(total, rel=1e-4)
