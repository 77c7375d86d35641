"""Fine-tuning a shipped (or any trained) network on the user's own images: ``weatherstudio finetune``.

The same :class:`~weatherstudio.engine.training.Trainer` and the network's own paper loss as a full training
run (its ``<arch>_lite`` config's ``[loss]``), started from a trained file's weights with a small learning
rate. The data is the user's:

* **photos** — clean photos with weather synthesized on the fly (``snow``, ``rain`` or ``rain-video`` for
  J4R-Net, at one of the synthesizer's presets), exactly as the project's own training synthesizes it;
* **pairs** — a degraded folder and a clean folder with the same file names.

A fixed share of the user's images never trains (:func:`~weatherstudio.engine.datasets.user_holdout`:
20 %, at least one); the run reports Y-channel PSNR/SSIM on it before and after, and, where the project's data
is present, on a few of the project's held-out test photos, so the user sees what was gained on their data
and what was forgotten elsewhere. The best weights by validation PSNR are kept (a Stop or an over-long run
never leaves worse weights than the best seen, the starting weights included). GT-RAIN's batch norm stays
frozen (its running statistics the starting file's; see :meth:`~weatherstudio.engine.training.Trainer.train_mode`).

Output: a ``.safetensors`` in the user's data folder by default (:func:`~weatherstudio.weights.user_weights_dir`),
never over an existing file and never into the package's shipped-weights folder, with metadata saying where it
came from (file and digest), on what data, how long, on what hardware and how it scored.
"""

from __future__ import annotations

import copy
import shlex
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.engine.training import (
    TrainCallbacks,
    Trainer,
    cpu_has_bf16,
    default_data_root,
    hardware_description,
    load_config,
)
from weatherstudio.models.weightfile import file_sha256

#: The weather each network can be fine-tuned on from clean photos, and the presets offered.
PHOTO_WEATHER: dict[str, tuple[str, ...]] = {
    "lpnet": ("rain",),
    "gtrain": ("rain",),
    "resdesnow": ("snow",),
    "desnownet": ("snow",),
    "j4rnet": ("rain-video",),
}
PRESETS: dict[str, tuple[str, ...]] = {
    "snow": ("small", "medium", "large", "near"),
    "rain": ("light", "heavy", "dense"),
    "rain-video": ("light", "heavy", "dense"),
}
#: Fine-tuning's learning rate, as a share of the network's own training lr (its config's ``[optim] lr``).
LR_SHARE = 0.2


@dataclass(frozen=True)
class FinetuneData:
    """What to fine-tune on: ``photos`` (+ ``weather`` and ``preset``) or ``degraded`` and ``clean`` folders."""

    photos: Path | None = None
    weather: str | None = None
    preset: str | None = None
    degraded: Path | None = None
    clean: Path | None = None
    clips: Path | None = None  # J4R-Net: <clip>/input and <clip>/target frame folders

    @property
    def kind(self) -> str:
        if self.clips is not None:
            return "clips"
        return "pairs" if self.degraded is not None else "photos"

    def describe(self) -> str:
        if self.kind == "clips":
            return f"clips in {self.clips}"
        if self.kind == "pairs":
            return f"pairs {self.degraded} / {self.clean}"
        return f"photos in {self.photos} with synthetic {self.preset} {self.weather}"


@dataclass
class FinetuneSpec:
    """One fine-tuning run; ``None`` fields take the network's defaults (see :func:`prepare`)."""

    arch: str
    data: FinetuneData
    weights: Path | None = None  # the starting file (default: the shipped one for ``arch``)
    output: Path | None = None  # default: a new file in the user's weights folder
    steps: int = 200
    lr: float | None = None
    crop: int | None = None
    batch: int | None = None
    val_every: int | None = None  # default: 5 validations in the run
    seed: int = 0
    max_side: int = 512  # the user's photos are held (and validated) at this long side
    autocast: str = "auto"  # "auto": bf16 on a CPU that computes it natively (and CUDA); "off": fp32
    project_test: bool = True  # also score a few of the project's held-out test photos (when its data is here)
    device: str = "auto"


