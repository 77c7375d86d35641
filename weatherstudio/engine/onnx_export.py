"""ONNX export of a network's restoration graph, checked against torch, for the tools that load ONNX.

The graph takes ``image``: N×3×H×W float32 RGB in [0, 1], any height and width (dynamic axes; the network's own
padding is inside the graph, so sizes that are not multiples of its stride work as in torch) and gives
``restored`` of the same shape. J4R-Net's recurrent memory (paper Sec. 3.3, the GRU state H_t) is explicit:
input ``state`` (N×C×H×W, zeros for a clip's first frame) and output ``state_out`` to feed to the next frame.
Intermediate maps stay on the torch path (the studio's inspector).

The file carries the weight file's provenance in its metadata (``weatherstudio`` JSON: arch, config, the weight
file's SHA-256, its recorded scores and training command). Every export is checked with ONNX Runtime against
torch on real images — the bundled samples, at an even and an odd size, and for J4R-Net three frames of the
bundled clip with the state carried — and fails (nothing written) when any output differs by 1/255 or more.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.models.base import RestorationModel

OPSET = 17  # GridSample (GT-RAIN's deformable sampling) needs ≥ 16
TOLERANCE = 1.0 / 255.0  # the largest output difference from torch an export may have


class ExportError(WeatherStudioError):
    """An export that could not be written or did not match torch."""


class StillGraph(nn.Module):
    """The restored image alone: ``image → restored``."""

    def __init__(self, model: RestorationModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image).image


class RecurrentGraph(nn.Module):
    """One frame of a temporal network with its memory explicit: ``(image, state) → (restored, state_out)``; traced
    with the image alone, the first frame from a zero memory that is left out of the sums (a still photo, a clip's
    first frame): ``image → (restored, state_out)``."""

    def __init__(self, model: RestorationModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out, state_out = self.model.step(image, state, gate_maps=False)
        return out["background"].clamp(0.0, 1.0), state_out


@dataclass
class CheckResult:
    """One comparison of the export with torch: what ran and the largest absolute output difference."""

    what: str
    shape: tuple[int, ...]
    max_abs_diff: float


@dataclass
class ExportReport:
    path: Path
    arch: str
    inputs: list[str]
    outputs: list[str]
    seconds: float
    checks: list[CheckResult] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=float("nan"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "arch": self.arch,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "seconds": round(self.seconds, 2),
            "max_abs_diff": self.worst,
            "checks": [{"what": c.what, "shape": list(c.shape), "max_abs_diff": c.max_abs_diff} for c in self.checks],
        }


def state_channels(model: RestorationModel) -> int:
    return int(getattr(model, "channels", 0))


def _graph(
    model: RestorationModel, first_frame: bool = False
) -> tuple[nn.Module, tuple[torch.Tensor, ...], list[str], list[str]]:
    """The module to trace, example inputs (an odd size, so no size is special-cased) and the I/O names."""
    x = torch.rand(1, model.input_channels, 67, 91, generator=torch.Generator().manual_seed(0))
    if model.temporal:
        if first_frame:
            return RecurrentGraph(model).eval(), (x,), ["image"], ["restored", "state_out"]
        state = torch.zeros(1, state_channels(model), 67, 91)
        return RecurrentGraph(model).eval(), (x, state), ["image", "state"], ["restored", "state_out"]
    return StillGraph(model).eval(), (x,), ["image"], ["restored"]


def _trace_to(path: Path, model: RestorationModel, first_frame: bool = False) -> tuple[list[str], list[str]]:
    module, example, inputs, outputs = _graph(model, first_frame)
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in inputs + outputs}
    with warnings.catch_warnings():
        # The TorchScript-based exporter: it keeps the graph's size arithmetic symbolic (each input padded by its
        # own size) and takes a second where the torch.export-based one takes minutes on these graphs.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=axes,
                do_constant_folding=True,
            )
    return inputs, outputs


def _add_metadata(path: Path, metadata: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "weatherstudio", json.dumps(metadata, sort_keys=True, default=str)
    proto.doc_string = (
        f"WeatherStudio {metadata.get('arch')} ({metadata.get('config_name', '')}): input {metadata.get('input')}"
        + ("; 'state' N×C×H×W, zeros on a clip's first frame" if metadata.get("state_channels") else "")
    )
    onnx.save(proto, str(path))


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``weatherstudio`` metadata of an exported file ({} if it has none)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for prop in proto.metadata_props:
        if prop.key == "weatherstudio":
            return json.loads(prop.value)
    return {}


def ort_session(path: str | os.PathLike[str], threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for ``path`` (``threads``: intra-op threads, default torch's count)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ExportError("ONNX Runtime is not installed (pip install onnxruntime)") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _samples(kind: str) -> dict[str, Path]:
    from weatherstudio.samples import find_samples

    return {s.path.stem: s.path for s in find_samples() if (s.is_video if kind == "video" else not s.is_clip)}


def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    """A textured stand-in where no sample is installed: smooth colour, edges and fine noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 11.0 + seed) * np.cos(yy / 7.0)
    rgb = np.stack([base, 0.8 * base + 0.1 * (xx > w / 2), 1.0 - base], -1) + rng.normal(0, 0.03, (h, w, 3))
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def check_images() -> list[tuple[str, np.ndarray]]:
    """Real photos to check an export with: crops of the bundled samples, one even-sized, one odd-sized."""
    from weatherstudio.core.image_io import read_image

    photos = sorted(_samples("photo").items())
    out: list[tuple[str, np.ndarray]] = []
    for k, (h, w) in enumerate(((256, 320), (203, 157))):
        if photos:
            name, path = photos[k % len(photos)]
            rgb = read_image(path).rgb
            h, w = min(h, rgb.shape[0]), min(w, rgb.shape[1])
            top, left = (rgb.shape[0] - h) // 2, (rgb.shape[1] - w) // 2
            rgb = rgb[top : top + h, left : left + w]
        else:
            name, rgb = "a textured pattern (no sample installed)", _pattern(h, w, k)
        out.append((f"{name} {h}×{w}", np.ascontiguousarray(rgb, dtype=np.float32)))
    return out


