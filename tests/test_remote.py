"""`weatherstudio remote`: a data pack that travels, a run fitted to a time budget, weights back in pieces."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.engine import remote
from weatherstudio.engine.datasets import PhotoPool, load_photo, split_of
from weatherstudio.models.weightfile import read_metadata, read_tensors

REPO = Path(__file__).resolve().parents[1]


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 5.0)], -1) * 200 + 20
    img += rng.normal(0, 1, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean/ photos in all three splits (one folder of PNG, one of JPEG) and train/RainTrainL pairs."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(3)
    counts = {"train": 0, "val": 0, "test": 0}
    i = 0
    while min(counts.values()) < 2 or counts["train"] < 6:
        folder, ext = ("scenes", "png") if i % 2 else ("street", "jpg")
        p = root / "clean" / folder / f"p{i:03d}.{ext}"
        _write(p, _photo(rng, 72, 96))
        counts[split_of(p)] += 1
        i += 1
    for k in range(6):
        clean = _photo(rng, 64, 80)
        _write(root / "train/RainTrainL/clean" / f"rain-{k}.png", clean)
        _write(
            root / "train/RainTrainL/rainy" / f"rain-{k}.png", np.clip(clean.astype(int) + 40, 0, 255).astype(np.uint8)
        )
    return root


def _tiny_lpnet(tmp_path: Path) -> Path:
    text = (REPO / "weatherstudio/engine/configs/lpnet_lite.toml").read_text()
    text = (
        text.replace("crop = 80", "crop = 32").replace("batch = 10", "batch = 2").replace("holdout = 20", "holdout = 3")
    )
    # fp32 and no weight average, whatever the shipped config's later phases use: the test checks the transfer
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("autocast", "ema")))
    path = tmp_path / "lpnet_tiny.toml"
    path.write_text(text)
    return path


def test_pack_keeps_every_name_leaves_the_test_photos_and_unpacks_close(data_root: Path, tmp_path: Path) -> None:
    pack = tmp_path / "data.zip"
    info = remote.pack_data(data_root, pack, quality=95, max_side=48)
    photos = [p for p in (data_root / "clean").rglob("*") if p.is_file()]
    kept = {p.relative_to(data_root).as_posix() for p in photos if split_of(p) != "test"}
    pairs = {p.relative_to(data_root).as_posix() for p in (data_root / "train").rglob("*.png")}
    with zipfile.ZipFile(pack) as z:
        assert set(z.namelist()) == kept | pairs | {remote.MANIFEST}
    assert info["files"] == len(kept | pairs) and "test-split photos" in info["left_out"]
    with pytest.raises(WeatherStudioError, match="exists"):
        remote.pack_data(data_root, pack)

    dest = tmp_path / "unpacked"
    remote.unpack_data(pack, dest)
    # the splits and hold-outs are the same, since the names are
    assert PhotoPool.load(dest / "clean", "train", 48).names == PhotoPool.load(data_root / "clean", "train", 48).names
    with pytest.raises(WeatherStudioError, match="no 'test' photos"):
        PhotoPool.load(dest / "clean", "test", 48)
    for rel in kept:
        a, b = load_photo(dest / rel, 0), load_photo(data_root / rel, 48)
        assert a.shape == b.shape == (36, 48, 3)  # downscaled to the long side asked for
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3.0  # JPEG q95
    for rel in pairs:
        a, b = load_photo(dest / rel, 0), load_photo(data_root / rel, 0)
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() < 3.0
    with pytest.raises(WeatherStudioError, match="not empty"):
        remote.unpack_data(pack, dest)


def test_unpack_refuses_a_pack_that_writes_outside_its_folder(tmp_path: Path) -> None:
    pack = tmp_path / "evil.zip"
    ok, png = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    with zipfile.ZipFile(pack, "w") as z:
        z.writestr(remote.MANIFEST, json.dumps({"format": remote.PACK_FORMAT}))
        z.writestr("clean/a.png", png.tobytes())
        z.writestr("../escaped.png", png.tobytes())
    with pytest.raises(WeatherStudioError, match="outside its folder"):
        remote.unpack_data(pack, tmp_path / "dest")
    assert not (tmp_path / "escaped.png").exists() and not (tmp_path / "dest" / "clean" / "a.png").exists()
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(WeatherStudioError, match="not a data pack"):
        remote.unpack_data(tmp_path / "junk.zip", tmp_path / "dest2")


def test_a_budgeted_run_comes_back_in_pieces_that_join_to_its_weights(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = tmp_path / "data.zip"
    remote.pack_data(data_root, pack, quality=95)
    out = tmp_path / "out"
    record = remote.train_for(str(_tiny_lpnet(tmp_path)), 0.05, out, pack=pack, run_dir=tmp_path / "run", device="cpu")
    assert record["steps"] >= 1 and record["seconds_per_step"] > 0 and record["precision"] == "fp32"
    assert json.loads((out / "lpnet_tiny.json").read_text())["pieces"] == ["lpnet_tiny.part0.safetensors"]
    trained = tmp_path / "run" / "lpnet_tiny.safetensors"
    meta = read_metadata(trained)
    assert meta["time_budget"]["steps"] == record["steps"] and meta["data_pack"]["quality"] == 95
    assert meta["training"]["steps"] == record["steps"]

    joined = remote.collect(out, tmp_path / "joined.safetensors", score=False)
    assert "val_psnr_y" in joined
    a, b = read_tensors(trained), read_tensors(tmp_path / "joined.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # fp32 pieces: bit-exact
    assert read_metadata(tmp_path / "joined.safetensors")["transfer"]["precision"] == "fp32"
    with pytest.raises(WeatherStudioError, match="exists"):
        remote.collect(out, tmp_path / "joined.safetensors", score=False)
    with pytest.raises(WeatherStudioError, match="earlier run"):
        remote.train_for(str(_tiny_lpnet(tmp_path)), 0.05, out, pack=pack, run_dir=tmp_path / "run", device="cpu")

    # fp16 pieces, several of them: the same weights to fp16's precision; a missing piece is caught
    monkeypatch.setattr(remote, "PIECE_BYTES", 8192)
    pieces = remote.write_pieces(trained, tmp_path / "half", "lpnet_tiny", "fp16")
    assert len(pieces) > 1 and all(p.stat().st_size < 8192 + 2048 for p in pieces)
    remote.collect(tmp_path / "half", tmp_path / "half.safetensors", score=False)
    c = read_tensors(tmp_path / "half.safetensors")
    assert all(c[k].dtype == a[k].dtype and torch.allclose(c[k], a[k], rtol=1e-3, atol=1e-4) for k in a)
    pieces[-1].unlink()
    with pytest.raises(WeatherStudioError, match="not one complete set"):
        remote.collect(tmp_path / "half", tmp_path / "half2.safetensors", score=False)


def test_weights_too_large_to_come_back_are_refused_before_any_work(tmp_path: Path) -> None:
    assert remote._returnable_precision(40 * 2**20) == "fp32"
    assert remote._returnable_precision(80 * 2**20) == "fp16"
    with pytest.raises(WeatherStudioError, match="can send back"):
        remote.train_for("desnownet_paper", 5, tmp_path / "out", data_root=tmp_path / "none", device="cpu")
    assert not (tmp_path / "out").exists()


def test_the_remote_run_needs_neither_qt_nor_video_nor_the_runtimes() -> None:
    """The lent machine has torch, OpenCV and safetensors, not PySide6, PyAV or the CPU runtimes."""
    code = (
        "import sys\n"
        "for m in ('PySide6', 'av', 'pyqtgraph', 'superqt', 'openvino', 'onnxruntime', 'imageio'):\n"
        "    sys.modules[m] = None\n"
        "import weatherstudio.engine.remote, weatherstudio.engine.training, weatherstudio.engine.objectives\n"
        "from weatherstudio.engine.training import build_network, load_config\n"
        "cfg = load_config('gtrain_paper'); build_network(cfg['model']['arch'], cfg['model']['config'])\n"
        "from weatherstudio.cli import main\n"
        "sys.exit(main(['remote', 'train', '--help']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--minutes" in done.stdout
