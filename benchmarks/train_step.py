"""Seconds per training step of each shipped config on this CPU, NCHW against channels-last (NHWC).

    python benchmarks/train_step.py [--configs desnownet_lite gtrain_lite ...] [--steps 12] [--threads 1]
        [--layouts nchw nhwc] [--batch N] [--autocast bf16|fp32]

Each config runs as its ``weatherstudio train`` would (its data from ``../shared/data``, crop, batch, autocast
and objective, batches drawn on the fly), once with ``channels_last`` off and once on, in a fresh trainer from
the same seed; no validation, checkpoint or final scoring. The first three steps (allocator and oneDNN warm-up)
are not counted; the median of the rest is. ``--batch`` and ``--autocast`` override the config's (a config
whose batch does not fit this machine's memory, e.g. ``gtrain_paper``, is timed at a smaller batch); ``--layouts
nhwc`` times channels-last alone. Prints a table; not a pass/fail test.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = ["lpnet_lite", "resdesnow_lite", "desnownet_lite", "gtrain_lite", "j4rnet_lite", "weather_lite"]
WARMUP = 3


def timed_config(name: str, batch: int | None = None, autocast: str | None = None) -> dict:
    """The config ``name`` as timed: its batch and autocast, or the ones asked for."""
    from weatherstudio.engine.training import load_config

    cfg = copy.deepcopy(load_config(name))
    if batch:
        cfg["data"]["batch"] = batch
    if autocast:
        cfg["autocast"] = autocast
    return cfg


def seconds_per_step(config: dict, channels_last: bool, steps: int) -> float:
    from weatherstudio.engine import remote

    cfg = copy.deepcopy(config)
    cfg["channels_last"] = channels_last
    with tempfile.TemporaryDirectory() as run:
        return remote.seconds_per_step(cfg, None, "cpu", Path(run), warmup=WARMUP, steps=steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="*", default=CONFIGS)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layouts", nargs="+", choices=["nchw", "nhwc"], default=["nchw", "nhwc"])
    ap.add_argument("--batch", type=int, default=None, help="override the config's batch")
    ap.add_argument("--autocast", choices=["bf16", "fp32"], default=None, help="override the config's autocast")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"{args.threads} thread(s), median of {args.steps} steps after {WARMUP}")
    print("| config | batch | autocast | NCHW s/step | channels-last s/step | channels-last × |")
    print("|---|---|---|---|---|---|")
    for name in args.configs:
        cfg = timed_config(name, args.batch, args.autocast)
        times = {layout: seconds_per_step(cfg, layout == "nhwc", args.steps) for layout in args.layouts}
        nchw, nhwc = times.get("nchw"), times.get("nhwc")
        amp, batch = cfg.get("autocast", "fp32"), cfg["data"]["batch"]
        cells = [f"{t:.3f}" if t is not None else "—" for t in (nchw, nhwc)]
        ratio = f"{nchw / nhwc:.2f}×" if nchw and nhwc else "—"
        print(f"| {name} | {batch} | {amp} | {cells[0]} | {cells[1]} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
