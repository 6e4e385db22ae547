"""Where tcdn writes: output paths checked before any work, folders claimed, files written whole.

The rules every command and library entry point follows:

- An output path is checked before anything is decoded or computed (:func:`check_output_file`,
  :func:`check_output_folder`): a folder where a file is expected (or the reverse), a parent that
  is a file, or a place that cannot be written ends in one clear :class:`TcdnError`.
- A folder tcdn fills and later prunes (a frame store, a training run) carries a marker file,
  :data:`MARKER`, naming what it is. tcdn writes into such a folder only if it is new, empty, or
  carries its marker (or, for folders made before markers existed, holds that kind's own files).
  A non-empty folder of anything else is refused, so its files are never touched.
- A file is written under a temporary name beside its final one, flushed to disk, then renamed
  (:func:`atomic_writer`): a crash, a kill or a full disk never leaves a half-written file under a
  final name, and the temporary file is removed when the write fails.

This module imports no torch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from tcdn.errors import TcdnError

#: the marker file of a folder tcdn owns: JSON ``{"kind": ..., "tcdn_version": ...}``
MARKER = ".tcdn"

#: what an OS error means to a user, by errno
_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or choose another place",
    errno.EDQUOT: "the disk quota is used up: free some space or choose another place",
    errno.EFBIG: "the file is too large for this file system or for the file-size limit "
    "(ulimit -f): raise the limit or choose another place",
    errno.EROFS: "the file system is read-only: choose another place",
    errno.EACCES: "permission denied: choose a place you can write to",
    errno.EPERM: "permission denied: choose a place you can write to",
}


def os_error_hint(exc: BaseException) -> str:
    """A short, user-facing account of an OS error (``errno`` hint, else its text)."""
    if isinstance(exc, OSError):
        hint = _HINTS.get(exc.errno or 0)
        return hint or (exc.strerror or str(exc))
    text = str(exc)
    # torch.save reports a failed write as RuntimeError("... file write failed")
    return text.splitlines()[0] if text else type(exc).__name__


def is_disk_error(exc: BaseException) -> bool:
    """Whether ``exc`` says that a write failed for lack of room (full disk, quota, size limit)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def _check_parent(path: Path, option: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder this process can write to."""
    base = _nearest_existing(path.parent) if not path.exists() else path.parent
    if not base.is_dir():
        raise TcdnError(f"{option} {path}: {base} is a file, not a folder: choose another place")
    if not os.access(base, os.W_OK | os.X_OK):
        raise TcdnError(f"{option} {path}: cannot write in {base} (permission denied)")


def check_output_file(
    path: str | Path, option: str = "--out", *, ours: Callable[[Path], bool] | None = None
) -> Path:
    """Check, before any work, that ``path`` can be written as a file.

    ``ours(path)`` says whether an existing file there is one tcdn wrote (e.g. a feature file):
    when given, an existing file that is not ours is refused rather than overwritten.
    """
    path = Path(path)
    if path.is_dir():
        raise TcdnError(
            f"{option} {path} is a folder: give the file to write, e.g. {path / 'features.npz'}"
        )
    _check_parent(path, option)
    guard_file(path, what=f"{option} ")
    if path.exists():
        if ours is not None and not ours(path):
            raise TcdnError(
                f"{option} {path} exists and was not written by tcdn: tcdn does not overwrite it; "
                "choose another name or remove it"
            )
        if not os.access(path, os.W_OK):
            raise TcdnError(f"{option} {path} exists and cannot be written (permission denied)")
    return path


def check_output_files(
    folder: str | Path, files: dict[str, Callable[[Path], bool]], option: str = "--out"
) -> Path:
    """Check, before any work, that ``folder`` can receive the files ``files`` names: it is a
    folder (or can be made), and each of those files that exists already is one tcdn wrote
    (``files[name](path)``), so writing it loses nothing of the user's."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TcdnError(f"{option} {folder} is a file: give a folder for the results")
    _check_parent(folder, option)
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise TcdnError(f"{option} {folder}: cannot write in it (permission denied)")
    for name, ours in files.items():
        path = folder / name
        guard_file(path, what=f"{option} {folder}: ")
        if path.exists() and not ours(path):
            raise TcdnError(
                f"{option} {folder} holds a {name} that tcdn did not write: tcdn does not "
                "overwrite it; choose another folder or move that file"
            )
    return folder


def check_folder_name(name: object, where: str) -> str:
    """``name``, which becomes a folder inside an output folder (a sweep's recipe or data set,
    an experiment's name or run), must be one plain name that stays inside it: letters, digits,
    ``-``, ``_`` and ``.``, not beginning with ``.`` (so never ``.``, ``..`` nor one of tcdn's
    hidden files). Returns it; :class:`TcdnError` naming ``where`` otherwise."""
    ok = (
        isinstance(name, str)
        and bool(name)
        and not name.startswith(".")
        and all(c.isalnum() or c in "-_." for c in name)
    )
    if not ok:
        raise TcdnError(
            f"{where} name {name!r}: a name becomes a folder in the output, so use letters, "
            "digits, '-', '_' or '.', not beginning with '.'"
        )
    return str(name)


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of ``folder`` (``None`` without one; a marker tcdn cannot read counts as none)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_output_folder(
    path: str | Path,
    kind: str,
    option: str = "--out",
    *,
    recognise: Callable[[Path], bool] | None = None,
    what: str | None = None,
) -> Path:
    """Check, before any work, that ``path`` can be used as a folder of ``kind``.

    It may be missing (it will be made), empty, marked as ``kind`` by :func:`claim_folder`, or a
    folder that ``recognise`` identifies as ``kind`` (made by a tcdn that wrote no marker).
    Anything else (a file, a non-empty folder of other files, a folder of another kind) is refused.
    """
    path = Path(path)
    what = what or kind.replace("-", " ")
    if path.exists() and not path.is_dir():
        raise TcdnError(f"{option} {path} is a file: give a folder for the {what}")
    _check_parent(path, option)
    if not path.is_dir():
        return path
    if not os.access(path, os.W_OK | os.X_OK):
        raise TcdnError(f"{option} {path}: cannot write in it (permission denied)")
    marker = read_marker(path)
    if marker is not None:
        if marker.get("kind") != kind:
            raise TcdnError(
                f"{option} {path} is a tcdn {str(marker.get('kind', '?')).replace('-', ' ')} "
                f"folder, not a {what}: choose another folder"
            )
        return path
    from tcdn.runlock import LOCK_NAME

    try:  # a lock file alone (left by a process killed before it claimed the folder) is nothing
        empty = not any(p.name != LOCK_NAME for p in path.iterdir())
    except OSError as exc:
        raise TcdnError(f"{option} {path}: cannot list it ({os_error_hint(exc)})") from None
    if empty or (recognise is not None and recognise(path)):
        return path
    raise TcdnError(
        f"{option} {path} is not empty and is not a tcdn {what}: tcdn does not write into a "
        "folder of other files; give a new or empty folder"
    )


def claim_folder(path: str | Path, kind: str) -> Path:
    """Make ``path`` (checked by :func:`check_output_folder`) and mark it as a tcdn ``kind``."""
    from tcdn import __version__

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if read_marker(path) is None:
            write_atomic(
                path / MARKER,
                json.dumps({"kind": kind, "tcdn_version": __version__}).encode() + b"\n",
            )
    except OSError as exc:
        raise TcdnError(f"cannot create {path}: {os_error_hint(exc)}") from None
    return path


def partial_name(path: Path) -> Path:
    """The temporary name a file is written under before it is renamed to ``path``."""
    return path.with_name(f".{path.name}.partial")


def _link_error(path: Path, what: str = "") -> TcdnError:
    return TcdnError(
        f"{what}{path} is a symbolic link, which tcdn never writes through or replaces (it could "
        "change the file it points to): remove the link, or choose another folder"
    )


def guard_file(
    path: str | Path, ours: Callable[[Path], bool] | None = None, *, what: str = ""
) -> Path:
    """The one check before tcdn writes the named file ``path`` (every writer calls it, through
    :func:`atomic_writer` or before any work): neither ``path`` nor its temporary name is a
    symbolic link, ``path`` is not a folder, and when it exists ``ours(path)`` says tcdn wrote
    it (without ``ours``, an existing file is not checked). Raises :class:`TcdnError` naming the
    file and what to do."""
    path = Path(path)
    for p in (path, partial_name(path)):
        if p.is_symlink():
            raise _link_error(p, what)
    if path.is_dir():
        raise TcdnError(
            f"{what}{path} is a folder, not a file tcdn wrote: move it, or choose another place"
        )
    if ours is not None and path.exists() and not ours(path):
        raise TcdnError(
            f"{what}{path} exists and was not written by tcdn: tcdn does not overwrite it; "
            "move that file, or choose another place"
        )
    return path


def refuse_links(folder: str | Path, names: tuple[str, ...], option: str = "--out") -> None:
    """Before any work: none of tcdn's own sub-folders ``names`` of ``folder`` is a symbolic link
    (tcdn would write into a folder it may not own); :class:`TcdnError` naming it otherwise."""
    for name in names:
        if (Path(folder) / name).is_symlink():
            raise _link_error(Path(folder) / name, f"{option} {folder}: ")


def sub_folder(parent: str | Path, name: str) -> Path:
    """``parent/name``, a folder tcdn makes inside an output folder (a report's, a store's data),
    created if missing; a symbolic link there is refused (:class:`TcdnError`), since tcdn would
    write into a folder it may not own."""
    path = Path(parent) / name
    if path.is_symlink():
        raise _link_error(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TcdnError(f"cannot create {path}: {os_error_hint(exc)}") from None
    return path


def open_new(
    path: str | Path, mode: str = "wb", *, error: type[TcdnError] = TcdnError, **open_kwargs: Any
) -> IO[Any]:
    """Open ``path`` (a temporary name of tcdn's) for writing from empty, never through a
    symbolic link (``O_NOFOLLOW``): a link there, or a place that cannot be written, raises
    ``error`` (a :class:`TcdnError`) naming it."""
    return _open_no_link(path, os.O_TRUNC, mode, error, **open_kwargs)


def _open_no_link(
    path: str | Path, flag: int, mode: str, error: type[TcdnError], **open_kwargs: Any
) -> IO[Any]:
    """Open ``path`` for writing (created if missing; ``flag``: ``O_TRUNC`` or ``O_APPEND``),
    never through a symbolic link; a link or an OS error raises ``error`` naming ``path``."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | flag | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if path.is_symlink():
            raise error(str(_link_error(path))) from None
        raise error(f"cannot write {path}: {os_error_hint(exc)}") from exc
    return os.fdopen(fd, mode, **open_kwargs)


@contextlib.contextmanager
def atomic_writer(
    path: str | Path,
    mode: str = "wb",
    *,
    ours: Callable[[Path], bool] | None = None,
    **open_kwargs: Any,
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; when the block ends without error, flush it to
    disk and rename it to ``path``. :func:`guard_file` first: no symbolic link at either name,
    and (with ``ours``) an existing file must be tcdn's. On any error (or interruption) the
    temporary file is removed; an OS error becomes a :class:`TcdnError` naming ``path``."""
    path = guard_file(path, ours)
    tmp = partial_name(path)
    fh = open_new(tmp, mode, **open_kwargs)
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if path.is_symlink():  # made meanwhile: rename would drop the user's link
            raise _link_error(path)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TcdnError(f"cannot write {path}: {os_error_hint(exc)}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(
    path: str | Path, data: bytes | str, *, ours: Callable[[Path], bool] | None = None
) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    if isinstance(data, str):
        with atomic_writer(path, "w", ours=ours, encoding="utf-8") as fh:
            fh.write(data)
    else:
        with atomic_writer(path, "wb", ours=ours) as fh:
            fh.write(data)


def open_append(path: str | Path) -> IO[str]:
    """Open a text file of tcdn's own (a run's ``log.jsonl``) for appending, never through a
    symbolic link: a link there could point at a user's file, which would get tcdn's lines. An
    OS error becomes a :class:`TcdnError` naming ``path``."""
    return _open_no_link(path, os.O_APPEND, "a", TcdnError, encoding="utf-8")
