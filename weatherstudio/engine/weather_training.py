"""Training data and scores for the weather classifier (``weatherstudio train weather_lite``).

Each sample is one of the three classes with equal probability:

* **rain** — half real rainy crops (RainTrainL, minus its held-out pairs), half light or heavy rain
  synthesized (J4R-Net eq. 2) on crops of the train-split clean photos;
* **snow** — small, medium or large snow synthesized (DesnowNet eq. 1) on those crops;
* **clear** — the clean crops themselves, or the clean side of the real pairs.

Every sample then gets the same random camera and delivery changes, so that none of them tells a class
apart: a zoom (0.6–1.6×, which also varies the weather's size), exposure, gamma, saturation, sensor noise
and JPEG compression (quality 45–95); with ``[data] wide_weather`` also a slight defocus, and the weather
is drawn half the time from far wider ranges than the restoration presets (:data:`WIDE_RAIN`,
:data:`WIDE_SNOW`: dense fine streaks under a veil, few long ones, large soft flakes, snow haze), since real
weather is more varied than any preset and the classifier must not learn the presets. With ``[data]
real_weather`` the rain and snow also come from the ``dense`` and ``near`` presets (fine rain under a veil;
near-camera flakes and snow haze) and the wide snow has near-camera flakes too. The
validation and test sets are whole photos of the val and test splits, each photo once clear, once rainy and
once snowy (presets in turn), plus real pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from weatherstudio.engine.datasets import (
    TEST_SEED,
    VAL_SEED,
    PhotoPool,
    flip,
    random_crop,
    synthesize_crop,
    to_tensor,
)
from weatherstudio.engine.objectives import Objective, held_out_pairs, real_pairs
from weatherstudio.models.weather import CLASSES
from weatherstudio.synth.rain import RainParams
from weatherstudio.synth.snow import SnowParams

LABEL = {c: i for i, c in enumerate(CLASSES)}
#: The presets of the fixed validation and test photos (those of every earlier run, so that runs compare).
RAIN_PRESETS = ["light", "heavy"]
SNOW_PRESETS = ["small", "medium", "large"]
#: The presets training draws from with ``[data] real_weather``: also dense fine rain under a veil and near-camera
#: flakes with snow haze (what real photos show and the benchmark presets leave out).
REAL_RAIN_PRESETS = [*RAIN_PRESETS, "dense"]
REAL_SNOW_PRESETS = [*SNOW_PRESETS, "near"]

Sample = tuple[str, np.ndarray, int]  # name, H×W×3 float32 RGB, label index

#: Rain from much wider ranges than the presets: 1–5 layers, faint to dense, long and thin to longer and wider
#: (never short and wide: that is a motion-blurred flake),
#: sometimes opaque near streaks, a veil more often than not.
WIDE_RAIN = RainParams(
    n_layers=(1, 5),
    intensity=(0.006, 0.2),
    angle=(-30.0, 30.0),
    angle_spread=10.0,
    length=(25.0, 140.0),
    width=(0.6, 2.6),
    brightness=(0.2, 1.0),
    blur=(0.1, 1.2),
    occlusion=(0.0, 1.0),
    veil=(0.0, 0.4),
    veil_probability=0.6,
)
#: Snow from 1 % to 25 % cover, far specks to large soft near-camera flakes, with haze half the time.
WIDE_SNOW = SnowParams(
    coverage=(0.01, 0.25),
    n_layers=(3, 7),
    radius_near=(1.2, 14.0),
    size_bias=(-0.5, 1.4),
    defocus=(0.2, 1.5),
    motion=(0.0, 3.0),
    haze=(0.0, 0.12),
    haze_probability=0.5,
)
#: The wide snow with near-camera flakes in two scenes in five (``[data] real_weather``).
WIDE_NEAR_SNOW = replace(WIDE_SNOW, near_probability=0.4)


def degrade(rng: np.random.Generator, rgb: np.ndarray, defocus: bool = False) -> np.ndarray:
    """Random exposure, gamma, saturation, noise and JPEG (and a slight defocus), the same for every class."""
    x = np.clip(rgb.astype(np.float32), 0.0, 1.0)
    if defocus and rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.3, 1.1)))
    x = x ** np.float32(np.exp(rng.uniform(-0.25, 0.25)))
    x = x * np.float32(rng.uniform(0.75, 1.2))
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * np.float32(rng.uniform(0.6, 1.3))
    if rng.random() < 0.5:
        x = x + rng.normal(0.0, rng.uniform(0.002, 0.02), x.shape).astype(np.float32)
    x = np.clip(x, 0.0, 1.0)
    if rng.random() < 0.75:
        bgr = cv2.cvtColor((x * 255.0 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(45, 96))])
        if ok:
            x = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    return x


def _zoomed(rng: np.random.Generator, crop: int) -> int:
    """The side to cut before resizing to ``crop``: > crop zooms out (smaller weather), < crop zooms in."""
    return max(32, round(crop * float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))))


def _resize(img: np.ndarray, side: int) -> np.ndarray:
    interp = cv2.INTER_AREA if img.shape[0] > side else cv2.INTER_LINEAR
    return cv2.resize(img, (side, side), interpolation=interp)


class WeatherObjective(Objective):
    """Cross-entropy (label smoothing ``[loss] smoothing``, default 0.05) on rain / snow / clear crops."""

    def __init__(self, model: Any, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        data = cfg["data"]
        self.pool = self._photos("train")
        self.pairs = real_pairs(data, data_root)
        self.smoothing = float(cfg.get("loss", {}).get("smoothing", 0.05))
        self.wide = bool(data.get("wide_weather", False))
        self.real_weather = bool(data.get("real_weather", False))
        self.rain_presets = REAL_RAIN_PRESETS if self.real_weather else RAIN_PRESETS
        self.snow_presets = REAL_SNOW_PRESETS if self.real_weather else SNOW_PRESETS
        self.wide_snow = WIDE_NEAR_SNOW if self.real_weather else WIDE_SNOW
        self.description = f"cross-entropy over {'/'.join(CLASSES)}, label smoothing {self.smoothing}"
        self._val: list[Sample] | None = None

    def data_description(self) -> str:
        data = self.cfg["data"]
        real = ", ".join(f"{len(p)} real pairs of {d}" for p, d in zip(self.pairs, data.get("real_pairs", [])))
        return (
            f"rain / snow / clear crops ({data['crop']}², zoom 0.6–1.6×) of {len(self.pool)} train-split photos of "
            f"{data.get('photos', 'clean')}/ with synthetic {'/'.join(self.rain_presets)} rain and "
            f"{'/'.join(self.snow_presets)} snow{' (half from the wide ranges)' if self.wide else ''}, and "
            f"{real or 'no real pairs'}; exposure, gamma, saturation, noise, JPEG"
            f"{' and defocus' if self.wide else ''} augmentation on every class"
        )

    def _sample(self, rng: np.random.Generator, crop: int) -> tuple[np.ndarray, int]:
        label = int(rng.integers(len(CLASSES)))
        side = _zoomed(rng, crop)
        weather = CLASSES[label]
        real_share = {"rain": 0.5, "clear": 0.2}.get(weather, 0.0)
        use_real = bool(self.pairs) and weather in ("rain", "clear") and rng.random() < real_share
        if use_real:
            folder = self.pairs[int(rng.integers(len(self.pairs)))]
            i = int(rng.integers(len(folder)))
            src = folder.inputs[i] if weather == "rain" else folder.targets[i]
            (img,) = flip(rng, random_crop(rng, src, min(side, *src.shape[:2])))
            img = img.astype(np.float32) / 255.0
        else:
            photo = self.pool.photos[int(rng.integers(len(self.pool)))]
            side = min(side, *photo.shape[:2])
            if weather == "clear":
                (img,) = flip(rng, random_crop(rng, photo, side))
                img = img.astype(np.float32) / 255.0
            else:
                presets: list = list(self.rain_presets if weather == "rain" else self.snow_presets)
                if self.wide and rng.random() < 0.5:
                    presets = [WIDE_RAIN if weather == "rain" else self.wide_snow]
                img = synthesize_crop(rng, photo, weather, presets[int(rng.integers(len(presets)))], side).x
        return degrade(rng, _resize(img, crop), defocus=self.wide), label

    def batch(self, rng: np.random.Generator, size: int, crop: int, step: int = 0) -> dict[str, torch.Tensor]:
        images, labels = zip(*(self._sample(rng, crop) for _ in range(size)))
        return {"input": to_tensor(list(images)), "label": torch.tensor(labels, dtype=torch.long)}

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = model(batch["input"]).float()
        ce = F.cross_entropy(logits, batch["label"], label_smoothing=self.smoothing)
        acc = (logits.argmax(1) == batch["label"]).float().mean()
        return {"total": ce, "accuracy": acc.detach()}

    def validate(self, model: Any, device: torch.device) -> dict[str, Any]:
        if self._val is None:
            self._val = list(weather_set(self.data_root, "val", self.cfg["data"], VAL_SEED))
        return accuracy(model, self._val, device, prefix="val_")

    def evaluate(self, model: Any, spec: dict[str, Any], device: torch.device) -> dict[str, Any]:
        """A config's ``[eval.NAME]`` set: ``{split = "test"}`` (+ the real Rain100L pairs when ``pairs``)."""
        split = str(spec.get("split", "test"))
        samples = list(weather_set(self.data_root, split, self.cfg["data"], int(spec.get("seed", TEST_SEED))))
        if spec.get("rainy"):
            samples += list(labelled_pairs(self.data_root / spec["rainy"], self.data_root / spec["clean"]))
        out = accuracy(model, samples, device)
        out["data"] = f"{len(samples)} whole images of the {split!r} split" + (
            f" and {spec['rainy']} / {spec['clean']}" if spec.get("rainy") else ""
        )
        return out


