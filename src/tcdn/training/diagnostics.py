"""What a training step says about the embedding: is it spread out or collapsing, do positives sit
together, is the loss still learning? Logged every ``log_every`` steps (``log.jsonl``, TensorBoard).

- ``embedding_spread``: the mean per-dimension standard deviation of the batch's embeddings; 0
  when every frame maps to one point (the trivial minimum of Lq).
- ``relative_spread``: the same for the L2-normalised embeddings, times ``sqrt(D)``: about 1 for
  unit vectors spread over all ``D`` dimensions, near 0 when every frame points the same way
  (what a normalised loss sees), whatever the embedding's scale.
- ``alignment`` and ``uniformity`` (Wang & Isola 2020, on L2-normalised embeddings): the mean
  squared distance between each query and its positive (lower: positives closer), and
  ``log mean exp(-2 ||u - v||²)`` over pairs of queries (lower: spread more uniformly on the sphere;
  ``0`` when collapsed).
- ``hinge_active``: the share of the loss's hinge terms that are active (``> 0``); near 0 the
  margin is met everywhere and the hinge stops teaching, near 1 it is never met. For temporal
  InfoNCE, the share of positives that some negative outranks.
- ``grad_norm`` and ``grad_norm/<stage>``: the gradient's norm before clipping, in all and per
  stage of the backbone (does every stage learn?).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: mean per-dimension std of a batch's embeddings below which they have collapsed to one point
COLLAPSE_SPREAD = 1e-6
#: relative spread below which the embeddings point nearly one way (a normalised loss sees noise)
DIRECTION_COLLAPSE = 0.05


def embedding_diagnostics(emb: Tensor, labels: Tensor | None = None) -> dict[str, float]:
    """Spread, alignment and uniformity of ``(k, B, D)`` embeddings (member 0 the queries,
    member 1 their positives; for pair losses only the pairs with ``labels == 1`` are positives)."""
    flat = emb.detach().float().flatten(0, 1)
    dim = flat.shape[1]
    unit = F.normalize(flat, dim=-1)
    q, p = (
        F.normalize(emb[0].detach().float(), dim=-1),
        F.normalize(emb[1].detach().float(), dim=-1),
    )
    if labels is not None:
        keep = labels.to(dtype=torch.bool)
        q_pos, p_pos = q[keep], p[keep]
    else:
        q_pos, p_pos = q, p
    out = {
        "embedding_spread": flat.std(dim=0).mean().item(),
        "relative_spread": unit.std(dim=0).mean().item() * math.sqrt(dim),
        "alignment": (q_pos - p_pos).pow(2).sum(-1).mean().item() if len(q_pos) else float("nan"),
    }
    if len(q) > 1:
        d2 = torch.pdist(q).pow(2)
        out["uniformity"] = (torch.logsumexp(-2 * d2, 0) - math.log(len(d2))).item()
    return out


def hinge_active_share(
    criterion: nn.Module,
    emb: Tensor,
    labels: Tensor | None = None,
    videos: Tensor | None = None,
) -> float:
    """The share of ``criterion``'s hinge terms that are active on ``(k, B, D)`` embeddings
    (``nan`` when the batch has none, e.g. pairs without negatives). ``videos`` (``(k B,)``) is
    passed on to a loss that needs it (temporal InfoNCE: a positive outranked by a negative
    counts as active)."""
    active = getattr(criterion, "active", None)
    if active is None:
        return float("nan")
    with torch.no_grad():
        if videos is not None:
            flags = active(*emb, videos)
        elif labels is None:
            flags = active(*emb)
        else:
            flags = active(emb[0], emb[1], labels)
    return flags.float().mean().item() if flags.numel() else float("nan")


def grad_norms(model: nn.Module) -> dict[str, float]:
    """The gradient norm of each stage of a backbone (``model.stages``), and of all of it."""
    out: dict[str, float] = {}
    total = 0.0
    stages = getattr(model, "stages", None)
    named = stages.items() if stages is not None else [("model", model)]
    for name, stage in named:
        sq = sum(
            float(param.grad.detach().float().pow(2).sum())
            for param in stage.parameters()
            if param.grad is not None
        )
        out[f"grad_norm/{name}"] = math.sqrt(sq)
        total += sq
    out["grad_norm"] = math.sqrt(total)
    return out
