"""Synthetic weather against real weather, as populations: a table of image statistics per set.

    python benchmarks/synth_realism.py [--data ../shared/data] [--photos 40] [--seed 0]

Real photos have no clean counterpart, so each set (real rain photos, frames of the real rainy video, real
snow photos, RainTrainL's rainy side, the clean val-split photos, and every synthesis preset applied to
those clean photos) is
described by the same numbers (``weatherstudio.synth.statistics``: dark channel, coarse contrast, fine
high-pass, streak anisotropy, bright-speck energy and its share at large scales), each printed as the median
with the interquartile range. Rain sets are measured at a 321 px short side (Rain100L's and the real rain
photos' size), snow at 480 px (the real snow photos'). A preset matches real weather when its rows move
away from the clean row the way the real rows do. Only val-split photos are used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from weatherstudio.core.image_io import list_images, read_image  # noqa: E402
from weatherstudio.engine.datasets import PhotoPool  # noqa: E402
from weatherstudio.synth import RAIN_PRESETS, SNOW_PRESETS, synthesize_rain, synthesize_snow  # noqa: E402
from weatherstudio.synth.statistics import FIELDS, resize_to_reference, stat_row, summarize, weather_stats  # noqa: E402


def _row(name: str, images: list[np.ndarray], reference: int) -> str:
    summary = summarize(stat_row(weather_stats(im, reference)) for im in images)
    cells = [f"{summary[k][1]:.3f} ({summary[k][0]:.3f}–{summary[k][2]:.3f})" for k in FIELDS]
    return f"| {name} | {len(images)} | " + " | ".join(cells) + " |"


def _header() -> str:
    return "| set | n | " + " | ".join(FIELDS) + " |\n|---|---|" + "---|" * len(FIELDS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--photos", type=int, default=40, help="clean val-split photos to synthesize on")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = Path(args.data)
    pool = PhotoPool.load(data / "clean", "val")
    step = max(1, len(pool.photos) // args.photos)
    photos = [p.astype(np.float32) / 255.0 for p in pool.photos[::step][: args.photos]]

    def reals(folder: str, every: int = 1) -> list[np.ndarray]:
        return [read_image(p).rgb for p in list_images([data / folder])[::every]]

    for kind, reference, presets, synth, real_sets in (
        (
            "rain",
            321,
            RAIN_PRESETS,
            synthesize_rain,
            [
                ("real rain photos", "real/rain_photos", 1),
                ("real rainy video rb2 (every 6th frame)", "real/rain_video_rb2", 6),
                ("RainTrainL rainy side (every 5th)", "train/RainTrainL/rainy", 5),
            ],
        ),
        ("snow", 480, SNOW_PRESETS, synthesize_snow, [("real snow photos", "real/snow_photos", 1)]),
    ):
        clean = [resize_to_reference(p, reference) for p in photos]
        print(f"\n{kind} (short side {reference} px)\n")
        print(_header())
        print(_row("clean val photos", clean, reference))
        for name, folder, every in real_sets:
            print(_row(name, reals(folder, every), reference))
        for preset in presets:
            rng = np.random.default_rng([args.seed, len(preset)])
            print(_row(f"synthetic {preset}", [synth(c, preset, rng).x for c in clean], reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