def check_frames(n: int = 3) -> tuple[str, list[np.ndarray]]:
    """The first ``n`` frames of the bundled rainy clip, cropped to 160×224 (J4R-Net's state check)."""
    from weatherstudio.core.video_io import open_video

    clips = sorted(_samples("video").items())
    if not clips:
        return "a moving textured pattern (no clip installed)", [_pattern(160, 224, i) for i in range(n)]
    name, path = clips[0]
    with open_video(path) as clip:
        frames = [clip.frame(i) for i in range(min(n, clip.frame_count))]
    return name, [np.ascontiguousarray(f[:160, :224], dtype=np.float32) for f in frames]


def _nchw(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)


def check_export(path: Path, model: RestorationModel, first_frame: bool = False) -> list[CheckResult]:
    """Run the export in ONNX Runtime and torch on the same real images; the largest differences."""
    session = ort_session(path)
    results: list[CheckResult] = []
    with torch.inference_mode():
        if model.temporal:
            name, frames = check_frames()
            state = np.zeros((1, state_channels(model), *frames[0].shape[:2]), np.float32)
            h = None if first_frame else torch.from_numpy(state)  # each frame a first one, or the memory carried
            for i, rgb in enumerate(frames):
                x = _nchw(rgb)
                restored, state = session.run(None, {"image": x} if first_frame else {"image": x, "state": state})
                out, h_out = model.step(torch.from_numpy(x), h, gate_maps=False)
                ref = out["background"].clamp(0.0, 1.0).numpy()
                diff = max(float(np.abs(restored - ref).max()), float(np.abs(state - h_out.numpy()).max()))
                results.append(
                    CheckResult(
                        f"{name} frame {i} ({'a first frame' if first_frame else 'state carried'})", x.shape, diff
                    )
                )
                h = None if first_frame else h_out
        else:
            for what, rgb in check_images():
                x = _nchw(model.input_for(rgb))
                (restored,) = session.run(None, {"image": x})
                ref = model(torch.from_numpy(x)).image.numpy()
                results.append(CheckResult(what, x.shape, float(np.abs(restored - ref).max())))
    return results


def export_onnx(
    model: RestorationModel,
    output: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
    check: bool = True,
    first_frame: bool = False,
) -> ExportReport:
    """Write ``model``'s restoration graph to ``output`` (.onnx), checked against torch unless ``check`` is off
    (``first_frame``: a temporal network's :class:`RecurrentGraph` from a zero memory, without the memory's input).

    Written to a hidden temporary name beside the output and renamed into place only once it has passed its
    check; an existing file is replaced only with ``overwrite``.
    """
    out = Path(output)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"{out}: an ONNX export's name ends in .onnx")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such folder")
    model = model.eval()
    meta = {
        "arch": model.arch,
        "config": model.config,
        "state_channels": state_channels(model) if model.temporal else 0,
        "input": f"image: N×{model.input_channels}×H×W float32"
        + (" RGB in [0, 1]" if model.input_channels == 3 else f", the input of {type(model).__qualname__}"),
        "opset": OPSET,
        "torch": torch.__version__,
        **(metadata or {}),
    }
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    start = time.perf_counter()
    try:
        inputs, outputs = _trace_to(tmp, model, first_frame)
        _add_metadata(tmp, meta)
        report = ExportReport(out, model.arch, inputs, outputs, 0.0, metadata=meta)
        if check:
            report.checks = check_export(tmp, model, first_frame)
            if not report.worst < TOLERANCE:
                bad = max(report.checks, key=lambda c: c.max_abs_diff)
                raise ExportError(
                    f"the ONNX graph of {model.arch} differs from torch by {bad.max_abs_diff:.2e} on {bad.what} "
                    f"(the bar is 1/255); nothing written"
                )
        os.replace(tmp, out)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"could not export {model.arch} to ONNX: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - start
    return report
