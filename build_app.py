"""Build a standalone WeatherStudio folder with PyInstaller (one-dir): ``python build_app.py``.

The bundle holds the studio and the whole command line in one executable (``WeatherStudio`` opens the window;
``WeatherStudio remove …``, ``WeatherStudio demo`` … run the subcommands), the shipped weights and training
configs, the bundled samples, the icon and a desktop entry. It holds nothing from the research data
(``../shared``): every data file is named here, from this checkout only, and the build checks that none lies
outside it. After building, the executable is run headless (``--version``, ``models``, ``demo --headless``)
so a broken bundle fails here, not on a user's machine.

Needs PyInstaller (``pip install pyinstaller``). PyTorch's CUDA build brings its CUDA libraries (~4 GB), so
the folder is large; with the CPU-only wheel of torch installed instead it is ~1 GB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
NAME = "WeatherStudio"

# (source in this checkout, folder inside the bundle): where the package looks for them when frozen.
DATA = [
    ("weatherstudio/weights", "weatherstudio/weights", "*.safetensors"),
    ("weatherstudio/engine/configs", "weatherstudio/engine/configs", "*.toml"),
    ("resources/samples", "weatherstudio/resources/samples", "**/*"),
    ("resources/icons", "weatherstudio/resources/icons", "*.svg"),
]
# Never needed at run time; some would be pulled in by optional imports of the libraries we use.
EXCLUDES = ["tkinter", "matplotlib", "IPython", "pytest", "pytestqt", "ruff", "sphinx", "torch.utils.tensorboard"]
LAUNCHER = "from weatherstudio.cli import main\n\nraise SystemExit(main())\n"


def data_files() -> list[tuple[Path, str]]:
    """Every file the bundle carries besides code, as (source, destination folder); all inside this checkout."""
    files = []
    for src, dest, pattern in DATA:
        root = REPO / src
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                rel = path.parent.relative_to(root)
                files.append((path, str(Path(dest) / rel)))
    for path, _ in files:
        resolved = path.resolve()
        if REPO not in resolved.parents:
            raise SystemExit(f"error: {path} lies outside the checkout ({resolved}); nothing outside it ships")
    if not any(p.suffix == ".safetensors" for p, _ in files):
        raise SystemExit("error: no weight files in weatherstudio/weights; train them first (weatherstudio train)")
    return files


def pyinstaller_args(work: Path, dist: Path, windowed: bool) -> list[str]:
    """The PyInstaller command line for the one-dir bundle."""
    launcher = work / "weatherstudio_launcher.py"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(LAUNCHER)
    args = [
        str(launcher),
        "--name",
        NAME,
        "--onedir",
        "--noconfirm",
        "--distpath",
        str(dist),
        "--workpath",
        str(work / "pyinstaller"),
        "--specpath",
        str(work),
        "--windowed" if windowed else "--console",
        # the command line imports its subcommands lazily, so PyInstaller must be told to take them all
        "--collect-submodules",
        "weatherstudio",
        "--copy-metadata",
        "weatherstudio",
    ]
    for name in EXCLUDES:
        args += ["--exclude-module", name]
    sep = os.pathsep
    for src, dest in data_files():
        args += ["--add-data", f"{src}{sep}{dest}"]
    return args


def install_desktop_entry(bundle: Path) -> None:
    """The icon and a desktop entry whose Exec points at this bundle (copy it to ~/.local/share/applications)."""
    shutil.copy2(REPO / "resources" / "icons" / "weatherstudio.svg", bundle / "weatherstudio.svg")
    own = {"Exec": f"{bundle / NAME} gui %F", "Icon": str(bundle / "weatherstudio.svg")}
    lines = (REPO / "resources" / "weatherstudio.desktop").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        key = line.partition("=")[0]
        if key in own:
            lines[i] = f"{key}={own.pop(key)}"
    if own:
        raise SystemExit(f"error: resources/weatherstudio.desktop has no {', '.join(own)} line")
    (bundle / "weatherstudio.desktop").write_text("\n".join(lines) + "\n", encoding="utf-8")


def smoke_test(exe: Path) -> None:
    """Run the frozen executable headless: it must start, find its weights, and restore the bundled sample."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_LOGGING_RULES": "qt.qpa.*=false"}
    with tempfile.TemporaryDirectory(prefix="weatherstudio-bundle-") as tmp:
        for argv in (["--version"], ["models"], ["demo", "--headless", "-o", str(Path(tmp) / "demo")]):
            done = subprocess.run([str(exe), *argv], env=env, capture_output=True, text=True, timeout=900)
            print(f"$ {exe.name} {' '.join(argv)}  (exit {done.returncode})")
            print("  " + "\n  ".join((done.stdout + done.stderr).strip().splitlines()[-8:]))
            if done.returncode != 0:
                raise SystemExit(f"error: the bundle failed '{' '.join(argv)}'")


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dist", default=str(REPO / "dist"), help="where the bundle folder goes (default dist/)")
    p.add_argument("--work", default=str(REPO / "build"), help="PyInstaller's work folder (default build/)")
    p.add_argument("--windowed", action="store_true", help="no console window (Windows/macOS; stdout is None)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip running the built executable")
    p.add_argument("--print-command", action="store_true", help="print the PyInstaller arguments and stop")
    args = p.parse_args(argv)

    dist, work = Path(args.dist).resolve(), Path(args.work).resolve()
    pyi = pyinstaller_args(work, dist, args.windowed)
    if args.print_command:
        print(" ".join(pyi))
        return 0
    try:
        import PyInstaller.__main__ as pyinstaller
    except ImportError:
        print("error: PyInstaller is not installed; run: pip install pyinstaller", file=sys.stderr)
        return 2
    bundle = dist / NAME
    if bundle.exists() and not (bundle / NAME).exists() and not (bundle / f"{NAME}.exe").exists():
        print(f"error: {bundle} exists and is not a WeatherStudio bundle; not replacing it", file=sys.stderr)
        return 2
    pyinstaller.run(pyi)
    install_desktop_entry(bundle)
    exe = bundle / (f"{NAME}.exe" if sys.platform == "win32" else NAME)
    print(f"bundle: {bundle} ({folder_size(bundle) / 2**30:.2f} GiB)")
    if args.check:
        smoke_test(exe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
