"""One tile on every thread, or one tile per thread? The CPU runtimes' two ways of using the cores.

    python benchmarks/tile_concurrency.py [--models lpnet resdesnow] [--tiles 12] [--threads 2]

Each network's exported graph (the engine's cached, checked ONNX file) runs the same random tiles of its
default tile size three ways: OpenVINO with one infer request on ``--threads`` threads (what the engine does
today), OpenVINO with ``--threads`` streams of one thread each and one request per stream, fed from that many
Python threads; ONNX Runtime one session on ``--threads`` threads, and one single-threaded session called from
``--threads`` Python threads at once. Prints ms per tile and the ratio (today's way over the concurrent one).
Outputs of the two ways are compared too (they must be equal). Not a test: a table to decide whether the
engine should restore a photo's tiles concurrently.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from weatherstudio.engine.backends import graph_file  # noqa: E402
from weatherstudio.engine.loader import load_model  # noqa: E402


def per_tile(run: Callable[[int, np.ndarray], object], tiles: list[np.ndarray], workers: int) -> float:
    """Seconds per tile when ``workers`` Python threads share the tiles (worker k takes every k-th)."""

    def work(k: int) -> None:
        for t in tiles[k::workers]:
            run(k, t)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return (time.perf_counter() - start) / len(tiles)


def openvino_rows(path: Path, tiles: list[np.ndarray], threads: int) -> tuple[float, float, float]:
    import openvino as ov

    core = ov.Core()
    shape = list(tiles[0].shape)

    def compiled(config: dict) -> object:
        model = core.read_model(str(path))
        model.reshape({model.inputs[0].get_any_name(): shape})
        return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", **config})

    one = compiled({"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    request = one.create_infer_request()
    request.infer({0: tiles[0]})
    latency = per_tile(lambda _k, t: request.infer({0: t}), tiles, 1)
    reference = np.array(request.infer({0: tiles[1]})[0], copy=True)
    many = compiled({"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": threads})
    requests = [many.create_infer_request() for _ in range(threads)]
    for r in requests:
        r.infer({0: tiles[0]})
    concurrent = per_tile(lambda k, t: requests[k].infer({0: t}), tiles, threads)
    diff = float(np.abs(np.array(requests[-1].infer({0: tiles[1]})[0]) - reference).max())
    return latency, concurrent, diff


def onnxruntime_rows(path: Path, tiles: list[np.ndarray], threads: int) -> tuple[float, float, float]:
    from weatherstudio.engine.onnx_export import ort_session

    wide = ort_session(path, threads)
    name = wide.get_inputs()[0].name
    wide.run(None, {name: tiles[0]})
    latency = per_tile(lambda _k, t: wide.run(None, {name: t}), tiles, 1)
    reference = wide.run(None, {name: tiles[1]})[0]
    solo = ort_session(path, 1)
    solo.run(None, {name: tiles[0]})
    concurrent = per_tile(lambda _k, t: solo.run(None, {name: t}), tiles, threads)
    diff = float(np.abs(solo.run(None, {name: tiles[1]})[0] - reference).max())
    return latency, concurrent, diff


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["lpnet", "resdesnow"])
    p.add_argument("--tiles", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    n = args.threads
    print(f"| network | tile | backend | {n} threads, one tile ms | {n} × 1 thread ms | ratio | max Δ |")
    print("|---|---|---|---|---|---|---|")
    for arch in args.models:
        model, _ = load_model(arch)
        if model.temporal:
            print(f"| {arch} | — | — | skipped: a video network's tiles carry memory from frame to frame | | | |")
            continue
        path = graph_file(model)
        side = model.default_tile
        rng = np.random.default_rng(0)
        tiles = [rng.random((1, 3, side, side), dtype=np.float32) for _ in range(max(2, args.tiles))]
        for backend, rows in (("OpenVINO", openvino_rows), ("ONNX Runtime", onnxruntime_rows)):
            latency, concurrent, diff = rows(path, tiles, args.threads)
            print(
                f"| {arch} | {side}² | {backend} | {latency * 1e3:.1f} | {concurrent * 1e3:.1f} | "
                f"{latency / concurrent:.2f}× | {diff:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
