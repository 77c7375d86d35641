"""Seconds per megapixel and peak memory of each registered model, on CPU (and CUDA when present).

    python benchmarks/speed.py [--models lpnet desnownet] [--configs lite paper] [--sizes 0.5 2 12]
                               [--devices cpu cuda] [--max-seconds 240]

Each measurement runs in a fresh process so that its peak resident memory (CPU) or peak allocated memory
(CUDA) belongs to that run alone. Inputs are random photos-like arrays; the engine's default tiling is used,
exactly as `weatherstudio remove` would run. A size whose estimated time (from the smaller sizes) exceeds
--max-seconds is skipped and marked as such. Prints a table; not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from weatherstudio.engine.restore import RestoreOptions, restore
from weatherstudio.models.registry import build_model
arch, config, mp, device = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
h = int(round((mp * 1e6 * 3 / 4) ** 0.5)); w = int(round(h * 4 / 3))
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
img = (0.5 + 0.25 * np.sin(xx / 37.0) * np.cos(yy / 29.0))[..., None] + 0.05 * rng.random((h, w, 3), np.float32)
img = np.clip(img, 0, 1).astype(np.float32)
model = build_model(arch, config).eval()
opts = RestoreOptions(device=device)
warm = np.ascontiguousarray(img[:128, :128])
restore(warm, model, opts)
if device.startswith("cuda"):
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
t = time.perf_counter()
res = restore(img, model, opts)
if device.startswith("cuda"):
    torch.cuda.synchronize()
sec = time.perf_counter() - t
peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({"seconds": sec, "peak_mb": peak, "tiles": res.tiles, "tile": res.tile, "h": h, "w": w,
                  "threads": torch.get_num_threads(), "params": model.num_parameters()}))
"""


def measure(arch: str, config: str, mp: float, device: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, arch, config, str(mp), device], capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import torch

    from weatherstudio.models.registry import entries

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=sorted(entries()))
    p.add_argument("--configs", nargs="*", default=["lite"])
    p.add_argument("--sizes", nargs="*", type=float, default=[0.5, 2.0, 12.0])
    p.add_argument("--devices", nargs="*", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    p.add_argument("--max-seconds", type=float, default=240.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    print(
        f"{'model':<10} {'config':<6} {'device':<6} {'MP':>5} {'size':>11} {'tiles':>5} {'s':>8} {'s/MP':>7} "
        f"{'peak MB':>8}"
    )
    for device in args.devices:
        for arch in args.models:
            for config in args.configs:
                per_mp = None
                for mp in sorted(args.sizes):
                    if per_mp is not None and per_mp * mp > args.max_seconds:
                        print(f"{arch:<10} {config:<6} {device:<6} {mp:>5g}  skipped: ~{per_mp * mp:.0f} s estimated")
                        rows.append({"model": arch, "config": config, "device": device, "mp": mp, "skipped": True})
                        continue
                    r = measure(arch, config, mp, device)
                    row = {"model": arch, "config": config, "device": device, "mp": mp, **r}
                    rows.append(row)
                    if "error" in r:
                        print(f"{arch:<10} {config:<6} {device:<6} {mp:>5g}  error: {r['error']}")
                        break
                    actual_mp = r["h"] * r["w"] / 1e6
                    per_mp = r["seconds"] / actual_mp
                    print(
                        f"{arch:<10} {config:<6} {device:<6} {mp:>5g} {r['w']:>5}×{r['h']:<5} {r['tiles']:>5} "
                        f"{r['seconds']:>8.2f} {per_mp:>7.3f} {r['peak_mb']:>8.0f}",
                        flush=True,
                    )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
