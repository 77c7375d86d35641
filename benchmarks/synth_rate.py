"""How many synthetic pairs per second the weather synthesis makes on one CPU core.

Prints a table: kind × preset × size → pairs/s (single images) or frames/s (8-frame clips). The clean
image is a fixed random-texture photo stand-in, so the script needs no data. Usage::

    python benchmarks/synth_rate.py [--seconds 1.0] [--sizes 128x128,256x256,481x321]
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from weatherstudio.synth import synthesize_rain, synthesize_rain_video, synthesize_snow, synthesize_snow_video


def _one_core() -> None:
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        except OSError:
            pass


def _photo(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.uniform(0.0, 1.0, (max(2, h // 16), max(2, w // 16), 3)).astype(np.float32)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(img + rng.normal(0, 0.03, img.shape).astype(np.float32), 0, 1)


def _rate(fn, seconds: float, per_call: int) -> tuple[float, float]:
    """(items per CPU second, items per wall second): CPU time is what one core costs, robust to a busy machine."""
    fn(0)  # warm-up (first allocations)
    n, seed = 0, 1
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while True:
        fn(seed)
        seed += 1
        n += per_call
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if cpu >= seconds and seed > 3:
            return n / cpu, n / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--sizes", default="128x128,256x256,481x321", help="comma-separated WxH")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip for the video kinds")
    args = parser.parse_args()
    _one_core()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows = []
    for w, h in sizes:
        photo = _photo(h, w)
        big = _photo(int(h * 1.6), int(w * 1.6))
        cases = [
            ("snow", "small", lambda s, p=photo: synthesize_snow(p, "small", s), 1),
            ("snow", "medium", lambda s, p=photo: synthesize_snow(p, "medium", s), 1),
            ("snow", "large", lambda s, p=photo: synthesize_snow(p, "large", s), 1),
            ("rain", "light", lambda s, p=photo: synthesize_rain(p, "light", s), 1),
            ("rain", "heavy", lambda s, p=photo: synthesize_rain(p, "heavy", s), 1),
            (
                "rain-video",
                "light",
                lambda s, p=big, hw=(h, w): synthesize_rain_video(p, args.frames, "light", s, size=hw),
                args.frames,
            ),
            (
                "rain-video",
                "heavy",
                lambda s, p=big, hw=(h, w): synthesize_rain_video(p, args.frames, "heavy", s, size=hw),
                args.frames,
            ),
            (
                "snow-video",
                "medium",
                lambda s, p=big, hw=(h, w): synthesize_snow_video(p, args.frames, "medium", s, size=hw),
                args.frames,
            ),
        ]
        for kind, preset, fn, per in cases:
            cpu_rate, wall_rate = _rate(fn, args.seconds, per)
            rows.append((kind, preset, f"{w}×{h}", cpu_rate, wall_rate, "frames/s" if per > 1 else "pairs/s"))
    print(f"one core, cv2 {cv2.__version__}; 'cpu' counts this process's CPU time, 'wall' the clock")
    print(f"{'kind':<11} {'preset':<7} {'size':>8} {'cpu':>8} {'wall':>8}  unit")
    for kind, preset, size, cpu_rate, wall_rate, unit in rows:
        print(f"{kind:<11} {preset:<7} {size:>8} {cpu_rate:8.1f} {wall_rate:8.1f}  {unit}")


if __name__ == "__main__":
    main()
