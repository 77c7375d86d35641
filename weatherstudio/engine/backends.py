"""Where a network runs on a CPU: torch, or its exported ONNX graph in OpenVINO or ONNX Runtime.

torch is the reference, and the only path for intermediate maps (the inspector), training, fine-tuning and
CUDA. For a plain restore on a CPU the same network's ONNX graph (:mod:`weatherstudio.engine.onnx_export`:
checked against torch to under 1/255 when it is made) runs in a runtime built for CPU inference — measured
here 1.5–2.6× faster than torch on a photo of 2–12 MP, depending on the network (``benchmarks/speed.py``,
the README's Speed section). ``auto`` picks, on a
CPU and without maps, OpenVINO, else ONNX Runtime, else torch, by what is installed (ONNX Runtime first for
LPNet, where it measured faster on a first photo); fp32 throughout (bf16 moved J4R-Net's frames of the bundled clip
by up to 0.007, LPNet's and resdesnow's outputs by 0.01–0.02, over the 1/255 bar).

An exported graph is made once per weights and kept in the user's cache folder
(``$WEATHERSTUDIO_CACHE``, else ``$XDG_CACHE_HOME``/``~/.cache``, ``/weatherstudio/graphs``), named by a digest
of the weights, the network's config, its code and the exporter, so a changed weight file (or network) gets a
new graph.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.models.base import MapSpec, ModelOutput, RestorationModel

BACKENDS = ("auto", "torch", "openvino", "onnxruntime")
RUNTIMES = ("openvino", "onnxruntime")  # auto's order of preference
#: Networks for which ``auto`` prefers ONNX Runtime, as measured (benchmarks/speed.py, 2 threads, 2026-12-08):
#: LPNet, which runs there as two graphs (5.3 s at 12 MP against OpenVINO's 7.4 s as one); DesnowNet, whose tiles
#: run there two at a time (12 MP 76.8 s against 81.8 s, 2 MP 12.0 s against 15.6 s, peak 1.9 GB against 2.1).
RUNTIME_ORDER: dict[str, tuple[str, ...]] = {
    "lpnet": ("onnxruntime", "openvino"),
    "desnownet": ("onnxruntime", "openvino"),
}
#: Runtimes in which a pyramid network runs as its two parts (:mod:`weatherstudio.engine.pyramid_split`), where
#: that measured faster on a 12 MP photo (2 cores): ONNX Runtime, which runs two tiles at once; OpenVINO, which
#: compiles each new tile shape, took 11.5 s split against 8.5 s as one graph on a first photo.
SPLIT_RUNTIMES = ("onnxruntime",)


class BackendError(WeatherStudioError):
    """A backend asked for that cannot run here."""


def installed(backend: str) -> bool:
    if backend == "torch":
        return True
    module = {"openvino": "openvino", "onnxruntime": "onnxruntime"}.get(backend)
    return module is not None and importlib.util.find_spec(module) is not None


def available_backends() -> list[str]:
    """The backends that can run here, ``auto`` and ``torch`` first."""
    return ["auto", "torch", *(b for b in RUNTIMES if installed(b))]


def resolve_backend(name: str | None, device: torch.device, return_maps: bool, arch: str = "") -> str:
    """The backend a restore uses: torch on CUDA and whenever maps are asked for; ``auto`` → the first installed
    runtime in ``arch``'s order of preference. An explicitly named runtime that is not installed is an error
    (never a silent fallback)."""
    name = (name or "auto").lower()
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "torch" or device.type != "cpu" or return_maps:
        return "torch"
    if name == "auto":
        return next((b for b in RUNTIME_ORDER.get(arch, RUNTIMES) if installed(b)), "torch")
    if not installed(name):
        raise BackendError(f"the {name} backend is not installed (pip install {name})")
    return name


def cache_dir() -> Path:
    env = os.environ.get("WEATHERSTUDIO_CACHE")
    if env:
        return Path(env) / "graphs"
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "weatherstudio" / "graphs"


@functools.cache
def _code_digest(module_names: tuple[str, ...]) -> bytes:
    """The source of the network's modules and of what its graph is traced through (a code change, a new graph)."""
    names = [*module_names, "weatherstudio.models.base", "weatherstudio.models.blocks", "weatherstudio.core.pyramid"]
    h = hashlib.sha256()
    for name in [*names, "weatherstudio.engine.onnx_export"]:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            h.update(Path(spec.origin).read_bytes())
    return h.digest()


