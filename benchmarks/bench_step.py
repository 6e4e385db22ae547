"""Compute efficiency and memory of the AlexNet training step (the paper's Lq setting).

Measured in one run, each configuration in a fresh subprocess (so that threads, compile caches and
peak memory do not leak from one to the next):

1. the machine's fp32 matmul peak: best of several ``n x n @ n x n`` sgemms (``2 n^3`` FLOP), with
   1 thread and with every core;
2. the FLOPs of one training step, forward + backward of AlexNet (``embed_dim`` 1024) on 40
   quadruplets = 160 frames at 227x227, counted by ``torch.utils.flop_counter.FlopCounterMode``
   on meta tensors (convolutions and matrix products only: ReLU, LRN, pooling and the SGD update
   are not counted, so the achieved rate is slightly understated);
3. the step itself (forward, Lq on the four slices, backward, SGD with momentum) for combinations of
   threads, channels-last memory format, bf16 autocast and ``torch.compile``: seconds per step,
   achieved GFLOP/s, the ratio to the peak, and whether the loss after a few steps from the same
   seed and batch matches plain fp32 (relative tolerance ``--rtol``, an fp32 tolerance; bf16 rows
   against bfloat16's own, ``tcdn.training.precision.BF16_LOSS_TOLERANCE``; dropout is off so that the runs
   are comparable: compiled code draws other random numbers than eager). The reference, "plain
   PyTorch", is the network with ``torch.nn.LocalResponseNorm`` (``torch-lrn`` rows), as tcdn had
   it before :class:`tcdn.models.layers.CrossChannelLRN`; every other row uses tcdn's LRN;
4. the peak memory of each step: ``ru_maxrss`` of its subprocess minus the same figure right after
   the imports (tracemalloc does not see torch's allocator).

Ends with the recommended default: the fastest configuration whose loss matches fp32.

Found while writing this bench (torch 2.13.0, CPU): ``torch.compile`` returns zero gradients for a
convolution followed by ReLU and max-pool in the default (NCHW) layout, so compiled AlexNet
leaves every conv layer untrained; the "same" column shows it as a loss that departs from fp32.
Run: ``make bench-step`` or ``python benchmarks/bench_step.py [--quick] [--steps N]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from typing import Any

BATCH = 40  # quadruplets per step (SPEC §2)
SIZE = 227
EMBED_DIM = 1024
SEED = 0
LR = 0.01  # large enough that a few steps move the loss visibly


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# -- workers: each runs in its own subprocess and prints one JSON line -----------------------------
def worker_peak(threads: int, n: int, repeats: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return {"threads": threads, "n": n, "gflops": 2 * n**3 / best / 1e9}


def worker_flops(batch: int, size: int) -> dict[str, Any]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tcdn.losses import quadruplet_loss
    from tcdn.models import build_model

    with torch.device("meta"):
        model = build_model("alexnet", embed_dim=EMBED_DIM)
        x = torch.empty(4 * batch, 3, size, size)
    counter = FlopCounterMode(display=False)
    with counter:
        emb = model(x).view(4, batch, -1)
        quadruplet_loss(*emb).backward()
    forward = sum(
        n
        for op, n in counter.get_flop_counts().get("Global", {}).items()
        if "backward" not in str(op)
    )
    return {"flops": int(counter.get_total_flops()), "forward_flops": int(forward)}


def worker_step(cfg: dict[str, Any]) -> dict[str, Any]:
    import torch
    from torch import nn

    from tcdn.losses import quadruplet_loss
    from tcdn.models import build_model
    from tcdn.models.layers import CrossChannelLRN

    baseline_mib = _maxrss_mib()
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(SEED)
    batch, size = cfg["batch"], cfg["size"]
    # no dropout: compile draws other random numbers than eager, and the losses must be comparable
    model = build_model("alexnet", embed_dim=EMBED_DIM, dropout=0.0)
    if cfg["torch_lrn"]:  # plain PyTorch: the same function through torch's LocalResponseNorm
        for stage in model.stages.values():
            for i, m in enumerate(stage):
                if isinstance(m, CrossChannelLRN):
                    stage[i] = nn.LocalResponseNorm(m.size, m.alpha, m.beta, m.k)
    x = torch.randn(4 * batch, 3, size, size, generator=torch.Generator().manual_seed(SEED + 1))
    if cfg["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    net = torch.compile(model) if cfg["compile"] else model

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg["bf16"]):
            emb = net(x)
        loss = quadruplet_loss(*emb.float().view(4, batch, -1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    # The same seed, batch and number of steps in every configuration: the losses are comparable.
    losses = []
    t0 = time.perf_counter()
    for _ in range(cfg["warmup"]):
        losses.append(step())
    warmup_s = time.perf_counter() - t0
    times = []
    for _ in range(cfg["steps"]):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)
    return {
        **cfg,
        "losses": losses,
        "step_s": min(times),
        "median_s": sorted(times)[len(times) // 2],
        "warmup_s": warmup_s,
        "baseline_mib": baseline_mib,
        "peak_mib": _maxrss_mib() - baseline_mib,
    }


def run_worker(kind: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one worker in a fresh interpreter; ``{"error": ...}`` when it fails."""
    env = dict(os.environ)
    if "threads" in args:
        env["OMP_NUM_THREADS"] = str(args["threads"])
    cmd = [sys.executable, __file__, "--worker", kind, json.dumps(args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(lines[-1][len("RESULT ") :])


SWITCHES = ("torch_lrn", "channels_last", "bf16", "compile")


def _label(cfg: dict[str, Any]) -> str:
    names = [name.replace("_", "-") for name in SWITCHES if cfg[name]]
    return "+".join([f"{cfg['threads']}t", *names]) if names else f"{cfg['threads']}t fp32"


def configurations(
    threads: list[int], quick: bool, compile_ok: bool, native_bf16: bool
) -> list[dict[str, bool | int]]:
    """Plain PyTorch (torch's LRN, fp32) at each thread count, then tcdn's LRN with every
    combination of channels-last, bf16 and compile; ``quick``: the most threads only, each switch
    alone plus channels-last+compile. Without native bf16 (emulated, several times slower) bf16
    is only tried alone."""
    flags = (False, True)
    combos = [(t, True, False, False, False) for t in threads]
    combos += [
        (t, False, cl, bf, co)
        for t, cl, bf, co in itertools.product(threads, flags, flags, flags)
        if (compile_ok or not co) and (native_bf16 or not bf or not (cl or co))
    ]
    if quick:
        top = max(threads)
        combos = [
            c
            for c in combos
            if c[0] == top and (sum(c[1:]) <= 1 or c[1:] == (False, True, False, True))
        ]
    return [dict(zip(("threads", *SWITCHES), c, strict=True)) for c in combos]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer configurations and steps")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per configuration")
    ap.add_argument("--batch", type=int, default=BATCH, help=f"quadruplets (default: {BATCH})")
    ap.add_argument("--size", type=int, default=SIZE, help=f"frame side (default: {SIZE})")
    ap.add_argument(
        "--rtol",
        type=float,
        default=1e-4,
        help="relative tolerance of 'same loss' (1e-4: float32 rounding grows over a few SGD steps)",
    )
    ap.add_argument(
        "--timeout", type=float, default=1200, help="seconds per configuration (default: 1200)"
    )
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        kind, payload = args.worker[0], json.loads(args.worker[1])
        fn = {"peak": worker_peak, "flops": worker_flops, "step": worker_step}[kind]
        print("RESULT " + json.dumps(fn(**payload) if kind != "step" else fn(payload)), flush=True)
        return

    import torch

    from tcdn.training.precision import BF16_LOSS_TOLERANCE
    from tcdn.training.precision import native_bf16 as native_bf16_on

    cores = os.cpu_count() or 1
    threads = sorted({t for t in (1, 2, cores) if t <= cores})
    steps = args.steps or (2 if args.quick else 5)
    warmup = 1 if args.quick else 2  # compile traces on the first calls; same count everywhere
    compile_ok = shutil.which(os.environ.get("CC", "gcc")) is not None
    # tcdn's own detection (avx512_bf16 / amx_bf16 in /proc/cpuinfo), as --precision auto uses:
    # mkldnn's "bf16 supported" also says yes on AVX-512 CPUs that only emulate it
    native_bf16 = native_bf16_on(torch.device("cpu"))
    print(
        f"AlexNet (embed_dim {EMBED_DIM}) training step: {args.batch} quadruplets = "
        f"{4 * args.batch} frames at {args.size}x{args.size}; torch {torch.__version__}, "
        f"{cores} cores, load average {os.getloadavg()[0]:.1f}"
    )
    if not native_bf16:
        capability = torch.backends.cpu.get_cpu_capability()
        print(f"no native bf16 on this CPU ({capability}): bf16 is tried alone only")
    if not compile_ok:
        print("torch.compile skipped: no C compiler (gcc) on PATH")

    n = 2048 if args.quick else 4096
    peaks = {}
    for t in threads:
        res = run_worker("peak", {"threads": t, "n": n, "repeats": 3 if args.quick else 5}, 600)
        peaks[t] = res.get("gflops", float("nan"))
        print(f"fp32 matmul peak, {t} thread(s), {n}^3 sgemm: {peaks[t]:8.1f} GFLOP/s")
    peak_threads = max(peaks, key=lambda t: peaks[t])
    machine_peak = peaks[peak_threads]
    if peak_threads != max(threads):
        print(
            "warning: more threads gave a lower peak: the machine is busy, the ratios are inflated"
        )

    fl = run_worker("flops", {"batch": args.batch, "size": args.size}, 600)
    if "error" in fl:
        raise SystemExit(f"counting FLOPs failed: {fl['error']}")
    flops = fl["flops"]
    print(
        f"FLOPs per step (conv + matmul, forward + backward): {flops / 1e9:.1f} GFLOP "
        f"(forward {fl['forward_flops'] / 1e9:.1f})"
    )

    rows = []
    for switches in configurations(threads, args.quick, compile_ok, native_bf16):
        cfg = {**switches, "batch": args.batch, "size": args.size, "steps": steps, "warmup": warmup}
        res = run_worker("step", cfg, args.timeout)
        rows.append({**cfg, **res})
        if "error" in res:
            print(f"  {_label(cfg):<34} failed: {res['error']}", flush=True)
        else:
            print(f"  {_label(cfg):<34} {res['step_s']:7.2f} s/step", flush=True)

    # the reference: plain PyTorch (torch's LRN, fp32) at the same thread count
    plain = {r["threads"]: r for r in rows if "losses" in r and r["torch_lrn"]}
    print()
    print(
        f"{'configuration':<34} {'s/step':>7} {'GFLOP/s':>8} {'/peak':>6} {'/peak@t':>8} "
        f"{'speed-up':>8} {'peak MiB':>9} {'final loss':>11} {'rel.diff':>9} same"
    )
    best = None
    for r in rows:
        if "error" in r:
            print(f"{_label(r):<34} failed: {r['error']}")
            continue
        ref = plain.get(r["threads"]) or (next(iter(plain.values())) if plain else r)
        rate = flops / r["step_s"] / 1e9
        rel = abs(r["losses"][-1] - ref["losses"][-1]) / max(abs(ref["losses"][-1]), 1e-12)
        # bf16 rounds to 8 mantissa bits: judged against bf16's tolerance, not fp32's
        tol = BF16_LOSS_TOLERANCE if r.get("bf16") else args.rtol
        r.update(rate=rate, rel=rel, same=rel <= tol)
        print(
            f"{_label(r):<34} {r['step_s']:7.2f} {rate:8.1f} {rate / machine_peak:6.3f} "
            f"{rate / peaks[r['threads']]:8.3f} {ref['step_s'] / r['step_s']:8.2f} "
            f"{r['peak_mib']:9.0f} {r['losses'][-1]:11.6f} {rel:9.1e} {'yes' if r['same'] else 'NO'}"
        )
        if r["same"] and (best is None or r["step_s"] < best["step_s"]):
            best = r
    print()
    print(
        f"machine peak {machine_peak:.1f} GFLOP/s ({peak_threads} threads); speed-up and 'same' are "
        f"against plain PyTorch at the same threads; 'same' = loss after {warmup + steps} steps "
        f"within rtol {args.rtol:g} (bf16 rows: {BF16_LOSS_TOLERANCE:g}, bfloat16's rounding)"
    )
    top = plain.get(max(threads))
    if top is not None and "rate" in top:
        print(
            f"plain PyTorch ({_label(top)}): {top['rate']:.1f} GFLOP/s = "
            f"{top['rate'] / machine_peak:.3f} of peak; peak memory of the {args.batch}-quadruplet "
            f"step {top['peak_mib']:.0f} MiB above the {top['baseline_mib']:.0f} MiB after imports"
        )
    ours = [
        r
        for r in rows
        if "rate" in r and r["threads"] == max(threads) and not any(r[name] for name in SWITCHES)
    ]
    if ours:
        print(
            f"tcdn's LRN ({_label(ours[0])}): {ours[0]['rate'] / machine_peak:.3f} of peak, "
            f"peak memory {ours[0]['peak_mib']:.0f} MiB"
        )
    if best is not None:
        ref = plain.get(best["threads"])
        print(
            f"recommended default: {_label(best)}: {best['rate']:.1f} GFLOP/s = "
            f"{best['rate'] / machine_peak:.3f} of peak"
            + (f", {top['step_s'] / best['step_s']:.2f}x plain PyTorch" if top and ref else "")
        )


if __name__ == "__main__":
    main()
