"""CPU backends: the exported graph in OpenVINO / ONNX Runtime restores like torch, tiles, memory and all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from weatherstudio.core.image_io import read_image
from weatherstudio.engine.backends import (
    SPLIT_RUNTIMES,
    BackendError,
    graph_file,
    installed,
    resolve_backend,
    runtime_model,
    weights_digest,
)
from weatherstudio.engine.loader import load_model
from weatherstudio.engine.restore import (
    AUTO_RUNTIME_PIXELS,
    RestoreCancelled,
    RestoreOptions,
    restore,
)
from weatherstudio.samples import find_samples

RUNTIMES = [b for b in ("openvino", "onnxruntime") if installed(b)]
pytestmark = pytest.mark.skipif(not RUNTIMES, reason="neither OpenVINO nor ONNX Runtime is installed")
TOL = 1.0 / 255.0
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def graph_cache(tmp_path_factory, monkeypatch) -> Path:
    """Exported graphs go to one temporary cache for the whole module (each network exported once)."""
    folder = tmp_path_factory.getbasetemp() / "graph-cache"
    monkeypatch.setenv("WEATHERSTUDIO_CACHE", str(folder))
    return folder


def _photo(min_side: int = 600) -> np.ndarray:
    """A bundled sample photo, enlarged so that it needs several 512² tiles."""
    import cv2

    rgb = read_image(next(s.path for s in find_samples() if not s.is_clip)).rgb
    scale = max(1.0, min_side / min(rgb.shape[:2]))
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC).clip(0, 1).astype(np.float32)


def test_auto_picks_a_runtime_only_where_it_can_and_pays_off() -> None:
    assert resolve_backend("auto", CPU, return_maps=False) == RUNTIMES[0]
    assert resolve_backend("auto", CPU, return_maps=True) == "torch"  # maps come from torch
    assert resolve_backend("openvino", torch.device("cuda"), return_maps=False) == "torch"
    if installed("onnxruntime") and installed("openvino"):  # auto's order where both are there (README "Speed")
        for arch in ("lpnet", "desnownet"):
            assert resolve_backend("auto", CPU, return_maps=False, arch=arch) == "onnxruntime"
        assert resolve_backend("auto", CPU, return_maps=False, arch="gtrain") == "openvino"
    with pytest.raises(BackendError, match="unknown backend"):
        resolve_backend("tensorrt", CPU, return_maps=False)
    model, _ = load_model("lpnet")
    small = np.full((64, 80, 3), 0.5, np.float32)
    assert 64 * 80 < AUTO_RUNTIME_PIXELS
    assert restore(small, model, RestoreOptions()).backend == "torch"  # a compile would cost more than it saves
    assert restore(small, model, RestoreOptions(backend=RUNTIMES[-1])).backend == RUNTIMES[-1]  # unless asked


@pytest.mark.parametrize("backend", RUNTIMES)
@pytest.mark.parametrize("arch", ["lpnet", "resdesnow"])
def test_a_tiled_photo_restores_as_in_torch(arch: str, backend: str) -> None:
    model, _ = load_model(arch)
    photo = _photo()
    ref = restore(photo, model, RestoreOptions(backend="torch", tile=512))
    out = restore(photo, model, RestoreOptions(backend=backend, tile=512))
    again = restore(photo, model, RestoreOptions(backend=backend, tile=512))  # shapes seen twice: static graphs
    assert out.backend == backend and ref.backend == "torch" and ref.tiles > 1
    if arch == "lpnet" and backend in SPLIT_RUNTIMES:  # as two parts (engine.pyramid_split): the whole image's result
        ref = restore(photo, model, RestoreOptions(backend="torch", tile=0))
        assert any("coarse levels once" in n for n in out.notes)
    else:
        assert out.tiles == ref.tiles
    assert float(np.abs(out.image - ref.image).max()) < TOL
    assert float(np.abs(again.image - ref.image).max()) < TOL
    assert float(np.abs(out.image - photo).mean()) > 1e-3  # the network did change the photo


@pytest.mark.parametrize("backend", RUNTIMES)
def test_a_temporal_network_carries_one_memory_per_tile_in_a_runtime(backend: str) -> None:
    model, _ = load_model("j4rnet")
    rng = np.random.default_rng(0)
    base = _photo(300)[:300, :400]
    frames = [np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32) for _ in range(3)]
    states = {"torch": None, backend: None}
    for frame in frames:
        outs = {}
        for name in states:
            result = restore(frame, model, RestoreOptions(backend=name, tile=256), state=states[name])
            assert result.backend == name and result.tiles > 1
            outs[name], states[name] = result.image, result.state
        assert float(np.abs(outs[backend] - outs["torch"]).max()) < TOL
    assert set(states[backend]) == set(states["torch"])  # one memory per tile, interchangeable with torch's
    for index, h in states[backend].items():
        assert float((h - states["torch"][index]).abs().max()) < 1e-3
    # the first frame ran the graph that leaves the zero memory out: exported, checked, without a memory input
    first = graph_file(model).with_name(graph_file(model).stem + "-first.onnx")
    assert first.is_file()
    assert [i.name for i in onnx.load(str(first)).graph.input] == ["image"]


@pytest.mark.skipif(not installed("onnxruntime"), reason="ONNX Runtime is not installed")
def test_onnx_runtime_runs_a_photos_tiles_side_by_side_with_the_same_result(monkeypatch) -> None:
    import weatherstudio.engine.restore as engine

    model, _ = load_model("lpnet")
    photo = _photo(1100)
    threads = torch.get_num_threads()
    runs: dict[str, tuple] = {}
    side_runs: list[int] = []  # tiles the side-by-side path delivered (the real one, counted on its way out)
    real_side_by_side = engine._side_by_side

    def counted(*args, **kwargs):
        for out in real_side_by_side(*args, **kwargs):
            side_runs.append(1)
            yield out

    monkeypatch.setattr(engine, "_side_by_side", counted)
    try:
        for n in (2, 1):  # two tiles at once on one thread each, then one tile at a time
            torch.set_num_threads(n)
            wrapped = runtime_model(model, "onnxruntime")
            assert wrapped.tile_workers == n
            order: list = []
            done: list[int] = []
            result = restore(
                photo,
                model,
                RestoreOptions(backend="onnxruntime", tile=512),
                on_tile=lambda t, _, order=order: order.append(t),
                progress=lambda i, total, done=done: done.append(i),
            )
            runs[str(n)] = (result, order, done, len(side_runs))
            side_runs.clear()
        torch.set_num_threads(2)
        calls = []

        def cancel_after_three() -> bool:
            calls.append(1)
            return len(calls) > 3

        with pytest.raises(RestoreCancelled):
            restore(photo, model, RestoreOptions(backend="onnxruntime", tile=512), should_cancel=cancel_after_three)
    finally:
        torch.set_num_threads(threads)
    (side, side_order, side_done, side_tiles), (serial, serial_order, serial_done, serial_tiles) = runs["2"], runs["1"]
    assert side_tiles == side.tiles and serial_tiles == 0  # every tile (both parts) side by side on two threads
    assert side.tiles == serial.tiles >= 6
    assert side_order == serial_order and side_done == serial_done  # on_tile: the full-size tiles, in order
    assert side_done == list(range(side.tiles + 1)) and 0 < len(side_order) < side.tiles  # both parts' tiles
    assert np.array_equal(side.image, serial.image)  # the same tiles through the same one-thread graph, in order
    assert float(np.abs(side.image - photo).mean()) > 1e-3


@pytest.mark.parametrize("backend", RUNTIMES)
def test_a_tiny_image_in_a_named_runtime_restores_as_in_torch(backend: str) -> None:
    """A few pixels (under what the exported graphs were traced for) give torch's result, not the runtime's error."""
    rng = np.random.default_rng(3)
    for arch in ("resdesnow", "gtrain", "j4rnet"):
        model, _ = load_model(arch)
        for h, w in ((2, 3), (1, 1), (7, 12)):
            tiny = rng.random((h, w, 3), dtype=np.float32)
            ref = restore(tiny, model, RestoreOptions(backend="torch"), keep_state=False)
            out = restore(tiny, model, RestoreOptions(backend=backend), keep_state=False)
            assert out.image.shape == (h, w, 3)
            assert float(np.abs(out.image - ref.image).max()) < TOL, f"{arch} {h}×{w}"


def test_maps_always_come_from_torch() -> None:
    model, _ = load_model("lpnet")
    result = restore(_photo(), model, RestoreOptions(return_maps=True))
    assert result.backend == "torch" and result.maps


def test_the_graph_cache_follows_the_weights(graph_cache: Path) -> None:
    model, _ = load_model("lpnet")
    first = graph_file(model)
    assert first.parent == graph_cache / "graphs" and first.is_file()
    assert graph_file(model) == first  # exported once
    digest = weights_digest(model)
    with torch.no_grad():
        next(model.parameters()).mul_(0.5)
    assert weights_digest(model) != digest
    wrapped = runtime_model(model, RUNTIMES[0])
    assert graph_file(model) != first and graph_file(model).is_file()  # changed weights, new graph
    x = torch.from_numpy(np.ascontiguousarray(_photo(64)[:64, :64].transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        assert float((wrapped(x).image - model(x).image).abs().max()) < TOL  # the runtime runs the new weights


def test_the_command_line_takes_a_backend(tmp_path: Path) -> None:
    import cv2

    from weatherstudio.cli import main

    src = tmp_path / "rainy.png"
    cv2.imwrite(str(src), (_photo()[..., ::-1] * 255).astype(np.uint8))
    for backend in ("torch", RUNTIMES[0]):
        out = tmp_path / f"out_{backend}.png"
        # a runtime that runs LPNet as two parts gives the whole image's result (torch's blend differs by ~2 levels)
        whole = ["--tile", "0"] if backend == "torch" and RUNTIMES[0] in SPLIT_RUNTIMES else []
        assert main(["remove", str(src), "-o", str(out), "--model", "lpnet", "--backend", backend, *whole]) == 0
        assert out.is_file()
    a = cv2.imread(str(tmp_path / "out_torch.png")).astype(int)
    b = cv2.imread(str(tmp_path / f"out_{RUNTIMES[0]}.png")).astype(int)
    assert np.abs(a - b).max() <= 1  # the same 8-bit picture, to within one level of rounding
    with pytest.raises(SystemExit):
        main(["remove", str(src), "-o", str(tmp_path / "x.png"), "--backend", "tensorrt"])