def weather_set(data_root: Path, split: str, data: dict[str, Any], seed: int) -> Iterator[Sample]:
    """Fixed whole-photo samples of a split: photo i clear, rainy (light/heavy in turn) and snowy (presets in
    turn), each with its own generator (seed, i); for ``val``, also the held-out real pairs."""
    from weatherstudio.synth import synthesize_rain, synthesize_snow

    pool = PhotoPool.load(data_root / data.get("photos", "clean"), split, int(data.get("max_side", 640)))
    for i, (name, photo) in enumerate(zip(pool.names, pool.photos)):
        rng = np.random.default_rng([seed, i])
        clean = photo.astype(np.float32) / 255.0
        yield f"{name}:clear", clean, LABEL["clear"]
        rain = RAIN_PRESETS[i % len(RAIN_PRESETS)]
        yield f"{name}:rain-{rain}", synthesize_rain(clean, rain, rng).x, LABEL["rain"]
        snow = SNOW_PRESETS[i % len(SNOW_PRESETS)]
        yield f"{name}:snow-{snow}", synthesize_snow(clean, snow, rng).x, LABEL["snow"]
    if split == "val":
        for name, rainy, clean in held_out_pairs(data, data_root):
            yield f"real/{name}:rain", rainy, LABEL["rain"]
            yield f"real/{name}:clear", clean, LABEL["clear"]


