"""Screening harness: which changes make Lq-style temporal coherence learn *what happens*
rather than *who is there*?

A training loop that mirrors ``tcdn.train._train`` (same sampler, same loss functions, same
frame -> tensor path, same feature extraction and K-means scoring), with the candidate remedies as
options of one :class:`Recipe`. Every remedy is a separate function or class with a docstring, so
that it can be ported into tcdn:

start that is not collapsed
    :class:`AlexNetBN` (BatchNorm after every conv and after fc6, no LRN), :func:`he_init`,
    :class:`InputPipeline` (``input_norm="meanstd"``), :func:`add_projection_head` (features
    for discovery are taken *below* the head), ``model="resnet18"``.
loss
    :func:`multi_negative_lq` (Lq's hinge against every in-batch frame of another video),
    :func:`temporal_info_nce` (softmax over negatives with a temperature, TCE-style),
    :func:`vicreg_regulariser` (variance-covariance term against collapse); the paper's Lq is
    :func:`tcdn.losses.quadruplet_loss`.
the confound (who vs what)
    :class:`TupleAugment` (appearance augmentation independent per frame, or shared by the four
    frames of a tuple), :class:`InputPipeline` with ``motion="diff"`` / ``"stack"`` (the frame
    and its successor), :class:`HardNegativeMiner` (replace the other-video frame by one the
    current embedding puts closest to the query).
optimisation
    :func:`make_optimizer` (SGD / AdamW), :func:`lr_factor` (constant, or warm-up + cosine),
    ``batch_size``, ``dropout``, ``steps``.

Usage (one thread, results cached per run, appended to results.jsonl)::

    python harness.py run RECIPE SET [--seed N]
    python harness.py queue FILE          # lines "RECIPE SET SEED"; finished runs are skipped
    python harness.py baselines SET RECIPE  # random-init (same architecture), raw pixels, random
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# tcdn is imported from a read-only snapshot of /work/main at commit 2b64bc7 (git archive), because
# /work/main is being restructured while this study runs and its modules move.
sys.path.insert(0, str(HERE / "vendor"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.metrics import normalized_mutual_info_score  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from tcdn.augment import AppearanceAugment  # noqa: E402
from tcdn.data.samplers import QuadrupletSampler  # noqa: E402
from tcdn.data.video import FrameSet, load_frames  # noqa: E402
from tcdn.discover import conditional_entropy, kmeans  # noqa: E402
from tcdn.features import raw_pixel_features  # noqa: E402
from tcdn.losses import euclidean_distance, quadruplet_loss  # noqa: E402
from tcdn.models import build_model  # noqa: E402
from tcdn.models.base import Backbone, check_init  # noqa: E402
from tcdn.train import channel_mean  # noqa: E402

torch.set_num_threads(1)

RESULTS = HERE / "results.jsonl"
RUNS = HERE / "runs"
CACHE = HERE / "cache"
KMEANS_SEEDS = 10


# ================================================================================================
# data sets
# ================================================================================================
@dataclass(frozen=True)
class DevSet:
    """A development set: where its videos are and which frames are scored."""

    name: str
    root: str
    eval_stride: int  # score every eval_stride-th frame of each video


DEV_SETS = {
    "weizmann4": DevSet("weizmann4", "/work/shared/data/weizmann4", 1),
    "demo": DevSet("demo", str(HERE / "data/demo"), 2),
    "hue": DevSet("hue", str(HERE / "data/hue"), 2),
}


def performer_of(name: str) -> str:
    """weizmann4 file names are ``<action>/<action>_NN.mp4``; NN is the performer."""
    stem = Path(name).stem
    return stem.rsplit("_", 1)[-1]


def load_dev_set(name: str) -> FrameSet:
    """Decode a development set at 64x64 once and cache it as an .npz (frames + index)."""
    ds = DEV_SETS[name]
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{name}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=True)
        from tcdn.data.video import VideoEntry

        videos = [
            VideoEntry(path=Path(p), name=n, label=lab)
            for p, n, lab in zip(z["paths"], z["names"], z["labels"], strict=True)
        ]
        return FrameSet(frames=z["frames"], videos=videos, offsets=z["offsets"])
    fs = load_frames(ds.root, size=64, progress=False)
    np.savez(
        path,
        frames=fs.frames,
        offsets=fs.offsets,
        paths=np.array([str(v.path) for v in fs.videos]),
        names=np.array([v.name for v in fs.videos]),
        labels=np.array([v.label for v in fs.videos]),
    )
    return fs


def successor_index(fs: FrameSet) -> np.ndarray:
    """``(N,)`` index of each frame's successor in its own video; the last frame of a video gets
    its predecessor, and :class:`InputPipeline` flips the sign of that difference, so the motion
    channel of the last frame is the backward difference ``x[t] - x[t-1]``."""
    n = len(fs.frames)
    nxt = np.arange(n) + 1
    last = fs.offsets[1:] - 1
    nxt[last] = np.maximum(last - 1, fs.offsets[:-1])
    return nxt


# ================================================================================================
# the recipe
# ================================================================================================
@dataclass
class Recipe:
    """Every option of one training run. The defaults are tcdn's demo recipe
    (configs/demo-lq-64px.yaml) except ``steps`` (300 here)."""

    # network
    model: str = "alexnet"  # alexnet | alexnet_bn | alexnet_lrcn | resnet18
    pool_size: int = 1  # alexnet variants: adaptive pool before fc6
    dropout: float = 0.5  # alexnet variants: dropout before fc7 / the head
    embed_dim: int = 1024  # fc7 (AlexNet) / fc (ResNet) width when there is no head
    init: str = "default"  # default (tcdn's "kaiming" = PyTorch's layer defaults) | he
    head: str = "none"  # none | mlp: Linear-BN-ReLU-Linear replaces fc7 (features stay below)
    head_hidden: int = 1024
    head_dim: int = 256
    # input
    input_norm: str = "mean"  # mean: (x - mean) / 255 (tcdn) | meanstd: per-channel standardised
    motion: str = "none"  # none | diff: + (x[t+1] - x[t]) channels | stack: + x[t+1] channels
    #                       | diffonly: x[t+1] - x[t] alone (no RGB; a diagnostic)
    augment: str = "none"  # none | frame: independent per frame | tuple: shared by q, p, f, o
    # loss
    loss: str = "lq"  # lq | lq_multi | nce
    normalize: bool = True
    squared: bool = True
    margin: float = 0.5
    tau: float = 0.1  # nce temperature
    far_positive: bool = True  # nce: f is a second positive (as Lq ranks f before o)
    vicreg: float = 0.0  # weight of the variance term; the covariance term gets vicreg / 25
    hard_share: float = 0.0  # share of tuples whose negative is a mined hard negative
    hard_every: int = 100  # steps between two minings (the first at step 0)
    hard_k: int = 10  # a hard negative is drawn among the query's k nearest other-video frames
    # tuples
    window: int = 1
    far: int = 20
    batch_size: int = 40
    # optimisation
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.005
    schedule: str = "constant"  # constant | cosine (after `warmup` linear steps either way)
    warmup: int = 0
    grad_clip: float = 5.0
    steps: int = 300

    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def arch_key(self) -> str:
        """What the random-init baseline of this recipe depends on."""
        d = {
            k: getattr(self, k)
            for k in ("model", "pool_size", "embed_dim", "init", "head", "head_hidden",
                      "head_dim", "input_norm", "motion")
        }
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


SHIPPED = Recipe()  # the demo recipe
#: the remedy package "a start that is not collapsed"
BN_START = dict(model="alexnet_bn", init="he", input_norm="meanstd", head="mlp", dropout=0.0)

RECIPES: dict[str, Recipe] = {
    # references
    "shipped": SHIPPED,
    "paper_plain": dataclasses.replace(SHIPPED, normalize=False, squared=False),
    "plain_d0": dataclasses.replace(SHIPPED, normalize=False, squared=False, dropout=0.0),
    # a start that is not collapsed
    "bn": dataclasses.replace(SHIPPED, **BN_START),
    "bn_nohead": dataclasses.replace(SHIPPED, **{**BN_START, "head": "none"}),
    # losses on the BN start
    "bn_multi": dataclasses.replace(SHIPPED, **BN_START, loss="lq_multi"),
    "bn_nce": dataclasses.replace(SHIPPED, **BN_START, loss="nce"),
    "bn_nce_vic": dataclasses.replace(SHIPPED, **BN_START, loss="nce", vicreg=1.0),
    "bn_plain_vic": dataclasses.replace(
        SHIPPED, **BN_START, normalize=False, squared=False, vicreg=1.0
    ),
    # the confound
    "bn_nce_diff": dataclasses.replace(SHIPPED, **BN_START, loss="nce", motion="diff"),
    "bn_nce_augf": dataclasses.replace(SHIPPED, **BN_START, loss="nce", augment="frame"),
    "bn_nce_augt": dataclasses.replace(SHIPPED, **BN_START, loss="nce", augment="tuple"),
    "bn_nce_hard": dataclasses.replace(SHIPPED, **BN_START, loss="nce", hard_share=0.5),
    "bn_diff": dataclasses.replace(SHIPPED, **BN_START, motion="diff"),
    "bn_diff_augf": dataclasses.replace(SHIPPED, **BN_START, motion="diff", augment="frame"),
    "bn_nce_diff_augf": dataclasses.replace(
        SHIPPED, **BN_START, loss="nce", motion="diff", augment="frame"
    ),
    # optimisation
    "bn_nce_adamw": dataclasses.replace(
        SHIPPED, **BN_START, loss="nce", optimizer="adamw", lr=1e-3, schedule="cosine", warmup=30
    ),
    "bn_nce_cos": dataclasses.replace(
        SHIPPED, **BN_START, loss="nce", lr=0.03, schedule="cosine", warmup=30
    ),
    "bn_nce_b80": dataclasses.replace(SHIPPED, **BN_START, loss="nce", batch_size=80),
    # reference backbone
    "resnet_nce": dataclasses.replace(
        SHIPPED, model="resnet18", init="he", input_norm="meanstd", head="mlp", loss="nce"
    ),
    "bn_nce_diffonly": dataclasses.replace(SHIPPED, **BN_START, loss="nce", motion="diffonly"),
    "plain_diff_d0": dataclasses.replace(
        SHIPPED, normalize=False, squared=False, dropout=0.0, motion="diff"
    ),
}


# ================================================================================================
# remedy: networks
# ================================================================================================
class AlexNetBN(Backbone):
    """AlexNet at 64 px with BatchNorm after every convolution and after fc6, no LRN (as later
    AlexNet re-implementations, e.g. torchvision-style "alexnet_bn"), Caffe's bvlc_alexnet layout
    otherwise: conv1 96 11x11/4 -> BN -> ReLU -> pool; conv2 256 5x5 g2 -> BN -> ReLU -> pool;
    conv3 384; conv4 384 g2; conv5 256 g2 -> pool5 -> adaptive pool -> fc6 4096 -> BN -> ReLU ->
    dropout -> fc7 ``embed_dim``. Convolutions before a BN have no bias.

    Why: with random init the plain AlexNet maps every frame to nearly the same point (per-dim
    spread ~1e-4 after L2 normalisation), so Lq starts at its trivial value; BN keeps every layer's
    output at unit scale per channel, so frames start far apart."""

    layer_names = ("conv1", "conv2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7")
    default_layer = "fc6"
    input_size = 227

    def __init__(
        self,
        embed_dim: int = 1024,
        fc6_dim: int = 4096,
        pool_size: int = 1,
        dropout: float = 0.0,
        in_channels: int = 3,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        check_init(init)
        self.embed_dim, self.num_features = embed_dim, fc6_dim
        conv = ((96, 11, 4, 0, 1), (256, 5, 1, 2, 2), (384, 3, 1, 1, 1), (384, 3, 1, 1, 2),
                (256, 3, 1, 1, 2))
        stages: dict[str, nn.Module] = {}
        cin = in_channels
        for i, (ch, k, s, p, g) in enumerate(conv, start=1):
            layers: list[nn.Module] = [
                nn.Conv2d(cin, ch, k, stride=s, padding=p, groups=g, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(inplace=True),
            ]
            if i <= 2:
                layers.append(nn.MaxPool2d(3, stride=2, ceil_mode=True))
            stages[f"conv{i}"] = nn.Sequential(*layers)
            cin = ch
        stages["pool5"] = nn.Sequential(
            nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.AdaptiveAvgPool2d(pool_size), nn.Flatten()
        )
        stages["fc6"] = nn.Sequential(
            nn.Linear(cin * pool_size * pool_size, fc6_dim, bias=False),
            nn.BatchNorm1d(fc6_dim),
            nn.ReLU(inplace=True),
        )
        stages["fc7"] = nn.Sequential(nn.Dropout(dropout), nn.Linear(fc6_dim, embed_dim))
        from collections import OrderedDict

        self._set_stages(OrderedDict(stages), init)

    def _caffe_init(self) -> None:
        raise NotImplementedError("alexnet_bn has no Caffe definition; use init='kaiming'")


def he_init(model: nn.Module) -> None:
    """He et al. (2015) init for ReLU networks: convolutions ``kaiming_normal_`` (fan_out, as
    ResNet/torchvision), linear layers ``kaiming_normal_`` (fan_in), biases 0, BatchNorm 1 / 0.

    Why: PyTorch's layer default (kaiming_uniform with a = sqrt(5)) shrinks activations by about
    1/sqrt(3) per layer; through AlexNet's 7 layers the fc7 output becomes tiny and nearly
    input-independent."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def widen_input(model: Backbone, in_channels: int) -> None:
    """Replace the first convolution by one that reads ``in_channels`` channels (RGB + motion),
    initialised the way the original was (its default init; :func:`he_init` may follow)."""
    first = model.stages[model.layer_names[0]]
    conv = first[0] if isinstance(first, nn.Sequential) else first
    assert isinstance(conv, nn.Conv2d)
    new = nn.Conv2d(
        in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
        padding=conv.padding, groups=conv.groups, bias=conv.bias is not None,
    )
    if isinstance(first, nn.Sequential):
        first[0] = new
    else:
        model.stages[model.layer_names[0]] = new


