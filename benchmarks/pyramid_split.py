"""LPNet in ONNX Runtime as one graph in blended tiles, or as its two parts: time, and distance to the whole image.

    python benchmarks/pyramid_split.py [--rounds 4] [--mp 12] [--photos 6] [--threads 2]

Time: a photo-like image of ``--mp`` megapixels restored in one process, the two ways taking turns for
``--rounds`` rounds after one untimed restore each (steady state; the machine's speed drifts, so each round pairs
the two): ``RestoreOptions(overlap=32)`` is the one graph in 512² tiles blended over 32 pixels (the engine before
the split, still what an explicit overlap asks for), the default is the split (``engine/pyramid_split.py``).

Distance: the first ``--photos`` real rainy photos of ``../shared/data/real/rain_photos``, enlarged ×4 so that they
need tiles (bicubic; ~2.5 MP), each restored both ways and by torch on the whole image at once; the table gives the
largest and the mean absolute difference from the whole image, in 8-bit levels. Skipped where the data is absent.
Prints tables; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from weatherstudio.engine.loader import load_model  # noqa: E402
from weatherstudio.engine.restore import RestoreOptions, restore  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "rain_photos"
WAYS = {
    "one graph, 512² tiles blended": RestoreOptions(backend="onnxruntime", overlap=32),
    "two parts (default)": RestoreOptions(backend="onnxruntime"),
}


def photo_like(mp: float) -> np.ndarray:
    h = int(round((mp * 1e6 * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = (0.5 + 0.25 * np.sin(xx / 37.0) * np.cos(yy / 29.0))[..., None] + 0.05 * rng.random((h, w, 3), np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def timing(model: torch.nn.Module, mp: float, rounds: int) -> None:
    img = photo_like(mp)
    for options in WAYS.values():
        restore(img, model, options)
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(rounds):
        for name, options in WAYS.items():
            start = time.perf_counter()
            result = restore(img, model, options)
            times[name].append(time.perf_counter() - start)
            times.setdefault(f"{name} tiles", [result.tiles])
    print(f"\n{img.shape[1]}×{img.shape[0]}, {torch.get_num_threads()} threads, {rounds} rounds")
    print(f"{'way':<32} {'tiles':>5} {'min s':>7} {'median s':>9} {'each round':<40}")
    for name in WAYS:
        runs = times[name]
        each = " ".join(f"{t:.2f}" for t in runs)
        tiles = int(times[f"{name} tiles"][0])
        print(f"{name:<32} {tiles:>5} {min(runs):>7.2f} {statistics.median(runs):>9.2f} {each:<40}")


def distance(model: torch.nn.Module, count: int) -> None:
    import cv2

    from weatherstudio.core.image_io import read_image

    files = sorted(PHOTOS.glob("*.png"))[:count]
    if not files:
        print(f"\n(no photos in {PHOTOS}: distance skipped)")
        return
    print("\nabsolute difference from torch on the whole image, 8-bit levels (max / mean)")
    print(f"{'photo ×4':<14} {'size':>11} " + " ".join(f"{name:>32}" for name in WAYS))
    for path in files:
        rgb = cv2.resize(read_image(path).rgb, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
        rgb = np.ascontiguousarray(rgb.clip(0, 1), np.float32)
        whole = restore(rgb, model, RestoreOptions(backend="torch", tile=0)).image
        cells = []
        for options in WAYS.values():
            diff = np.abs(restore(rgb, model, options).image - whole) * 255
            cells.append(f"{diff.max():.3f} / {diff.mean():.5f}")
        size = f"{rgb.shape[1]}×{rgb.shape[0]}"
        print(f"{path.name:<14} {size:>11} " + " ".join(f"{c:>32}" for c in cells))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--mp", type=float, default=12.0)
    p.add_argument("--photos", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model("lpnet")
    timing(model, args.mp, args.rounds)
    distance(model, args.photos)


if __name__ == "__main__":
    main()
