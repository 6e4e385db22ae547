"""Readers of labelled images (``tcdn.transfer.images``), each on a fixture in its official layout."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.transfer.images import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DEBIAN,
    VOC_ACTIONS,
    BatchUnpickler,
    read_cifar10,
    read_dataset,
    read_fashion_mnist,
    read_idx,
    read_image_folder,
    read_voc_action,
    video_frames,
)
from tests.transfer.conftest import (
    CIFAR_CLASSES,
    action_colour,
    py2_pickle,
    write_cifar10,
    write_fashion_mnist,
    write_idx,
    write_image_folder,
    write_voc,
)


# -- CIFAR-10 -------------------------------------------------------------------------------------
def test_cifar10_reads_the_python_batches(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path, per_batch=4)
    data = read_cifar10(tmp_path, size=32)
    assert data.classes == CIFAR_CLASSES
    assert len(data.train) == 20 and data.test is not None and len(data.test) == 4
    np.testing.assert_array_equal(data.train.labels, written["train_y"])
    np.testing.assert_array_equal(data.train.read(np.arange(20)), written["train_x"])
    np.testing.assert_array_equal(data.test.read([3, 0]), written["test_x"][[3, 0]])
    # the file layout: row i of 'data' is 1024 red, 1024 green, 1024 blue values
    img = written["train_x"][5]
    assert data.train.read([5])[0, 2, 7, 1] == img[2, 7, 1]


def test_cifar10_batches_folder_given_directly_and_resized(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=2)
    data = read_cifar10(tmp_path / "cifar-10-batches-py", size=40)
    assert data.train.read([0, 1]).shape == (2, 40, 40, 3)


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    for payload in (
        pickle.dumps({b"data": Evil()}, protocol=2),
        pickle.dumps(Evil(), protocol=4),
        pickle.dumps({"x": eval}, protocol=2),  # a builtin by name
    ):
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            BatchUnpickler(io.BytesIO(payload), encoding="bytes").load()
    assert not marker.exists()


def test_restricted_unpickler_refuses_other_codecs() -> None:
    import codecs

    class Rot:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (codecs.encode, ("abc", "rot13"))

    with pytest.raises(pickle.UnpicklingError, match="rot13"):
        BatchUnpickler(io.BytesIO(pickle.dumps(Rot(), protocol=2)), encoding="bytes").load()


def test_restricted_unpickler_reads_python3_protocol2_and_numpy2_names() -> None:
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    obj = {b"data": arr, b"labels": [1, 2, 3]}
    for blob in (pickle.dumps(obj, protocol=2), py2_pickle(obj)):
        got = BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
        np.testing.assert_array_equal(got[b"data"], arr)
    assert b"numpy.core.multiarray" in py2_pickle(
        obj
    )  # the fixture names NumPy as CIFAR's files do


def test_cifar10_malicious_batch_is_a_user_error(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=2)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(TcdnError, match="data_batch_3 is not a CIFAR-10 python batch") as info:
        read_cifar10(tmp_path)
    assert "system" in str(info.value)
    assert not marker.exists()


def test_cifar10_missing_and_malformed_files(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=2)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "test_batch").unlink()
    with pytest.raises(TcdnError, match="test_batch not found"):
        read_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(py2_pickle({b"data": np.zeros((2, 100), np.uint8)}))
    with pytest.raises(TcdnError, match=r"not an \(N, 3072\) array"):
        read_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(TcdnError, match="test_batch"):
        read_cifar10(tmp_path)


# -- Fashion-MNIST --------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx(tmp_path: Path, gz: bool) -> None:
    written = write_fashion_mnist(tmp_path, gz=gz)
    data = read_fashion_mnist(tmp_path, size=28)
    assert data.classes == list(FASHION_MNIST_CLASSES)
    assert data.test is not None and len(data.train) == 20 and len(data.test) == 10
    np.testing.assert_array_equal(data.train.labels, written["train_y"])
    images = data.train.read(np.arange(20))
    assert images.shape == (20, 28, 28, 3)
    for c in range(3):  # grey copied to every channel
        np.testing.assert_array_equal(images[..., c], written["train_x"])
    assert data.test.read([0]).shape == (1, 28, 28, 3)
    big = read_fashion_mnist(tmp_path, size=32).train.read([0, 1])
    assert big.shape == (2, 32, 32, 3)


def test_idx_errors(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((3, 4, 5), np.uint8))
    assert read_idx(path).shape == (3, 4, 5)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(TcdnError, match="truncated or damaged"):
        read_idx(path)
    path.write_bytes(b"\x01\x02\x08\x01abcd")
    with pytest.raises(TcdnError, match="bad magic"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01abcd")
    with pytest.raises(TcdnError, match="not unsigned bytes"):
        read_idx(path)
    gz = tmp_path / "y.gz"
    gz.write_bytes(b"not gzip")
    with pytest.raises(TcdnError, match="cannot read idx file"):
        read_idx(gz)


def test_fashion_mnist_missing_file_names_the_debian_package(tmp_path: Path) -> None:
    write_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(TcdnError, match="t10k-labels-idx1-ubyte") as info:
        read_fashion_mnist(tmp_path)
    assert "dataset-fashion-mnist" in str(info.value)


@pytest.mark.skipif(
    not (FASHION_MNIST_DEBIAN / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST is not installed in {FASHION_MNIST_DEBIAN} (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_debian_files() -> None:
    data = read_fashion_mnist(FASHION_MNIST_DEBIAN, size=32)
    assert len(data.train) == 60000 and data.test is not None and len(data.test) == 10000
    assert data.train.class_counts().tolist() == [6000] * 10
    assert data.test.class_counts().tolist() == [1000] * 10
    images = data.test.read(np.arange(100))
    assert images.shape == (100, 32, 32, 3) and 20 < images.mean() < 150


# -- PASCAL VOC 2012 action -------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["root", "devkit", "voc2012"])
def test_voc_action_person_crops(tmp_path: Path, level: str) -> None:
    voc = write_voc(tmp_path)
    root = {"root": tmp_path, "devkit": tmp_path / "VOCdevkit", "voc2012": voc}[level]
    data = read_voc_action(root, size=16)
    assert data.classes == list(VOC_ACTIONS)
    # train: one person per action; 'other' and the person with two actions left out
    assert data.train.labels.tolist() == list(range(10))
    assert data.test is not None and data.test.class_counts().tolist() == [2] * 10
    crops = data.train.read(np.arange(10))
    for a in range(10):  # each crop is its box: the action's colour throughout (JPEG: about)
        mean = crops[a].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, action_colour(a), atol=6)
    assert data.train.names[0] == "2011_t000/person1"


def test_voc_action_errors(tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="PASCAL VOC 2012 not found"):
        read_voc_action(tmp_path)
    voc = write_voc(tmp_path)
    (voc / "JPEGImages" / "2011_v031.jpg").unlink()
    with pytest.raises(TcdnError, match="2011_v031") as info:
        read_voc_action(tmp_path)
    assert "val.txt" in str(info.value)
    Image.new("RGB", (80, 60)).save(voc / "JPEGImages" / "2011_v031.jpg")
    (voc / "Annotations" / "2011_t050.xml").write_text("<annotation><object>")
    with pytest.raises(TcdnError, match=r"2011_t050\.xml"):
        read_voc_action(tmp_path)


# -- image folders ----------------------------------------------------------------------------------
def test_image_folder_flat(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs", {"cat": 3, "dog": 2})
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    (tmp_path / "imgs" / "empty").mkdir()
    data = read_image_folder(tmp_path / "imgs", size=8)
    assert data.classes == ["cat", "dog"] and data.test is None
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1]
    assert data.train.read([4]).shape == (1, 8, 8, 3)
    assert data.train.names[0] == "cat/img_00.png"


def test_image_folder_with_splits(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "train", {"a": 2, "b": 2, "c": 1})
    write_image_folder(tmp_path / "val", {"a": 1, "c": 2})
    data = read_image_folder(tmp_path, size=12)
    assert data.classes == ["a", "b", "c"]
    assert data.test is not None and data.test.labels.tolist() == [0, 2, 2]
    write_image_folder(tmp_path / "val", {"zebra": 1})
    with pytest.raises(TcdnError, match="zebra"):
        read_image_folder(tmp_path)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="does not exist"):
        read_image_folder(tmp_path / "nowhere")
    write_image_folder(tmp_path, {"only": 2})
    with pytest.raises(TcdnError, match="at least 2"):
        read_image_folder(tmp_path)
    write_image_folder(tmp_path, {"other": 1})
    (tmp_path / "other" / "broken.jpg").write_bytes(b"not a jpeg")
    data = read_image_folder(tmp_path)
    row = data.train.names.index("other/broken.jpg")
    with pytest.raises(TcdnError, match=r"broken\.jpg"):
        data.train.read([row])


def test_read_dataset_dispatch(tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="does not exist"):
        read_dataset("cifar10", tmp_path / "nowhere", 32)
    write_fashion_mnist(tmp_path)
    assert read_dataset("fashion_mnist", tmp_path, 28).dataset == "fashion_mnist"


# -- video frames -----------------------------------------------------------------------------------
def test_video_frames_grouped_by_video(train_frames: FrameSet) -> None:
    data = video_frames(train_frames, "synthetic")
    images = data.train
    assert data.test is None
    assert images.groups is not None and images.group_names is not None
    np.testing.assert_array_equal(images.groups, train_frames.video_index)
    np.testing.assert_array_equal(images.labels, train_frames.frame_labels())
    rows = np.array([40, 3, 17])
    np.testing.assert_array_equal(images.read(rows), train_frames.frames[rows])
    assert images.names[3].endswith("#3")


def test_video_frames_need_labels(train_frames: FrameSet) -> None:
    from dataclasses import replace

    unlabelled = replace(train_frames, videos=[replace(v, label=None) for v in train_frames.videos])
    with pytest.raises(TcdnError, match="no label"):
        video_frames(unlabelled)