class ProjectionHead(nn.Module):
    """Linear -> BN -> ReLU -> Linear (SimCLR / VICReg), on top of the feature layer."""

    def __init__(self, cin: int, hidden: int, out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(cin, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def add_projection_head(model: Backbone, hidden: int, out: int, dropout: float) -> None:
    """Replace the backbone's embedding layer (AlexNet fc7, ResNet fc) by a
    :class:`ProjectionHead` fed by its discovery feature layer (fc6 / pool). The loss sees the head's
    output; discovery keeps using the feature layer *below* the head, which (SimCLR's observation)
    keeps more of what the loss does not ask for."""
    last = model.layer_names[-1]
    model.stages[last] = ProjectionHead(model.num_features, hidden, out, dropout)
    model.embed_dim = out


def build_network(r: Recipe) -> Backbone:
    """The recipe's network: backbone, input channels, init, head."""
    in_ch = {"none": 3, "diff": 6, "stack": 6, "diffonly": 3}[r.motion]
    if r.model == "alexnet_bn":
        net: Backbone = AlexNetBN(r.embed_dim, pool_size=r.pool_size, dropout=r.dropout,
                                  in_channels=in_ch)
    elif r.model in ("alexnet", "alexnet_lrcn"):
        net = build_model(r.model, embed_dim=r.embed_dim, pool_size=r.pool_size,
                          dropout=r.dropout)
    elif r.model == "resnet18":
        net = build_model("resnet18", embed_dim=r.embed_dim)
    else:
        raise ValueError(r.model)
    if in_ch != 3 and r.model != "alexnet_bn":
        widen_input(net, in_ch)
    if r.head == "mlp":
        add_projection_head(net, r.head_hidden, r.head_dim,
                            r.dropout if r.model != "resnet18" else 0.0)
    if r.init == "he":
        he_init(net)
    return net


# ================================================================================================
# remedy: input (standardisation, motion channels) and augmentation
# ================================================================================================
class InputPipeline:
    """Frames (uint8, NHWC) -> network input (float, NCHW).

    ``input_norm="mean"``: ``(x - mean) / 255`` per channel, as :func:`tcdn.train.to_input`.
    ``input_norm="meanstd"``: ``(x - mean) / std`` per channel (mean and std of the collection's
    frames; of the motion channels too).
    ``motion="diff"``: three more channels, ``x[t+1] - x[t]`` (the successor in the same video; the
    last frame uses ``x[t] - x[t-1]``); ``motion="stack"``: ``x[t+1]`` itself; ``motion="diffonly"``:
    the difference alone, no RGB (a diagnostic: no appearance channel at all). A single frame at
    feature-extraction time is therefore "the frame and its successor".
    Augmentation (when given) is applied to the frame and its successor with the same parameters,
    before the difference is taken."""

    def __init__(self, fs: FrameSet, norm: str, motion: str, seed: int = 0) -> None:
        self.frames = fs.frames
        self.norm, self.motion = norm, motion
        self.nxt = successor_index(fs)
        self.sign = np.ones(len(fs.frames), np.float32)
        self.sign[fs.offsets[1:] - 1] = -1.0  # last frame: backward difference
        mean = channel_mean(fs.frames, seed=seed) / 255.0
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(fs.frames), min(2000, len(fs.frames)), replace=False))
        sample = fs.frames[idx].astype(np.float32) / 255.0
        std = sample.reshape(-1, 3).std(axis=0)
        dsample = (fs.frames[self.nxt[idx]].astype(np.float32) / 255.0 - sample)
        dstd = dsample.reshape(-1, 3).std(axis=0)
        if norm == "mean":
            std = np.ones(3, np.float32)
            dstd = np.ones(3, np.float32)
        elif norm != "meanstd":
            raise ValueError(norm)
        if motion == "stack":
            m2, s2 = mean, std
        else:
            m2, s2 = np.zeros(3, np.float32), dstd
        self.mean = torch.tensor(np.concatenate([mean, m2]), dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(np.concatenate([std, s2]), dtype=torch.float32).view(1, -1, 1, 1)

    @staticmethod
    def _to01(frames: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0

    def __call__(self, idx: np.ndarray, augment: AppearanceAugment | None = None,
                 params: Any = None) -> Tensor:
        x = self._to01(self.frames[idx])
        if augment is not None:
            x = augment.apply_params(x, params)
        if self.motion != "none":
            y = self._to01(self.frames[self.nxt[idx]])
            if augment is not None:
                y = augment.apply_params(y, params)
            if self.motion in ("diff", "diffonly"):
                sign = torch.from_numpy(self.sign[idx]).view(-1, 1, 1, 1)
                y = (y - x) * sign
            if self.motion == "diffonly":
                x = (y - self.mean[:, 3:]) / self.std[:, 3:]
                return x.contiguous(memory_format=torch.channels_last)
            x = torch.cat([x, y], dim=1)
        c = x.shape[1]
        x = (x - self.mean[:, :c]) / self.std[:, :c]
        return x.contiguous(memory_format=torch.channels_last)


class TupleAugment:
    """Appearance augmentation (:class:`tcdn.augment.AppearanceAugment`, tcdn's defaults) drawn
    per frame (``mode="frame"``: the four frames of a tuple get independent parameters, so the loss
    asks for invariance to them) or per tuple (``mode="tuple"``: q, p, f and o share one draw, so
    colour/crop cannot tell o from q, but no invariance is asked between q and p)."""

    def __init__(self, mode: str, seed: int) -> None:
        if mode not in ("frame", "tuple"):
            raise ValueError(mode)
        self.mode = mode
        self.aug = AppearanceAugment()
        self.gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence([seed, 2]).generate_state(1)[0])
        )

    def params(self, k: int, batch: int) -> Any:
        """Parameters of the ``k * batch`` frames laid out column-major (all q, then all p, ...)."""
        if self.mode == "frame":
            return self.aug.sample_params(k * batch, self.gen)
        p = self.aug.sample_params(batch, self.gen)
        rows = torch.arange(batch).repeat(k)
        return p[rows]


