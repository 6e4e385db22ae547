"""The torch device a run uses, resolved once from what the user asked for."""

from __future__ import annotations

import torch

from tcdn.errors import TcdnError

#: what ``--device`` accepts besides ``cuda:N``
DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N`` -> a device; unavailable CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise TcdnError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TcdnError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise TcdnError(f"--device {name!r}: {exc}") from None
