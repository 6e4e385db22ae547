"""Labelled images for transfer experiments, read from their official on-disk layouts (SPEC §6).

Every reader returns a :class:`LabelledData`: a training :class:`ImageSet` and, where the layout
has an official test split, a test one. An image set holds its labels and names in memory and
reads the images themselves on demand (``ImageSet.read(rows)``), as ``(n, size, size, 3)``
``uint8`` RGB, scaled to ``size x size`` (the whole image squashed, as the frames of a video
are); so a k-shot experiment decodes only the images it uses.

- :func:`read_cifar10`: CIFAR-10's python batches. They are pickles; they are read with
  :class:`BatchUnpickler`, which builds nothing but NumPy arrays and plain containers (a pickle
  that names anything else is refused, never run).
- :func:`read_fashion_mnist`: Fashion-MNIST's idx files (``.gz`` or not), grey copied to RGB.
- :func:`read_voc_action`: PASCAL VOC 2012 action: the person boxes of the XML annotations,
  cropped, labelled with their one action among the 10.
- :func:`read_image_folder`: ``<class>/<image>`` folders, optionally under ``train/`` and
  ``test/`` (or ``val/``).
- :func:`video_frames`: the frames of a labelled video collection, grouped by video so that a
  split never puts one video on both sides.

This module imports no torch.
"""

from __future__ import annotations

import gzip
import importlib
import logging
import pickle
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tcdn.data.collection import IMAGE_EXTENSIONS, first_few
from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)

CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: where Debian's ``dataset-fashion-mnist`` package puts the files
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
#: PASCAL VOC 2012's action classes, in the devkit's order (``other`` is not one of the 10)
VOC_ACTIONS = (
    "jumping",
    "phoning",
    "playinginstrument",
    "reading",
    "ridingbike",
    "ridinghorse",
    "running",
    "takingphoto",
    "usingcomputer",
    "walking",
)