# ================================================================================================
# remedy: losses
# ================================================================================================
def other_video_mask(videos: Tensor, k: int) -> Tensor:
    """``(B, k*B)`` bool: frame ``j`` of the batch (column-major q, p, f, o) belongs to a video other
    than query ``i``'s. ``videos`` is ``(k*B,)`` in the same layout."""
    b = len(videos) // k
    return videos[:b, None] != videos[None, :]


def multi_negative_lq(emb: Tensor, videos: Tensor, margin: float, *, squared: bool,
                      normalize: bool) -> Tensor:
    """Lq with every in-batch frame of another video as a negative:
    ``d(q,p) + mean_{n: video(n) != video(q)} max(0, d(q,f) - d(q,n) + margin)``.

    ``emb`` is ``(4, B, D)`` (q, p, f, o); ``videos`` ``(4*B,)``. With one negative per query it is
    :func:`tcdn.losses.quadruplet_loss`."""
    k, b, _ = emb.shape
    if normalize:
        emb = F.normalize(emb, dim=-1)
    q, p, f = emb[0], emb[1], emb[2]
    allf = emb.reshape(k * b, -1)
    d_qp = euclidean_distance(q, p, squared)
    d_qf = euclidean_distance(q, f, squared)
    sq = torch.cdist(q, allf).pow(2) if squared else torch.cdist(q, allf)
    mask = other_video_mask(videos, k).float()
    hinge = F.relu(d_qf[:, None] - sq + margin) * mask
    return (d_qp + hinge.sum(1) / mask.sum(1).clamp(min=1)).mean()


