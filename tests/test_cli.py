"""The command line, run as a user runs it: real files in, real files out, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA, FIXTURES, REPO, needs_shared
from weatherstudio.cli import main
from weatherstudio.core.image_io import read_image, write_image


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "weatherstudio", *args], capture_output=True, text=True, cwd=cwd or REPO, timeout=600
    )


@pytest.fixture
def lpnet_weights(tmp_path: Path) -> Path:
    """A real LPNet weight file (random init, saved through our writer)."""
    import torch

    from weatherstudio.models.registry import build_model
    from weatherstudio.models.weightfile import save_weights

    torch.manual_seed(0)
    return save_weights(build_model("lpnet"), tmp_path / "lpnet_test.safetensors", {"config_name": "lite"})


def _photo(path: Path, h: int = 96, w: int = 128, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    write_image(path, rng.random((h, w, 3), dtype=np.float32))
    return path


def test_remove_a_folder_with_maps(tmp_path: Path, lpnet_weights: Path, capsys) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        _photo(src / f"p{i}.png", seed=i)
    out, maps = tmp_path / "out", tmp_path / "maps"
    code = main(["remove", str(src), "-o", str(out), "--weights", str(lpnet_weights), "--maps", str(maps)])
    assert code == 0
    for i in range(2):
        restored = read_image(out / f"p{i}.png")
        assert restored.rgb.shape == (96, 128, 3)
        for level in range(1, 6):
            png = read_image(maps / f"p{i}_output_level{level}.png")
            assert png.bit_depth == 16
            arr = np.load(maps / f"p{i}_output_level{level}.npy")
            scale = 2 ** (5 - level)
            assert arr.shape == (-(-96 // scale), -(-128 // scale), 3)
    sidecar = json.loads((maps / "p0_input_level5.png.json").read_text())  # the inspector's sidecar format
    assert sidecar["map"]["kind"] == "pyramid"
    assert sidecar["map"]["group"] == "input pyramid"
    assert sidecar["decode"] == "value = lo + stored * (hi - lo) / 65535"
    assert json.loads((maps / "p0_input_level5.npy.json").read_text())["encoding"] == "float32, exact values"
    assert "p0.png ->" in capsys.readouterr().out


def test_maps_are_never_overwritten_without_overwrite(tmp_path: Path, lpnet_weights: Path) -> None:
    photo = _photo(tmp_path / "p.png")
    maps = tmp_path / "maps"
    args = ["remove", str(photo), "-o", str(tmp_path / "out"), "--weights", str(lpnet_weights), "--maps", str(maps)]
    assert main(args) == 0
    before = (maps / "p_output_level1.npy").read_bytes()
    (tmp_path / "out" / "p.png").unlink()  # the image may go again; the maps are still there
    assert main(args) == 2
    assert (maps / "p_output_level1.npy").read_bytes() == before


def test_remove_never_overwrites_the_input(tmp_path: Path, lpnet_weights: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    before = photo.read_bytes()
    proc = run_cli("remove", str(photo), "-o", str(photo), "--weights", str(lpnet_weights), "--overwrite")
    assert proc.returncode != 0
    assert photo.read_bytes() == before
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("name", "content"),
    [("truncated.jpg", None), ("empty.png", b""), ("notes.png", b"this is text, not an image")],
)
def test_bad_inputs_give_one_line_and_no_traceback(tmp_path: Path, lpnet_weights: Path, name: str, content) -> None:
    bad = tmp_path / name
    if content is None:
        good = tmp_path / "good.jpg"
        _photo(good, 200, 300)
        bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    else:
        bad.write_bytes(content)
    proc = run_cli("remove", str(bad), "-o", str(tmp_path / "out"), "--weights", str(lpnet_weights))
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1
    assert name in errors[0]
    assert "Traceback" not in proc.stderr


def test_a_malicious_weight_file_is_refused_on_the_command_line(tmp_path: Path) -> None:
    import pickle

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"w": Payload()}))
    photo = _photo(tmp_path / "p.png")
    proc = run_cli("remove", str(photo), "-o", str(tmp_path / "out"), "--weights", str(evil))
    assert proc.returncode == 2
    assert "refused" in proc.stderr
    assert not (tmp_path / "pwned").exists()


def test_models_json_lists_every_network_with_parameter_counts() -> None:
    proc = run_cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    table = {row["name"]: row for row in json.loads(proc.stdout)}
    assert {"lpnet", "desnownet", "resdesnow", "j4rnet", "gtrain"} <= set(table)
    assert table["lpnet"]["configs"]["paper"]["parameters"] == 7548
    assert 12_800_000 < table["gtrain"]["configs"]["paper"]["parameters"] < 13_000_000
    assert table["j4rnet"]["temporal"] is True


def test_video_model_keeps_state_across_a_folder_of_frames(tmp_path: Path) -> None:
    """J4R-Net's `remove` over a folder: each frame depends on the frames before it (state carried)."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        _photo(frames / f"f{i:02d}.png", 40, 56, seed=i)
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    assert main(["remove", str(frames), "-o", str(out_a), "--model", "j4rnet", "--untrained", "--tile", "0"]) == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "f02.png").write_bytes((frames / "f02.png").read_bytes())
    assert main(["remove", str(alone), "-o", str(out_b), "--model", "j4rnet", "--untrained", "--tile", "0"]) == 0
    with_history = read_image(out_a / "f02.png").rgb
    without = read_image(out_b / "f02.png").rgb
    assert np.abs(with_history - without).max() > 1 / 255  # the memory of frames 0 and 1 changed frame 2


