"""The feature file's container (``tcdn.features.npzfile``): same arrays, same bytes; a member
memory-mapped in place equals numpy's own reading; the digest follows the contents."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tcdn.errors import TcdnError
from tcdn.features.npzfile import npz_digest, npz_memmap, write_npz


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "features": rng.normal(size=(37, 5)).astype(np.float16),
        "video": np.array([f"v{i % 4}.mp4" for i in range(37)]),
        "frame": np.arange(37, dtype=np.int64),
        "meta": np.array('{"a": 1}'),
    }


def written(path: Path, **data: np.ndarray) -> Path:
    with path.open("wb") as fh:
        write_npz(fh, **data)
    return path


def test_same_arrays_same_bytes_and_numpy_reads_them(tmp_path: Path) -> None:
    a = written(tmp_path / "a.npz", **arrays())
    b = written(tmp_path / "b.npz", **arrays())
    assert a.read_bytes() == b.read_bytes()
    with np.load(a, allow_pickle=False) as npz:
        for name, value in arrays().items():
            assert np.array_equal(npz[name], value)
    assert written(tmp_path / "c.npz", **arrays(1)).read_bytes() != a.read_bytes()


@pytest.mark.parametrize("fortran", [False, True])
def test_memmap_equals_numpy_reading(tmp_path: Path, fortran: bool) -> None:
    data = arrays()
    if fortran:
        data["features"] = np.asfortranarray(data["features"])
    path = written(tmp_path / "a.npz", **data)
    for name in ("features", "frame", "video"):
        assert np.array_equal(npz_memmap(path, name), data[name])
    # numpy.savez's own files too (other local headers)
    plain = tmp_path / "plain.npz"
    np.savez(plain, **data)
    assert np.array_equal(npz_memmap(plain, "features"), data["features"])


def test_memmap_refusals(tmp_path: Path) -> None:
    packed = tmp_path / "packed.npz"
    np.savez_compressed(packed, features=np.ones((3, 2)))
    with pytest.raises(TcdnError, match="compressed"):
        npz_memmap(packed, "features")
    with pytest.raises(TcdnError, match="no 'labels' array"):
        npz_memmap(written(tmp_path / "a.npz", **arrays()), "labels")
    whole = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 3])
    with pytest.raises(TcdnError, match="cannot read"):
        npz_memmap(tmp_path / "cut.npz", "features")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # an object array: never read
        with zf.open("features.npy", "w") as member:
            np.lib.format.write_array(member, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "obj.npz").write_bytes(buf.getvalue())
    with pytest.raises(TcdnError, match="Python objects"):
        npz_memmap(tmp_path / "obj.npz", "features")


def test_digest_follows_the_contents(tmp_path: Path) -> None:
    a = written(tmp_path / "a.npz", **arrays())
    b = written(tmp_path / "b.npz", **arrays())
    assert npz_digest(a) == npz_digest(b)
    changed = arrays()
    changed["features"][3, 1] += 1
    assert npz_digest(written(tmp_path / "c.npz", **changed)) != npz_digest(a)