def temporal_info_nce(emb: Tensor, videos: Tensor, tau: float, far_positive: bool = True) -> Tensor:
    """InfoNCE for temporal coherence (TCE, Knights et al. 2020): cosine similarity / ``tau``;
    for each query the positive ``p`` (and, with ``far_positive``, the far frame ``f`` as a second
    positive, in its own softmax, as Lq ranks f before o) competes with every in-batch frame of
    another video. ``emb`` ``(4, B, D)``; ``videos`` ``(4*B,)``."""
    k, b, _ = emb.shape
    z = F.normalize(emb, dim=-1)
    q = z[0]
    allf = z.reshape(k * b, -1)
    sim = q @ allf.T / tau  # (B, 4B)
    neg = other_video_mask(videos, k)
    neg_logits = sim.masked_fill(~neg, float("-inf"))
    losses = []
    for col in ([1, 2] if far_positive else [1]):
        pos = (q * z[col]).sum(-1) / tau
        logits = torch.cat([pos[:, None], neg_logits], dim=1)
        losses.append(torch.logsumexp(logits, dim=1) - pos)
    return torch.stack(losses).mean()


def vicreg_regulariser(z: Tensor, eps: float = 1e-4) -> tuple[Tensor, Tensor]:
    """VICReg's (Bardes et al. 2022) anti-collapse terms on ``(N, D)`` embeddings: variance hinge
    ``mean_d max(0, 1 - sqrt(var_d + eps))`` and covariance ``sum_{i!=j} C_ij^2 / D``."""
    z = z - z.mean(0)
    std = torch.sqrt(z.var(0) + eps)
    var = F.relu(1 - std).mean()
    n, d = z.shape
    cov = (z.T @ z) / (n - 1)
    off = cov.pow(2).sum() - cov.diagonal().pow(2).sum()
    return var, off / d