@dataclass
class ImageSet:
    """The labelled images of one split.

    Attributes
    ----------
    labels
        ``(N,)`` int64 index into ``classes``.
    classes
        The class names, shared by every split of a dataset.
    names
        A name per image, for messages and results (a file, a box, a video frame).
    reader
        ``rows -> (len(rows), size, size, 3)`` uint8; use :meth:`read`.
    size
        The side of the images ``reader`` returns.
    groups
        ``(N,)`` int64, the video each image comes from (``None``: independent images).
    group_names
        The name of each group.
    successor
        Video frames only: ``rows -> (images, sign)``, each row's successor in its video and the
        sign of :func:`tcdn.models.input.successor_rows` (what motion input needs); use
        :meth:`read_successors`.
    """

    labels: np.ndarray
    classes: list[str]
    names: list[str]
    reader: Callable[[np.ndarray], np.ndarray]
    size: int
    groups: np.ndarray | None = None
    group_names: list[str] | None = None
    successor: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The images ``rows`` as ``(n, size, size, 3)`` uint8."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.asarray(self.reader(rows))
        if out.shape != (len(rows), self.size, self.size, 3) or out.dtype != np.uint8:
            raise AssertionError(f"reader returned {out.shape} {out.dtype}")  # a reader's bug
        return out

    def read_successors(self, rows: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The successor of each of ``rows`` in its video, ``(n, size, size, 3)`` uint8, and the
        ``(n,)`` float32 sign of the difference (-1 at a video's last frame, whose predecessor
        stands in)."""
        if self.successor is None:
            raise TcdnError(
                "these images are not video frames: they have no successor for motion input"
            )
        rows = np.asarray(rows, dtype=np.int64)
        images, sign = self.successor(rows)
        if images.shape != (len(rows), self.size, self.size, 3) or images.dtype != np.uint8:
            raise AssertionError(f"successor reader returned {images.shape} {images.dtype}")
        return images, np.asarray(sign, np.float32)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.classes))


@dataclass
class LabelledData:
    """A dataset read from disk: its training split and, if it has one, its official test split."""

    dataset: str
    source: str
    train: ImageSet
    test: ImageSet | None

    @property
    def classes(self) -> list[str]:
        return self.train.classes


# -- shared helpers -------------------------------------------------------------------------------
def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3)`` or ``(H, W)`` uint8 -> ``(size, size, 3)`` uint8 (squashed, bilinear)."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[:2] == (size, size):
        return np.ascontiguousarray(image)
    pil = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.uint8)


def _array_reader(images: np.ndarray, size: int) -> Callable[[np.ndarray], np.ndarray]:
    """Rows of an in-memory ``(N, H, W)`` or ``(N, H, W, 3)`` uint8 array, scaled to ``size``."""

    def read(rows: np.ndarray) -> np.ndarray:
        chosen = images[rows]
        if chosen.ndim == 3:  # grey -> RGB
            chosen = np.repeat(chosen[..., None], 3, axis=3)
        if chosen.shape[1:3] == (size, size):
            return np.ascontiguousarray(chosen)
        out = np.empty((len(rows), size, size, 3), np.uint8)
        for i, image in enumerate(chosen):
            out[i] = resize_rgb(image, size)
        return out

    return read


def _open_rgb(path: Path, box: tuple[int, int, int, int] | None = None) -> Image.Image:
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        return rgb.crop(box) if box is not None else rgb
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise TcdnError(f"cannot read image {path}: {exc}; replace or remove the file") from None


def _check_size(size: int) -> None:
    if size < 8:
        raise TcdnError(f"--size {size} is too small: give an image side of at least 8 pixels")


# -- CIFAR-10 -------------------------------------------------------------------------------------
def _numpy_reconstruct() -> Any:
    """NumPy's array rebuilder, ``numpy._core`` (NumPy 2) or ``numpy.core`` (NumPy 1)."""
    try:
        return importlib.import_module("numpy._core.multiarray")._reconstruct
    except ImportError:
        return importlib.import_module("numpy.core.multiarray")._reconstruct


def _latin1_encode(text: str, encoding: str) -> bytes:
    """What Python 3 pickles ``bytes`` with at protocol 2 (``_codecs.encode(text, "latin1")``),
    and nothing more: any other codec is refused."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r}")
    return text.encode("latin1")


class BatchUnpickler(pickle.Unpickler):
    """Reads CIFAR's python batches and nothing else: the only objects a pickle may name are those
    a NumPy array needs to be rebuilt (``_reconstruct``, ``ndarray``, ``dtype``, under NumPy 1's
    and NumPy 2's module names) and the latin-1 encoding of a Python 3 protocol-2 ``bytes``. Dicts,
    lists, bytes, strings and numbers need no name. Anything else (``os.system``,
    ``builtins.eval``...) is refused with :class:`pickle.UnpicklingError` before it is looked up,
    so nothing in the file runs."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy", "ndarray"): lambda: np.ndarray,
            ("numpy", "dtype"): lambda: np.dtype,
            ("_codecs", "encode"): lambda: _latin1_encode,
        }
        make = allowed.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return make()


