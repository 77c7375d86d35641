"""Which weather is in a photo, and which network restores it: what ``--model auto`` decides.

:func:`classify` runs the shipped :class:`~weatherstudio.models.weather.WeatherClassifier` on the whole image
(area-downscaled to its input side); :func:`network_for` maps the weather to the best shipped restoration
network. A clear photo maps to no network: it is passed through unchanged. A video is judged on
:data:`VIDEO_SAMPLES` frames spread over it (:func:`classify_frames`), not its first alone (a fade from black,
a title card).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.models.weather import CLASSES, INPUT_SIDE, MIN_SIDE, WINDOW, WeatherClassifier, build_classifier

AUTO = "auto"
#: Restoration networks by weather, best first (measured on the held-out sets: README "Results"); the first
#: with shipped weights is used.
PREFERENCE: dict[str, tuple[str, ...]] = {"rain": ("lpnet", "gtrain", "j4rnet"), "snow": ("resdesnow", "desnownet")}
#: Video: J4R-Net first for rain. With its memory aligned it beats LPNet run frame by frame on both synthetic
#: rain clip sets (light 32.35 against 31.95 dB, heavy 23.83 against 18.60) with less flicker (5.03 against 5.18,
#: 11.56 against 15.06), and shows no ghosts on the real panning clip (README); it costs ~6× LPNet's time.
VIDEO_PREFERENCE: dict[str, tuple[str, ...]] = {**PREFERENCE, "rain": ("j4rnet", "lpnet", "gtrain")}
#: How many frames, spread evenly over a video, decide its weather.
VIDEO_SAMPLES = 5


@dataclass(frozen=True)
class WeatherGuess:
    """The classifier's answer: the most likely weather, its probability and every class's."""

    weather: str
    confidence: float
    probabilities: dict[str, float]

    def describe(self) -> str:
        return f"{self.weather} ({self.confidence:.0%})"


def _starts(length: int, window: int) -> list[int]:
    """Window origins that cover ``length`` with as little overlap as possible."""
    n = max(1, -(-length // window))
    if n == 1:
        return [0]
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


def prepare(rgb: np.ndarray) -> torch.Tensor:
    """An H×W×3 float image as the classifier's ``N×3×s×s`` windows: long side area-downscaled to INPUT_SIDE,
    then cut into windows of :data:`WINDOW` pixels (or the short side, if smaller) that cover it."""
    h, w = rgb.shape[:2]
    f = min(1.0, INPUT_SIDE / max(h, w))
    if min(h, w) * f < MIN_SIDE:
        f = MIN_SIDE / min(h, w)
    if f != 1.0:
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (max(MIN_SIDE, round(w * f)), max(MIN_SIDE, round(h * f))), interpolation=interp)
    img = np.asarray(rgb, np.float32)[..., :3]
    h, w = img.shape[:2]
    s = min(WINDOW, h, w)
    windows = [img[y : y + s, x : x + s] for y in _starts(h, s) for x in _starts(w, s)]
    return torch.from_numpy(np.ascontiguousarray(np.stack(windows).transpose(0, 3, 1, 2)))


def probabilities(model: WeatherClassifier, rgb: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Probabilities over :data:`CLASSES` for one image: the windows' mean log-probabilities, renormalised."""
    model.eval()
    with torch.inference_mode():
        logits = model(prepare(rgb).to(device)).float()
    return torch.softmax(torch.log_softmax(logits, dim=1).mean(dim=0), dim=0).cpu().numpy()


def classify(model: WeatherClassifier, rgb: np.ndarray, device: torch.device | str = "cpu") -> WeatherGuess:
    """The weather of one H×W×3 float32 RGB image in [0, 1]."""
    return _guess(probabilities(model, rgb, device))


def _guess(p: np.ndarray) -> WeatherGuess:
    k = int(np.argmax(p))
    return WeatherGuess(CLASSES[k], float(p[k]), {c: float(v) for c, v in zip(CLASSES, p)})


def sample_frames(count: int, samples: int = VIDEO_SAMPLES) -> list[int]:
    """The frames of a ``count``-frame video that decide its weather: the centres of ``samples`` equal spans."""
    n = max(1, min(samples, count))
    return sorted({min(count - 1, int((k + 0.5) * count / n)) for k in range(n)})


def classify_frames(
    model: WeatherClassifier, frames: Iterable[np.ndarray], device: torch.device | str = "cpu"
) -> WeatherGuess:
    """The weather of a video from some of its frames (H×W×3 float32 RGB): the frames' mean log-probabilities,
    renormalised, as :func:`probabilities` pools one image's windows."""
    logs = [np.log(np.maximum(probabilities(model, rgb, device), 1e-12)) for rgb in frames]
    if not logs:
        raise WeatherStudioError("no frame to classify")
    p = np.exp(np.mean(logs, axis=0))
    return _guess(p / p.sum())


def classifier_weights() -> Path | None:
    """The shipped classifier's weight file, if any."""
    from weatherstudio.weights import shipped_weights

    found = shipped_weights(WeatherClassifier.arch)
    return found[0].path if found else None


def load_classifier(path: str | os.PathLike[str] | None = None) -> tuple[WeatherClassifier, dict]:
    """The classifier with ``path``'s weights (default: the shipped file); raises when there is none."""
    from weatherstudio.models.weightfile import WeightsError, apply_state_dict, read_metadata, read_tensors

    path = Path(path) if path else classifier_weights()
    if path is None:
        raise WeightsError(
            "no weather classifier ships with this build, so 'auto' cannot choose: choose a network "
            "(--model NAME, or in the Model panel), or train one with 'weatherstudio train weather_lite'"
        )
    meta = read_metadata(path)
    if meta.get("arch") not in (None, WeatherClassifier.arch):
        raise WeightsError(f"{path}: holds {meta['arch']!r} weights, not the weather classifier's")
    model = build_classifier(meta.get("config") or "lite")
    apply_state_dict(model, read_tensors(path), str(path))
    return model.eval(), {**meta, "path": str(path)}


def network_for(weather: str, video: bool = False) -> str | None:
    """The best shipped restoration network for ``weather`` (None for clear)."""
    from weatherstudio.weights import default_weights

    if weather == "clear":
        return None
    table = VIDEO_PREFERENCE if video else PREFERENCE
    if weather not in table:
        raise WeatherStudioError(f"unknown weather {weather!r}; one of {', '.join(CLASSES)}")
    for arch in table[weather]:
        if default_weights(arch) is not None:
            return arch
    return table[weather][0]
