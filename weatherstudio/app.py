"""The GUI entry point: ``weatherstudio gui [FILE]`` or ``weatherstudio-gui``.

``--screenshot OUT.png`` runs the window until the full-resolution restore is shown, saves a screenshot and the
restored image (``OUT_restored.png``) and exits — how the README's pictures are made.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

MODES = ("side", "split", "toggle", "diff")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weatherstudio gui", description="Open the WeatherStudio window.")
    p.add_argument("files", nargs="*", help="image to open (default: the bundled sample)")
    p.add_argument("--model", help="model to start with (auto, lpnet, resdesnow, ...)")
    p.add_argument("--config", help="the model's variant (e.g. lite, paper)")
    p.add_argument("--weights", help="a weight file (.safetensors / .pth)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, help="CPU threads for restores (default: the 'Use all CPU cores' setting)")
    p.add_argument("--mode", choices=MODES, help="viewer mode")
    p.add_argument("--theme", choices=("system", "light", "dark"), help="colour theme (not saved)")
    p.add_argument("--inspect", metavar="MAP", help="open this map in the inspector")
    p.add_argument("--frame", type=int, default=0, help="a video: open it at this frame")
    p.add_argument("--screenshot", metavar="OUT.png", help="save a screenshot once restored, then exit")
    p.add_argument("--size", default="1440x900", help="window size for --screenshot (WxH)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the restore (--screenshot)")
    return p


def _say(text: str, error: bool = False) -> None:
    stream = sys.stderr if error else sys.stdout
    if stream is not None:  # None in a windowed (PyInstaller) build
        print(text, file=stream, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the window; returns the exit status."""
    args = _parser().parse_args(argv)
    from weatherstudio.cli import has_display

    if not has_display() and not os.environ.get("QT_QPA_PLATFORM"):
        if not args.screenshot:
            _say("error: no display to open the window on; use --screenshot OUT.png, or 'weatherstudio demo'", True)
            return 2
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
        os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")  # the offscreen plugin's size-hint chatter
    import pyqtgraph as pg
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("WeatherStudio")
    app.setApplicationName("WeatherStudio")
    app.setDesktopFileName("weatherstudio")  # resources/weatherstudio.desktop: the desktop's name and icon
    from weatherstudio.samples import app_icon

    icon = app_icon()
    if icon is not None:
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    from weatherstudio.gui.main_window import MainWindow
    from weatherstudio.gui.settings import Settings

    tmp = None
    settings = None
    if args.screenshot:  # a clean, reproducible window that leaves the user's settings alone
        tmp = tempfile.TemporaryDirectory(prefix="weatherstudio-shot-")
        settings = Settings(QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat))
    if args.threads is not None and args.threads < 1:
        _say(f"error: --threads {args.threads}: give 1 or more", error=True)
        return 2
    window = MainWindow(settings, theme_name=args.theme, worker_threads=args.threads)
    try:
        _apply_options(window, args)
    except (KeyError, ValueError) as exc:
        _say(f"error: {exc}", error=True)
        window.close()
        return 2
    if args.screenshot:
        w, _, h = args.size.partition("x")
        window.resize(int(w), int(h))
    window.show()
    if args.files and Path(args.files[0]).is_dir() and not args.screenshot:
        window.batch_dialog(Path(args.files[0]))  # a folder: offer to restore all of it
    elif args.files:
        window.open_path(args.files[0], frame=args.frame)
        if len(args.files) > 1:
            _say(f"note: opened {args.files[0]}; use File ▸ Batch Folder… for several images")
    else:
        window.open_sample()
    if not args.screenshot:
        app.aboutToQuit.connect(window.close)  # however the app ends, the worker is stopped and joined
        return app.exec()
    try:
        return _screenshot(app, window, args)
    finally:
        window.close()
        if tmp is not None:
            tmp.cleanup()


def _apply_options(window: object, args: argparse.Namespace) -> None:
    panel = window.model_panel
    if args.model:
        panel.set_arch(args.model)
    if args.config:
        if panel.config.findData(args.config) < 0:
            raise ValueError(f"model {panel.arch()!r} has no variant {args.config!r}")
        panel.set_config(args.config)
    if args.weights:
        panel.add_weight_file(args.weights)
    if args.device:
        index = panel.device.findData(args.device)
        if index < 0:
            raise ValueError(f"device {args.device!r} is not available here")
        panel.device.setCurrentIndex(index)
    if args.mode:
        window.set_mode(args.mode)
    window.debounce.stop()


def _wait(app: object, window: object, timeout: float) -> str:
    """Run the event loop until the restore is done ('') or failed (its message)."""
    from PySide6.QtCore import QEventLoop, QTimer

    outcome: dict[str, str] = {}
    loop = QEventLoop()
    window.restore_done.connect(lambda: (outcome.setdefault("ok", ""), loop.quit()))
    window.restore_failed.connect(lambda msg: (outcome.setdefault("error", msg), loop.quit()))
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    loop.exec()
    if "error" in outcome:
        return outcome["error"]
    return "" if "ok" in outcome else f"timed out after {timeout:.0f} s"


def _screenshot(app: object, window: object, args: argparse.Namespace) -> int:
    from PySide6.QtCore import QEventLoop, QTimer

    empty = not window.running and not window.doc_path  # no file given and no bundled sample: the empty window
    error = "" if empty else _wait(app, window, args.timeout)
    if error:
        _say(f"error: {error}", error=True)
        return 1
    if args.inspect and not empty:
        if args.inspect not in window.inspector.maps:
            _say(f"error: no map {args.inspect!r}; maps: {', '.join(window.inspector.maps)}", error=True)
            return 2
        window.show_maps()
        window.inspector.select(args.inspect)
    loop = QEventLoop()  # let layouts, view syncing and repaints settle
    QTimer.singleShot(400, loop.quit)
    loop.exec()
    out = Path(args.screenshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out)):
        _say(f"error: could not write {out}", error=True)
        return 1
    _say(f"screenshot: {out}")
    if empty:
        _say("note: no image was given and no sample ships, so this is the empty window")
        return 0
    restored = out.with_name(f"{out.stem}_restored.png")
    saved = window.save_result(restored, overwrite=True)
    if saved is None:
        _say(f"error: {window.banner.text()}", error=True)
        return 1
    _say(f"restored: {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
