"""Make the sample media WeatherStudio ships, from public-domain photos, with the project's own synthesis.

    python resources/make_samples.py [--clean ../shared/data/clean/pypi_samples]

The photos are scikit-image's public-domain samples (rocket: NASA; chelsea and coffee: Stéfan van der Walt,
CC0), found in ../shared/data/clean/pypi_samples. Writes resources/samples/: a rainy photo, a snowy photo
and a short rainy clip (a folder of frames), each with its clean original for comparison.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from weatherstudio.core.image_io import read_image, write_image
from weatherstudio.synth import synthesize_rain, synthesize_snow
from weatherstudio.synth.video import synthesize_rain_video

HERE = Path(__file__).resolve().parent
DEFAULT_CLEAN = HERE.parents[1] / "shared" / "data" / "clean" / "pypi_samples"


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, rgb, overwrite=True, quality=92)
    print(path.relative_to(HERE.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, default=DEFAULT_CLEAN)
    parser.add_argument("--out", type=Path, default=HERE / "samples")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    rocket = read_image(args.clean / "rocket.png").rgb
    rain = synthesize_rain(rocket, "light", np.random.default_rng(2026))
    _write(out / "rainy_rocket.jpg", rain.x)
    _write(out / "clean" / "rainy_rocket.jpg", rain.y)

    cat = read_image(args.clean / "chelsea.png").rgb
    snow = synthesize_snow(cat, "medium", np.random.default_rng(2027))
    _write(out / "snowy_chelsea.jpg", snow.x)
    _write(out / "clean" / "snowy_chelsea.jpg", snow.y)

    coffee = read_image(args.clean / "coffee.png").rgb
    clip = synthesize_rain_video(coffee, 12, "light", np.random.default_rng(2028), size=(288, 384))
    for i, frame in enumerate(clip):
        _write(out / "rainy_coffee_clip" / f"frame_{i:03d}.jpg", frame.x)
        _write(out / "clean" / "rainy_coffee_clip" / f"frame_{i:03d}.jpg", frame.y)


if __name__ == "__main__":
    main()
