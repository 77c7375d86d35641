"""Before/after strips of the shipped weights on the real rain, snow and video of ``../shared/data/real``.

    python benchmarks/real_strips.py [--data ../shared/data] [-o out/real_strips] [--rain-rows 4]

Real weather has no ground truth, so these are for looking at. Writes one grid per kind (rows: photos or
frames; columns: the input, then each model that ships weights) as ``rain.png``, ``snow.png``, ``video.png``
and the full-size output of every model on every photo under ``full/``. For the video it also prints the
mean frame-to-frame change of Y (8-bit) of the input and of each model's output: real camera motion is in
all of them, so only the differences between columns mean anything (lower: steadier).

The research data is never copied into the repository: the strips go to an ignored folder (rewritten
on each run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from weatherstudio.core.color import quantize8, rgb_to_y  # noqa: E402
from weatherstudio.core.image_io import list_images, read_image, write_image  # noqa: E402
from weatherstudio.engine.loader import load_model  # noqa: E402
from weatherstudio.engine.restore import restore  # noqa: E402
from weatherstudio.engine.video import SequenceRestorer  # noqa: E402
from weatherstudio.weights import default_weights  # noqa: E402

ROW_HEIGHT = 220


def _label(image: np.ndarray, text: str) -> np.ndarray:
    """An 8-bit RGB thumbnail ROW_HEIGHT high with ``text`` in its top-left corner."""
    h, w = image.shape[:2]
    thumb = cv2.resize(image, (round(w * ROW_HEIGHT / h), ROW_HEIGHT), interpolation=cv2.INTER_AREA)
    thumb = np.clip(np.round(thumb * 255), 0, 255).astype(np.uint8)
    cv2.rectangle(thumb, (0, 0), (8 + 9 * len(text), 22), (0, 0, 0), -1)
    cv2.putText(thumb, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return thumb


def _grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    gap = 4
    lines = []
    for row in rows:
        parts = []
        for cell in row:
            parts += [cell, np.full((ROW_HEIGHT, gap, 3), 255, np.uint8)]
        lines += [np.concatenate(parts[:-1], axis=1), None]
    width = max(line.shape[1] for line in lines if line is not None)
    out = []
    for line in lines[:-1]:
        if line is None:
            out.append(np.full((gap, width, 3), 255, np.uint8))
        else:
            out.append(np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(out, axis=0)


def _shipped(names: list[str]) -> list[str]:
    have = [n for n in names if default_weights(n) is not None]
    for n in sorted(set(names) - set(have)):
        print(f"  {n}: no shipped weights, left out")
    return have


def photos_grid(paths: list[Path], models: list[str], full: Path) -> list[list[np.ndarray]]:
    loaded = {m: load_model(m)[0] for m in models}
    rows = []
    for path in paths:
        rgb = read_image(path).rgb
        row = [_label(rgb, f"input {path.name}")]
        for name, model in loaded.items():
            model.reset_state()
            out = restore(rgb, model).image
            write_image(full / f"{path.stem}_{name}.png", out, overwrite=True)
            row.append(_label(out, name))
        rows.append(row)
    return rows


def video_grid(frames: list[Path], models: list[str], show: list[int]) -> tuple[list[list[np.ndarray]], dict]:
    inputs = [read_image(p).rgb for p in frames]
    outputs = {"input": inputs}
    for name in models:
        model = load_model(name)[0]
        restorer = SequenceRestorer(model)  # memory carried frame to frame for a temporal model
        outputs[name] = [restorer.restore_next(f, i).image for i, f in enumerate(inputs)]
    change = {}
    for name, seq in outputs.items():
        ys = [rgb_to_y(quantize8(f)) for f in seq]
        change[name] = float(np.mean([np.abs(ys[t] - ys[t - 1]).mean() for t in range(1, len(ys))]))
    rows = [[_label(outputs[n][t], f"{n} frame {t}") for n in outputs] for t in show]
    return rows, change


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("-o", "--output", default=str(REPO / "out" / "real_strips"))
    ap.add_argument("--rain-models", nargs="+", default=["lpnet", "gtrain", "j4rnet"])
    ap.add_argument("--snow-models", nargs="+", default=["desnownet", "resdesnow"])
    ap.add_argument("--video-models", nargs="+", default=["lpnet", "j4rnet"])
    ap.add_argument("--rain-rows", type=int, default=4, help="rainy photos in the strip (all are restored)")
    ap.add_argument("--video-frames", type=int, default=24, help="frames of the real clip to run")
    args = ap.parse_args()
    real = Path(args.data) / "real"
    out = Path(args.output)
    full = out / "full"
    full.mkdir(parents=True, exist_ok=True)

    print("rain photos")
    rain = list_images([real / "rain_photos"])
    rows = photos_grid(rain, _shipped(args.rain_models), full)
    step = max(1, len(rows) // max(1, args.rain_rows))
    write_image(out / "rain.png", _grid(rows[::step][: args.rain_rows]).astype(np.float32) / 255, overwrite=True)

    print("snow photos")
    snow = list_images([real / "snow_photos"])
    snow_rows = photos_grid(snow, _shipped(args.snow_models), full)
    write_image(out / "snow.png", _grid(snow_rows).astype(np.float32) / 255, overwrite=True)

    print("rain video")
    frames = list_images([real / "rain_video_rb2"])[: args.video_frames]
    show = [len(frames) - 3, len(frames) - 2, len(frames) - 1]
    rows, change = video_grid(frames, _shipped(args.video_models), show)
    write_image(out / "video.png", _grid(rows).astype(np.float32) / 255, overwrite=True)
    print("  mean |ΔY| between consecutive frames (8-bit; camera motion included, lower = steadier):")
    for name, value in change.items():
        print(f"    {name:10s} {value:.3f}")
    for name in ("rain.png", "snow.png", "video.png"):
        print(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