def recipe_loss(r: Recipe, emb: Tensor, videos: Tensor) -> tuple[Tensor, dict[str, float]]:
    """The recipe's loss on ``emb`` ``(4, B, D)`` (and its parts, for the log)."""
    parts: dict[str, float] = {}
    if r.loss == "lq":
        main = quadruplet_loss(emb[0], emb[1], emb[2], emb[3], r.margin, squared=r.squared,
                               normalize=r.normalize)
    elif r.loss == "lq_multi":
        main = multi_negative_lq(emb, videos, r.margin, squared=r.squared, normalize=r.normalize)
    elif r.loss == "nce":
        main = temporal_info_nce(emb, videos, r.tau, r.far_positive)
    else:
        raise ValueError(r.loss)
    total = main
    parts["main"] = float(main.detach())
    if r.vicreg > 0:
        var, cov = vicreg_regulariser(emb.flatten(0, 1))
        total = total + r.vicreg * (var + cov / 25.0)
        parts["var"], parts["cov"] = float(var.detach()), float(cov.detach())
    return total, parts


# ================================================================================================
# remedy: hard negatives
# ================================================================================================
class HardNegativeMiner:
    """Frames of *other* videos that the current embedding puts closest to each frame.

    Every ``every`` steps (first at step 0) the loss embedding (L2-normalised) of every
    ``stride``-th frame is computed in eval mode; for each of those frames the ``k`` nearest frames
    of other videos are kept. A tuple's negative is then, with probability ``share``, one of its
    query's ``k`` nearest (the query's nearest mined frame of its own video stands for it).

    Why: where the same people act in every video, the nearest other-video frame of a frame is
    the same person doing something else, so the loss must separate *what*, not *who*."""

    def __init__(self, fs: FrameSet, share: float, k: int, every: int, seed: int,
                 stride: int = 2) -> None:
        self.share, self.k, self.every = share, k, every
        self.rng = np.random.default_rng([seed, 7])
        self.rows = np.flatnonzero(fs.frame_index % stride == 0)
        self.stride = stride
        self.video = fs.video_index
        self.table: np.ndarray | None = None  # (len(rows), k) global frame indices

    @torch.no_grad()
    def mine(self, net: Backbone, inputs: InputPipeline) -> None:
        was = net.training
        net.eval()
        embs = []
        for s in range(0, len(self.rows), 256):
            embs.append(F.normalize(net(inputs(self.rows[s:s + 256])), dim=-1))
        net.train(was)
        z = torch.cat(embs)
        sim = z @ z.T
        vid = torch.from_numpy(self.video[self.rows])
        sim.masked_fill_(vid[:, None] == vid[None, :], float("-inf"))
        nn_idx = sim.topk(self.k, dim=1).indices.numpy()
        self.table = self.rows[nn_idx]

    def replace(self, idx: np.ndarray, frame_index: np.ndarray) -> np.ndarray:
        """``idx`` ``(B, 4)`` tuples; returns a copy with some negatives replaced."""
        if self.table is None or self.share <= 0:
            return idx
        out = idx.copy()
        q = idx[:, 0]
        use = self.rng.random(len(q)) < self.share
        # the mined row of the query: the query's own frame rounded down to the mining stride
        mined = np.searchsorted(self.rows, q - frame_index[q] % self.stride)
        pick = self.rng.integers(0, self.k, len(q))
        out[use, 3] = self.table[mined[use], pick[use]]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "table": self.table}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.rng.bit_generator.state = s["rng"]
        self.table = s["table"]


