"""Small labelled-image datasets written in their official layouts, and tiny checkpoints."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from PIL import Image

from tcdn.training.config import TrainConfig
from tcdn.transfer.images import CIFAR10_FILES, VOC_ACTIONS

CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


class Py2Pickler(pickle._Pickler):  # type: ignore[name-defined, misc]
    """Pickles as Python 2's cPickle wrote CIFAR's batches: protocol 2, every ``str`` and
    ``bytes`` as a Python 2 string (``SHORT_BINSTRING`` / ``BINSTRING``)."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def _save_string(self, obj: Any, data: bytes) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    def save_bytes(self, obj: bytes) -> None:
        self._save_string(obj, obj)

    def save_str(self, obj: str) -> None:
        self._save_string(obj, obj.encode("latin1"))

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def py2_pickle(obj: Any) -> bytes:
    """``obj`` as the CIFAR-10 files hold it, NumPy named as NumPy 1 did (``numpy.core``)."""
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def write_cifar10(root: Path, per_batch: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """``root/cifar-10-batches-py`` with 5 training batches and a test batch of ``per_batch``
    random images each; returns the ``(N, 32, 32, 3)`` images and labels written."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {"train_x": [], "train_y": [], "test_x": [], "test_y": []}
    for name in (*CIFAR10_FILES, "test_batch"):
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        data = images.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # R plane, G, B
        batch = {
            b"batch_label": f"{name} of 5".encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
        }
        (folder / name).write_bytes(py2_pickle(batch))
        split = "test" if name == "test_batch" else "train"
        out[f"{split}_x"].append(images)
        out[f"{split}_y"].append(np.array(labels))
    meta = {
        b"label_names": [c.encode() for c in CIFAR_CLASSES],
        b"num_cases_per_batch": per_batch,
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    return {k: np.concatenate(v) for k, v in out.items()}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An idx file of unsigned bytes (gzip-compressed if ``path`` ends in ``.gz``)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def write_fashion_mnist(root: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> dict:
    rng = np.random.default_rng(3)
    ext = ".gz" if gz else ""
    data = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    write_idx(root / f"train-images-idx3-ubyte{ext}", data["train_x"])
    write_idx(root / f"train-labels-idx1-ubyte{ext}", data["train_y"])
    write_idx(root / f"t10k-images-idx3-ubyte{ext}", data["test_x"])
    write_idx(root / f"t10k-labels-idx1-ubyte{ext}", data["test_y"])
    return data


#: the colour of the box of each action in the VOC fixture (crops are checked by their colour)
def action_colour(action: int) -> tuple[int, int, int]:
    return (20 * action + 30, 250 - 20 * action, 128)


def _voc_xml(image_id: str, people: list[tuple[dict[str, int], tuple[int, int, int, int]]]) -> str:
    objects = []
    for flags, (x0, y0, x1, y1) in people:
        actions = "".join(f"<{a}>{flags.get(a, 0)}</{a}>" for a in (*VOC_ACTIONS, "other"))
        objects.append(
            "<object><name>person</name><pose>Unspecified</pose>"
            f"<actions>{actions}</actions>"
            f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>"
            "</object>"
        )
    return (
        f"<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>"
        "<size><width>80</width><height>60</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{''.join(objects)}</annotation>"
    )


def write_voc(root: Path) -> Path:
    """``root/VOCdevkit/VOC2012`` with action annotations: train images hold one person per
    action (0-9) plus one doing 'other' and one doing two actions (both left out); val images
    hold one person each. Each person's box is filled with :func:`action_colour`."""
    voc = root / "VOCdevkit" / "VOC2012"
    for d in ("Annotations", "JPEGImages", "ImageSets/Action"):
        (voc / d).mkdir(parents=True)
    splits: dict[str, list[str]] = {"train": [], "val": []}
    for split, per_action in (("train", 1), ("val", 2)):
        for a in range(len(VOC_ACTIONS)):
            for j in range(per_action):
                image_id = f"2011_{split[0]}{a:02d}{j}"
                canvas = np.full((60, 80, 3), 0, np.uint8)
                box = (11 + 3 * j, 6, 40 + 3 * j, 45)  # 1-based, inclusive
                canvas[box[1] - 1 : box[3], box[0] - 1 : box[2]] = action_colour(a)
                people = [({VOC_ACTIONS[a]: 1}, box)]
                if split == "train" and a == 0:
                    people.append(({"other": 1}, (50, 5, 70, 50)))
                    people.append(({"jumping": 1, "running": 1}, (45, 10, 75, 55)))
                Image.fromarray(canvas).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=95)
                (voc / "Annotations" / f"{image_id}.xml").write_text(_voc_xml(image_id, people))
                splits[split].append(image_id)
    for split, ids in splits.items():
        (voc / "ImageSets" / "Action" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return voc


def write_image_folder(root: Path, classes: dict[str, int], size: int = 12, seed: int = 0) -> Path:
    """``root/<class>/img_NN.png``: ``classes[name]`` images per class, each a flat colour that
    depends on the class (so a classifier can learn them)."""
    rng = np.random.default_rng(seed)
    for c, (name, n) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            base = np.array([60 * c + 20, 200 - 60 * c, 100], np.int64)
            noise = rng.integers(-10, 11, (size, size, 3))
            img = np.clip(base + noise, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"img_{i:02d}.png")
    return root


def cifar_checkpoint(seed: int = 0, embed_dim: int = 8, **config: Any) -> dict[str, Any]:
    """A checkpoint dict of an untrained cifar10_quick at 32x32 (as :func:`load_checkpoint`
    returns it)."""
    cfg = TrainConfig(model="cifar10_quick", image_size=32, embed_dim=embed_dim, **config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cfg.build_model()
    return {
        "config": cfg.to_dict(),
        "model": model.state_dict(),
        "mean": np.array([100.0, 110.0, 120.0], np.float32),
        "path": "cifar.pt",
        "step": 0,
    }


@pytest.fixture(scope="session")
def cifar_ckpt() -> dict[str, Any]:
    return cifar_checkpoint()