def weights_digest(model: RestorationModel) -> str:
    """A digest of what the exported graph depends on: the tensors, the config, the code and the exporter."""
    from weatherstudio import __version__
    from weatherstudio.engine.onnx_export import OPSET

    h = hashlib.sha256()
    h.update(json.dumps([model.arch, model.config, OPSET, torch.__version__, __version__], default=str).encode())
    # the modules of the network and of every layer it holds (a part of a split network runs its parent's code)
    modules = sorted({type(m).__module__ for m in model.modules() if type(m).__module__.startswith("weatherstudio.")})
    h.update(_code_digest(tuple(modules)))
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:20]


_export_lock = threading.Lock()


def graph_file(model: RestorationModel, first_frame: bool = False) -> Path:
    """The checked ONNX graph of ``model``'s weights, exported into the cache the first time it is needed
    (``first_frame``: a temporal network's graph from a zero memory, without the memory's input)."""
    from weatherstudio.engine.onnx_export import export_onnx

    folder = cache_dir()
    path = folder / f"{model.arch}-{weights_digest(model)}{'-first' if first_frame else ''}.onnx"
    with _export_lock:
        if not path.is_file():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackendError(f"cannot create the graph cache {folder}: {exc}") from None
            export_onnx(model, path, {"made_for": "the studio's CPU backend"}, overwrite=True, first_frame=first_frame)
    return path


class _Runner:
    """One exported graph in a runtime: ``run(feeds) → outputs`` (numpy in, numpy out).

    OpenVINO runs the dynamic graph, and compiles a static one for an input shape the second time it comes
    (static shapes ran LPNet's 512² tile 1.4× faster here, for a 0.1–0.3 s compile: worth it for a photo's many
    interior tiles or a video's frames, not for one small image), keeping the last :data:`SHAPES_KEPT`. ONNX
    Runtime runs the dynamic graph as it is.
    """

    SHAPES_KEPT = 8

    def __init__(self, backend: str, path: Path, threads: int) -> None:
        self.backend, self.path, self.threads = backend, path, threads
        self._lock = threading.Lock()  # one OpenVINO infer request serves one call at a time
        if backend == "openvino":
            import openvino as ov

            self._core = ov.Core()
            self._compiled: OrderedDict[tuple | None, Any] = OrderedDict()
            self._seen: dict[tuple, int] = {}
            self._config = {
                "INFERENCE_NUM_THREADS": threads,
                "INFERENCE_PRECISION_HINT": "f32",
                "PERFORMANCE_HINT": "LATENCY",
                "CACHE_DIR": str(cache_dir() / "openvino"),  # compiled kernels kept: the next compile loads them
            }
            self._request_for(None)  # compile (dynamic) now: a graph the runtime cannot take fails here
        else:
            from weatherstudio.engine.onnx_export import ort_session

            self._session = ort_session(path, threads)
            self._solo: Any = None  # a one-thread session, made when tiles first run side by side

    @property
    def tile_workers(self) -> int:
        """How many tiles this graph runs at once, one thread each: ONNX Runtime ``threads`` (one session can be
        called from several threads; LPNet's 12 MP restore 1.33× faster than one tile on both threads, README
        "Speed"), OpenVINO 1 (its streams gained 1.02×, benchmarks/tile_concurrency.py)."""
        return self.threads if self.backend == "onnxruntime" else 1

    def _request_for(self, feeds: dict[str, np.ndarray] | None) -> tuple[Any, list[str]]:
        key = None if feeds is None else tuple((k, v.shape) for k, v in sorted(feeds.items()))
        if key is not None and key not in self._compiled:
            if len(self._seen) > 256:  # many one-off shapes (a folder of odd sizes): start counting afresh
                self._seen.clear()
            self._seen[key] = self._seen.get(key, 0) + 1
            if self._seen[key] < 2:
                key = None  # a shape seen once: the dynamic graph
        if key in self._compiled:
            self._compiled.move_to_end(key)
            return self._compiled[key]
        model = self._core.read_model(str(self.path))
        if feeds is not None:
            model.reshape({i.get_any_name(): list(feeds[i.get_any_name()].shape) for i in model.inputs})
        compiled = self._core.compile_model(model, "CPU", self._config)
        entry = (compiled.create_infer_request(), [o.get_any_name() for o in compiled.outputs])
        self._compiled[key] = entry
        while len(self._compiled) > self.SHAPES_KEPT:
            oldest = next(k for k in self._compiled if k is not None)
            del self._compiled[oldest]
        return entry

    def run(self, feeds: dict[str, np.ndarray], solo: bool = False) -> list[np.ndarray]:
        """The graph's outputs for ``feeds``; ``solo``: on one thread (ONNX Runtime), for tiles run side by side."""
        if self.backend == "openvino":
            with self._lock:
                request, names = self._request_for(feeds)
                result = request.infer(feeds)
                return [np.array(result[name], copy=True) for name in names]
        return list((self._solo_session() if solo else self._session).run(None, feeds))

    def _solo_session(self) -> Any:
        with self._lock:
            if self._solo is None:
                from weatherstudio.engine.onnx_export import ort_session

                self._solo = ort_session(self.path, 1)
            return self._solo