# ================================================================================================
# remedy: optimisation
# ================================================================================================
def make_optimizer(r: Recipe, params: Any) -> torch.optim.Optimizer:
    """SGD with momentum and (coupled) weight decay, as tcdn; or AdamW (decoupled decay)."""
    if r.optimizer == "sgd":
        return torch.optim.SGD(params, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay)
    if r.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=r.lr, weight_decay=r.weight_decay)
    raise ValueError(r.optimizer)


def lr_factor(r: Recipe, step: int) -> float:
    """Linear warm-up over ``warmup`` steps, then constant or a cosine to 0 at ``steps``."""
    f = 1.0
    if r.schedule == "cosine":
        span = max(r.steps - r.warmup, 1)
        f = 0.5 * (1 + math.cos(math.pi * min(max(step - r.warmup, 0) / span, 1.0)))
    if r.warmup and step < r.warmup:
        f *= (step + 1) / r.warmup
    return f


# ================================================================================================
# evaluation
# ================================================================================================
def eval_rows(fs: FrameSet, stride: int) -> np.ndarray:
    return np.flatnonzero(fs.frame_index % stride == 0)


@torch.no_grad()
def features_of(net: Backbone, inputs: InputPipeline, rows: np.ndarray) -> np.ndarray:
    """Discovery features (the backbone's default layer, below any head) of ``rows``; eval mode,
    as :func:`tcdn.features.extract_features`."""
    was = net.training
    net.eval()
    out = [net.forward_features(inputs(rows[s:s + 256])).float().numpy()
           for s in range(0, len(rows), 256)]
    net.train(was)
    return np.concatenate(out)


@torch.no_grad()
def spreads(net: Backbone, inputs: InputPipeline, rows: np.ndarray) -> dict[str, float]:
    """Mean per-dimension std over ``rows`` (eval mode) of the loss embedding, of the
    L2-normalised embedding (the diagnosis's measure) and of the discovery features."""
    was = net.training
    net.eval()
    x = inputs(rows)
    emb = net(x)
    feat = net.forward_features(x)
    net.train(was)
    return {
        "spread_emb": float(emb.std(0).mean()),
        "spread_emb_l2": float(F.normalize(emb, dim=-1).std(0).mean()),
        "spread_feat": float(feat.std(0).mean()),
        "spread_feat_l2": float(F.normalize(feat, dim=-1).std(0).mean()),
    }


def score_features(feats: np.ndarray | list[np.ndarray], labels: np.ndarray,
                   performer: np.ndarray | None, video: np.ndarray, k: int) -> dict[str, Any]:
    """K-means (``KMEANS_SEEDS`` seeds) -> CE mean/std, NMI vs action, performer and video.
    ``feats`` may be a list (one array per repeat, e.g. a fresh random init per repeat)."""
    ce, nmi_a, nmi_p, nmi_v = [], [], [], []
    for s in range(KMEANS_SEEDS):
        f = feats[s] if isinstance(feats, list) else feats
        pred = kmeans(f, k, s)
        ce.append(conditional_entropy(labels, pred))
        nmi_a.append(normalized_mutual_info_score(labels, pred))
        nmi_v.append(normalized_mutual_info_score(video, pred))
        if performer is not None:
            nmi_p.append(normalized_mutual_info_score(performer, pred))
    out = {
        "ce_mean": float(np.mean(ce)), "ce_std": float(np.std(ce)), "ce_values": ce,
        "nmi_action": float(np.mean(nmi_a)), "nmi_video": float(np.mean(nmi_v)),
    }
    if performer is not None:
        out["nmi_performer"] = float(np.mean(nmi_p))
    return out


