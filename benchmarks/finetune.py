"""Fine-tuning speed on this CPU: steps per second for each network, fp32 against bf16 autocast.

    python benchmarks/finetune.py [--models lpnet resdesnow ...] [--steps 20] [--threads 1] [--crop N] [--batch 4]

Each network is fine-tuned from its shipped weights on a handful of photos (the bundled clip's clean frames)
with its own weather synthesized, the defaults of ``weatherstudio finetune`` (crop, batch ≤ 4), once in fp32
and once under bf16 autocast (only where the CPU computes bf16 natively). The first steps (warm-up of the
allocator and oneDNN) are not counted. Prints a table; not a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAMES = Path(__file__).resolve().parents[1] / "resources" / "samples" / "clean" / "rainy_coffee_clip"


def steps_per_second(arch: str, photos: Path, steps: int, crop: int | None, batch: int | None, autocast: str) -> float:
    import time

    from weatherstudio.engine.finetune import FinetuneCallbacks, FinetuneData, Finetuner, FinetuneSpec

    spec = FinetuneSpec(
        arch,
        FinetuneData(photos=photos),
        steps=steps + 3,
        crop=crop,
        batch=batch,
        val_every=10**6,
        autocast=autocast,
        project_test=False,
        output=Path(tempfile.mkdtemp()) / "out.safetensors",
    )
    job = Finetuner(spec)
    stamps: list[float] = []
    job.run(FinetuneCallbacks(on_step=lambda s, losses, lr: stamps.append(time.perf_counter())))
    return (len(stamps) - 3) / (stamps[-1] - stamps[2])


def main() -> None:
    import torch

    from weatherstudio.engine.training import cpu_has_bf16

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["lpnet", "resdesnow", "desnownet", "gtrain", "j4rnet"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--crop", type=int)
    p.add_argument("--batch", type=int)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bf16 = cpu_has_bf16()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("WEATHERSTUDIO_USER_WEIGHTS", str(Path(tmp) / "weights"))
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for f in sorted(FRAMES.glob("frame_*.jpg")):
            shutil.copy(f, photos / f.name)
        print(f"{torch.get_num_threads()} torch thread(s); native bf16: {'yes' if bf16 else 'no'}")
        print(f"{'network':<10} {'fp32 steps/s':>13} {'bf16 steps/s':>13} {'speed-up':>9}")
        for arch in args.models:
            fp32 = steps_per_second(arch, photos, args.steps, args.crop, args.batch, "off")
            if bf16:
                half = steps_per_second(arch, photos, args.steps, args.crop, args.batch, "auto")
                print(f"{arch:<10} {fp32:>13.2f} {half:>13.2f} {half / fp32:>8.2f}×")
            else:
                print(f"{arch:<10} {fp32:>13.2f} {'—':>13} {'—':>9}")


if __name__ == "__main__":
    main()
