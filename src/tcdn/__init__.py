"""tcdn: Temporal Coherency Deep Networks.

Learn visual features from unlabelled video with temporal-coherence losses (Siamese Ls,
Quadruplet Lq), then discover actions and scenes by clustering frames.

The package is laid out as the pipeline it runs, one room per stage (``ARCHITECTURE.md``):
``tcdn.data`` (videos -> frame store -> frame sets and tuple samplers), ``tcdn.losses``,
``tcdn.models``, ``tcdn.augment``, ``tcdn.training``, ``tcdn.features``, ``tcdn.discovery``,
``tcdn.report``, ``tcdn.search``, ``tcdn.flows`` (``tcdn discover`` as a function),
``tcdn.experiment``, ``tcdn.demo`` and ``tcdn.cli`` on top. The entry points a user calls are
offered here::

    import tcdn

    tcdn.ingest("videos/", "store/", tcdn.StoreSettings())         # decode once (optional)
    frames = tcdn.open_collection("store/", size=64)               # a store or a video folder
    run = tcdn.train(frames, tcdn.TrainConfig(image_size=64, steps=200), "runs/lq")
    ckpt = tcdn.load_checkpoint(run)
    feats = tcdn.frame_features(frames, "trained", ckpt)           # a FeatureSet
    found = tcdn.discover(frames, ckpt, tcdn.DiscoverConfig(k=4))   # or tcdn.discover(feats)
    print(tcdn.format_table(found.results))                        # no labels: K chosen if no k
    tcdn.write_results("out/", found.clustered, found.results, found.assignments)
    tcdn.write_report("out/", found, frames)                        # out/report.html

or, from paths to files, as the commands do (the outputs checked first, the folder locked)::

    tcdn.write_features("store/", "feats.npz", checkpoint="runs/lq")              # tcdn features
    found = tcdn.discover("store/", "runs/lq", tcdn.DiscoverConfig(), out="out/")  # tcdn discover
    found = tcdn.discover(features="feats.npz", out="out2/")                       # given features
    hits = tcdn.search_features("feats.npz", row=3, montage=None)                  # tcdn search
    print(hits.table())

Names are imported on first use, so ``import tcdn`` is light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcdn._lazy import lazy_exports
from tcdn.errors import TcdnError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tcdn.data.load import load_frames, open_collection
    from tcdn.data.store import StoreSettings, ingest
    from tcdn.discovery.choose_k import choose_k
    from tcdn.discovery.cluster import KMeans, SpectralClustering
    from tcdn.discovery.config import DiscoverConfig
    from tcdn.discovery.results import format_table, write_results
    from tcdn.features.extract import frame_features
    from tcdn.features.featureset import FeatureSet
    from tcdn.features.write import write_features
    from tcdn.flows import discover, search_features
    from tcdn.report.prepare import write_report
    from tcdn.training.checkpoint import load_checkpoint
    from tcdn.training.config import TrainConfig
    from tcdn.training.run import train
    from tcdn.transfer.run import finetune

__all__ = [
    "DiscoverConfig",
    "FeatureSet",
    "KMeans",
    "SpectralClustering",
    "StoreSettings",
    "TcdnError",
    "TrainConfig",
    "__version__",
    "choose_k",
    "discover",
    "finetune",
    "format_table",
    "frame_features",
    "ingest",
    "load_checkpoint",
    "load_frames",
    "open_collection",
    "search_features",
    "train",
    "write_features",
    "write_report",
    "write_results",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ingest": "tcdn.data.store",
        "StoreSettings": "tcdn.data.store",
        "load_frames": "tcdn.data.load",
        "open_collection": "tcdn.data.load",
        "TrainConfig": "tcdn.training.config",
        "train": "tcdn.training.run",
        "load_checkpoint": "tcdn.training.checkpoint",
        "frame_features": "tcdn.features.extract",
        "FeatureSet": "tcdn.features.featureset",
        "DiscoverConfig": "tcdn.discovery.config",
        "discover": "tcdn.flows",
        "write_features": "tcdn.features.write",
        "search_features": "tcdn.flows",
        "finetune": "tcdn.transfer.run",
        "format_table": "tcdn.discovery.results",
        "write_results": "tcdn.discovery.results",
        "KMeans": "tcdn.discovery.cluster",
        "SpectralClustering": "tcdn.discovery.cluster",
        "choose_k": "tcdn.discovery.choose_k",
        "write_report": "tcdn.report.prepare",
    },
)