def load_batch(path: Path) -> dict[str, Any]:
    """One CIFAR python batch (or ``batches.meta``) as a dict with ``str`` keys, read with
    :class:`BatchUnpickler`."""
    try:
        with path.open("rb") as fh:
            data = BatchUnpickler(fh, encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise TcdnError(
            f"{path} is not a CIFAR-10 python batch ({exc}); it was not loaded: use the official "
            "cifar-10-python.tar.gz files"
        ) from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise TcdnError(f"cannot read CIFAR-10 batch {path}: {exc}") from None
    if not isinstance(data, dict):
        raise TcdnError(f"{path} is not a CIFAR-10 python batch (expected a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in data.items()}


def _cifar_images(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = load_batch(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise TcdnError(f"{path}: 'data' is not an (N, 3072) array: not a CIFAR-10 python batch")
    if not isinstance(labels, list) or len(labels) != len(data):
        raise TcdnError(f"{path}: 'labels' is not a list of {len(data)} numbers")
    y = np.asarray(labels, dtype=np.int64)
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise TcdnError(f"{path}: labels must be 0-9, found {y.min()}..{y.max()}")
    # each row: 1024 red, 1024 green, 1024 blue values, each a 32x32 image in row-major order
    images = data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), y


def read_cifar10(root: str | Path, size: int = 32) -> LabelledData:
    """CIFAR-10 from the official python version: ``data_batch_1`` .. ``data_batch_5`` (50,000
    training images), ``test_batch`` (10,000) and ``batches.meta``, in ``root`` or in
    ``root/cifar-10-batches-py``."""
    _check_size(size)
    root = Path(root)
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [*CIFAR10_FILES, "test_batch", "batches.meta"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise TcdnError(
            f"CIFAR-10: {first_few(missing)} not found in {folder}: extract the official "
            "cifar-10-python.tar.gz there"
        )
    meta = load_batch(folder / "batches.meta")
    raw_names = meta.get("label_names")
    if not isinstance(raw_names, list) or len(raw_names) != 10:
        raise TcdnError(f"{folder / 'batches.meta'}: 'label_names' is not a list of 10 names")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in raw_names]
    parts = [_cifar_images(folder / n) for n in CIFAR10_FILES]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = _cifar_images(folder / "test_batch")

    def image_set(x: np.ndarray, y: np.ndarray, split: str) -> ImageSet:
        return ImageSet(
            y, classes, [f"{split}:{i}" for i in range(len(y))], _array_reader(x, size), size
        )

    log.info("CIFAR-10: %d training and %d test images from %s", len(train_y), len(test_y), folder)
    return LabelledData(
        "cifar10",
        str(folder),
        image_set(train_x, train_y, "train"),
        image_set(test_x, test_y, "test"),
    )


# -- Fashion-MNIST ---------------------------------------------------------------------------------
def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format; gzip-compressed if its name ends in ``.gz``) of unsigned
    bytes as an array of its dimensions."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TcdnError(f"cannot read idx file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise TcdnError(f"{path} is not an idx file (bad magic number)")
    if raw[2] != 0x08:
        raise TcdnError(f"{path}: idx data type 0x{raw[2]:02x} is not unsigned bytes (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise TcdnError(f"{path}: truncated idx header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise TcdnError(
            f"{path}: the header says {'x'.join(map(str, dims))} = {expected} bytes but the file "
            f"holds {len(raw) - header}: the file is truncated or damaged"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise TcdnError(
        f"Fashion-MNIST: {stem}(.gz) not found in {folder}: give the folder of the official idx "
        f"files (Debian's dataset-fashion-mnist package installs them in {FASHION_MNIST_DEBIAN})"
    )


def read_fashion_mnist(root: str | Path, size: int = 28) -> LabelledData:
    """Fashion-MNIST from its idx files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each possibly ``.gz``). The grey
    28x28 images are copied into three channels and scaled to ``size``."""
    _check_size(size)
    folder = Path(root)

    def split(prefix: str) -> ImageSet:
        images = read_idx(_idx_file(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_idx_file(folder, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise TcdnError(
                f"Fashion-MNIST {prefix}: {images.shape} images do not match {labels.shape} labels"
            )
        if len(labels) and labels.max() >= len(FASHION_MNIST_CLASSES):
            raise TcdnError(f"Fashion-MNIST {prefix}: label {labels.max()} is not 0-9")
        return ImageSet(
            labels.astype(np.int64),
            list(FASHION_MNIST_CLASSES),
            [f"{prefix}:{i}" for i in range(len(labels))],
            _array_reader(images, size),
            size,
        )

    train, test = split("train"), split("t10k")
    log.info("Fashion-MNIST: %d training and %d test images from %s", len(train), len(test), folder)
    return LabelledData("fashion_mnist", str(folder), train, test)


# -- PASCAL VOC 2012 action -------------------------------------------------------------------------
def _voc_folder(root: Path) -> Path:
    for c in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (c / "Annotations").is_dir() and (c / "ImageSets" / "Action").is_dir():
            return c
    raise TcdnError(
        f"PASCAL VOC 2012 not found in {root} (looked for Annotations/ and ImageSets/Action/ in it, "
        "in VOC2012/ and in VOCdevkit/VOC2012/): extract VOCtrainval_11-May-2012.tar there"
    )


def _voc_boxes(xml_path: Path, image_id: str) -> tuple[list[tuple[int, int, int, int, int]], int]:
    """The boxes with exactly one of the 10 actions in one annotation: ``(action, x0, y0, x1, y1)``
    in PIL's crop coordinates, and the number of annotated people left out (no action among the
    10, i.e. ``other``, or several)."""
    try:
        tree = ET.parse(xml_path)
    except (OSError, ET.ParseError) as exc:
        raise TcdnError(f"cannot read VOC annotation {xml_path}: {exc}") from None
    boxes, left_out = [], 0
    for obj in tree.getroot().iter("object"):
        actions = obj.find("actions")
        if actions is None:
            continue
        flags = {child.tag: (child.text or "0").strip() for child in actions}
        on = [i for i, a in enumerate(VOC_ACTIONS) if flags.get(a) == "1"]
        if len(on) != 1:
            left_out += 1
            continue
        bb = obj.find("bndbox")
        try:
            assert bb is not None
            x0, y0, x1, y1 = (
                round(float(bb.findtext(t) or "")) for t in ("xmin", "ymin", "xmax", "ymax")
            )
        except (AssertionError, ValueError):
            raise TcdnError(f"{xml_path}: a person of {image_id} has no valid <bndbox>") from None
        if x1 < x0 or y1 < y0:
            raise TcdnError(f"{xml_path}: an empty box ({x0}, {y0}, {x1}, {y1})")
        # VOC boxes are 1-based and include their last pixel
        boxes.append((on[0], x0 - 1, y0 - 1, x1, y1))
    return boxes, left_out


def read_voc_action(root: str | Path, size: int = 227) -> LabelledData:
    """PASCAL VOC 2012 action: every annotated person of the ``train`` images (training split) and
    of the ``val`` images (test split: the test set's labels are not public) cropped to its box,
    labelled with its action among the 10 (``other`` and people doing several are left out).

    ``root`` is ``VOCdevkit/VOC2012`` (or a folder above it) holding ``Annotations/<id>.xml``,
    ``JPEGImages/<id>.jpg`` and ``ImageSets/Action/{train,val}.txt``.
    """
    _check_size(size)
    folder = _voc_folder(Path(root))
    classes = list(VOC_ACTIONS)

    def split(name: str) -> ImageSet:
        listing = folder / "ImageSets" / "Action" / f"{name}.txt"
        if not listing.is_file():
            raise TcdnError(f"PASCAL VOC: {listing} not found: extract the whole devkit there")
        ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        labels, names, crops = [], [], []
        missing, left_out = [], 0
        for image_id in ids:
            xml_path = folder / "Annotations" / f"{image_id}.xml"
            jpg = folder / "JPEGImages" / f"{image_id}.jpg"
            if not xml_path.is_file() or not jpg.is_file():
                missing.append(image_id)
                continue
            boxes, skipped = _voc_boxes(xml_path, image_id)
            left_out += skipped
            for k, (action, *box) in enumerate(boxes):
                labels.append(action)
                names.append(f"{image_id}/person{k + 1}")
                crops.append((jpg, tuple(box)))
        if missing:
            raise TcdnError(
                f"{listing} names {len(missing)} image(s) without Annotations/<id>.xml or "
                f"JPEGImages/<id>.jpg in {folder}: {first_few(missing)}"
            )
        if not labels:
            raise TcdnError(f"PASCAL VOC: no person with one of the 10 actions in {listing}")
        log.info(
            "PASCAL VOC %s: %d person crops from %d images (%d people with no or several actions left out)",
            name,
            len(labels),
            len(ids),
            left_out,
        )

        def read(rows: np.ndarray) -> np.ndarray:
            out = np.empty((len(rows), size, size, 3), np.uint8)
            for i, r in enumerate(rows.tolist()):
                path, box = crops[r]
                out[i] = resize_rgb(np.asarray(_open_rgb(path, box)), size)
            return out

        return ImageSet(np.asarray(labels, np.int64), classes, names, read, size)

    return LabelledData("voc_action", str(folder), split("train"), split("val"))


# -- ImageFolder -------------------------------------------------------------------------------------
def _class_images(folder: Path) -> dict[str, list[Path]]:
    found = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p
            for p in sub.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
        )
        if files:
            found[sub.name] = files
    return found


def read_image_folder(root: str | Path, size: int = 227) -> LabelledData:
    """Images in class folders: ``root/<class>/**/<image>`` (no official test split), or
    ``root/train/<class>/...`` beside ``root/test/<class>/...`` (or ``root/val/``)."""
    _check_size(size)
    root = Path(root)
    if not root.is_dir():
        raise TcdnError(f"image folder {root} does not exist")
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        splits = {"train": _class_images(root / "train"), "test": _class_images(test_dir)}
    else:
        splits = {"train": _class_images(root)}
    classes = sorted(splits["train"])
    if len(classes) < 2:
        raise TcdnError(
            f"{root}: found {len(classes)} class folder(s) with images; an image folder needs at "
            f"least 2 (<class>/<image> with {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    if "test" in splits:
        extra = sorted(set(splits["test"]) - set(classes))
        if extra:
            raise TcdnError(
                f"{test_dir} has classes the training split lacks: {first_few(extra)}; "
                f"give {root / 'train'} a folder of images for each"
            )

    def image_set(per_class: dict[str, list[Path]]) -> ImageSet:
        files = [(c, f) for c in classes for f in per_class.get(c, [])]
        labels = np.asarray([classes.index(c) for c, _ in files], np.int64)
        paths = [f for _, f in files]

        def read(rows: np.ndarray) -> np.ndarray:
            out = np.empty((len(rows), size, size, 3), np.uint8)
            for i, r in enumerate(rows.tolist()):
                out[i] = resize_rgb(np.asarray(_open_rgb(paths[r])), size)
            return out

        return ImageSet(labels, classes, [str(p.relative_to(root)) for p in paths], read, size)

    train = image_set(splits["train"])
    test = image_set(splits["test"]) if "test" in splits else None
    log.info(
        "image folder %s: %d classes, %d training%s images",
        root,
        len(classes),
        len(train),
        f" and {len(test)} test" if test is not None else "",
    )
    return LabelledData("imagefolder", str(root), train, test)


# -- video frames ------------------------------------------------------------------------------------
def video_frames(frames: FrameSet, source: str = "") -> LabelledData:
    """Every frame of a labelled collection as a labelled image, grouped by its video (there is no
    official split: split it with :func:`tcdn.transfer.splits.split_rows`, which keeps each video
    on one side)."""
    labels = frames.frame_labels()  # TcdnError when a video has no label
    size = int(frames.frames.shape[1])
    names = [v.name for v in frames.videos]
    vid, pos = frames.video_index, frames.frame_index

    def read(rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros((0, size, size, 3), np.uint8)
        order = np.argsort(rows, kind="stable")  # a store reads sorted rows fastest
        out = np.empty((len(rows), size, size, 3), np.uint8)
        out[order] = np.asarray(frames.frames[rows[order]])
        return out

    def successor(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from tcdn.models.input import successor_rows  # torch: only for motion input

        nxt, sign = successor_rows(frames.offsets)
        return read(nxt[rows]), sign[rows]

    train = ImageSet(
        labels,
        frames.class_names,
        [f"{names[v]}#{p}" for v, p in zip(vid.tolist(), pos.tolist(), strict=True)],
        read,
        size,
        groups=vid.astype(np.int64),
        group_names=names,
        successor=successor,
    )
    return LabelledData("videos", source, train, None)


def read_dataset(name: str, root: str | Path, size: int) -> LabelledData:
    """The image dataset ``name`` (not ``videos``: see :func:`video_frames`) at ``root``."""
    readers: dict[str, Callable[[Path, int], LabelledData]] = {
        "cifar10": read_cifar10,
        "fashion_mnist": read_fashion_mnist,
        "voc_action": read_voc_action,
        "imagefolder": read_image_folder,
    }
    if name not in readers:
        raise TcdnError(f"unknown image dataset {name!r}; choose one of {', '.join(readers)}")
    root = Path(root)
    if not root.exists():
        raise TcdnError(f"{root} does not exist: give the folder of the {name} dataset")
    return readers[name](root, size)
