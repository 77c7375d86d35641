"""Nothing below weatherstudio/gui imports Qt: every other module imports with Qt made unimportable."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CHECK = r"""
import importlib, pkgutil, sys
class BlockQt:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'shiboken6', 'pyqtgraph', 'superqt', 'qtpy'):
            raise ImportError('Qt imported below gui/: ' + name)
        return None
sys.meta_path.insert(0, BlockQt())
import weatherstudio
skip = ('weatherstudio.app', 'weatherstudio.__main__')
names = [m.name for m in pkgutil.walk_packages(weatherstudio.__path__, 'weatherstudio.')
         if not m.name.startswith('weatherstudio.gui') and m.name not in skip]
for name in names:
    importlib.import_module(name)
from weatherstudio.cli import main
assert main(['models']) == 0
print(len(names))
"""


def test_every_module_outside_gui_imports_without_qt() -> None:
    proc = subprocess.run([sys.executable, "-c", CHECK], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip().splitlines()[-1]) > 15
