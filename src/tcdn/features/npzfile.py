"""The ``.npz`` container of a feature file, written the same way every time and read in place.

- :func:`write_npz`: arrays into an uncompressed zip with fixed member dates, so the same arrays
  always make the same bytes (a sharded extraction's merge writes exactly the file one process
  writes);
- :func:`npz_memmap`: one stored (uncompressed) member memory-mapped where it lies in the
  archive, so a million-row feature file is read row by row, not loaded;
- :func:`npz_digest`: a cheap fingerprint of an archive's contents (its members' CRC-32s, which
  the zip's directory already holds), to tell whether an index built from it is stale.

No torch, no pickles: arrays of objects are refused on both sides.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from tcdn.errors import TcdnError

#: every member's date: a fixed one, so that an archive's bytes depend on its arrays alone
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # a zip local file header, up to the file name
_LOCAL_MAGIC = b"PK\x03\x04"


def write_npz(fh: IO[bytes], **arrays: Any) -> None:
    """Write ``arrays`` (name -> array) to the open binary file ``fh`` as an uncompressed
    ``.npz`` that :func:`numpy.load` reads, members in the order given, each dated
    :data:`_FIXED_DATE`. Large arrays (memory-mapped ones too) are written chunk by chunk."""
    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in arrays.items():
            arr = np.asanyarray(value)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o600 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def _member_data_offset(fh: IO[bytes], info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes begin: after its local header, whose extra field may differ
    from the central directory's."""
    fh.seek(info.header_offset)
    raw = fh.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size or raw[:4] != _LOCAL_MAGIC:
        raise ValueError(f"the local header of {info.filename} is damaged")
    fields = _LOCAL_HEADER.unpack(raw)
    name_len, extra_len = fields[-2], fields[-1]
    return info.header_offset + _LOCAL_HEADER.size + name_len + extra_len


def npz_memmap(path: str | Path, name: str) -> np.memmap:
    """The member ``name`` (``name.npy``) of the ``.npz`` at ``path``, memory-mapped read-only.

    Raises :class:`TcdnError` when the archive cannot be read, lacks the member, or stores it
    compressed (``numpy.savez_compressed``: load it whole instead, or write it again with
    ``tcdn features``)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            raise TcdnError(
                f"{path}: its '{name}' array is compressed and cannot be read in place; "
                "write the file again uncompressed (tcdn features, or numpy.savez)"
            )
        with path.open("rb") as fh:
            start = _member_data_offset(fh, info)
            fh.seek(start)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            data = fh.tell()
    except KeyError:
        raise TcdnError(f"{path} holds no '{name}' array") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise TcdnError(f"cannot read {path}: {exc}; it is truncated or not a .npz") from exc
    if dtype.hasobject:
        raise TcdnError(f"{path}: its '{name}' array holds Python objects, which tcdn never reads")
    expected = int(np.prod(shape)) * dtype.itemsize
    if data - start + expected > info.file_size:
        raise TcdnError(f"{path}: its '{name}' array is shorter than its header says (truncated)")
    if fortran:
        return np.memmap(path, dtype=dtype, mode="r", offset=data, shape=shape, order="F")
    return np.memmap(path, dtype=dtype, mode="r", offset=data, shape=shape, order="C")


def npz_digest(path: str | Path) -> str:
    """A fingerprint of the ``.npz`` at ``path``: a SHA-256 of its members' names, sizes and
    CRC-32s (from the zip's directory: no member is read), so a file written again with other
    contents gets another digest, and one written again with the same arrays the same one."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise TcdnError(f"cannot read {path}: {exc}; it is truncated or not a .npz") from exc
    h = hashlib.sha256()
    for info in sorted(infos, key=lambda i: i.filename):
        h.update(f"{info.filename}\0{info.file_size}\0{info.CRC:08x}\n".encode())
    return h.hexdigest()
