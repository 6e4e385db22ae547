"""Checkpoints: written atomically, read back safely into a network.

A checkpoint is one ``torch.save`` file, ``RUN/step_XXXXXXXX.pt``, holding the run's config, the
model, optimiser, schedule, sampler and augmentation generator states, the torch RNG, the input
mean and the step (see :meth:`tcdn.training.state.trainer_state`): tensors and plain Python
values only, so ``torch.load(path, weights_only=True)`` reads it. tcdn reads every checkpoint that
way and never unpickles arbitrary objects: a file that holds anything else is refused with an
error naming it, and nothing in it runs.

Checkpoints written by earlier versions of tcdn held the input mean as a NumPy array; they are
still read, with the restricted loader allowing exactly NumPy's array reconstruction (no other
global), and anything beyond that is refused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tcdn.errors import TcdnError
from tcdn.models import Backbone
from tcdn.models.input import InputTransform
from tcdn.outputs import (
    check_output_folder,
    guard_file,
    open_new,
    os_error_hint,
    partial_name,
    refuse_links,
)
from tcdn.training.config import TrainConfig

log = logging.getLogger(__name__)

CHECKPOINT_PATTERN = "step_{:08d}.pt"
#: the names :func:`list_checkpoints` knows (and the only ones a run ever deletes)
CHECKPOINT_NAME = re.compile(r"^step_(\d{8})\.pt$")
#: 1: the input mean as a NumPy array; 2: every value a tensor or a plain Python value
CHECKPOINT_FORMAT = "tcdn-checkpoint-2"
#: the kind of folder a training run is, in its marker file (:func:`tcdn.outputs.claim_folder`)
RUN_KIND = "training-run"
#: the other names a run writes (besides checkpoints and their temporary files)
RUN_FILES = frozenset(
    {"config.yaml", "log.jsonl", "tensorboard", ".tcdn.lock", ".config.yaml.partial"}
)

#: the only globals a checkpoint of an earlier tcdn (format 1) needs: a float NumPy array
_NUMPY_GLOBALS = {
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
}


class DamagedCheckpoint(TcdnError):
    """A checkpoint file that cannot be read: truncated, empty, or not a checkpoint at all."""


class _Recording:
    """A file wrapper that keeps the OS error of a failed write: ``torch.save`` reports it as a
    ``RuntimeError`` without its cause."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return int(self.fh.write(data))
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, flushed to disk, then renamed: never a
    half-written file, even on a full disk (the temporary file is removed; :class:`TcdnError`)."""
    tmp = partial_name(path)
    rec: _Recording | None = None
    try:
        if path.is_symlink():
            raise TcdnError(f"{path} is a symbolic link, which tcdn never replaces: remove it")
        with open_new(tmp, "wb") as fh:
            rec = _Recording(fh)
            torch.save(obj, rec)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        cause = rec.error if rec is not None and rec.error is not None else exc
        if isinstance(cause, OSError):
            raise TcdnError(f"cannot write checkpoint {path}: {os_error_hint(cause)}") from exc
        raise


def checkpoint_step(path: Path) -> int:
    m = CHECKPOINT_NAME.match(path.name)
    return int(m.group(1)) if m else -1


def looks_like_run(path: Path) -> bool:
    """Whether every entry of ``path`` is a file a run writes (a run made before marker files)."""
    names = [p.name for p in path.iterdir()]
    return bool(names) and all(
        n in RUN_FILES
        or CHECKPOINT_NAME.match(n)
        or (n.startswith(".step_") and n.endswith(".pt.partial"))
        for n in names
    )


def check_run_folder(run: str | Path, option: str = "--out") -> Path:
    """Check, before any work, that ``run`` can be a run folder: missing, empty, or a tcdn run
    (never a file, nor a folder of other files)."""
    folder = check_output_folder(
        run, RUN_KIND, option, recognise=looks_like_run, what="training run"
    )
    for name in ("log.jsonl", "config.yaml"):  # written later: a link there is refused now
        guard_file(folder / name, what=f"{option} {folder}: ")
    refuse_links(folder, ("tensorboard",), option)  # TensorBoard's writer follows links
    return folder


def remove_partials(run: Path) -> None:
    """Delete the temporary files of checkpoint writes a kill interrupted (only names
    :func:`atomic_save` gives them: ``.step_XXXXXXXX.pt.partial``)."""
    for p in run.glob(".step_*.pt.partial"):
        if CHECKPOINT_NAME.match(p.name[1 : -len(".partial")]):
            with contextlib.suppress(OSError):
                p.unlink()


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The checkpoints of a run folder (``step_XXXXXXXX.pt``), oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if CHECKPOINT_NAME.match(p.name) and p.is_file()]
    return sorted(found, key=checkpoint_step)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file, or a run folder's last complete one, safely (tensors and plain
    values only; nothing in the file runs).

    In a run folder, a last checkpoint that is damaged (e.g. truncated) is passed over for the one
    before it, with a warning naming both. A file holding anything but tensors and plain values
    is refused: :class:`TcdnError` naming it.
    """
    path = Path(path)
    if path.is_dir():
        ckpts = list_checkpoints(path)
        if not ckpts:
            raise TcdnError(
                f"no checkpoint (step_XXXXXXXX.pt) in {path}: train first with `tcdn train`"
            )
        damaged: list[str] = []
        for candidate in reversed(ckpts):
            try:
                ckpt = _load_file(candidate)
            except DamagedCheckpoint as exc:
                damaged.append(f"{candidate.name} ({exc})")
                continue
            if damaged:
                log.warning(
                    "%s: the last checkpoint is damaged: %s; using %s, the last complete one",
                    path,
                    "; ".join(damaged),
                    candidate.name,
                )
            return ckpt
        raise TcdnError(
            f"every checkpoint in {path} is damaged ({'; '.join(damaged[:3])}): train again "
            "without --resume into a new --out"
        )
    if not path.is_file():
        raise TcdnError(f"checkpoint {path} does not exist")
    return _load_file(path)