@needs_shared
def test_import_weights_then_bench_reproduces_the_authors_score(tmp_path: Path) -> None:
    """The authors' LPNet, imported, scores their 33.43 dB on Rain100L under our benchmark protocol."""
    out = tmp_path / "lpnet_authors.safetensors"
    proc = run_cli(
        "import-weights",
        "--from",
        "lpnet-tf-npz",
        str(FIXTURES / "lpnet_reference" / "weights_light.npz"),
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(
        "bench",
        "--weights",
        str(out),
        "--rainy",
        str(DATA / "test/Rain100L/rainy"),
        "--clean",
        str(DATA / "test/Rain100L/clean"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["n"] == 100
    assert abs(report["input_psnr_y"] - 26.90) < 0.01  # the rainy inputs, as SOURCES.md measures them
    assert abs(report["psnr_y"] - 33.43) < 0.02
    assert abs(report["ssim_y"] - 0.9588) < 0.0005
    for key in ("ssim_y", "psnr_rgb", "ssim_rgb", "sec_per_image"):
        assert key in report


def test_demo_headless_restores_every_bundled_photo_with_shipped_weights(tmp_path: Path) -> None:
    """The main job without a display: auto picks the shipped network of each bundled photo's weather, maps are
    written, every path printed, and the restore is better than the input against the sample's clean original."""
    from weatherstudio.engine.weather import PREFERENCE
    from weatherstudio.samples import find_samples

    proc = run_cli("demo", "--headless", "--no-screenshot", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    photos = [s for s in find_samples() if not s.is_clip]
    assert {s.weather for s in photos} == {"rain", "snow"}
    for sample in photos:
        dest = tmp_path / f"{sample.path.stem}_restored.png"
        line = next(ln for ln in proc.stdout.splitlines() if sample.path.name in ln)
        assert f"auto: {sample.weather} (" in line
        assert f"→ {PREFERENCE[sample.weather][0]}" in line  # lpnet for rain, resdesnow for snow: both ship
        assert str(dest) in line
        assert read_image(dest).rgb.shape == read_image(sample.path).rgb.shape
        assert any((tmp_path / f"{sample.path.stem}_maps").iterdir())
        before, after = (float(v) for v in line.split("PSNR-Y ")[1].replace(" dB", "").split(" -> "))
        assert after > before
    clip = next(s for s in find_samples() if s.is_video)
    dest = tmp_path / f"{clip.path.stem}_restored.mp4"
    line = next(ln for ln in proc.stdout.splitlines() if clip.path.name in ln)
    assert str(dest) in line
    assert "kept audio (aac)" in line
    from weatherstudio.core.video_io import VideoReader

    with VideoReader(clip.path) as src, VideoReader(dest) as out:
        assert out.frame_count == src.frame_count == 12
        assert out.info.streams[0].kind == "audio"


def test_an_existing_folder_is_always_the_output_folder(tmp_path: Path, lpnet_weights: Path) -> None:
    photo = _photo(tmp_path / "p.png")
    out = tmp_path / "looks_like_a_file.png"
    out.mkdir()
    assert main(["remove", str(photo), "-o", str(out), "--weights", str(lpnet_weights)]) == 0
    assert read_image(out / "p.png").rgb.shape == (96, 128, 3)


def test_one_file_to_a_named_file(tmp_path: Path, lpnet_weights: Path) -> None:
    photo = _photo(tmp_path / "p.png")
    out = tmp_path / "clean.png"
    assert main(["remove", str(photo), "-o", str(out), "--weights", str(lpnet_weights)]) == 0
    assert out.is_file()


def test_threads_sets_torch_threads_on_every_subcommand(tmp_path: Path, lpnet_weights: Path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        photo = _photo(tmp_path / "p.png")
        assert (
            main(["remove", str(photo), "-o", str(tmp_path / "o"), "--weights", str(lpnet_weights), "--threads", "1"])
            == 0
        )
        assert torch.get_num_threads() == 1
        assert main(["models", "--threads", "2"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    proc = run_cli("models", "--threads", "0")
    assert proc.returncode == 2
    assert "--threads 0: give 1 or more" in proc.stderr


def test_classify_json_names_the_weather_of_each_photo(tmp_path: Path) -> None:
    """The shipped classifier on the bundled samples (synthetic rain and snow) and a clean photo."""
    from weatherstudio.samples import find_samples

    samples = [s for s in find_samples() if not s.is_clip and s.clean is not None]
    clear = tmp_path / "clear.jpg"
    clear.write_bytes(samples[0].clean.read_bytes())
    proc = run_cli("classify", *(str(s.path) for s in samples), str(clear), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["path"] for r in rows] == [str(s.path) for s in samples] + [str(clear)]
    for row, sample in zip(rows, samples):
        assert row["weather"] == sample.weather
        assert 0.5 < row["confidence"] <= 1.0
        assert abs(sum(row["probabilities"].values()) - 1.0) < 1e-3
    assert rows[-1]["weather"] == "clear"


def test_auto_passes_a_clear_photo_through_unchanged(tmp_path: Path) -> None:
    from weatherstudio.samples import find_samples

    sample = next(s for s in find_samples() if not s.is_clip and s.clean is not None)
    clear = tmp_path / "clear.jpg"
    clear.write_bytes(sample.clean.read_bytes())
    out = tmp_path / "out"
    proc = run_cli("remove", str(clear), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "passed through unchanged" in proc.stdout
    assert (out / "clear.jpg").read_bytes() == clear.read_bytes()
