"""Each network's compute floor on this CPU: its multiply-adds over what the host sustains on an fp32 matrix product.

    python benchmarks/floor.py [--models lpnet gtrain] [--mp 12] [--threads 2]

The multiply-adds are counted by torch's FLOP counter on one forward of a 384×512 image (every convolution,
transposed convolution and matrix product, the fixed pyramid kernels of LPNet included; GT-RAIN's deformable
convolutions through their sampling + matrix-product form, so that the product is counted), per pixel. The
host's speed is a 2,048² fp32 matrix product on ``--threads`` threads, measured right before: it drifts on this
machine by ±15 % within minutes, so a time is compared with a floor measured in the same minute
(``benchmarks/speed.py`` prints both for every row). Layers the networks run fused or by output phases are
counted as written (their zero taps are not work). J4R-Net is counted on a still photo, from a zero memory. A row
far above its floor spends the rest on memory traffic, small layers, tile overlap and the engine's own work; the
runtimes' convolution kernels can beat the matrix product by up to ~1.3× here, so a row can also come in under it.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode


@contextlib.contextmanager
def _plain_layers() -> Iterator[None]:
    """The networks' layers as written, for counting: GT-RAIN's deformable convolutions as grid sampling + one
    matrix product (the form the counter sees), and the convolutions the engine runs fused or by output phases
    (DesnowNet's pyramid heads, the few-channel outputs) as themselves, without the zero taps those add."""
    import torch.nn.functional as F

    import weatherstudio.models.desnownet as desnownet
    import weatherstudio.models.gtrain as gtrain
    import weatherstudio.models.j4rnet as j4rnet
    import weatherstudio.models.resdesnow as resdesnow

    swaps = [
        (gtrain, "_torchvision_deform", lambda: None),
        (desnownet, "pyramid_heads", lambda x, heads: [head(x) for head in heads]),
        *((m, "conv2d_by_phases", lambda x, w, b=None: F.conv2d(x, w, b)) for m in (desnownet, j4rnet, resdesnow)),
    ]
    kept = [(m, name, getattr(m, name)) for m, name, _ in swaps]
    try:
        for m, name, plain in swaps:
            setattr(m, name, plain)
        yield
    finally:
        for m, name, value in kept:
            setattr(m, name, value)


def macs_per_pixel(model: torch.nn.Module, height: int = 384, width: int = 512) -> float:
    """Multiply-adds of one forward of ``model`` on a 1×3×``height``×``width`` image, per pixel."""
    counter = FlopCounterMode(display=False)
    with _plain_layers(), torch.no_grad(), counter:
        model(torch.rand(1, 3, height, width))
    return counter.get_total_flops() / 2 / (height * width)


def sgemm_gflops(n: int = 2048, reps: int = 5) -> float:
    """Sustained fp32 matrix-product speed on torch's current threads, GFLOP/s."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def floor_seconds(macs_px: float, pixels: float, gflops: float) -> float:
    """The time ``pixels`` at ``macs_px`` multiply-adds each take at ``gflops``."""
    return 2 * macs_px * pixels / (gflops * 1e9)


def main() -> None:
    from weatherstudio.models.registry import build_model, entries

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=sorted(entries()))
    p.add_argument("--mp", type=float, default=12.0)
    p.add_argument("--threads", type=int, default=0, help="default: all cores")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gflops = sgemm_gflops()
    print(f"{torch.get_num_threads()} threads, fp32 matrix product {gflops:.0f} GFLOP/s")
    print(f"{'network':<10} {'MAC/pixel':>10} {'GFLOP @ ' + format(args.mp, 'g') + ' MP':>14} {'floor s':>8}")
    for arch in args.models:
        per_px = macs_per_pixel(build_model(arch).eval())
        pixels = args.mp * 1e6
        print(
            f"{arch:<10} {per_px:>10,.0f} {2 * per_px * pixels / 1e9:>14,.0f} "
            f"{floor_seconds(per_px, pixels, gflops):>8.2f}"
        )


if __name__ == "__main__":
    main()
