"""The Save Result dialog: where, which format (PNG/JPEG/TIFF), bit depth and JPEG quality."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

FORMATS = {"png": ("PNG", ".png"), "jpeg": ("JPEG", ".jpg"), "tiff": ("TIFF", ".tif")}
SUFFIX_FORMAT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}


def suggested_path(source: Path, suffix: str, folder: Path | None = None) -> Path:
    """``<stem>_restored<suffix>`` next to the input (or in ``folder``), numbered so no file is replaced."""
    folder = folder or source.parent
    path = folder / f"{source.stem}_restored{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{source.stem}_restored_{n}{suffix}"
        n += 1
    return path


class SaveDialog(QDialog):
    def __init__(
        self,
        source: Path,
        input_bits: int,
        fmt: str = "png",
        bit_depth: int = 0,
        quality: int = 95,
        folder: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Save restored image")
        self.source = source
        self.input_bits = input_bits
        self.path = QLineEdit()
        self.path.setMinimumWidth(420)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.format = QComboBox()
        for key, (label, suffix) in FORMATS.items():
            self.format.addItem(f"{label} ({suffix})", key)
        self.depth = QComboBox()
        self.depth.addItem(f"Same as the input ({input_bits}-bit)", 0)
        self.depth.addItem("8-bit", 8)
        self.depth.addItem("16-bit", 16)
        self.quality = QSpinBox(minimum=1, maximum=100, value=quality)
        self.quality.setSuffix(" %")
        note = QLabel(
            "EXIF, ICC colour profile and DPI are kept; orientation is applied. The input file is never overwritten.",
            objectName="muted",
        )
        note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("File", row)
        form.addRow("Format", self.format)
        form.addRow("Bit depth", self.depth)
        form.addRow("JPEG quality", self.quality)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

        self.format.setCurrentIndex(max(0, self.format.findData(fmt)))
        self.depth.setCurrentIndex(max(0, self.depth.findData(bit_depth)))
        self.path.setText(str(suggested_path(source, FORMATS[self.format.currentData()][1], folder)))
        self.format.currentIndexChanged.connect(self._on_format)
        self.path.textEdited.connect(self._on_path)
        self._on_format()

    def _on_format(self) -> None:
        key = self.format.currentData()
        jpeg = key == "jpeg"
        self.quality.setEnabled(jpeg)
        self.depth.setEnabled(not jpeg)
        current = Path(self.path.text())
        if SUFFIX_FORMAT.get(current.suffix.lower()) != key:
            self.path.setText(str(current.with_suffix(FORMATS[key][1])))

    def _on_path(self, text: str) -> None:
        key = SUFFIX_FORMAT.get(Path(text).suffix.lower())
        if key and key != self.format.currentData():
            self.format.blockSignals(True)
            self.format.setCurrentIndex(self.format.findData(key))
            self.format.blockSignals(False)
            self.quality.setEnabled(key == "jpeg")
            self.depth.setEnabled(key != "jpeg")

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save restored image", self.path.text(), "PNG (*.png);;JPEG (*.jpg *.jpeg);;TIFF (*.tif *.tiff)"
        )
        if path:
            self.path.setText(path)
            self._on_path(path)

    def values(self) -> tuple[Path, str, int | None, int | None]:
        """(path, format key, bit depth or None for 'as the input', JPEG quality or None)."""
        key = self.format.currentData()
        depth = None if key == "jpeg" else (self.depth.currentData() or None)
        quality = self.quality.value() if key == "jpeg" else None
        return Path(self.path.text()).expanduser(), key, depth, quality
