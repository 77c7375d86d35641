"""Make the sample media WeatherStudio ships, from public-domain photos, with the project's own synthesis.

    python resources/make_samples.py [--clean ../shared/data/clean/pypi_samples]

The photos are scikit-image's public-domain samples (rocket: NASA; chelsea and coffee: Stéfan van der Walt,
CC0), found in ../shared/data/clean/pypi_samples. Writes resources/samples/: a rainy photo, a snowy photo
and a short rainy clip — a folder of frames, and the same frames as an H.264 mp4 with a generated sound track
(rain-like filtered noise) — each with its clean original for comparison.
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
    write_clip(out / "rainy_coffee_clip.mp4", [f.x for f in clip], fps=12, seed=2029)
    print((out / "rainy_coffee_clip.mp4").relative_to(HERE.parent))


def write_clip(path: Path, frames: list[np.ndarray], fps: int, seed: int) -> None:
    """Frames as H.264 (CRF 18, 4:2:0, BT.601) at ``fps``, with AAC sound: low-passed noise, like rain."""
    from fractions import Fraction

    import av

    rate = 48000
    seconds = len(frames) / fps
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(int(rate * seconds)).astype(np.float32)
    kernel = np.ones(24, np.float32) / 24  # a soft hiss rather than white noise
    sound = (0.25 * np.convolve(noise, kernel, mode="same")).astype(np.float32)[None]
    tb = Fraction(1, fps * 100)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "18"}
        video.time_base = video.codec_context.time_base = tb
        audio = out.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for i, rgb in enumerate(frames):
            u8 = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(u8, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i * 100, tb
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        for start in range(0, sound.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(sound[:, start : start + 1024]), "fltp", "mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = rate, start, Fraction(1, rate)
            for packet in audio.encode(chunk):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)


if __name__ == "__main__":
    main()