@dataclass
class FinetunePreview:
    """One validation image at a validation: the degraded input, the network's output and the clean truth."""

    step: int
    degraded: np.ndarray
    restored: np.ndarray
    clean: np.ndarray
    psnr_y: float


@dataclass
class FinetuneCallbacks:
    """What a watcher (the studio's panel, the CLI's bar) sees; ``should_stop`` pauses or stops the run."""

    on_step: Callable[[int, dict[str, float], float], None] | None = None
    on_validation: Callable[[int, dict[str, Any]], None] | None = None
    on_preview: Callable[[FinetunePreview], None] | None = None
    should_stop: Callable[[], bool] | None = None


@dataclass
class FinetuneResult:
    output: Path
    steps: int
    seconds: float
    val_before: dict[str, Any]
    val_after: dict[str, Any]
    best_step: int
    stopped: bool
    test_before: dict[str, Any] = field(default_factory=dict)
    test_after: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    train_count: int = 0
    val_count: int = 0
    skipped: list[str] = field(default_factory=list)
    precision: str = "fp32"
    config_name: str = "lite"  # the variant of the output's network (the starting file's)

    def summary(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "output": str(self.output),
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "val_before": round(float(self.val_before.get("val_psnr_y", float("nan"))), 3),
            "val_after": round(float(self.val_after.get("val_psnr_y", float("nan"))), 3),
            "val_ssim_before": round(float(self.val_before.get("val_ssim_y", float("nan"))), 4),
            "val_ssim_after": round(float(self.val_after.get("val_ssim_y", float("nan"))), 4),
            "val_input": round(float(self.val_before.get("val_input_psnr_y", float("nan"))), 3),
            "test_before": _psnr(self.test_before),
            "test_after": _psnr(self.test_after),
            "best_step": self.best_step,
            "stopped": self.stopped,
            "train_images": self.train_count,
            "val_images": self.val_count,
            "skipped": self.skipped,
            "precision": self.precision,
            "data": self.data,
        }


def _psnr(scores: dict[str, Any]) -> float | None:
    return round(float(scores["psnr_y"]), 3) if "psnr_y" in scores else None


def starting_weights(arch: str, weights: Path | None) -> tuple[Path, dict[str, Any]]:
    """The file fine-tuning starts from and its metadata (the shipped file for ``arch`` by default)."""
    from weatherstudio.models.weightfile import read_metadata
    from weatherstudio.weights import default_weights

    path = weights or default_weights(arch)
    if path is None:
        raise WeatherStudioError(f"no trained {arch} weights to start from: name a file with --weights")
    path = Path(path)
    if not path.is_file():
        raise WeatherStudioError(f"--weights {path}: no such file")
    meta = read_metadata(path)
    if meta.get("arch") != arch:
        raise WeatherStudioError(f"{path} holds {meta.get('arch', 'unknown')} weights, not {arch}")
    return path, meta


def default_output(arch: str, config: str, data: FinetuneData) -> Path:
    """A new file in the user's weights folder, named after the network, the data and the time."""
    from weatherstudio.weights import user_weights_dir

    folder = {"photos": data.photos, "pairs": data.degraded, "clips": data.clips}[data.kind]
    tag = "".join(c if c.isalnum() or c in "-_" else "-" for c in (folder.name if folder else "data"))[:40]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = user_weights_dir() / f"{arch}_{config}_ft-{tag}_{stamp}"
    path, n = base.with_suffix(".safetensors"), 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}.safetensors")
    return path


def check_output(path: Path) -> Path:
    """Refuse an output that exists, is not a ``.safetensors`` or lies in the shipped-weights folder."""
    from weatherstudio.weights import WEIGHTS_DIR

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise WeatherStudioError(f"-o {path}: the output is a weight file: name it .safetensors")
    if path.exists():
        raise WeatherStudioError(f"-o {path}: the file exists; fine-tuning never overwrites (choose another name)")
    if path.resolve().parent == WEIGHTS_DIR.resolve():
        raise WeatherStudioError(
            f"-o {path}: that is the shipped weights' folder; fine-tuned files go to the user's data folder"
        )
    return path


