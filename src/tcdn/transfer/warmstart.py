"""What a fine-tuning run does to a transferred network before its first step, and how it treats it.

Fine-tuning a network pre-trained on other input with a few dozen images fails in three ways
(issue 21: 20.0% on weizmann4 5-shot, below chance, where a linear probe of the same frozen
features reached 59.7%):

- *BatchNorm statistics*: in train mode, a batch of 20 images normalises each layer by its own
  statistics, and the running averages the test images meet drift away from them. The
  transferred BatchNorm layers are kept in eval mode instead, with statistics re-estimated once
  on the training images (:func:`adapt_batchnorm`, AdaBN, Li et al. 2016) or the checkpoint's.
- *a random new layer*: its large, random gradients run back into the transferred layers in the
  first steps and undo them. The new layer starts as the logistic regression of the frozen
  features instead (:func:`probe_head`, the LP of LP-FT, Kumar et al. 2022).
- *one learning rate*: the transferred layers train at a fraction of it
  (:func:`param_groups`); a random init's layers are all new and train at the full rate.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

log = logging.getLogger(__name__)

Batches = Callable[[], Iterator[Tensor]]
#: the largest gap between a training image's highest and lowest logit the probed head starts with
MAX_LOGIT_SPREAD = 8.0


def transferred_batchnorm(
    model: nn.Module, loaded: set[str]
) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` whose weights were transferred (named in ``loaded``)."""
    return [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and f"{name}.weight" in loaded
    ]


@torch.no_grad()
def adapt_batchnorm(
    model: nn.Module, layers: list[nn.modules.batchnorm._BatchNorm], batches: Batches
) -> None:
    """Re-estimate the running statistics of ``layers`` as the plain average over ``batches``
    (network inputs; every other layer in eval mode), leaving the model in eval mode."""
    if not layers:
        return
    model.eval()
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
        m.train()
    for x in batches():
        model(x)
    for m, momentum in zip(layers, momenta, strict=True):
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def probe_head(
    head: nn.Sequential,
    backbone: nn.Module,
    batches: Batches,
    labels: np.ndarray,
    n_classes: int,
    c: float = 1.0,
) -> None:
    """Set the last linear layer of ``head`` to the logistic regression (L2, inverse strength
    ``c``, standardised features, as :func:`tcdn.transfer.probe.linear_probe`) of the features it
    reads: ``head[:-1](backbone(x))`` over ``batches`` in eval mode, whose labels are ``labels``;
    scaled down (the same predictions) where its training logits span more than
    :data:`MAX_LOGIT_SPREAD`."""
    backbone.eval()
    head.eval()
    feats = np.concatenate([head[:-1](backbone(x)).float().cpu().numpy() for x in batches()])
    linear = head[-1]
    assert isinstance(linear, nn.Linear)
    scaler = StandardScaler().fit(feats)
    lr = LogisticRegression(C=c, max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lr.fit(scaler.transform(feats), labels)
    coef = np.zeros((n_classes, feats.shape[1]))
    bias = np.zeros(n_classes)
    classes = np.asarray(lr.classes_, dtype=np.int64)
    if len(classes) == 2:  # sklearn's one score z: logits (-z/2, z/2)
        coef[classes] = np.stack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
        bias[classes] = [-lr.intercept_[0] / 2, lr.intercept_[0] / 2]
    else:
        coef[classes] = lr.coef_
        bias[classes] = lr.intercept_
    missing = np.setdiff1d(np.arange(n_classes), classes)
    bias[missing] = bias[classes].min() - 10.0  # a class without training images: never chosen
    scale = np.asarray(scaler.scale_)
    w = coef / scale[None, :]
    b = bias - w @ np.asarray(scaler.mean_)
    # The regression of a few separable images is very confident: its logits on them can span
    # hundreds. Scaled down (the same classes win) so that they span at most MAX_LOGIT_SPREAD:
    # fine-tuning then starts with gradients of a sensible size.
    logits = feats @ w.T + b
    spread = float(np.max(logits.max(axis=1) - logits.min(axis=1))) if len(logits) else 0.0
    if spread > MAX_LOGIT_SPREAD:
        w, b = w * (MAX_LOGIT_SPREAD / spread), b * (MAX_LOGIT_SPREAD / spread)
    linear.weight.copy_(torch.as_tensor(w, dtype=linear.weight.dtype))
    linear.bias.copy_(torch.as_tensor(b, dtype=linear.bias.dtype))


def param_groups(
    model: nn.Module, loaded: set[str], lr: float, factor: float
) -> list[dict[str, Any]]:
    """Two optimiser groups: the transferred parameters at ``lr * factor``, the new ones at
    ``lr`` (empty groups left out)."""
    old: list[nn.Parameter] = []
    new: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        (old if name in loaded else new).append(p)
    groups = [{"params": new, "lr": lr}, {"params": old, "lr": lr * factor}]
    return [g for g in groups if g["params"]]