def labelled_pairs(rainy_dir: Path, clean_dir: Path) -> Iterator[Sample]:
    """Real rainy/clean pairs as rain and clear samples."""
    from weatherstudio.engine.bench import paired_files, read_pairs

    for name, rainy, clean in read_pairs(paired_files(rainy_dir, clean_dir)):
        yield f"{rainy_dir.parent.name}/{name}:rain", rainy, LABEL["rain"]
        yield f"{rainy_dir.parent.name}/{name}:clear", clean, LABEL["clear"]


def accuracy(model: Any, samples: list[Sample], device: torch.device, prefix: str = "") -> dict[str, Any]:
    """Overall and per-class accuracy (recall) of ``model`` on ``samples``, and the confusions."""
    from weatherstudio.engine.weather import probabilities

    model.eval()
    confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    for _, rgb, label in samples:
        confusion[label, int(np.argmax(probabilities(model, rgb, device)))] += 1
    total = max(1, int(confusion.sum()))
    out: dict[str, Any] = {f"{prefix}accuracy": float(np.trace(confusion) / total)}
    for i, c in enumerate(CLASSES):
        n = int(confusion[i].sum())
        if n:
            out[f"{prefix}{c}_accuracy"] = float(confusion[i, i] / n)
    out[f"{prefix}n"] = total
    out[f"{prefix}confusion"] = {c: dict(zip(CLASSES, map(int, confusion[i]))) for i, c in enumerate(CLASSES)}
    return out
