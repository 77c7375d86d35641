"""Does bf16 autocast cost quality? The same training run in fp32 and under bf16 autocast, side by side.

    python benchmarks/bf16_parity.py [--config lpnet_lite] [--steps 2000] [--every 500] [--threads 1]

Both runs start from the same seed and draw the same batches (a batch is a function of seed and step); only
the forward's precision differs (weights, loss and Adam stay fp32). Prints validation PSNR-Y / SSIM-Y at each
validation step and seconds per step for each. Needs the research data (``../shared/data``) and a CPU with
native bf16 (AVX-512-BF16 or AMX): elsewhere autocast would be emulated and the comparison says nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(config: str, steps: int, every: int, autocast: str | None) -> tuple[list[tuple[int, float, float]], float]:
    from weatherstudio.engine.training import TrainCallbacks, Trainer, load_config

    cfg = load_config(config)
    cfg.pop("autocast", None)
    if autocast:
        cfg["autocast"] = autocast
    cfg.setdefault("val", {})["every"] = every
    cfg["optim"]["restarts"] = []  # one cosine decay over the shortened run
    cfg["checkpoint_every"] = 10**9
    scores: list[tuple[int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), steps=steps)
        on_val = TrainCallbacks(on_validation=lambda s, v: scores.append((s, v["val_psnr_y"], v["val_ssim_y"])))
        trainer.train(progress=False, callbacks=on_val)
        return scores, trainer.wall / max(1, trainer.step)


def main() -> None:
    import torch

    from weatherstudio.engine.training import cpu_has_bf16

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="lpnet_lite")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--every", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if not cpu_has_bf16():
        sys.exit("this CPU has no native bf16: the comparison needs AVX-512-BF16 or AMX")
    fp32, t32 = run(args.config, args.steps, args.every, None)
    bf16, t16 = run(args.config, args.steps, args.every, "bf16")
    print(f"{args.config}, {args.steps} steps, {args.threads} thread(s): fp32 {t32:.3f} s/step, bf16 {t16:.3f} s/step")
    print(f"{'step':>6} {'fp32 PSNR-Y':>12} {'bf16 PSNR-Y':>12} {'Δ dB':>7} {'fp32 SSIM':>10} {'bf16 SSIM':>10}")
    for (s, p32, s32), (_, p16, s16) in zip(fp32, bf16):
        print(f"{s:>6} {p32:>12.3f} {p16:>12.3f} {p16 - p32:>+7.3f} {s32:>10.4f} {s16:>10.4f}")


if __name__ == "__main__":
    main()
