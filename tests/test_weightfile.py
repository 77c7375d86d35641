"""Weight files: metadata round trip, foreign state dicts, clear refusals (mismatch, pickled code)."""

from __future__ import annotations

import os
import pickle
import pickletools
import re
from pathlib import Path

import pytest
import torch

from weatherstudio.models.registry import build_model
from weatherstudio.models.weightfile import WeightsError, load_weights, read_metadata, save_weights


def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    model = build_model("lpnet")
    path = save_weights(model, tmp_path / "w.safetensors", {"scores": {"rain100l": 33.0}})
    meta = read_metadata(path)
    assert meta["arch"] == "lpnet"
    assert meta["scores"] == {"rain100l": 33.0}
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
    with pytest.raises(WeightsError, match=r"w\.pth does not fit lpnet \([\d,]+ parameters\): ") as err:
        load_weights(tmp_path / "w.pth", arch="lpnet")
    msg = str(err.value)
    assert "missing 1 (subnets.0.conv0.bias)" in msg
    assert "unexpected 1 (extra.weight)" in msg
    assert "subnets.4.conv1.weight (8, 8, 3, 3) vs (16, 16, 3, 3)" in msg


MARKER = "EXPLOITED_BY_PICKLE"
SYSTEM = f"{os.system.__module__}.system"  # posix.system (nt.system on Windows): what pickle records for os.system
REFUSED = "refused — it holds pickled objects, not only tensors, and loading it could run code"


class _Exploit:
    """Unpickling this would run a shell command: a weights-only load must refuse it."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class _Popen:
    """Unpickling this would run a shell command through ``os.popen`` (a Python function in ``os``)."""

    def __reduce__(self):
        return (os.popen, (f"touch {MARKER}",))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run in ``tmp_path``, and fail if any payload ran (it would have created the marker file there)."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / MARKER).exists(), "a pickled payload was executed"


def _refusal(path: Path) -> str:
    with pytest.raises(WeightsError, match=f"^{re.escape(str(path))}: {REFUSED} ") as err:
        load_weights(path, arch="lpnet")
    assert not Path(MARKER).exists()
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_a_pth_with_pickled_code_is_refused_not_run(workdir: Path) -> None:
    bad = workdir / "evil.pth"
    with bad.open("wb") as f:
        pickle.dump({"weight": _Exploit()}, f)  # a plain pickle (legacy format), default protocol
    assert _refusal(bad).endswith(f"(it would call {SYSTEM})")
    # the same payload inside torch's zip format (pickle protocol 2, read by torch's own scanner)
    torch_bad = workdir / "evil_zip.pt"
    torch.save({"weight": _Exploit(), "other": _Popen()}, torch_bad)
    assert _refusal(torch_bad).endswith(f"(it would call {', '.join(sorted(['os.popen', SYSTEM]))})")


@pytest.mark.parametrize("protocol", [4, 5])
def test_memoized_strings_name_the_right_global(workdir: Path, protocol: int) -> None:
    # "os" is pickled (and memoized) as a key first, so STACK_GLOBAL for os.popen takes its module from a BINGET
    bad = workdir / "memo.pth"
    bad.write_bytes(pickle.dumps({"os": 1, "x": _Popen()}, protocol=protocol))
    ops = [op.name for op, _, _ in pickletools.genops(bad.read_bytes())]
    assert "STACK_GLOBAL" in ops
    assert "BINGET" in ops
    assert _refusal(bad).endswith("(it would call os.popen)")


class _Plain:
    """A plain object: pickled as its class (a global) plus state, the class memoized after its first use."""


def test_a_class_pickled_twice_is_named_once(workdir: Path) -> None:
    plain = workdir / "plain.pth"
    plain.write_bytes(pickle.dumps({"a": _Plain(), "b": _Plain()}, protocol=4))
    assert [op.name for op, _, _ in pickletools.genops(plain.read_bytes())].count("STACK_GLOBAL") == 1
    assert _refusal(plain).endswith(f"(it would call {_Plain.__module__}._Plain)")
    bad = workdir / "twice.pth"
    bad.write_bytes(pickle.dumps({"a": _Exploit(), "b": _Exploit(), "c": _Popen()}, protocol=4))
    assert _refusal(bad).endswith(f"(it would call {', '.join(sorted(['os.popen', SYSTEM]))})")
    # and inside torch's zip format, written with protocol 4 (which torch's own scanner does not read)
    zipped = workdir / "twice.pt"
    torch.save({"a": _Exploit(), "b": _Exploit(), "c": _Popen()}, zipped, pickle_protocol=4)
    assert _refusal(zipped).endswith(f"(it would call {', '.join(sorted(['os.popen', SYSTEM]))})")


def test_a_tensor_only_pickle_torch_cannot_read_is_not_called_code(workdir: Path) -> None:
    path = workdir / "p4.pt"
    torch.save({"w": torch.zeros(2)}, path, pickle_protocol=4)  # only allowed globals, in a form torch refuses
    with pytest.raises(WeightsError, match="not a readable PyTorch weight file \\(its pickle is not one") as err:
        load_weights(path, arch="lpnet")
    assert "refused" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("w.safetensors", b"not a safetensors file", "not a readable .safetensors"),
        ("w.pth", b"\x00\x01garbage", "not a readable PyTorch weight file \\(corrupt or not a checkpoint\\)"),
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