class RuntimeModel(RestorationModel):
    """A network whose plain restores run in a CPU runtime; maps (and anything else) come from the torch model.

    It answers the engine's questions (tiling geometry, maps, memory) exactly as the torch model does, so
    :func:`weatherstudio.engine.restore.restore` treats it like any network. A temporal network's memory is the
    graph's ``state`` input/output, kept here between frames like the torch model keeps it.
    """

    channels_last_input = False  # the runtimes read NCHW

    def __init__(self, model: RestorationModel, backend: str, runner: _Runner, solo: bool = False) -> None:
        super().__init__(model.config)
        self.net = model
        self.backend = backend
        self._runner = runner
        self._solo = solo
        self._state: torch.Tensor | None = None
        self.arch, self.task, self.temporal = model.arch, model.task, model.temporal
        self.size_congruence, self.default_tile = model.size_congruence, model.default_tile
        self.tile_align, self.exact_context = model.tile_align, model.exact_context
        self.input_channels, self.clips_output = model.input_channels, model.clips_output

    @property
    def tile_workers(self) -> int:
        """Tiles of a still image the engine may run at once through :meth:`side_by_side` (a video network's
        tiles carry their own memory and run in turn)."""
        return 1 if self.temporal else self._runner.tile_workers

    def _first_frame_runner(self) -> _Runner:
        """A temporal network's graph from a zero memory, exported and compiled the first time one is needed."""
        return _runner_for(self.net, self.backend, self._runner.threads, first_frame=True)[0]

    def side_by_side(self) -> RuntimeModel:
        """This network on one thread per call, for :attr:`tile_workers` tiles at once from as many threads."""
        return RuntimeModel(self.net, self.backend, self._runner, solo=True)

    @property
    def receptive_field(self) -> int:
        return self.net.receptive_field

    @property
    def size_multiple(self) -> int:
        return self.net.size_multiple

    @property
    def effective_context(self) -> int:
        return self.net.effective_context

    @property
    def warmup_frames(self) -> int:
        return self.net.warmup_frames

    def map_specs(self) -> list[MapSpec]:
        return self.net.map_specs()

    def reset_state(self) -> None:
        self._state = None
        self.net.reset_state()

    def get_state(self) -> Any:
        return self._state if self.temporal else None

    def set_state(self, state: Any) -> None:
        self._state = state if self.temporal else None

    @property
    def aligns_state(self) -> bool:  # type: ignore[override]
        return self.net.aligns_state

    def align_state(self, state: Any, flow: Any) -> Any:
        return self.net.align_state(state, flow)

    #: Inputs with a side below this run in torch: a graph traced at 67×91 keeps the choices the network makes for
    #: that size (resdesnow and GT-RAIN pad a tiny input by replication where a larger one reflects), and a tiny
    #: input costs torch nothing.
    MIN_GRAPH_SIDE = 16

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:
        if return_maps or min(x.shape[-2:]) < self.MIN_GRAPH_SIDE:
            # the inspector's path (and a tiny input's): torch, with the memory handed over both ways
            self.net.set_state(self._state)
            out = self.net(x, return_maps=return_maps)
            self._state = self.net.get_state()
            return out
        image = x.detach().float().cpu().contiguous().numpy()
        if not self.temporal:
            return ModelOutput(torch.from_numpy(self._runner.run({"image": image}, solo=self._solo)[0]))
        n, _, h, w = image.shape
        state = self._state
        if state is None or tuple(state.shape) != (n, self.net.channels, h, w):
            # a still photo or a clip's first frame: the graph that leaves the zero memory out (~23 % less work)
            restored, state_out = self._first_frame_runner().run({"image": image})
        else:
            feed = state.detach().float().cpu().contiguous().numpy()
            restored, state_out = self._runner.run({"image": image, "state": feed})
        self._state = torch.from_numpy(state_out)
        return ModelOutput(torch.from_numpy(restored))


