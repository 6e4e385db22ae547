"""One process at a time per output folder: an exclusive lock file.

A command that writes a folder (``tcdn ingest --out``, ``tcdn train --out``, ``tcdn discover
--out``) holds ``FOLDER/.tcdn.lock`` while it works. The file records the holder's pid, host and
command, and is locked with ``flock``: the kernel releases that lock when the holder exits in any
way (a crash or ``kill -9`` included), so a lock file left behind is recognised as stale, said so,
and taken over. A second process that finds the lock held stops at once with a message naming
the holder.

:func:`hold` is re-entrant within a process: the command line takes the lock before decoding
anything, and the library function it calls (which takes it too, for callers from Python) finds
it already held.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tcdn.errors import TcdnError

try:  # POSIX; elsewhere the lock file alone (with the pid check) guards the folder
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_NAME = ".tcdn.lock"
#: never open the lock through a symbolic link (where the OS has the flag)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

#: folders this process holds: resolved path -> [depth, file descriptor]
_HELD: dict[Path, list[int]] = {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "a tcdn process"
    since = holder.get("since")
    when = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
    cmd = f" ({holder['command']})" if holder.get("command") else ""
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}{cmd}{when}"


def _read(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 65536).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire(folder: Path, option: str) -> int:
    path = folder / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
        except OSError as exc:
            if path.is_symlink():
                raise TcdnError(
                    f"{option} {folder}: its lock file {path} is a symbolic link, which tcdn never "
                    "writes through (it could overwrite the file it points to): remove the link, "
                    "or choose another folder"
                ) from None
            raise TcdnError(
                f"{option} {folder}: cannot create its lock file {path}: {exc.strerror}"
            ) from None
        holder = _read(fd)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise TcdnError(
                    f"{option} {folder} is in use by another tcdn process ({_describe(holder)}): "
                    "wait for it to finish or stop it, or choose another folder"
                ) from None
        elif holder.get("host") == socket.gethostname() and _alive(int(holder.get("pid", 0))):
            os.close(fd)  # pragma: no cover
            raise TcdnError(f"{option} {folder} is in use by {_describe(holder)}")
        try:  # the file may have been removed (and re-made) by its holder meanwhile
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    if holder:
        log.warning(
            "%s: took over the lock left by %s, which is no longer running",
            folder,
            _describe(holder),
        )
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(["tcdn", *sys.argv[1:]])[:500],
        "since": time.time(),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(record).encode("utf-8"))
    return fd


@contextlib.contextmanager
def hold(folder: str | Path, option: str = "--out") -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (made if missing) for the block; re-entrant.

    Raises :class:`TcdnError` naming the holder when another process holds it.
    """
    folder = Path(folder)
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TcdnError(f"{option} {folder}: cannot create it: {exc.strerror}") from None
    key = folder.resolve()
    held = _HELD.get(key)
    if held is not None:
        held[0] += 1
        try:
            yield
        finally:
            held[0] -= 1
        return
    fd = _acquire(folder, option)
    _HELD[key] = [1, fd]
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.unlink(folder / LOCK_NAME)
        os.close(fd)
        if made:  # a folder made for the lock alone, by a command that then failed
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


def holds(folder: str | Path) -> bool:
    """Whether this process holds the lock of ``folder``."""
    return Path(folder).resolve() in _HELD
