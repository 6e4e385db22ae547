"""Which arithmetic a run uses: float32, or bfloat16 autocast where the hardware has it natively.

``precision: auto`` (``tcdn train --precision auto``) picks bfloat16 only where it is native (a
GPU that supports it; a CPU with ``avx512_bf16`` or ``amx_bf16``, or an Arm CPU with ``bf16``) and
a short check agrees: a few steps from the same state in both precisions give losses within
:data:`BF16_LOSS_TOLERANCE` of each other. Elsewhere it picks float32: on a CPU without native
support bfloat16 is emulated and runs many times slower (about 30x on the development machine).

The tolerance is bfloat16-sized: bfloat16 keeps 8 bits of mantissa (a relative rounding step of
2**-8, about 4e-3), so two runs that differ only by its rounding differ by a few of those steps,
far more than float32's 1e-4 yet far less than a run that has gone wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from tcdn.errors import TcdnError
from tcdn.training.config import PRECISIONS

log = logging.getLogger(__name__)
#: relative difference of the losses of a few steps under which bf16 agrees with fp32
BF16_LOSS_TOLERANCE = 1e-2
#: steps of the agreement check
CHECK_STEPS = 3
#: CPU feature flags that mean native bfloat16 arithmetic (Linux /proc/cpuinfo)
_CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``); empty where unknown."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def native_bf16(device: torch.device, cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether ``device`` computes in bfloat16 natively (not emulated)."""
    if device.type == "cuda":
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # torch before the argument existed
            return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(cpu_flags(cpuinfo) & _CPU_BF16_FLAGS)
    return False


def losses_agree(fp32: Sequence[float], bf16: Sequence[float]) -> tuple[bool, float]:
    """Whether two loss curves agree to bfloat16's rounding; and their largest relative gap."""
    gap = max((abs(a - b) / max(abs(a), 0.1) for a, b in zip(fp32, bf16, strict=True)), default=0.0)
    finite = all(torch.isfinite(torch.tensor([*fp32, *bf16])).tolist())
    return finite and gap <= BF16_LOSS_TOLERANCE, gap


def choose_precision(
    asked: str,
    device: torch.device,
    compare: Callable[[], tuple[list[float], list[float]]],
    *,
    native: bool | None = None,
    resumed: str | None = None,
) -> tuple[str, str]:
    """The precision a run uses (``"fp32"`` or ``"bf16"``) and why, in words.

    ``compare()`` runs the agreement check (the losses of a few steps in fp32 and in bf16 from
    the same state, leaving the run's state as it was); it is only called for ``auto`` on a
    device with native bfloat16. ``native`` overrides the detection (for tests). ``resumed``:
    the precision the checkpoint a run continues from trained in; ``auto`` keeps it (deciding
    again could switch precision mid-run, and the run would not continue exactly), unless it
    is bf16 and this device has no native bfloat16.
    """
    if asked not in PRECISIONS:
        raise TcdnError(f"--precision must be one of {', '.join(PRECISIONS)}, got {asked!r}")
    has = native_bf16(device) if native is None else native
    if asked == "fp32":
        return "fp32", "asked for"
    if asked == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise TcdnError(
                "--precision bf16 (bf16: true) but this GPU has no bfloat16 support: use "
                "--precision fp32 or auto"
            )
        if not has:
            log.warning(
                "bf16 on this %s is emulated (no native bfloat16): it runs many times slower than "
                "fp32; --precision auto picks what is fast here",
                device.type.upper(),
            )
        return "bf16", "asked for"
    if not has:
        return "fp32", f"this {device.type.upper()} has no native bfloat16"
    if resumed in ("fp32", "bf16"):
        return resumed, "as the run it continues chose at its start"
    fp32, bf16 = compare()
    ok, gap = losses_agree(fp32, bf16)
    if ok:
        return "bf16", (
            f"native bfloat16; its loss over {len(bf16)} steps agrees with fp32 "
            f"(largest relative gap {gap:.1e} <= {BF16_LOSS_TOLERANCE:g})"
        )
    return "fp32", (
        f"native bfloat16, but its loss over {len(bf16)} steps departs from fp32's "
        f"(relative gap {gap:.1e} > {BF16_LOSS_TOLERANCE:g})"
    )