def build_config(spec: FinetuneSpec, config_name: str) -> dict[str, Any]:
    """The Trainer config of a fine-tuning run: the network's own config (loss, model) with the user's data."""
    arch, data = spec.arch, spec.data
    try:
        base = load_config(f"{arch}_{config_name}")
    except WeatherStudioError:
        base = load_config(f"{arch}_lite")
    base_data = base.get("data", {})
    cfg: dict[str, Any] = {
        "_name": f"finetune_{arch}",
        "_path": base["_path"],
        "seed": spec.seed,
        "checkpoint_every": 10**9,  # a fine-tuning run keeps its best weights in memory, not on disk
        "channels_last": bool(base.get("channels_last", False)),
        "model": {"arch": arch, "config": config_name},
        "loss": dict(base.get("loss", {})),
    }
    if spec.autocast == "auto" and cpu_has_bf16():
        cfg["autocast"] = "bf16"
    # Batch norm frozen where the network's statistics matter (its config's ``[finetune] frozen_bn``: GT-RAIN). A
    # user's batches are few and small and show one preset on a handful of photos, not the mix the network learnt
    # on: with batch statistics GT-RAIN's validation fell in the first steps and on night photos never came back
    # (figures: Trainer.train_mode). DesnowNet's do not matter (README): five night photos, large snow, 60 steps,
    # best 27.04 dB frozen against 27.36 with batch statistics (start 25.41), so it keeps training them (its
    # config's ``precise_bn`` serves the weights' moving average, not its statistics).
    # No ``precise_bn`` either: recomputed on one preset of the user's photos, GT-RAIN's statistics lowered the
    # shipped file's validation before a single step (day photos, light rain 30.44 → 25.51 dB).
    cfg["frozen_bn"] = bool(base.get("finetune", {}).get("frozen_bn", False))
    d: dict[str, Any] = {
        "user": True,
        "max_side": spec.max_side,
        "crop": int(spec.crop or base_data.get("crop", 96)),
        "batch": int(spec.batch or min(int(base_data.get("batch", 4)), 4)),
    }
    if data.kind == "photos":
        weather = data.weather or PHOTO_WEATHER[arch][0]
        if weather not in PHOTO_WEATHER.get(arch, ()):
            allowed = " or ".join(PHOTO_WEATHER.get(arch, ()))
            raise WeatherStudioError(f"{arch} is fine-tuned on {allowed} (not {weather})")
        preset = data.preset or PRESETS[weather][0]
        if preset not in PRESETS[weather]:
            raise WeatherStudioError(f"unknown {weather} preset {preset!r}: {', '.join(PRESETS[weather])}")
        d["photos"] = str(Path(data.photos).resolve())
        if arch in ("lpnet",):
            d.update(real_pairs=[], synth_fraction=1.0, synth_presets=[preset])
        elif arch == "gtrain":
            d.update(
                real_pairs=[], synth_fraction=1.0, presets=[preset], rotate_sigma=base_data.get("rotate_sigma", 13)
            )
        elif arch == "j4rnet":
            d.update(
                presets=[preset],
                region=base_data.get("region", 1.5),
                clip_frames_schedule=[{"from_step": 0, "frames": 3}],
            )
        else:
            d["presets"] = [preset]
    elif data.kind == "clips":
        if arch != "j4rnet":
            raise WeatherStudioError(f"--clips trains the video network (j4rnet); {arch} takes --photos or --pairs")
        d.update(real_clips=str(Path(data.clips).resolve()), clip_frames_schedule=[{"from_step": 0, "frames": 3}])
    else:
        if arch == "j4rnet":
            raise WeatherStudioError("J4R-Net is fine-tuned on clips (--clips) or on clean photos, not on still pairs")
        d["real_pairs"] = [{"degraded": str(Path(data.degraded).resolve()), "clean": str(Path(data.clean).resolve())}]
        if arch == "gtrain":
            d.update(synth_fraction=0.0, rotate_sigma=base_data.get("rotate_sigma", 13))
    if arch == "j4rnet" and "align_memory_from" in base_data:
        d["align_memory_from"] = 0  # the network learnt with its memory aligned: fine-tune it the same way
    cfg["data"] = d
    opt = base.get("optim", {})
    lr = float(spec.lr if spec.lr is not None else LR_SHARE * float(opt.get("lr", 1e-4)))
    steps = max(1, int(spec.steps))
    cfg["optim"] = {
        "lr": lr,
        "final_lr": lr / 20,
        "warmup": min(20, steps // 10),
        "steps": steps,
        **{k: opt[k] for k in ("weight_decay", "betas", "grad_clip", "offset_lr_scale") if k in opt},
    }
    every = spec.val_every or max(1, steps // 5)
    cfg["val"] = {"every": every, "size": 0, "frames": 3}
    if arch == "j4rnet":  # validation clips of 3 frames, 128², cycling over the held-out photos
        cfg["val"].update(size=128, n=4)
    return cfg


def _project_test_spec(arch: str, data: FinetuneData) -> dict[str, Any]:
    """A few of the project's held-out test photos with the weather the user fine-tunes on (or the network's)."""
    weather = data.weather or PHOTO_WEATHER[arch][0]
    preset = data.preset or ("medium" if weather == "snow" else "light")
    if weather == "rain-video":
        return {"synthetic": "rain-video", "preset": preset, "frames": 3, "size": 128, "limit": 4}
    return {"synthetic": weather, "preset": preset, "split": "test", "size": 256, "limit": 8}


class Finetuner:
    """A prepared run: data checked, held-out split made, output chosen; :meth:`run` trains."""

    def __init__(self, spec: FinetuneSpec, command: str | None = None) -> None:
        if spec.arch not in PHOTO_WEATHER:
            raise WeatherStudioError(f"cannot fine-tune {spec.arch!r}: one of {', '.join(PHOTO_WEATHER)}")
        if spec.data.kind == "photos":
            if spec.data.photos is None:
                raise WeatherStudioError("name the photos to fine-tune on (--photos DIR) or a pair of folders")
            if not Path(spec.data.photos).is_dir():
                raise WeatherStudioError(f"--photos {spec.data.photos}: no such folder")
        elif spec.data.kind == "clips":
            if not Path(spec.data.clips).is_dir():
                raise WeatherStudioError(f"--clips {spec.data.clips}: no such folder")
        elif spec.data.clean is None:
            raise WeatherStudioError("--pairs needs two folders: the degraded one and the clean one")
        self.spec = spec
        self.start, self.start_meta = starting_weights(spec.arch, spec.weights)
        self.config_name = str(self.start_meta.get("config_name", "lite"))
        self.output = (
            check_output(spec.output) if spec.output else default_output(spec.arch, self.config_name, spec.data)
        )
        self.cfg = build_config(spec, self.config_name)
        # the run's logs and checkpoint: made by the first step, removed when the run ends (never the user's)
        self.run_dir = Path(tempfile.gettempdir()) / f"weatherstudio-finetune-{uuid.uuid4().hex[:12]}"
        data_root = Path(spec.data.photos or spec.data.degraded or spec.data.clips).resolve()
        self.command = command or "weatherstudio finetune " + " ".join(shlex.quote(a) for a in _argv_of(spec))
        self.trainer = Trainer(
            self.cfg, self.run_dir, data_root, spec.device, command=self.command, start_from=self.start
        )
        if spec.arch == "gtrain":  # every image of a GT-RAIN batch is another scene (InfoNCE's negatives)
            n = self.train_count
            if n < int(self.cfg["data"]["batch"]):
                self.cfg["data"]["batch"] = max(2, n)
        self.val_pairs = self.trainer.objective.validation_pairs()
        if spec.arch != "j4rnet":  # (J4R-Net validates on clips, made by its objective)
            self.trainer.objective._val_cache = self.val_pairs
        self.skipped = self._skipped()

    # -- what the data holds -------------------------------------------------------------------------------
    @property
    def train_count(self) -> int:
        obj = self.trainer.objective
        pairs = getattr(obj, "pairs", None) or []
        pool = getattr(obj, "pool", None)
        clips = getattr(obj, "clips", None)
        return sum(len(p) for p in pairs) + (len(pool) if pool is not None else 0) + (len(clips) if clips else 0)

    @property
    def val_count(self) -> int:
        if self.spec.data.kind == "photos":
            return len(self.trainer.objective._photos("val"))
        if self.spec.data.kind == "clips":
            return len(self.trainer.objective.validation_clips())
        return len(self.val_pairs)

    def _skipped(self) -> list[str]:
        obj = self.trainer.objective
        out = []
        for p in getattr(obj, "pairs", None) or []:
            out += p.skipped
        pool = getattr(obj, "pool", None)
        if pool is not None:
            out += pool.skipped
        clips = getattr(obj, "clips", None)
        if clips is not None:
            out += clips.skipped
        return out

    def describe(self) -> str:
        return (
            f"{self.spec.arch} ({self.config_name}) from {self.start.name}: {self.train_count} images train, "
            f"{self.val_count} held out to validate" + (f", {len(self.skipped)} skipped" if self.skipped else "")
        )

    def preview_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """The first validation image, degraded and clean (float32 RGB): the pair shown before starting."""
        if not self.val_pairs:
            raise WeatherStudioError("no validation image")
        _, degraded, clean = self.val_pairs[0][:3]
        return degraded, clean

    # -- the run -------------------------------------------------------------------------------------------
    def _preview(self, step: int) -> FinetunePreview | None:
        from weatherstudio.core.metrics import psnr_y
        from weatherstudio.engine.objectives import _restore_opts
        from weatherstudio.engine.restore import restore

        if not self.val_pairs:
            return None
        _, degraded, clean = self.val_pairs[0][:3]
        model = self.trainer.model
        model.eval()
        try:
            out = restore(degraded, model, _restore_opts(self.trainer.device)).image
        finally:
            self.trainer._back_to_training()
        return FinetunePreview(step, degraded, out, clean, float(psnr_y(out, clean)))

    def _project_scores(self) -> dict[str, Any]:
        from weatherstudio.engine.objectives import evaluate_spec

        root = default_data_root()
        if not self.spec.project_test or root is None or not (root / "clean").is_dir():
            return {}
        model = self.trainer.model
        model.eval()
        try:
            return evaluate_spec(model, _project_test_spec(self.spec.arch, self.spec.data), root, self.trainer.device)
        finally:
            self.trainer._back_to_training()

    def run(self, callbacks: FinetuneCallbacks | None = None) -> FinetuneResult:
        """Train, keep the best weights by validation PSNR, write the output file; returns the scores."""
        cb = callbacks or FinetuneCallbacks()
        t0 = time.perf_counter()
        trainer = self.trainer
        before = trainer.validate()
        test_before = self._project_scores()
        best = {"psnr": float(before.get("val_psnr_y", -1e9)), "step": 0, "scores": before}
        best_state = copy.deepcopy(trainer.model.state_dict())
        if cb.on_validation:
            cb.on_validation(0, before)
        if cb.on_preview and (p := self._preview(0)) is not None:
            cb.on_preview(p)

        def on_validation(step: int, scores: dict[str, Any]) -> None:
            nonlocal best_state
            psnr = float(scores.get("val_psnr_y", -1e9))
            if psnr > best["psnr"]:
                best.update(psnr=psnr, step=step, scores=scores)
                best_state = copy.deepcopy(trainer.model.state_dict())
            if cb.on_validation:
                cb.on_validation(step, scores)
            if cb.on_preview and (p := self._preview(step)) is not None:
                cb.on_preview(p)

        try:
            summary = trainer.train(
                progress=False,
                callbacks=TrainCallbacks(on_step=cb.on_step, on_validation=on_validation, should_stop=cb.should_stop),
            )
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)  # the run's logs and checkpoint: not the user's
        stopped = bool(summary["stopped"])
        last_val = int(self.cfg["val"]["every"])
        if stopped or trainer.step % last_val:  # weights trained past the last validation: score them too
            on_validation(trainer.step, trainer.validate())
        trainer.model.load_state_dict(best_state)
        after = best["scores"]
        test_after = self._project_scores() if test_before else {}
        seconds = time.perf_counter() - t0
        precision = "bf16 autocast" if trainer.uses_bf16() else "fp32"
        result = FinetuneResult(
            output=self.output,
            steps=trainer.step,
            seconds=seconds,
            val_before=before,
            val_after=after,
            best_step=int(best["step"]),
            stopped=stopped,
            test_before=test_before,
            test_after=test_after,
            data=trainer.objective.data_description(),
            train_count=self.train_count,
            val_count=self.val_count,
            skipped=self.skipped,
            precision=precision,
            config_name=self.config_name,
        )
        self._write(result)
        return result

    def _write(self, result: FinetuneResult) -> None:
        data = self.spec.data
        check_output(self.output)  # still free: nothing appeared there during the run
        source = {k: str(v) for k, v in vars(data).items() if v is not None}
        meta = {
            "finetune": {
                "from": {
                    "file": self.start.name,
                    "path": str(self.start),
                    "sha256": file_sha256(self.start),
                    "config_name": self.config_name,
                },
                "data": {
                    **source,
                    "kind": data.kind,
                    "train_images": result.train_count,
                    "val_images": result.val_count,
                    "skipped": result.skipped,
                    "description": result.data,
                },
                "steps": result.steps,
                "best_step": result.best_step,
                "stopped": result.stopped,
                "seconds": round(result.seconds, 1),
                "lr": self.cfg["optim"]["lr"],
                "crop": self.cfg["data"]["crop"],
                "batch": self.cfg["data"]["batch"],
                "precision": result.precision,
                **(
                    {"batch_norm": "frozen: the starting file's running statistics; scale and shift trained"}
                    if self.cfg["frozen_bn"] and self.trainer.batchnorm_layers()
                    else {}
                ),
                "hardware": hardware_description(self.trainer.device, 1),
                "command": self.command,
                "scores": {
                    "val_before": result.val_before,
                    "val_after": result.val_after,
                    "project_test_before": result.test_before,
                    "project_test_after": result.test_after,
                },
            }
        }
        self.output.parent.mkdir(parents=True, exist_ok=True)
        scores = {"finetune_val": _as_bench(result.val_after, result.val_count, data.describe())}
        if result.test_after:
            scores["project_test"] = result.test_after
        self.trainer.export(self.output, scores, extra=meta)


def _as_bench(val: dict[str, Any], n: int, what: str) -> dict[str, Any]:
    """Validation scores in the shape ``weatherstudio models`` prints (psnr_y, input_psnr_y, data)."""
    return {
        "psnr_y": val.get("val_psnr_y"),
        "ssim_y": val.get("val_ssim_y"),
        "input_psnr_y": val.get("val_input_psnr_y"),
        "n": n,
        "data": f"the user's held-out images ({what})",
    }


def _argv_of(spec: FinetuneSpec) -> list[str]:
    d = spec.data
    args = ["--model", spec.arch]
    if spec.weights:
        args += ["--weights", str(spec.weights)]
    if d.kind == "clips":
        args += ["--clips", str(d.clips)]
    elif d.kind == "photos":
        args += ["--photos", str(d.photos), "--weather", str(d.weather or PHOTO_WEATHER[spec.arch][0])]
        if d.preset:
            args += ["--preset", d.preset]
    else:
        args += ["--pairs", str(d.degraded), str(d.clean)]
    args += ["--steps", str(spec.steps)]
    for flag, v in (("--lr", spec.lr), ("--crop", spec.crop), ("--batch", spec.batch)):
        if v is not None:
            args += [flag, str(v)]
    return args
