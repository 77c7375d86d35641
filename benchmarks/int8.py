"""int8 in ONNX Runtime: is a statically quantized graph faithful (within 1/255 of fp32), and is it faster?

    python benchmarks/int8.py [--models lpnet resdesnow] [--threads 2] [--tile 192]

For each network: its checked fp32 graph (the studio's CPU backend cache), quantized by ONNX Runtime
(``quantize_static``: QDQ format, int8 weights per channel, uint8 activations, calibrated on tiles of the
bundled sample photos), both run on another tile of a bundled photo. Prints the largest and mean |Δ| of the
output and the share of pixels off by more than 1/255, and each graph's time per tile (the faster of
``--repeat`` runs). The studio only ships a precision that stays within 1/255.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from weatherstudio.core.image_io import read_image  # noqa: E402
from weatherstudio.engine.backends import graph_file  # noqa: E402
from weatherstudio.engine.loader import load_model  # noqa: E402
from weatherstudio.engine.onnx_export import ort_session  # noqa: E402
from weatherstudio.samples import find_samples  # noqa: E402


def _tiles(tile: int) -> list[np.ndarray]:
    """NCHW float32 tiles cut from the bundled sample photos (a grid of each)."""
    out = []
    for sample in find_samples():
        if sample.is_clip or sample.is_video:
            continue
        rgb = read_image(sample.path).rgb
        h, w = rgb.shape[:2]
        for y in range(0, h - tile + 1, tile):
            for x in range(0, w - tile + 1, tile):
                out.append(np.ascontiguousarray(rgb[y : y + tile, x : x + tile].transpose(2, 0, 1))[None])
    if len(out) < 2:
        raise SystemExit("needs the bundled sample photos (resources/samples)")
    return out


def _time(session, feed: dict[str, np.ndarray], repeat: int) -> float:
    session.run(None, feed)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["lpnet", "resdesnow"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tile", type=int, default=192)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tiles = _tiles(args.tile)
    test, calibration = tiles[len(tiles) // 2], tiles[: len(tiles) // 2] + tiles[len(tiles) // 2 + 1 :]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {"image": x}

    print("| network | max abs Δ | mean abs Δ | pixels > 1/255 | fp32 s/tile | int8 s/tile | int8 × fp32 |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        model = load_model(name)[0]
        if model.temporal:
            print(f"| {name} | (temporal: not measured) |")
            continue
        fp32_path = graph_file(model)
        with tempfile.TemporaryDirectory() as tmp:
            int8_path = Path(tmp) / f"{name}-int8.onnx"
            quantize_static(
                str(fp32_path),
                str(int8_path),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
            )
            fp32, int8 = ort_session(fp32_path, args.threads), ort_session(int8_path, args.threads)
            feed = {"image": test}
            a = np.clip(fp32.run(None, feed)[0], 0, 1)
            b = np.clip(int8.run(None, feed)[0], 0, 1)
            diff = np.abs(a - b)
            t32, t8 = _time(fp32, feed, args.repeat), _time(int8, feed, args.repeat)
        print(
            f"| {name} | {diff.max():.4f} | {diff.mean():.5f} | {100 * float((diff > 1 / 255).mean()):.1f} % "
            f"| {t32:.3f} | {t8:.3f} | {t32 / t8:.2f}× |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
