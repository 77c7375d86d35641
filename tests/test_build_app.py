"""build_app.py: the PyInstaller bundle carries every shipped weight, config, sample and the icon, and nothing else.

The build itself (minutes, gigabytes with torch's CUDA libraries) is not run here; its command line is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import build_app  # noqa: E402


def test_bundle_data_are_the_shipped_files_and_only_those() -> None:
    files = build_app.data_files()
    shipped = {p.relative_to(REPO).as_posix() for p, _ in files}
    weights = {p.relative_to(REPO).as_posix() for p in (REPO / "weatherstudio" / "weights").glob("*.safetensors")}
    configs = {p.relative_to(REPO).as_posix() for p in (REPO / "weatherstudio" / "engine" / "configs").glob("*.toml")}
    assert weights
    assert weights <= shipped
    assert configs <= shipped
    assert "resources/icons/weatherstudio.svg" in shipped
    assert any(s.startswith("resources/samples/rainy_coffee_clip/") for s in shipped)  # the clip's frames too
    for path, dest in files:  # where the frozen package looks for them (samples.resource_dirs, WEIGHTS_DIR)
        assert REPO in path.resolve().parents
        assert dest.startswith("weatherstudio/")
        if "resources/samples" in path.as_posix():
            rel = path.parent.relative_to(REPO / "resources" / "samples").as_posix()
            assert dest == "weatherstudio/resources/samples" + ("" if rel == "." else f"/{rel}")
    assert not any("shared" in p.parts for p, _ in files)


def test_print_command_names_the_launcher_and_data(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "build_app.py"), "--print-command", "--work", str(tmp_path), "--dist", "d"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    args = done.stdout.split()
    launcher = Path(args[0])
    assert launcher.read_text() == build_app.LAUNCHER
    assert "--onedir" in args
    assert args[args.index("--name") + 1] == "WeatherStudio"
    assert args[args.index("--collect-submodules") + 1] == "weatherstudio"
    assert args.count("--add-data") == len(build_app.data_files())
    # the launcher runs the same entry point as the installed `weatherstudio` script
    run = subprocess.run([sys.executable, str(launcher), "--version"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0
    assert run.stdout.startswith("weatherstudio ")