_runners: OrderedDict[tuple[str, str, int, bool], _Runner] = OrderedDict()
_runners_lock = threading.Lock()


def _runner_for(model: RestorationModel, backend: str, threads: int, first_frame: bool = False) -> tuple[_Runner, bool]:
    """The compiled graph of ``model`` in ``backend`` (kept for the last few), and whether it was made just now."""
    key = (backend, _digest_of(model), threads, first_frame)
    with _runners_lock:
        runner = _runners.get(key)
        fresh = runner is None
        if runner is None:
            runner = _Runner(backend, graph_file(model, first_frame), threads)
            _runners[key] = runner
            while len(_runners) > 6:
                _runners.popitem(last=False)
        _runners.move_to_end(key)
    return runner, fresh


def runtime_model(model: RestorationModel, backend: str, threads: int | None = None) -> RestorationModel:
    """``model`` running in ``backend`` ("torch": itself); compiled graphs are kept for the last few networks."""
    if backend == "torch" or isinstance(model, RuntimeModel):
        return model
    threads = int(threads or torch.get_num_threads())
    runner, fresh = _runner_for(model, backend, threads)
    if fresh and backend in SPLIT_RUNTIMES and hasattr(model, "pyramid_parts"):
        _prepare_parts(model, backend, threads)
    return RuntimeModel(model, backend, runner)


def _prepare_parts(model: RestorationModel, backend: str, threads: int) -> None:
    """Open the graphs a photo larger than a tile runs in (:mod:`weatherstudio.engine.pyramid_split`) with the
    network's own: ~0.15 s once per process, plus ~1.5 s the first time a weight file's parts are exported. A part
    that cannot be made here is left for the split to meet, which then falls back to the one graph with a note."""
    try:
        for part in model.pyramid_parts():  # type: ignore[attr-defined]
            wrapped = runtime_model(part, backend, threads)
            if wrapped.tile_workers > 1:
                wrapped._runner._solo_session()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - reported where the split runs
        return


def _digest_of(model: RestorationModel) -> str:
    """:func:`weights_digest`, remembered on the model (hashing a few MB of tensors per restore adds up)."""
    cached = getattr(model, "_weatherstudio_digest", None)
    version = _param_version(model)
    if cached is not None and cached[0] == version:
        return cached[1]
    digest = weights_digest(model)
    object.__setattr__(model, "_weatherstudio_digest", (version, digest))
    return digest


def _param_version(model: RestorationModel) -> tuple[int, ...]:
    """Changes whenever a parameter is written in place (training, fine-tuning, loading weights)."""
    return tuple(int(p._version) for p in model.state_dict(keep_vars=True).values())


def where_it_ran(device: str, backend: str) -> str:
    """The device a restore reports, with the runtime's name when it was not torch ("cpu (2 threads), OpenVINO …")."""
    return device if backend == "torch" else f"{device}, {describe(backend)}"


@functools.cache
def describe(backend: str) -> str:
    """``backend`` with its library version, for notes and reports."""
    if backend == "openvino":
        import openvino as ov

        return f"OpenVINO {ov.__version__.split('-')[0]}"
    if backend == "onnxruntime":
        import onnxruntime as ort

        return f"ONNX Runtime {ort.__version__}"
    return f"torch {torch.__version__}"
