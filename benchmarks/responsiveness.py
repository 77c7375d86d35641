"""How the studio feels: event-loop stalls during a restore, the 24 MP preview, and restore time against the CLI.

    QT_QPA_PLATFORM=offscreen python benchmarks/responsiveness.py [--mp 6] [--model lpnet]

Runs the real window offscreen. For each thread setting of the studio ("use all cores" on, and off: one core
left to the window) it opens the same photo, restores it with the shipped weights and reports the restore's
wall time as the window shows it and the longest gap between 10 ms timer ticks on the GUI thread. Then the
same photo through ``weatherstudio remove`` (all cores), and LPNet's quick preview of a 24 MP photo. Prints a
table; not a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _photo(path: Path, mp: float) -> Path:
    from weatherstudio.core.image_io import write_image

    h = int(round((mp * 1e6 * 2 / 3) ** 0.5))
    w = int(round(h * 1.5))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.45 + 0.25 * np.sin(xx / 19.0)[..., None] * np.cos(yy / 29.0)[..., None] * np.array([1, 0.8, 0.5])
    streaks = ((xx + 2 * yy).astype(int) % 23 == 0)[..., None] * 0.35
    write_image(path, np.clip(base + streaks, 0, 1).astype(np.float32))
    return path


def studio_run(photo: Path, model: str, all_cores: bool) -> tuple[float, float]:
    """(restore seconds as reported by the window, longest event-loop gap in ms)."""
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from weatherstudio.gui.main_window import MainWindow
    from weatherstudio.gui.settings import Settings

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        window = MainWindow(settings, theme_name="light")
        window.resize(1200, 800)
        window.show()
        window.model_panel.set_arch(model)
        window.model_panel.all_cores.setChecked(all_cores)
        window.debounce.stop()
        ticks: list[float] = []
        timer = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        done: list[bool] = []
        window.restore_done.connect(lambda: done.append(True))
        window.restore_failed.connect(lambda msg: (print(msg), done.append(False)))
        timer.start()
        window.open_path(photo)
        while not done:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        seconds = window.result.seconds
        gaps = [(b - a) * 1000 for a, b in zip(ticks, ticks[1:])]
        window.close()
        return seconds, max(gaps) if gaps else float("nan")


def cli_run(photo: Path, model: str, out: Path) -> float:
    """Seconds ``weatherstudio remove`` reports for the restore (all cores)."""
    proc = subprocess.run(
        [sys.executable, "-m", "weatherstudio", "remove", str(photo), "-o", str(out), "--model", model, "--overwrite"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in proc.stdout.splitlines() if " -> " in ln)
    return float(line.split(" s, ")[0].rsplit(", ", 1)[-1])


def preview_24mp() -> float:
    """Best of two: LPNet's quick preview of a 24 MP photo (restore of a copy, enlarged as 8-bit), one thread."""
    import torch

    from weatherstudio.engine.restore import RestoreOptions, restore_preview
    from weatherstudio.engine.session import PREVIEW_PIXELS, ModelChoice, load_choice
    from weatherstudio.gui.image_convert import enlarge_u8

    torch.set_num_threads(1)
    model = load_choice(ModelChoice("lpnet")).model
    photo = np.empty((4000, 6000, 3), np.float32)
    photo[:] = np.linspace(0, 1, 6000, dtype=np.float32)[None, :, None]
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        small = restore_preview(photo, model, RestoreOptions(tile=0), PREVIEW_PIXELS, upscale=False)
        enlarge_u8(small.image, photo.shape[:2])
        best = min(best, time.perf_counter() - t)
    torch.set_num_threads(os.cpu_count() or 1)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mp", type=float, default=6.0, help="photo size in megapixels")
    p.add_argument("--model", default="lpnet")
    args = p.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        photo = _photo(Path(tmp) / "photo.png", args.mp)
        rows = []
        cli = cli_run(photo, args.model, Path(tmp) / "out.png")
        for all_cores in (True, False):
            seconds, gap = studio_run(photo, args.model, all_cores)
            rows.append((f"studio, use all cores {'on' if all_cores else 'off'}", seconds, gap))
        rows.append(("weatherstudio remove (all cores)", cli, float("nan")))
    print(f"{args.model} on a {args.mp:g} MP photo, {os.cpu_count()} cores")
    print(f"{'run':<38} {'restore s':>10} {'max GUI gap ms':>15}")
    for name, seconds, gap in rows:
        print(f"{name:<38} {seconds:>10.2f} {gap:>15.1f}")
    print(f"LPNet quick preview of a 24 MP photo (1 thread): {preview_24mp():.2f} s")


if __name__ == "__main__":
    main()
