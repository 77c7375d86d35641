"""Weight files: metadata round trip, foreign state dicts, clear refusals (mismatch, pickled code)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from weatherstudio.models.registry import build_model
from weatherstudio.models.weightfile import WeightsError, load_weights, read_metadata, save_weights


def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    model = build_model("lpnet")
    path = save_weights(model, tmp_path / "w.safetensors", {"scores": {"rain100l": 33.0}})
    meta = read_metadata(path)
    assert meta["arch"] == "lpnet" and meta["scores"] == {"rain100l": 33.0}
    loaded, meta2 = load_weights(path)
    assert meta2 == meta
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert not any(p.name.endswith(".tmp") or p.name.startswith(".") for p in tmp_path.iterdir())


def test_plain_pth_state_dict_is_accepted(tmp_path: Path) -> None:
    model = build_model("lpnet")
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pth")
    loaded, meta = load_weights(tmp_path / "w.pth", arch="lpnet")
    assert meta == {}
    assert torch.equal(loaded.subnets[4].conv0.weight, model.subnets[4].conv0.weight)


def test_foreign_file_needs_the_model_named(tmp_path: Path) -> None:
    torch.save(build_model("lpnet").state_dict(), tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="does not say which model"):
        load_weights(tmp_path / "w.pt")


def test_mismatched_architecture_names_the_mismatch(tmp_path: Path) -> None:
    sd = build_model("lpnet").state_dict()
    sd["subnets.4.conv1.weight"] = torch.zeros(8, 8, 3, 3)
    del sd["subnets.0.conv0.bias"]
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(WeightsError) as err:
        load_weights(tmp_path / "w.pth", arch="lpnet")
    msg = str(err.value)
    assert "missing 1 (subnets.0.conv0.bias)" in msg
    assert "unexpected 1 (extra.weight)" in msg
    assert "subnets.4.conv1.weight (8, 8, 3, 3) vs (16, 16, 3, 3)" in msg


class _Exploit:
    """Unpickling this would run a shell command: a weights-only load must refuse it."""

    def __reduce__(self):
        import os

        return (os.system, ("touch EXPLOITED_BY_PICKLE",))


def test_a_pth_with_pickled_code_is_refused_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pth"
    with bad.open("wb") as f:
        pickle.dump({"weight": _Exploit()}, f)
    with pytest.raises(WeightsError, match="refused"):
        load_weights(bad, arch="lpnet")
    assert not (tmp_path / "EXPLOITED_BY_PICKLE").exists()
    # the same payload inside torch's zip format
    torch_bad = tmp_path / "evil_zip.pt"
    torch.save({"weight": _Exploit()}, torch_bad)
    with pytest.raises(WeightsError, match="refused"):
        load_weights(torch_bad, arch="lpnet")
    assert not (tmp_path / "EXPLOITED_BY_PICKLE").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("w.safetensors", b"not a safetensors file", "not a readable .safetensors"),
        ("w.pth", b"\x00\x01garbage", "not a readable PyTorch"),
        ("w.onnx", b"whatever", "unsupported weight file type"),
    ],
)
def test_unreadable_files_get_one_clear_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(WeightsError, match=message) as err:
        load_weights(tmp_path / name, arch="lpnet")
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no such weight file"):
        load_weights(tmp_path / "nope.safetensors")


def test_file_for_another_model_is_refused(tmp_path: Path) -> None:
    path = save_weights(build_model("lpnet"), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="holds weights for 'lpnet'"):
        load_weights(path, arch="gtrain")
