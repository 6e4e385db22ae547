"""Transfer: the features learned from unlabelled video as the initialisation of a supervised
classifier (SPEC §6), against a random initialisation of the same network.

- :mod:`~tcdn.transfer.config`: :class:`FinetuneConfig` and the names it chooses from (no torch);
- :mod:`~tcdn.transfer.images`: labelled images from CIFAR-10, Fashion-MNIST, PASCAL VOC 2012
  action, image folders and labelled video collections (no torch);
- :mod:`~tcdn.transfer.splits`: k-shot samples, held-out splits by video, the fixed test sample;
- :mod:`~tcdn.transfer.classifier`: the classifier of a checkpoint's network and the weight
  transfer with its account;
- :mod:`~tcdn.transfer.finetune`: one fine-tuning run (schedule, augmentation, evaluation each
  epoch, best and last checkpoints, exact resume);
- :mod:`~tcdn.transfer.probe`: linear probe and k-nearest neighbours on frozen features;
- :mod:`~tcdn.transfer.protocol`: repeats x inits x protocols (:func:`run_transfer`);
- :mod:`~tcdn.transfer.results`: ``results.json`` and the table;
- :mod:`~tcdn.transfer.run`: ``tcdn finetune`` as a function (``tcdn.transfer.run.finetune``,
  offered as ``tcdn.finetune``: here the name is the module :mod:`~tcdn.transfer.finetune`'s).

Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcdn._lazy import lazy_exports

if TYPE_CHECKING:
    from tcdn.transfer.classifier import Classifier, build_classifier, transfer_weights
    from tcdn.transfer.config import FinetuneConfig
    from tcdn.transfer.images import (
        LabelledData,
        read_cifar10,
        read_dataset,
        read_fashion_mnist,
        read_image_folder,
        read_voc_action,
        video_frames,
    )
    from tcdn.transfer.protocol import run_transfer
    from tcdn.transfer.results import format_table, write_results

__all__ = [
    "Classifier",
    "FinetuneConfig",
    "LabelledData",
    "build_classifier",
    "format_table",
    "read_cifar10",
    "read_dataset",
    "read_fashion_mnist",
    "read_image_folder",
    "read_voc_action",
    "run_transfer",
    "transfer_weights",
    "video_frames",
    "write_results",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Classifier": "tcdn.transfer.classifier",
        "build_classifier": "tcdn.transfer.classifier",
        "transfer_weights": "tcdn.transfer.classifier",
        "FinetuneConfig": "tcdn.transfer.config",
        "LabelledData": "tcdn.transfer.images",
        "read_cifar10": "tcdn.transfer.images",
        "read_dataset": "tcdn.transfer.images",
        "read_fashion_mnist": "tcdn.transfer.images",
        "read_image_folder": "tcdn.transfer.images",
        "read_voc_action": "tcdn.transfer.images",
        "video_frames": "tcdn.transfer.images",
        "run_transfer": "tcdn.transfer.protocol",
        "format_table": "tcdn.transfer.results",
        "write_results": "tcdn.transfer.results",
    },
)