def set_labels(fs: FrameSet, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    labels = fs.frame_labels()[rows]
    video = fs.video_index[rows]
    performer = None
    if all(Path(v.name).stem.rsplit("_", 1)[-1].isdigit() for v in fs.videos) and any(
        "weizmann" in str(v.path) for v in fs.videos
    ):
        per_video = np.array([performer_of(v.name) for v in fs.videos])
        performer = per_video[video]
    return labels, performer, video


# ================================================================================================
# training
# ================================================================================================
def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_and_score(name: str, r: Recipe, set_name: str, seed: int) -> dict[str, Any]:
    """Train recipe ``r`` on ``set_name`` with ``seed``, score it, append to results.jsonl.
    Cached: a finished run is returned from runs/<id>/result.json; a killed run resumes from its
    last checkpoint (every 50 steps)."""
    run_id = f"{name}__{set_name}__s{seed}__{r.key()}"
    rdir = RUNS / run_id
    done = rdir / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    rdir.mkdir(parents=True, exist_ok=True)
    fs = load_dev_set(set_name)
    ds = DEV_SETS[set_name]
    torch.manual_seed(seed)
    net = build_network(r).to(memory_format=torch.channels_last)
    net.train()
    inputs = InputPipeline(fs, r.input_norm, r.motion, seed=seed)
    sampler = QuadrupletSampler(fs.lengths, window=r.window, far=r.far, seed=seed,
                                names=[v.name for v in fs.videos])
    aug = TupleAugment(r.augment, seed) if r.augment != "none" else None
    miner = (HardNegativeMiner(fs, r.hard_share, r.hard_k, r.hard_every, seed)
             if r.hard_share > 0 else None)
    opt = make_optimizer(r, net.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(r, s))
    video_of = torch.from_numpy(fs.video_index)
    frame_index = fs.frame_index
    probe = np.random.default_rng(123).choice(len(fs.frames), 256, replace=False)
    log: list[dict[str, Any]] = []
    step, seconds = 0, 0.0
    ckpt_path = rdir / "ckpt.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        sampler.load_state_dict(ck["sampler"])
        if aug is not None:
            aug.gen.set_state(ck["aug"])
        if miner is not None:
            miner.load_state_dict(ck["miner"])
        torch.set_rng_state(ck["torch_rng"])
        step, seconds, log, start_spread = ck["step"], ck["seconds"], ck["log"], ck["start_spread"]
    else:
        start_spread = spreads(net, inputs, probe)
    t0 = time.perf_counter() - seconds
    k = 4
    while step < r.steps:
        if miner is not None and step % r.hard_every == 0 and (miner.table is None or step > 0):
            miner.mine(net, inputs)
        idx = sampler.sample(r.batch_size)  # (B, 4) q, p, f, o
        if miner is not None:
            idx = miner.replace(idx, frame_index)
        flat = idx.T.reshape(-1)  # column-major: all q, then all p, ...
        x = inputs(flat, aug.aug if aug else None, aug.params(k, r.batch_size) if aug else None)
        out = net(x).float()
        emb = out.view(k, r.batch_size, -1)
        loss, parts = recipe_loss(r, emb, video_of[flat])
        if not torch.isfinite(loss):
            raise RuntimeError(f"loss {loss.item()} at step {step + 1}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if r.grad_clip:
            nn.utils.clip_grad_norm_(net.parameters(), r.grad_clip)
        opt.step()
        sched.step()
        step += 1
        if step == 1 or step % 10 == 0 or step == r.steps:
            e = out.detach()  # step 1: the initial weights, in train mode
            log.append({
                "step": step, "loss": float(loss.detach()), **parts,
                "spread": float(e.std(0).mean()),
                "spread_l2": float(F.normalize(e, dim=-1).std(0).mean()),
                "s": time.perf_counter() - t0,
            })
        if step % 50 == 0 and step < r.steps:
            _atomic_save({
                "model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                "sampler": sampler.state_dict(), "aug": aug.gen.get_state() if aug else None,
                "miner": miner.state_dict() if miner else None, "torch_rng": torch.get_rng_state(),
                "step": step, "seconds": time.perf_counter() - t0, "log": log,
                "start_spread": start_spread,
            }, ckpt_path)
    train_seconds = time.perf_counter() - t0
    end_spread = spreads(net, inputs, probe)
    rows = eval_rows(fs, ds.eval_stride)
    labels, performer, video = set_labels(fs, rows)
    t1 = time.perf_counter()
    feats = features_of(net, inputs, rows)
    scores = score_features(feats, labels, performer, video, len(np.unique(labels)))
    res = {
        "kind": "run", "recipe": name, "set": set_name, "seed": seed, "steps": r.steps,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(time.perf_counter() - t1, 1),
        "n_eval_frames": len(rows), "options": dataclasses.asdict(r), "recipe_key": r.key(),
        "arch_key": r.arch_key(),
        "start": start_spread, "end": end_spread,
        "loss_first": log[0]["loss"] if log else None,
        "loss_last": float(np.mean([e["loss"] for e in log[-5:]])) if log else None,
        **scores,
    }
    (rdir / "log.json").write_text(json.dumps(log))
    torch.save(net.state_dict(), rdir / "model.pt")
    done.write_text(json.dumps(res))
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(res) + "\n")
    if ckpt_path.exists():
        ckpt_path.unlink()
    return res


# ================================================================================================
# baselines
# ================================================================================================
def baselines(set_name: str, recipe_name: str | None = None, inits: int = KMEANS_SEEDS,
              raw: bool = True) -> list[dict[str, Any]]:
    """Random-init network of ``recipe_name``'s architecture (a fresh init per K-means repeat),
    raw pixels + PCA(128), random assignment. Cached per (set, architecture)."""
    fs = load_dev_set(set_name)
    ds = DEV_SETS[set_name]
    rows = eval_rows(fs, ds.eval_stride)
    labels, performer, video = set_labels(fs, rows)
    k = len(np.unique(labels))
    out = []
    cache = RUNS / "baselines"
    cache.mkdir(parents=True, exist_ok=True)

    def cached(tag: str, fn: Any) -> dict[str, Any]:
        p = cache / f"{set_name}__{tag}.json"
        if p.exists():
            return json.loads(p.read_text())
        t = time.perf_counter()
        res = {"kind": "baseline", "set": set_name, "baseline": tag, **fn(),
               "seconds": round(time.perf_counter() - t, 1)}
        p.write_text(json.dumps(res))
        with RESULTS.open("a") as fh:
            fh.write(json.dumps(res) + "\n")
        return res

    if raw:
        out.append(cached("raw_pixels_pca128", lambda: score_features(
            raw_pixel_features(fs.frames[rows], seed=0), labels, performer, video, k)))

        def rand() -> dict[str, Any]:
            ce, na = [], []
            for s in range(KMEANS_SEEDS):
                pred = np.random.default_rng([0, s]).integers(0, k, len(labels))
                ce.append(conditional_entropy(labels, pred))
                na.append(normalized_mutual_info_score(labels, pred))
            return {"ce_mean": float(np.mean(ce)), "ce_std": float(np.std(ce)),
                    "nmi_action": float(np.mean(na))}

        out.append(cached("random_assignment", rand))
    if recipe_name:
        r = RECIPES[recipe_name]

        def rinit() -> dict[str, Any]:
            inputs = InputPipeline(fs, r.input_norm, r.motion, seed=0)
            feats, sp = [], []
            probe = np.random.default_rng(123).choice(len(fs.frames), 256, replace=False)
            for rep in range(inits):
                torch.manual_seed(1000 + rep)
                net = build_network(r).to(memory_format=torch.channels_last)
                feats.append(features_of(net, inputs, rows))
                sp.append(spreads(net, inputs, probe))
            reps = [feats[i % inits] for i in range(KMEANS_SEEDS)]
            return {"arch_key": r.arch_key(), "arch_of": recipe_name, "inits": inits,
                    "spread": {k2: float(np.mean([s[k2] for s in sp])) for k2 in sp[0]},
                    **score_features(reps, labels, performer, video, k)}

        out.append(cached(f"random_init_{r.arch_key()}", rinit))
    return out


# ================================================================================================
# CLI
# ================================================================================================
def _print(res: dict[str, Any]) -> None:
    keys = ("recipe", "baseline", "set", "seed", "steps", "train_seconds", "ce_mean", "ce_std",
            "nmi_action", "nmi_performer", "nmi_video")
    print(json.dumps({k: res[k] for k in keys if k in res}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("run")
    a.add_argument("recipe")
    a.add_argument("set")
    a.add_argument("--seed", type=int, default=0)
    q = sub.add_parser("queue")
    q.add_argument("file")
    b = sub.add_parser("baselines")
    b.add_argument("set")
    b.add_argument("recipe", nargs="?")
    b.add_argument("--inits", type=int, default=KMEANS_SEEDS)
    args = ap.parse_args()
    if args.cmd == "run":
        _print(train_and_score(args.recipe, RECIPES[args.recipe], args.set, args.seed))
    elif args.cmd == "baselines":
        for res in baselines(args.set, args.recipe, args.inits):
            _print(res)
    else:
        # re-read the file after every run, so lines can be appended while the queue runs
        done: set[str] = set()
        while True:
            lines = [ln.split() for ln in Path(args.file).read_text().splitlines()
                     if ln.strip() and not ln.startswith("#")]
            todo = [ln for ln in lines if " ".join(ln) not in done]
            if not todo:
                break
            ln = todo[0]
            done.add(" ".join(ln))
            try:
                if ln[0] == "baselines":  # baselines SET [RECIPE [INITS]]
                    inits = int(ln[3]) if len(ln) > 3 else KMEANS_SEEDS
                    for res in baselines(ln[1], ln[2] if len(ln) > 2 else None, inits):
                        _print(res)
                else:
                    _print(train_and_score(ln[0], RECIPES[ln[0]], ln[1], int(ln[2])))
            except Exception as exc:  # keep the queue going; the failure is logged
                print(json.dumps({"failed": ln, "error": repr(exc)}), flush=True)


if __name__ == "__main__":
    main()
