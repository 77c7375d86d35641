"""How far LPNet's CPU speed is from the floor, and where the time goes.

    python benchmarks/lpnet_floor.py [--mp 12] [--tile 512]

The floor is the network's multiply-adds (counted with hooks on every convolution, pyramid included) over
what this CPU sustains on a large fp32 matrix product (its practical peak). The profile runs one tile
through torch.profiler and groups the time by operator, then times the engine's own work around the
network (cropping, blending) on a whole 12-megapixel restore.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from weatherstudio.engine.restore import RestoreOptions, restore
from weatherstudio.models.registry import build_model


def count_macs(model: torch.nn.Module, h: int, w: int) -> int:
    """Multiply-adds of one forward on 1×3×h×w: every 2-D convolution and transposed convolution,
    learned layers and the fixed pyramid kernels alike (counted by wrapping torch's functional ops)."""
    macs = 0
    orig_conv2d, orig_tconv = F.conv2d, F.conv_transpose2d

    def conv2d(x, weight, *a, **kw):
        nonlocal macs
        out = orig_conv2d(x, weight, *a, **kw)
        macs += out.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]
        return out

    def tconv(x, weight, *a, **kw):
        nonlocal macs
        macs += x.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]
        return orig_tconv(x, weight, *a, **kw)

    F.conv2d, F.conv_transpose2d = conv2d, tconv
    try:
        with torch.inference_mode():
            model(torch.rand(1, 3, h, w))
    finally:
        F.conv2d, F.conv_transpose2d = orig_conv2d, orig_tconv
    return macs


def sgemm_gflops(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mp", type=float, default=12.0)
    p.add_argument("--tile", type=int, default=512)
    args = p.parse_args()
    model = build_model("lpnet").eval()
    macs = count_macs(model, 1000, 1000)
    per_px = macs / 1e6
    peak = sgemm_gflops()
    pixels = args.mp * 1e6
    floor = 2 * per_px * pixels / (peak * 1e9)
    print(f"threads {torch.get_num_threads()}; sustained fp32 matmul {peak:.0f} GFLOP/s")
    print(
        f"LPNet: {per_px:,.0f} multiply-adds per pixel ({2 * per_px:,.0f} FLOP) → {2 * per_px * pixels / 1e9:,.0f} "
        f"GFLOP for {args.mp:g} MP; compute floor {floor:.2f} s"
    )
    h = int(round((pixels * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    restore(img[:256, :256], model, RestoreOptions(device="cpu"))
    t = time.perf_counter()
    res = restore(img, model, RestoreOptions(device="cpu", tile=args.tile))
    total = time.perf_counter() - t
    from weatherstudio.core.tiling import plan_tiles
    from weatherstudio.engine.restore import ALIGN

    covered = sum(t.h * t.w for t in plan_tiles(h, w, res.tile, res.overlap, ALIGN, model.size_congruence))
    print(
        f"measured: {w}×{h} in {total:.2f} s ({res.tiles} tiles of {res.tile}, overlap {res.overlap}) = "
        f"{total / floor:.1f}× the floor; tiles cover ≈{covered / (h * w):.2f}× the image"
    )
    # Where the time goes inside one tile.
    x = torch.rand(1, 3, args.tile, args.tile).contiguous(memory_format=torch.channels_last)
    m = model.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        m(x)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                m(x)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


if __name__ == "__main__":
    main()
