"""Seconds per megapixel and peak memory of each network in each backend, on CPU (and CUDA when present).

    python benchmarks/speed.py [--models lpnet desnownet] [--backends torch openvino onnxruntime torch-compile]
                               [--sizes 2 12] [--devices cpu cuda] [--threads 2] [--max-seconds 400]

Each measurement runs in a fresh process so that its peak resident memory (CPU: the process's own VmHWM) or peak
allocated memory (CUDA) belongs to that run alone. The input is a photo-like array (smooth shading and fine
noise); the engine's default tiling is used, exactly as ``weatherstudio remove --backend B`` would run. Before the
timed restore, one small restore in the same backend loads the network (and, for a runtime, exports its checked
ONNX graph into the cache if it is not there yet and compiles it): the time is what a photo costs once the studio
is open. ``torch-compile`` is ``torch.compile`` (inductor) on the torch path, measured here only. A size whose
estimated time (from the smaller sizes) exceeds --max-seconds is skipped and marked. ``--repeat N`` times the
N-th restore of the same photo instead (steady state: compiles done). Prints a table; not a pass/fail test.

Columns: ``× torch`` is torch's time over the row's, same network and size, same run. ``floor s`` is the
network's multiply-adds over the fp32 matrix-product speed the child measured just before its restore
(``benchmarks/floor.py``), ``× floor`` the row's time over it. This host's speed drifts by ±15 % within minutes,
so ``× torch*`` compares the two at the same host speed: torch's ``× floor`` over the row's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from floor import sgemm_gflops
from weatherstudio.engine.restore import RestoreOptions, restore
from weatherstudio.engine.loader import load_model
arch, mp, device, backend, threads = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
repeat = int(sys.argv[6])
if threads:
    torch.set_num_threads(threads)
h = int(round((mp * 1e6 * 3 / 4) ** 0.5)); w = int(round(h * 4 / 3))
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
img = (0.5 + 0.25 * np.sin(xx / 37.0) * np.cos(yy / 29.0))[..., None] + 0.05 * rng.random((h, w, 3), np.float32)
img = np.clip(img, 0, 1).astype(np.float32)
model, _ = load_model(arch)
model.eval()
if backend == "torch-compile":
    model.forward = torch.compile(model.forward, dynamic=True)
    backend = "torch"
opts = RestoreOptions(device=device, backend=backend)
warm = np.ascontiguousarray(img[:128, :128])
restore(warm, model, opts)
if device.startswith("cuda"):
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
gflops = sgemm_gflops() if device == "cpu" else 0.0
for _ in range(repeat - 1):  # --repeat: earlier runs of the same photo (compiles, caches) are not timed
    restore(img, model, opts, keep_state=False)
t = time.perf_counter()
res = restore(img, model, opts, keep_state=False)  # a photo, as `weatherstudio remove` runs it
if device.startswith("cuda"):
    torch.cuda.synchronize()
sec = time.perf_counter() - t
def peak_rss_mb():
    # VmHWM: this process's own peak; ru_maxrss would also carry the parent's peak across fork and exec
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else peak_rss_mb()
print(json.dumps({"seconds": sec, "peak_mb": peak, "tiles": res.tiles, "tile": res.tile, "h": h, "w": w,
                  "threads": torch.get_num_threads(), "backend": res.backend, "out": float(res.image.mean()),
                  "gflops": gflops}))
"""


def measure(arch: str, mp: float, device: str, backend: str, threads: int, repeat: int = 1) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, arch, str(mp), device, backend, str(threads), str(repeat)],
        cwd=HERE,  # the child imports floor.py from here
        capture_output=True,
        text=True,
        timeout=7200,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import torch
    from floor import floor_seconds, macs_per_pixel

    from weatherstudio.engine.backends import RUNTIMES, installed
    from weatherstudio.models.registry import build_model, entries

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=sorted(entries()))
    p.add_argument("--backends", nargs="*", default=["torch", *(b for b in RUNTIMES if installed(b))])
    p.add_argument("--sizes", nargs="*", type=float, default=[2.0, 12.0])
    p.add_argument("--devices", nargs="*", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    p.add_argument("--threads", type=int, default=0, help="torch/runtime threads (default: all cores)")
    p.add_argument("--max-seconds", type=float, default=400.0)
    p.add_argument("--repeat", type=int, default=1, help="time the N-th restore of the photo (steady state)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    print(
        f"{'model':<10} {'backend':<13} {'device':<6} {'MP':>5} {'size':>11} {'tiles':>5} {'s':>8} {'s/MP':>7} "
        f"{'peak MB':>8} {'× torch':>8} {'floor s':>8} {'× floor':>8} {'× torch*':>8}"
    )
    macs = {arch: macs_per_pixel(build_model(arch).eval()) for arch in args.models}
    for device in args.devices:
        for arch in args.models:
            for mp in sorted(args.sizes):
                torch_s = torch_floors = None
                for backend in args.backends if device == "cpu" else ["torch"]:
                    estimate = next(
                        (
                            r["s_per_mp"] * mp
                            for r in reversed(rows)
                            if r.get("model") == arch and r.get("backend") == backend and "s_per_mp" in r
                        ),
                        None,
                    )
                    if estimate is not None and estimate > args.max_seconds:
                        print(f"{arch:<10} {backend:<13} {device:<6} {mp:>5g}  skipped: ~{estimate:.0f} s estimated")
                        rows.append({"model": arch, "backend": backend, "device": device, "mp": mp, "skipped": True})
                        continue
                    r = measure(arch, mp, device, backend, args.threads, args.repeat)
                    row = {"model": arch, "backend": backend, "device": device, "mp": mp, **r}
                    rows.append(row)
                    if "error" in r:
                        print(f"{arch:<10} {backend:<13} {device:<6} {mp:>5g}  error: {r['error']}")
                        continue
                    row["s_per_mp"] = r["seconds"] / (r["h"] * r["w"] / 1e6)
                    if backend == "torch":
                        torch_s = r["seconds"]
                    ratio = f"{torch_s / r['seconds']:>7.2f}×" if torch_s else f"{'':>8}"
                    floor = ""
                    if r.get("gflops"):
                        row["floor_s"] = floor_seconds(macs[arch], r["h"] * r["w"], r["gflops"])
                        floors = r["seconds"] / row["floor_s"]
                        if backend == "torch":
                            torch_floors = floors
                        same = f"{torch_floors / floors:>7.2f}×" if torch_floors else ""
                        floor = f" {row['floor_s']:>8.2f} {floors:>7.2f}× {same}"
                    print(
                        f"{arch:<10} {backend:<13} {device:<6} {mp:>5g} {r['w']:>5}×{r['h']:<5} {r['tiles']:>5} "
                        f"{r['seconds']:>8.2f} {row['s_per_mp']:>7.3f} {r['peak_mb']:>8.0f} {ratio}{floor}",
                        flush=True,
                    )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
