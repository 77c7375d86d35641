"""ONNX export: every shipped network's graph runs in ONNX Runtime like torch, at sizes it was not traced at."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

pytest.importorskip("onnxruntime")

from weatherstudio.cli import main  # noqa: E402
from weatherstudio.engine.loader import load_model  # noqa: E402
from weatherstudio.engine.onnx_export import (  # noqa: E402
    TOLERANCE,
    ExportError,
    export_onnx,
    ort_session,
    read_onnx_metadata,
)

STILL = ["lpnet", "resdesnow", "desnownet", "gtrain"]


@pytest.mark.parametrize("arch", STILL)
def test_a_still_network_exports_and_matches_torch_at_other_sizes(arch: str, tmp_path: Path) -> None:
    model, meta = load_model(arch)
    report = export_onnx(model, tmp_path / f"{arch}.onnx", {"weights": meta.get("path")})
    assert report.inputs == ["image"] and report.outputs == ["restored"]
    assert len(report.checks) == 2 and report.worst < TOLERANCE
    session = ort_session(report.path, threads=1)
    rng = np.random.default_rng(1)
    for h, w in ((48, 48), (61, 90)):  # neither the traced size nor the checked ones; odd and even
        x = rng.random((1, 3, h, w), dtype=np.float32)
        (out,) = session.run(None, {"image": x})
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).image.numpy()
        assert out.shape == (1, 3, h, w)
        assert float(np.abs(out - ref).max()) < TOLERANCE, f"{arch} at {h}×{w}"
    # kernels rewritten in torch (zero-padded, by output phases) are stored as weights, as other tools expect
    assert _conv_weights_are_stored(report.path)


def _conv_weights_are_stored(path: Path) -> bool:
    """Every convolution's kernel is a stored tensor (an initializer or a constant), not computed in the graph."""
    graph = onnx.load(str(path)).graph
    stored = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return all(n.input[1] in stored for n in graph.node if n.op_type == "Conv")


def test_j4rnet_exports_with_its_memory_as_inputs_and_outputs(tmp_path: Path) -> None:
    model, _ = load_model("j4rnet")
    report = export_onnx(model, tmp_path / "j4r.onnx")
    assert report.inputs == ["image", "state"] and report.outputs == ["restored", "state_out"]
    assert len(report.checks) == 3 and report.worst < TOLERANCE
    session = ort_session(report.path, threads=1)
    rng = np.random.default_rng(2)
    frames = rng.random((4, 1, 3, 40, 52), dtype=np.float32)
    state = np.zeros((1, model.channels, 40, 52), np.float32)
    model.reset_state()
    with torch.inference_mode():
        for f in frames:
            out, state = session.run(None, {"image": f, "state": state})
            ref = model(torch.from_numpy(f)).image.numpy()  # the torch model carries its memory itself
            assert float(np.abs(out - ref).max()) < TOLERANCE
    assert float(np.abs(state).max()) > 0  # the memory really moved
    assert _conv_weights_are_stored(report.path)


def test_the_file_carries_its_provenance_and_is_never_written_over(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lpnet.onnx"
    assert main(["export", "--model", "lpnet", "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_diff"] < TOLERANCE and len(report["checks"]) == 2
    meta = read_onnx_metadata(out)
    assert meta["arch"] == "lpnet" and meta["weights"] == "lpnet_lite.safetensors"
    assert len(meta["weights_sha256"]) == 64 and "rain100l" in meta["scores"]
    before = out.read_bytes()
    assert main(["export", "--model", "lpnet", "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["export", "--model", "lpnet", "-o", str(tmp_path / "model.pt")]) == 2  # not an .onnx name
    assert main(["export", "--model", "lpnet", "-o", str(tmp_path / "missing" / "m.onnx")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lpnet.onnx"]  # no temporary left behind


def test_an_export_that_does_not_match_torch_is_refused(tmp_path: Path, monkeypatch) -> None:
    """A graph that differs from torch (here: torch's side drifts after tracing) fails and writes nothing."""
    model, _ = load_model("lpnet")
    import weatherstudio.engine.onnx_export as ox

    real = ox._trace_to

    def trace_then_drift(path, m, *rest):
        names = real(path, m, *rest)
        with torch.no_grad():
            next(m.parameters()).add_(0.5)  # the model the check compares with is no longer the traced one
        return names

    monkeypatch.setattr(ox, "_trace_to", trace_then_drift)
    with pytest.raises(ExportError, match="differs from torch"):
        export_onnx(model, tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []
