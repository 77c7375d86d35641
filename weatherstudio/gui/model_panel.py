"""The model panel: which network, which weights, where it runs and how it tiles. Every change emits ``changed``.

Models come from the registry, so networks added later appear by themselves; "Auto" (first) lets the weather
classifier pick the network for each photo, and the panel then shows what it chose. When no trained weights
ship for a model, it is offered "untrained (random init)", clearly labelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from weatherstudio.gui.settings import Settings

UNTRAINED = "untrained"
BROWSE = "browse"
AUTO = "auto"
WEIGHT_FILTER = "Weight files (*.safetensors *.pth *.pt);;All files (*)"


def _form(*rows: tuple[str, QWidget]) -> QFormLayout:
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    for label, widget in rows:
        form.addRow(label, widget)
    return form


class ModelPanel(QWidget):
    changed = Signal()
    rerun = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from weatherstudio.engine.backends import available_backends, describe
        from weatherstudio.engine.device import available_devices
        from weatherstudio.models.registry import entries

        self.entries = entries()
        self.user_weights: list[str] = []
        self._quiet = 0  # > 0 while the panel changes itself: no 'changed' signals

        self.model = QComboBox()
        self.model.addItem("Auto (by weather)", AUTO)
        self.model.setItemData(0, "A classifier tells rain, snow or clear; the best shipped network runs", 3)
        for name, entry in sorted(self.entries.items()):
            self.model.addItem(f"{name}  ({getattr(entry.cls, 'task', '')})", name)
            self.model.setItemData(self.model.count() - 1, entry.summary, 3)  # Qt.ToolTipRole
        self.summary = QLabel(objectName="muted")
        self.summary.setWordWrap(True)
        self.config = QComboBox()
        self.config.setToolTip("The model's variant (its config): 'paper' as published, 'lite' smaller and faster")
        self.weights = QComboBox()
        self.weights.setToolTip("Trained weights shipped with WeatherStudio, a file of your own, or none")
        self.device = QComboBox()
        self.device.addItem("Auto (GPU if present)", "auto")
        for dev in available_devices():
            self.device.addItem("CPU" if dev == "cpu" else dev.upper().replace("CUDA", "GPU "), dev)
        self.has_gpu = self.device.count() > 2
        self.backend = QComboBox()
        for name in available_backends():
            label = {"auto": "Auto (fastest installed)", "torch": "PyTorch"}.get(name) or describe(name)
            self.backend.addItem(label, name)
        self.backend.setToolTip(
            "Where a restore runs on the CPU. Auto: OpenVINO or ONNX Runtime (the network's checked ONNX graph, "
            "faster) for images of a tile or more; maps for the inspector always come from PyTorch"
        )
        self.fp16 = QCheckBox("Half precision (fp16)")
        self.fp16.setToolTip("On a GPU: faster and half the memory; falls back to fp32 when a tile overflows")
        self.tile = QSpinBox(minimum=0, maximum=8192, singleStep=64, suffix=" px")
        self.tile.setSpecialValueText("Auto")
        self.tile.setToolTip("Tile side for large images (Auto: the model's default; bounded by memory)")
        self.overlap = QSpinBox(minimum=-1, maximum=512, singleStep=8, suffix=" px")
        self.overlap.setSpecialValueText("Auto")
        self.overlap.setToolTip("Overlap between tiles, blended without seams (Auto: from the model's context)")
        self.maps = QCheckBox("Compute maps for the inspector")
        self.align = QCheckBox("Video: memory follows the camera")
        self.align.setToolTip(
            "J4R-Net's memory is warped along the optical flow to each new frame, so a panning or shaking camera "
            "leaves no ghost copies of edges (off: the memory stays where the last frame had it)"
        )
        self.align.setChecked(True)
        self.all_cores = QCheckBox("Use all CPU cores")
        self.all_cores.setToolTip(
            "On: restores run at full speed. Off: one core is left to the window, which then stays smoother"
        )
        self.status = QLabel(objectName="muted")
        self.status.setWordWrap(True)
        run = QPushButton("Restore again")
        run.setToolTip("Run the restore again with these settings (Ctrl+R)")
        run.clicked.connect(self.rerun)

        for combo in (self.model, self.config, self.weights, self.device, self.backend):
            # long entries (file names) must not force the dock wide: elide them instead
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(14)
        network = _form(("Model", self.model), ("", self.summary), ("Variant", self.config), ("Weights", self.weights))
        running = _form(
            ("Device", self.device),
            ("Backend", self.backend),
            ("", self.fp16),
            ("Tile", self.tile),
            ("Overlap", self.overlap),
            ("", self.maps),
            ("", self.align),
            ("", self.all_cores),
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 8)
        layout.addWidget(QLabel("Network", objectName="sectionTitle"))
        layout.addLayout(network)
        layout.addSpacing(6)
        layout.addWidget(QLabel("Performance", objectName="sectionTitle"))
        layout.addLayout(running)
        layout.addSpacing(6)
        layout.addWidget(self.status)
        layout.addWidget(run)
        layout.addStretch(1)

        self.model.currentIndexChanged.connect(self._on_model)
        self.config.currentIndexChanged.connect(self._on_config)
        self.weights.activated.connect(self._on_weights)
        for signal in (
            self.device.currentIndexChanged,
            self.backend.currentIndexChanged,
            self.fp16.toggled,
            self.tile.valueChanged,
            self.overlap.valueChanged,
            self.maps.toggled,
            self.align.toggled,
            self.all_cores.toggled,
        ):
            signal.connect(self._emit)
        self.device.currentIndexChanged.connect(self._update_fp16)
        self._on_model()

    # Choices -------------------------------------------------------------------------------------------------
    def arch(self) -> str:
        return self.model.currentData() or ""

    def set_arch(self, arch: str) -> None:
        index = self.model.findData(arch)
        if index < 0:
            raise KeyError(f"unknown model {arch!r}")
        self.model.setCurrentIndex(index)

    def set_config(self, name: str) -> None:
        index = self.config.findData(name)
        if index >= 0:
            self.config.setCurrentIndex(index)

    def weight_choice(self) -> str:
        return self.weights.currentData() or UNTRAINED

    def threads(self) -> int | None:
        """CPU threads for the worker: all cores (None), or one fewer to leave the window a core."""
        from weatherstudio.gui.worker import ui_friendly_threads

        return None if self.all_cores.isChecked() else ui_friendly_threads()

    def is_untrained(self) -> bool:
        return not self.is_auto() and self.weight_choice() == UNTRAINED

    def _shipped(self) -> list[Any]:
        """The shipped weights for this network, then the user's fine-tuned ones (read afresh each time, so a
        file a fine-tuning run just wrote is listed at once)."""
        from weatherstudio.weights import available_weights

        return available_weights(self.arch())

    def is_auto(self) -> bool:
        return self.arch() == AUTO

    def _on_model(self) -> None:
        auto = self.is_auto()
        self.config.setEnabled(not auto)
        self.weights.setEnabled(not auto)
        if auto:
            self.summary.setText(
                "The weather classifier picks the network for each photo (rain or snow); "
                "a clear photo is left unchanged."
            )
            self._quiet += 1
            self.config.clear()
            self.weights.clear()
            self.weights.addItem("Chosen per photo", AUTO)
            self._quiet -= 1
            self.status.setText("")
            self._emit()
            return
        entry = self.entries.get(self.arch())
        if entry is None:
            return
        self.summary.setText(entry.summary)
        self._quiet += 1
        self.config.clear()
        for name in entry.configs:
            self.config.addItem(name, name)
        self.config.setCurrentIndex(max(0, self.config.findData(_preferred_config(self.arch(), entry.configs))))
        self._quiet -= 1
        self._fill_weights()
        self._emit()

    def _on_config(self) -> None:
        if self.entries.get(self.arch()) is not None and self.config.count():
            self._fill_weights()
            self._emit()

    def _fill_weights(self, select: str | None = None) -> None:
        if self.is_auto():
            return
        config = self.config.currentData()
        previous = select or self.weights.currentData()
        self.weights.blockSignals(True)
        self.weights.clear()
        shipped = self._shipped()
        for w in shipped:
            origin = "fine-tuned" if "finetune" in w.metadata else "shipped"
            self.weights.addItem(f"{w.path.name}  ({origin}, {w.config_name or '?'})", str(w.path))
        if not any(w.config_name == config for w in shipped):
            self.weights.addItem("Untrained (random init)", UNTRAINED)
        for path in self.user_weights:
            self.weights.addItem(f"{Path(path).name}  (file)", path)
        self.weights.addItem("Browse for a weight file…", BROWSE)
        if any(str(w.path) == previous and w.config_name not in ("", config) for w in shipped):
            previous = None  # another variant's shipped weights: the variant just changed, so do not keep them
        index = self.weights.findData(previous) if previous and previous != BROWSE else -1
        if index < 0:  # the chosen variant's shipped weights, else untrained (never another variant's file)
            matching = [self.weights.findData(str(w.path)) for w in shipped if w.config_name == config]
            index = matching[0] if matching else max(0, self.weights.findData(UNTRAINED))
        self.weights.setCurrentIndex(index)
        self.weights.blockSignals(False)
        self._update_status()

    def _on_weights(self) -> None:
        choice = self.weights.currentData()
        if choice == BROWSE:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a weight file", "", WEIGHT_FILTER)
            if not path:
                self._fill_weights()
                return
            self.add_weight_file(path)
            return
        self._match_config(choice)
        self._update_status()
        self._emit()

    def refresh_weights(self, select: str | Path | None = None) -> None:
        """List the weight files again (a fine-tuning run wrote one) and select ``select`` if given."""
        self._fill_weights(select=str(select) if select else None)
        self._emit()

    def add_weight_file(self, path: str | Path) -> None:
        """Use a weight file of the user's (listed until the panel closes) and select it."""
        path = str(Path(path))
        if any(str(w.path) == path for w in self._shipped()):
            self.refresh_weights(path)
            return
        if path not in self.user_weights:
            self.user_weights.append(path)
        self._fill_weights(select=path)
        self._emit()

    def _match_config(self, choice: str | None) -> None:
        for w in self._shipped():
            if str(w.path) == choice and w.config_name and w.config_name != self.config.currentData():
                self._quiet += 1
                self.set_config(w.config_name)
                self._quiet -= 1

    def _update_fp16(self) -> None:
        dev = self.device.currentData()
        self.fp16.setEnabled(dev != "cpu" and self.has_gpu)

    def _update_status(self) -> None:
        if self.is_auto():
            return
        if self.is_untrained():
            self.status.setText(
                "⚠ No trained weights for this model and variant: it runs with random weights, "
                "so the result only shows the pipeline working."
            )
        else:
            self.status.setText("")

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def _emit(self) -> None:
        if not self._quiet:
            self.changed.emit()

    # Request / settings --------------------------------------------------------------------------------------
    def request_fields(self) -> dict[str, Any]:
        weights = self.weight_choice()
        return {
            "arch": self.arch(),
            "config": self.config.currentData(),
            "weights": None if weights in (UNTRAINED, BROWSE, AUTO) else weights,
            "device": self.device.currentData(),
            "backend": self.backend.currentData() or "auto",
            "fp16": self.fp16.isChecked(),
            "tile": self.tile.value() or None,
            "overlap": None if self.overlap.value() < 0 else self.overlap.value(),
            "maps": self.maps.isChecked(),
            "align_memory": self.align.isChecked(),
            "threads": self.threads(),
        }

    def load(self, s: Settings) -> None:
        self._quiet += 1
        try:
            if self.model.findData(s.get("model")) >= 0:
                self.set_arch(s.get("model"))
            self._on_model()
            if s.get("config"):
                self.set_config(s.get("config"))
            weights = s.get("weights")
            if weights and Path(weights).is_file():
                if self.weights.findData(weights) < 0:
                    self.user_weights.append(weights)
                self._fill_weights(select=weights)
            else:
                self._fill_weights()
            index = self.device.findData(s.get("device"))
            self.device.setCurrentIndex(max(0, index))
            self.backend.setCurrentIndex(max(0, self.backend.findData(s.get("backend"))))
            self.fp16.setChecked(s.get("fp16"))
            self.tile.setValue(s.get("tile"))
            self.overlap.setValue(s.get("overlap"))
            self.maps.setChecked(s.get("compute_maps"))
            self.align.setChecked(s.get("align_memory"))
            self.all_cores.setChecked(s.get("all_cores"))
        finally:
            self._quiet -= 1
        self._update_fp16()

    def save(self, s: Settings) -> None:
        f = self.request_fields()
        s.set("model", f["arch"])
        s.set("config", f["config"] or "")
        s.set("weights", f["weights"] or "")
        s.set("device", f["device"])
        s.set("backend", f["backend"])
        s.set("fp16", f["fp16"])
        s.set("tile", self.tile.value())
        s.set("overlap", self.overlap.value())
        s.set("compute_maps", f["maps"])
        s.set("align_memory", f["align_memory"])
        s.set("all_cores", self.all_cores.isChecked())


def _preferred_config(arch: str, configs: dict) -> str:
    """The variant to offer first: one that ships trained weights (lite before paper), else the default."""
    from weatherstudio.models.registry import default_config_name
    from weatherstudio.weights import shipped_weights

    trained = {w.config_name for w in shipped_weights(arch)}
    default = default_config_name(arch)
    for name in [default, *configs]:
        if name in trained:
            return name
    return default