def _torch_load(path: Path, allow: list[Any] | None = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4" on a foreign pickle
        if allow is None:
            return torch.load(path, map_location="cpu", weights_only=True)
        with torch.serialization.safe_globals(allow):
            return torch.load(path, map_location="cpu", weights_only=True)


def _numpy_allowlist() -> list[Any]:
    """NumPy's array reconstruction under both of its module names (NumPy 1 and 2)."""
    core = getattr(np, "_core", None) or np.core
    reconstruct = core.multiarray._reconstruct
    # numeric dtypes only: an object array (whose items could be anything) is never built
    numeric = [
        getattr(np.dtypes, name)
        for name in (
            "Float16DType", "Float32DType", "Float64DType", "Int8DType", "Int16DType",
            "Int32DType", "Int64DType", "UInt8DType", "UInt16DType", "UInt32DType",
            "UInt64DType", "BoolDType",
        )
        if hasattr(getattr(np, "dtypes", None), name)
    ]  # fmt: skip
    return [
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (reconstruct, "numpy._core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        *numeric,
    ]


def _load_file(path: Path) -> dict[str, Any]:
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size if path.exists() else 0
        what = "it is empty" if size == 0 else "it is truncated or damaged, or of another kind"
        raise DamagedCheckpoint(
            f"cannot read checkpoint {path}: it is not a PyTorch zip file as tcdn writes: {what}"
        )
    try:
        ckpt = _torch_load(path)
    except pickle.UnpicklingError as exc:
        try:
            unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # torch raises many types for a bad file
            unsafe = set()
        if not unsafe:
            raise DamagedCheckpoint(f"cannot read checkpoint {path}: {_first_line(exc)}") from None
        if not unsafe <= _NUMPY_GLOBALS:
            raise TcdnError(
                f"refused checkpoint {path}: it holds objects other than tensors and plain values "
                f"({', '.join(sorted(unsafe)[:5])}), which tcdn never loads (nothing in it ran); "
                "if tcdn wrote it, train again to re-create it, otherwise do not use this file"
            ) from None
        try:  # a checkpoint of an earlier tcdn: its input mean is a NumPy array
            ckpt = _torch_load(path, _numpy_allowlist())
        except pickle.UnpicklingError:
            raise TcdnError(
                f"refused checkpoint {path}: it holds NumPy objects other than plain arrays, which "
                "tcdn never loads (nothing in it ran); train again to re-create it"
            ) from None
        except Exception as exc:
            raise DamagedCheckpoint(f"cannot read checkpoint {path}: {_first_line(exc)}") from None
    except Exception as exc:  # torch raises many types for a bad file
        raise DamagedCheckpoint(
            f"cannot read checkpoint {path}: {_first_line(exc)} (truncated or damaged)"
        ) from None
    return _checked(ckpt, path)


def _first_line(exc: BaseException, n: int = 1) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:n])[:300] if lines else type(exc).__name__


def _checked(ckpt: Any, path: Path) -> dict[str, Any]:
    """The checkpoint's contents, checked for what tcdn reads from it (the mean as float32)."""
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise TcdnError(f"{path} is not a tcdn checkpoint (it lacks 'model' and 'config')")
    config, model = ckpt["config"], ckpt["model"]
    if not isinstance(config, dict) or "image_size" not in config:
        raise TcdnError(
            f"{path} is not a usable tcdn checkpoint: its config has no image_size; re-create it "
            "with `tcdn train`"
        )
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise TcdnError(f"{path} is not a usable tcdn checkpoint: 'model' is not a state dict")
    try:
        TrainConfig.from_dict(config)
    except TcdnError as exc:
        raise TcdnError(f"{path} is not a usable tcdn checkpoint: {exc}") from None
    try:
        mean = np.asarray(ckpt.get("mean"), dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        mean = np.zeros(0, np.float32)
    if mean.shape != (3,) or not np.isfinite(mean).all():
        raise TcdnError(f"{path} is not a usable tcdn checkpoint: its input mean is not 3 numbers")
    ckpt["mean"] = mean
    ckpt["path"] = str(path)
    try:
        input_transform(ckpt)
    except (TcdnError, KeyError, TypeError, ValueError) as exc:
        raise TcdnError(f"{path} is not a usable tcdn checkpoint: {exc}") from None
    return ckpt


def input_transform(ckpt: dict[str, Any]) -> InputTransform | None:
    """The input of a run with ``input_norm`` / ``motion`` (its statistics, saved in the
    checkpoint under ``input``); ``None`` for the paper's input (``mean`` alone)."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    if cfg.plain_input:
        return None
    state = ckpt.get("input")
    if not isinstance(state, dict):
        raise TcdnError(
            f"its config asks for input_norm={cfg.input_norm}, motion={cfg.motion} but it holds no "
            "input statistics"
        )
    transform = InputTransform.from_state(state)
    if transform.motion != cfg.motion:
        raise TcdnError(f"its input statistics are for motion {transform.motion}, not {cfg.motion}")
    return transform


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[Backbone, np.ndarray, TrainConfig]:
    """The trained network, its input mean and its config."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    model = cfg.build_model()
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise TcdnError(
            f"the weights in {ckpt.get('path', 'the checkpoint')} do not fit its own network "
            f"({cfg.model}; {_first_line(exc, 2)}): the file is damaged or was edited; re-create it"
        ) from None
    model.eval()
    return model, np.asarray(ckpt["mean"], dtype=np.float32), cfg
