"""What each network learns from: its batches and its paper's loss, behind one small interface.

* ``lpnet`` — real RainTrainL pairs (optionally mixed with synthetic light rain); LPNet eq. 7.
* ``desnownet`` — synthetic small/medium/large snow with its mask z; DesnowNet eq. 8 (λ_w as Adam's decay).
* ``resdesnow`` — synthetic snow; Wan & Lee eq. 4 (the VGG-19 term only when its weights are given).
* ``j4rnet`` — synthetic rain clips with a moving camera, single-frame phase first; J4R-Net's Sec. 4 loss.
* ``gtrain`` — real pairs + synthetic light/heavy rain, every scene of a batch distinct, rotation/flip/rain-mix
  augmentation, offsets at lr/10; GT-RAIN's (1 − MS-SSIM) + 0.1·L1 + 0.1·InfoNCE.

Every objective also owns its held-out validation set (fixed, made once, never trained on) and scores it
with the papers' Y-channel PSNR/SSIM; :func:`evaluate_spec` scores a config's ``[eval.*]`` sets at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.engine.datasets import (
    MAX_SIDE,
    TEST_SEED,
    VAL_SEED,
    ClipFolder,
    PairFolder,
    PhotoPool,
    flip,
    pick_preset,
    random_crop_pair,
    rotated_crop_pair,
    snow_free_crop,
    synthesis_scale,
    synthesize_clip,
    synthesize_crop,
    synthetic_clips,
    synthetic_pairs,
    to_clip_tensor,
    to_tensor,
)
from weatherstudio.models.base import RestorationModel

Pairs = list[tuple[str, np.ndarray, np.ndarray]]
Clips = list[tuple[str, list[np.ndarray], list[np.ndarray]]]


# -- scoring -----------------------------------------------------------------------------------------------

#: Name prefixes ("real/…", "synthetic/…") that split a validation set into separately reported groups.
_GROUPS = ("real", "synthetic")


def _restore_opts(device: torch.device):
    from weatherstudio.engine.restore import RestoreOptions

    return RestoreOptions(device=device, backend="torch")  # weights that change every validation: no export


def score_pairs(
    model: RestorationModel,
    pairs: Iterable[tuple[str, np.ndarray, np.ndarray]],
    device: torch.device,
    prefix: str = "val_",
) -> dict[str, Any]:
    """Mean Y-channel PSNR/SSIM of the restored pairs (and of the inputs), overall and per group.

    A pair's group is the part of its name before the first "/" when the names carry one of several
    groups (e.g. ``real/…`` and ``synthetic/…``); each group then gets its own ``{prefix}{group}_psnr_y``.
    A video model restores every pair as a one-frame clip (state reset).
    """
    from weatherstudio.core.metrics import psnr_y, ssim_y
    from weatherstudio.engine.restore import restore

    rows = []
    for name, degraded, clean in pairs:
        out = restore(degraded, model, _restore_opts(device)).image
        rows.append((name, psnr_y(out, clean), ssim_y(out, clean), psnr_y(degraded, clean)))
    if not rows:
        return {}
    p, s, i = (np.array([r[k] for r in rows]) for k in (1, 2, 3))
    scores: dict[str, Any] = {
        f"{prefix}psnr_y": float(p.mean()),
        f"{prefix}ssim_y": float(s.mean()),
        f"{prefix}n": len(rows),
        f"{prefix}input_psnr_y": float(i.mean()),
    }
    groups = sorted({r[0].split("/", 1)[0] for r in rows if "/" in r[0] and r[0].split("/", 1)[0] in _GROUPS})
    if len(groups) > 1:
        for g in groups:
            sel = np.array([r[0].startswith(g + "/") for r in rows])
            scores[f"{prefix}{g}_psnr_y"] = float(p[sel].mean())
            scores[f"{prefix}{g}_ssim_y"] = float(s[sel].mean())
    return scores


def score_clips(
    model: RestorationModel,
    clips: Iterable[tuple[str, list[np.ndarray], list[np.ndarray]]],
    device: torch.device,
    prefix: str = "val_",
) -> dict[str, Any]:
    """Run each clip frame by frame through the model as the app does (state carried, reset per clip) and
    score every frame (Y-channel PSNR/SSIM) plus the clip's :func:`~weatherstudio.core.metrics.flicker`,
    for outputs and inputs."""
    from weatherstudio.core.metrics import flicker, psnr_y, ssim_y
    from weatherstudio.engine.restore import restore

    p, s, ip, fl, ifl = [], [], [], [], []
    for _, rainy, clean in clips:
        outs, state = [], None
        for f in rainy:
            result = restore(f, model, _restore_opts(device), state=state)
            outs.append(result.image)
            state = result.state
        p += [psnr_y(o, c) for o, c in zip(outs, clean)]
        s += [ssim_y(o, c) for o, c in zip(outs, clean)]
        ip += [psnr_y(r, c) for r, c in zip(rainy, clean)]
        fl.append(flicker(outs, clean))
        ifl.append(flicker(rainy, clean))
    if not p:
        return {}
    return {
        f"{prefix}psnr_y": float(np.mean(p)),
        f"{prefix}ssim_y": float(np.mean(s)),
        f"{prefix}n": len(p),
        f"{prefix}input_psnr_y": float(np.mean(ip)),
        f"{prefix}flicker": float(np.mean(fl)),
        f"{prefix}input_flicker": float(np.mean(ifl)),
    }


# -- the interface -------------------------------------------------------------------------------------------


def _as_fp32(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.float() if x.is_floating_point() else x
    if isinstance(x, dict):
        return {k: _as_fp32(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_as_fp32(v) for v in x)
    return x


def fp32_terms(criterion: Any, *args: Any) -> dict[str, torch.Tensor]:
    """A loss computed in fp32 whatever the forward ran in: under bf16 autocast only the network runs in bf16;
    its outputs are cast up and autocast is off for the loss (SSIM's variances, InfoNCE's exponentials and
    the perceptual features lose too much in bf16), so the weights train on fp32 losses and gradients."""
    device = next((t.device.type for t in args if isinstance(t, torch.Tensor)), "cpu")
    with torch.autocast(device, enabled=False):
        return criterion(*(_as_fp32(a) for a in args))


class Objective:
    """Draws training batches and computes the loss terms (a dict with ``total``)."""

    description = ""

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        self.model = model
        self.cfg = cfg
        self.data_root = data_root
        self._val_cache: Pairs | None = None

    def batch(self, rng: np.random.Generator, size: int, crop: int, step: int = 0) -> dict[str, torch.Tensor]:
        """One rank's batch at ``step``, drawn only from ``rng`` (the Trainer passes :func:`batch_rng`)."""
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The loss terms of ``model`` (the bare network) on ``batch``, with their weighted ``total``."""
        raise NotImplementedError

    def param_groups(self, model: torch.nn.Module) -> list[dict[str, Any]] | None:
        """Optimiser parameter groups; a group's ``lr_scale`` multiplies the scheduled lr (None: one group)."""
        return None

    def data_description(self) -> str:
        return ""

    def validation_pairs(self) -> Pairs:
        """Held-out (name, degraded, clean) pairs, float32 in [0, 1]; never used for training."""
        return []

    def validate(self, model: RestorationModel, device: torch.device) -> dict[str, Any]:
        """Y-channel PSNR/SSIM of ``model`` on the held-out validation set."""
        if self._val_cache is None:
            self._val_cache = self.validation_pairs()
        return score_pairs(model, self._val_cache, device)

    # -- shared by the synthetic-data objectives ----------------------------------------------------------
    def _photos(self, split: str, data: dict[str, Any] | None = None) -> PhotoPool:
        data = self.cfg.get("data", {}) if data is None else data
        root = self.data_root / data.get("photos", "clean")  # an absolute path (a user's folder) stays as it is
        return PhotoPool.load(root, split, int(data.get("max_side", MAX_SIDE)), user=bool(data.get("user")))

    def _val_settings(self, default_presets: list[str]) -> tuple[int, int | None, list[str]]:
        val = self.cfg.get("val", {})
        size = val.get("size", 256)
        presets = list(val.get("presets", default_presets))
        return int(val.get("n", 24)), (None if size in (0, None) else int(size)), presets


def _photo_description(pool: PhotoPool, data: dict[str, Any]) -> str:
    folder = data.get("photos", "clean")
    side = f"long side ≤ {int(data.get('max_side', MAX_SIDE))} px"
    if data.get("user"):
        skipped = f"; {len(pool.skipped)} file(s) skipped" if pool.skipped else ""
        return f"{len(pool)} photos of {folder} ({side}; the others held out for validation{skipped})"
    return f"{len(pool)} train-split photos of {folder}/ ({side})"


# -- LPNet: real pairs ---------------------------------------------------------------------------------------


def real_pairs(data: dict[str, Any], data_root: Path, part: str = "train") -> list[PairFolder]:
    """The ``[data] real_pairs`` folders without (or only) the held-out pairs: each a folder under the data root
    with ``rainy/`` and ``clean/``, or a user's ``{degraded = DIR, clean = DIR}`` (held out by
    :func:`~weatherstudio.engine.datasets.user_holdout`)."""
    holdout = int(data.get("holdout", 0))
    return [
        PairFolder.load(Path(d["degraded"]), Path(d["clean"]), part=part, user=True)
        if isinstance(d, dict)
        else PairFolder.load(data_root / d / "rainy", data_root / d / "clean", holdout, part)
        for d in data.get("real_pairs", [])
    ]


def pairs_name(entry: str | dict[str, str]) -> str:
    """How a ``real_pairs`` entry is named in a description."""
    return f"{entry['degraded']} / {entry['clean']}" if isinstance(entry, dict) else str(entry)


def held_out_pairs(data: dict[str, Any], data_root: Path) -> Pairs:
    """The held-out real pairs as (name, degraded, clean), float32 in [0, 1]; none without ``holdout``."""
    user = any(isinstance(d, dict) for d in data.get("real_pairs", []))
    if not data.get("holdout") and not user:
        return []
    return [
        (n, a / np.float32(255), b / np.float32(255))
        for folder in real_pairs(data, data_root, "val")
        for n, a, b in zip(folder.names, folder.inputs, folder.targets)
    ]


def _pairs_description(folder: PairFolder, entry: str | dict[str, str], held: str) -> str:
    if isinstance(entry, dict):
        skipped = f"; {len(folder.skipped)} skipped" if folder.skipped else ""
        return f"{len(folder)} pairs from {pairs_name(entry)} (the others held out for validation{skipped})"
    return f"{len(folder)} real pairs from {entry}{held}"


class PairedRainObjective(Objective):
    """Real rainy/clean pairs (e.g. RainTrainL), random crops with flips; optional synthetic rain mixed in.

    ``[data] synth_fraction`` (default 0) replaces that fraction of the samples by synthetic light rain
    (``synth_presets``) on crops of the clean training photos; at 0 the batches are exactly the real-pair
    batches (the generator is drawn from in the same order).
    """

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        data = cfg["data"]
        self.pairs = real_pairs(data, data_root)
        self.synth_fraction = float(data.get("synth_fraction", 0.0))
        if not self.pairs and self.synth_fraction < 1.0:
            raise WeatherStudioError("the config names no training pairs ([data] real_pairs)")
        self.synth_presets = list(data.get("synth_presets", ["light"]))
        self.pool = self._photos("train") if self.synth_fraction > 0 else None

    def data_description(self) -> str:
        data = self.cfg["data"]
        held = f" (1 in {data['holdout']} held out for validation)" if data.get("holdout") else ""
        text = ", ".join(_pairs_description(p, d, held) for p, d in zip(self.pairs, data.get("real_pairs", [])))
        if self.pool is not None:
            text += "; " if text else ""
            text += (
                f"{self.synth_fraction:.0%} of the samples synthetic {'/'.join(self.synth_presets)} rain on crops"
                f" of {_photo_description(self.pool, data)}"
            )
        return text

    def validation_pairs(self) -> Pairs:
        """Held-out real pairs: (name, degraded, clean) as float32 in [0, 1] (+ synthetic ones when mixed)."""
        data = self.cfg["data"]
        out = held_out_pairs(data, self.data_root)
        if self.pool is not None:
            n, size, presets = self._val_settings(self.synth_presets)
            if data.get("user"):
                n = len(self._photos("val")) * len(presets)
            out = [(f"real/{n_}", a, b) for n_, a, b in out]
            synth = synthetic_pairs(self._photos("val"), "rain", presets, n, size, VAL_SEED)
            out += [(f"synthetic/{n_}", a, b) for n_, a, b in synth]
        return out

    def _real_sample(self, rng: np.random.Generator, crop: int) -> tuple[np.ndarray, np.ndarray]:
        folder = self.pairs[int(rng.integers(len(self.pairs)))]
        i = int(rng.integers(len(folder)))
        return random_crop_pair(rng, folder.inputs[i], folder.targets[i], crop)

    def batch(self, rng: np.random.Generator, size: int, crop: int, step: int = 0) -> dict[str, torch.Tensor]:
        xs, ys = [], []
        for _ in range(size):
            if self.pool is not None and rng.random() < self.synth_fraction:
                photo = self.pool.photos[int(rng.integers(len(self.pool)))]
                s = synthesize_crop(rng, photo, "rain", pick_preset(rng, self.synth_presets), crop)
                x, y = s.x, s.y
            else:
                x, y = self._real_sample(rng, crop)
                if self.pool is not None:  # mixed batch: every sample as float
                    x, y = x.astype(np.float32) / 255.0, y.astype(np.float32) / 255.0
            xs.append(x)
            ys.append(y)
        return {"input": to_tensor(xs), "target": to_tensor(ys)}


class LPNetObjective(PairedRainObjective):
    """LPNet (Fu et al., TNNLS 2019): RainTrainL crops, eq. 7 on every Gaussian level (the authors' recipe)."""

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        from weatherstudio.models.losses.lpnet import LPNetLoss

        self.criterion = LPNetLoss()
        self.description = self.criterion.description

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        _, outs = model.forward_pyramid(batch["input"])
        return fp32_terms(self.criterion.terms, outs, batch["target"])


# -- snow: DesnowNet and the residual de-snowing network -----------------------------------------------------


class SyntheticSnowObjective(Objective):
    """Snow synthesized on the fly (DesnowNet eq. 1) on random crops of the clean training photos.

    ``[data] presets`` (default small, medium, large: Snow100K's three subsets) with optional
    ``preset_weights``; each sample draws its photo, crop, flip, preset and snow from the batch generator.
    ``clean_fraction`` (default 0) of the samples are left snow-free (x = y, mask z = 0), so the network also
    learns to leave snow-free texture alone (white flowers, foam, bright speckle) instead of taking it for flakes.
    Validation: ``[val] n`` fixed ``size``² crops of the val-split photos, presets in turn.
    """

    kind = "snow"
    default_presets = ["small", "medium", "large"]

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        data = cfg["data"]
        self.presets = list(data.get("presets", self.default_presets))
        self.preset_weights = data.get("preset_weights")
        self.pairs = real_pairs(data, data_root) if data.get("real_pairs") else []
        if self.pairs and self.needs_mask:
            raise WeatherStudioError(
                f"{cfg['model']['arch']}'s loss needs the snow mask of synthesized snow: train it on clean photos"
                " (snow made on the fly), not on snowy/clean pairs"
            )
        self.pool = None if self.pairs else self._photos("train")
        self.clean_fraction = float(data.get("clean_fraction", 0.0))
        if not 0.0 <= self.clean_fraction < 1.0:
            raise WeatherStudioError(f"[data] clean_fraction must be in [0, 1), not {self.clean_fraction}")

    #: Whether the loss needs the synthesis' snow mask z (DesnowNet's eq. 8), so real pairs cannot train it.
    needs_mask = False

    def data_description(self) -> str:
        data = self.cfg["data"]
        if self.pairs:
            return ", ".join(_pairs_description(p, d, "") for p, d in zip(self.pairs, data["real_pairs"]))
        n, size, presets = self._val_settings(self.presets)
        where = f"{size}² crops" if size else "whole photos"
        val = f"{n} fixed {where} of val-split photos"
        if data.get("user"):
            val = f"the held-out photos, {where}, snow fixed by seed {VAL_SEED}"
        free = f", {self.clean_fraction:.0%} of the crops left snow-free" if self.clean_fraction else ""
        return (
            f"synthetic {self.kind} ({'/'.join(self.presets)}) made on the fly on random {data['crop']}² crops of "
            f"{_photo_description(self.pool, data)}{free}; validation: {val}"
        )

    def validation_pairs(self) -> Pairs:
        if self.pairs:
            return held_out_pairs(self.cfg["data"], self.data_root)
        n, size, presets = self._val_settings(self.presets)
        pool = self._photos("val")
        return synthetic_pairs(
            pool, self.kind, presets, len(pool) if self.cfg["data"].get("user") else n, size, VAL_SEED
        )

    def batch(self, rng: np.random.Generator, size: int, crop: int, step: int = 0) -> dict[str, torch.Tensor]:
        if self.pairs:
            xs, ys = [], []
            for _ in range(size):
                folder = self.pairs[int(rng.integers(len(self.pairs)))]
                i = int(rng.integers(len(folder)))
                x, y = random_crop_pair(rng, folder.inputs[i], folder.targets[i], crop)
                xs.append(x)
                ys.append(y)
            return {"input": to_tensor(xs), "target": to_tensor(ys)}
        xs, ys, zs = [], [], []
        for _ in range(size):
            photo = self.pool.photos[int(rng.integers(len(self.pool)))]
            if self.clean_fraction > 0 and rng.random() < self.clean_fraction:
                s = snow_free_crop(rng, photo, crop)
            else:
                s = synthesize_crop(rng, photo, self.kind, pick_preset(rng, self.presets, self.preset_weights), crop)
            xs.append(s.x)
            ys.append(s.y)
            zs.append(s.z)
        return {"input": to_tensor(xs), "target": to_tensor(ys), "mask": to_tensor(zs)}


class DesnowNetObjective(SyntheticSnowObjective):
    """DesnowNet (Liu et al., TIP 2018): eq. 8 on ŷ, y′ and ẑ against the synthesis' clean image and mask z.

    ``[loss] lambda_z`` (3), ``tau`` (4), ``reduction`` ("sum", eq. 7 as printed); λ_w of eq. 8 is the
    optimiser's ``weight_decay`` (5e-4 in the configs).
    """

    needs_mask = True

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        from weatherstudio.models.losses.desnownet import DesnowNetLoss

        lc = cfg.get("loss", {})
        wd = float(cfg.get("optim", {}).get("weight_decay", 0.0))
        self.criterion = DesnowNetLoss(
            float(lc.get("lambda_z", 3.0)), int(lc.get("tau", 4)), str(lc.get("reduction", "sum")), wd
        )
        self.description = self.criterion.description

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return fp32_terms(self.criterion.terms, model.forward_train(batch["input"]), batch["target"], batch["mask"])


class ResDesnowObjective(SyntheticSnowObjective):
    """Residual de-snowing network (Wan & Lee): eq. 4, λ = (1, 10, 1e-4).

    The perceptual term needs ImageNet VGG-19 weights, which are never downloaded: ``[loss] vgg19`` names a
    torchvision-layout state-dict file (absolute, or relative to the working folder or the data root).
    Without it the term is off and the description (written into the weight file) says so.
    """

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        from weatherstudio.models.losses.resdesnow import ResDesnowLoss

        lc = cfg.get("loss", {})
        vgg = lc.get("vgg19")
        if vgg:
            path = Path(vgg)
            if not path.is_file() and (data_root / path).is_file():
                path = data_root / path
            if not path.is_file():
                raise WeatherStudioError(f"[loss] vgg19: no file {vgg}")
            vgg = path
        self.criterion = ResDesnowLoss(
            tuple(lc.get("lambdas", (1.0, 10.0, 1e-4))),
            vgg_weights=vgg,
            vgg_layer=str(lc.get("vgg_layer", "conv3_3")),
            tv_reduction=str(lc.get("tv_reduction", "mean")),
        )
        self.description = self.criterion.description

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["input"]
        if self.criterion.mean.device != x.device:
            self.criterion.to(x.device)
        return fp32_terms(self.criterion.terms, model.forward_train(x), batch["target"])


# -- J4R-Net: rain clips -------------------------------------------------------------------------------------


class J4RNetObjective(Objective):
    """J4R-Net (Liu et al., CVPR 2018): synthetic rain clips with a moving camera (``synthesize_rain_video``).

    Targets: the clean frames B, the streak layer S as it shows in the clipped frame (min(S, 1 − B), the part of
    eq. 2's B + S that survives the clip to [0, 1]) and the occlusion map α. The authors first train on single
    frames, then fine-tune on clips: ``[data] clip_frames_schedule`` is a list of phases
    ``{from_step, frames, batch}`` (batch optional), e.g. 1-frame pretraining then 5-frame clips; pair it with
    ``[optim] restarts`` to restart the cosine decay at each phase, as the authors decay 1e-3 → 1e-5 twice.
    Validation: ``[val] n`` fixed clips of ``frames`` frames (``size``²) from the val-split photos, run frame by
    frame with the carried state and scored per frame, plus the flicker measure.
    """

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        from weatherstudio.models.losses.j4rnet import J4RNetLoss

        data = cfg["data"]
        self.presets = list(data.get("presets", ["light", "heavy"]))
        self.preset_weights = data.get("preset_weights")
        self.region = float(data.get("region", 1.5))
        clip_length = int(getattr(model, "clip_length", 5))
        schedule = data.get("clip_frames_schedule") or [{"from_step": 0, "frames": clip_length}]
        self.schedule = sorted(
            ((int(p["from_step"]), int(p["frames"]), p.get("batch")) for p in schedule), key=lambda p: p[0]
        )
        if self.schedule[0][0] != 0:
            raise WeatherStudioError("clip_frames_schedule must start with a phase at from_step = 0")
        lc = cfg.get("loss", {})
        self.criterion = J4RNetLoss(
            float(lc.get("lambda_detect", 1e-3)),
            float(lc.get("lambda_rect", 1e-4)),
            float(lc.get("lambda_removal", 1e-4)),
            str(lc.get("rect_on", "reconstruction")),
        )
        self.description = self.criterion.description
        self.clips: ClipFolder | None = None  # a user's real clips (clean frames only: joint + rect terms)
        if data.get("real_clips"):
            self.clips = ClipFolder.load(Path(data["real_clips"]), "train", int(data.get("max_side", MAX_SIDE)))
            self.pool = None
        else:
            self.pool = self._photos("train")
        self._val_clips: Clips | None = None

    def phase(self, step: int, batch: int) -> tuple[int, int]:
        """(frames, batch size) of the training phase that ``step`` falls in."""
        frames, size = self.schedule[0][1], batch
        for start, f, b in self.schedule:
            if step >= start:
                frames, size = f, int(b) if b else batch
        return frames, size

    def data_description(self) -> str:
        data = self.cfg["data"]
        if self.clips is not None:
            skipped = f"; {len(self.clips.skipped)} skipped" if self.clips.skipped else ""
            return (
                f"{len(self.clips)} rainy clips with clean frames from {data['real_clips']} (the others held out for"
                f" validation{skipped}); {data['crop']}² windows of consecutive frames; loss without the α and"
                f" streak terms (real clips have no such targets)"
            )
        phases = ", ".join(f"from step {s}: {f}-frame clips" + (f" × {b}" if b else "") for s, f, b in self.schedule)
        n, size, _ = self._val_settings(self.presets)
        return (
            f"synthetic {'/'.join(self.presets)} rain clips (moving camera, coherent streaks) made on the fly on"
            f" {data['crop']}² views of {_photo_description(self.pool, data)}; {phases}; validation: {n} fixed"
            f" clips of {int(self.cfg.get('val', {}).get('frames', 5))} frames of val-split photos"
        )

    def _real_clip_batch(
        self, rng: np.random.Generator, size: int, frames: int, crop: int, step: int = 0
    ) -> dict[str, torch.Tensor]:
        """Crops of the user's clips: ``frames`` consecutive frames, one window and flip for the whole clip."""
        assert self.clips is not None
        xs, ys = [], []
        for _ in range(size):
            k = int(rng.integers(len(self.clips)))
            rainy, clean = self.clips.inputs[k], self.clips.targets[k]
            t = min(frames, len(rainy))
            start = int(rng.integers(len(rainy) - t + 1))
            h, w = rainy[0].shape[:2]
            c = min(crop, h, w)
            top, left = int(rng.integers(h - c + 1)), int(rng.integers(w - c + 1))
            mirror = bool(rng.random() < 0.5)

            def cut(f: np.ndarray, top: int = top, left: int = left, c: int = c, mirror: bool = mirror) -> np.ndarray:
                view = f[top : top + c, left : left + c]
                view = view[:, ::-1] if mirror else view
                return cv2.resize(view, (crop, crop), interpolation=cv2.INTER_CUBIC) if c < crop else view

            xs.append([cut(f) for f in rainy[start : start + t]])
            ys.append([cut(f) for f in clean[start : start + t]])
        return {"input": to_clip_tensor(xs), "clean": to_clip_tensor(ys), **self._flows(xs, step)}

    def _flows(self, clips: list[list[np.ndarray]], step: int) -> dict[str, torch.Tensor]:
        """From step ``[data] align_memory_from`` on: each clip's backward flows between its rainy frames
        (N×(T−1)×H×W×2), measured as the engine measures them at inference, so that training aligns the memory
        the same way. (A step, not a switch, so that a phase that starts aligning keeps the earlier phases'
        batches when the whole recipe is run again.)"""
        start = self.cfg["data"].get("align_memory_from")
        if start is None or step < int(start) or len(clips[0]) < 2:
            return {}
        from weatherstudio.core.motion import backward_flow, motion_reference

        out = []
        for frames in clips:
            refs = [motion_reference(np.asarray(f, np.float32)) for f in frames]
            out.append(np.stack([backward_flow(a, b) for a, b in zip(refs, refs[1:], strict=False)]))
        return {"flows": torch.from_numpy(np.stack(out))}

    def batch(self, rng: np.random.Generator, size: int, crop: int, step: int = 0) -> dict[str, torch.Tensor]:
        frames, size = self.phase(step, size)
        if self.clips is not None:
            return self._real_clip_batch(rng, size, frames, crop, step)
        xs, ys, ss, alphas = [], [], [], []
        for _ in range(size):
            photo = self.pool.photos[int(rng.integers(len(self.pool)))]
            clip = synthesize_clip(
                rng, photo, pick_preset(rng, self.presets, self.preset_weights), frames, crop, self.region
            )
            xs.append([f.x for f in clip])
            ys.append([f.y for f in clip])
            ss.append([np.minimum(f.s, 1.0 - f.y) for f in clip])
            alphas.append([f.alpha for f in clip])
        return {
            "input": to_clip_tensor(xs),
            "clean": to_clip_tensor(ys),
            "streaks": to_clip_tensor(ss),
            "alpha": to_clip_tensor(alphas),
            **self._flows(xs, step),
        }

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = model.forward_train(batch["input"], flows=batch.get("flows"))
        return fp32_terms(self.criterion.terms, out, {k: batch[k] for k in ("clean", "streaks", "alpha") if k in batch})

    def validation_clips(self) -> Clips:
        val = self.cfg.get("val", {})
        if self.clips is not None:
            held = ClipFolder.load(
                Path(self.cfg["data"]["real_clips"]), "val", int(self.cfg["data"].get("max_side", MAX_SIDE))
            )
            f32 = np.float32(255)
            return [
                (n, [x / f32 for x in xs], [y / f32 for y in ys])
                for n, xs, ys in zip(held.names, held.inputs, held.targets)
            ]
        n, size, presets = self._val_settings(self.presets)
        return synthetic_clips(self._photos("val"), presets, n, int(val.get("frames", 5)), int(size or 128), VAL_SEED)

    def validation_pairs(self) -> Pairs:
        """Every frame of the validation clips as a pair (for callers that want pairs)."""
        return [(f"{n}@{t}", x, y) for n, xs, ys in self.validation_clips() for t, (x, y) in enumerate(zip(xs, ys))]

    def validate(self, model: RestorationModel, device: torch.device) -> dict[str, Any]:
        if self._val_clips is None:
            self._val_clips = self.validation_clips()
        return score_clips(model, self._val_clips, device)


# -- GT-RAIN: real + synthetic pairs, rain-robust loss --------------------------------------------------------


class GTRainObjective(Objective):
    """GT-RAIN (Ba et al., ECCV 2022): ``(1 − MS-SSIM) + 0.1·L1 + 0.1·InfoNCE`` with the rainy and clean batches
    through the network together.

    Data: real pairs (``[data] real_pairs``, 1 in ``holdout`` held out) and, for ``synth_fraction`` of the samples,
    synthetic rain (``presets``, default light and heavy) on the clean training photos. The rain-robust loss takes
    the other images of the batch as negatives, so every sample of a batch comes from a different scene (drawn
    without replacement). Augmentation as the authors': rotation ~ N(0, ``rotate_sigma``°) with a crop that shows no
    border and horizontal/vertical flips for real pairs; with probability ``rain_mix`` a real rainy crop also
    gets synthetic light streaks added (their rain-mask mixing). The offset and modulator convolutions of the
    deformable blocks learn at ``[optim] offset_lr_scale`` (0.1) times the lr.
    """

    def __init__(self, model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> None:
        super().__init__(model, cfg, data_root)
        from weatherstudio.models.losses.gtrain import GTRainLoss

        data = cfg["data"]
        self.pairs = real_pairs(data, data_root)
        self.real_index = [(f, i) for f, folder in enumerate(self.pairs) for i in range(len(folder))]
        self.synth_fraction = float(data.get("synth_fraction", 0.5 if self.pairs else 1.0))
        if not self.pairs:
            self.synth_fraction = 1.0
        self.presets = list(data.get("presets", ["light", "heavy"]))
        self.preset_weights = data.get("preset_weights")
        self.rotate_sigma = float(data.get("rotate_sigma", 13.0))
        self.rain_mix = float(data.get("rain_mix", 0.0))
        self.pool = self._photos("train") if self.synth_fraction > 0 else None
        lc = cfg.get("loss", {})
        self.criterion = GTRainLoss(
            float(lc.get("weight_l1", 0.1)),
            float(lc.get("weight_ms_ssim", 1.0)),
            float(lc.get("weight_robust", 0.1)),
            float(lc.get("temperature", 0.25)),
        )
        self.description = self.criterion.description
        self.offset_lr_scale = float(cfg.get("optim", {}).get("offset_lr_scale", 0.1))

    def param_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        """The deformable convs' offset and modulator convs at ``offset_lr_scale`` × lr, the rest at lr."""
        slow, rest = [], []
        for name, p in model.named_parameters():
            (slow if ".offset." in name or ".modulator." in name else rest).append(p)
        groups: list[dict[str, Any]] = [{"params": rest}]
        if slow:
            groups.append({"params": slow, "lr_scale": self.offset_lr_scale})
        return groups

    def data_description(self) -> str:
        data = self.cfg["data"]
        parts = []
        if self.pairs:
            held = f" (1 in {data['holdout']} held out for validation)" if data.get("holdout") else ""
            parts.append(", ".join(_pairs_description(p, d, held) for p, d in zip(self.pairs, data["real_pairs"])))
        if self.pool is not None:
            parts.append(
                f"{self.synth_fraction:.0%} synthetic {'/'.join(self.presets)} rain on crops of "
                f"{_photo_description(self.pool, data)}"
            )
        aug = f"rotation N(0, {self.rotate_sigma:g}°), h/v flips, rain-mix p={self.rain_mix:g}"
        return "; ".join(parts) + f"; {data['crop']}² crops, distinct scenes per batch; {aug}"

    def validation_pairs(self) -> Pairs:
        data = self.cfg["data"]
        out: Pairs = [(f"real/{n}", a, b) for n, a, b in held_out_pairs(data, self.data_root)]
        if self.synth_fraction > 0:
            n, size, presets = self._val_settings(self.presets)
            if data.get("user"):
                n = len(self._photos("val")) * len(presets)
            out += [
                (f"synthetic/{n_}", a, b)
                for n_, a, b in synthetic_pairs(self._photos("val"), "rain", presets, n, size, VAL_SEED)
            ]
        return out

    def _real(self, rng: np.random.Generator, k: int, crop: int) -> tuple[np.ndarray, np.ndarray]:
        f, i = self.real_index[k]
        rainy, clean = self.pairs[f].inputs[i], self.pairs[f].targets[i]
        x, y = rotated_crop_pair(rng, rainy, clean, crop, self.rotate_sigma)
        x, y = flip(rng, x, y, vertical=True)
        x, y = x.astype(np.float32) / 255.0, y.astype(np.float32) / 255.0
        if self.rain_mix > 0 and rng.random() < self.rain_mix:
            from weatherstudio.synth import synthesize_rain

            s = synthesize_rain(y, "light", rng, scale=synthesis_scale(rainy.shape, "rain")).s
            x = np.clip(x + s, 0.0, 1.0)
        return x, y

    def batch(self, rng: np.random.Generator, size: int, crop: int, step: int = 0) -> dict[str, torch.Tensor]:
        n_real_avail = len(self.real_index)
        if self.pool is None:
            n_syn = 0
        elif not n_real_avail:
            n_syn = size
        else:
            n_syn = int(rng.binomial(size, self.synth_fraction))
        n_syn = max(n_syn, size - n_real_avail)
        if self.pool is not None and n_syn > len(self.pool):
            raise WeatherStudioError(f"batch {size} needs more distinct scenes than the data holds")
        real = rng.choice(n_real_avail, size - n_syn, replace=False) if size > n_syn else []
        photos = rng.choice(len(self.pool), n_syn, replace=False) if n_syn else []
        xs, ys = [], []
        for k in real:
            x, y = self._real(rng, int(k), crop)
            xs.append(x)
            ys.append(y)
        for k in photos:
            s = synthesize_crop(
                rng, self.pool.photos[int(k)], "rain", pick_preset(rng, self.presets, self.preset_weights), crop
            )
            x, y = flip(rng, s.x, s.y, vertical=True)
            xs.append(x)
            ys.append(y)
        return {"input": to_tensor(xs), "target": to_tensor(ys)}

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = model.forward_train(batch["input"], batch["target"])
        return fp32_terms(self.criterion.terms, out, {"clean": batch["target"]})


OBJECTIVES: dict[str, type[Objective]] = {
    "lpnet": LPNetObjective,
    "desnownet": DesnowNetObjective,
    "resdesnow": ResDesnowObjective,
    "j4rnet": J4RNetObjective,
    "gtrain": GTRainObjective,
}


def make_objective(model: RestorationModel, cfg: dict[str, Any], data_root: Path) -> Objective:
    arch = cfg["model"]["arch"]
    if arch == "weather":  # the weather classifier (its module builds on this one)
        from weatherstudio.engine.weather_training import WeatherObjective

        return WeatherObjective(model, cfg, data_root)
    if arch not in OBJECTIVES:
        raise WeatherStudioError(f"no training objective for {arch!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[arch](model, cfg, data_root)


# -- final scores on the config's evaluation sets -------------------------------------------------------------


def evaluate_spec(
    model: RestorationModel, spec: dict[str, Any], data_root: Path, device: torch.device
) -> dict[str, Any]:
    """Score ``model`` on one ``[eval.NAME]`` set of a config (never trained on), for the weight file.

    * ``{rainy = "test/Rain100L/rainy", clean = "test/Rain100L/clean"}`` — paired folders under the data root;
    * ``{synthetic = "snow" | "rain", preset = "medium", split = "test", size = 0, limit = 0, seed = 9}`` —
      weather synthesized with a fixed seed on the clean photos of a split (the "test" split by default, never
      trained on or validated with), whole photos (long side ≤ ``max_side``) unless ``size`` asks for crops;
    * ``{synthetic = "rain-video", preset = "light", frames = 5, size = 256, limit = 20}`` — clips with a moving
      camera, run frame by frame with the model's state; adds ``flicker``.

    A video model restores still images one at a time from a fresh state.
    """
    from weatherstudio.engine.bench import paired_files, read_pairs, synthetic_test_set

    kind = spec.get("synthetic")
    if kind is None:
        pairs = read_pairs(paired_files(data_root / spec["rainy"], data_root / spec["clean"]))
        raw = score_pairs(model, pairs, device, prefix="")
        what = f"{spec['rainy']} vs {spec['clean']}"
    else:
        split = str(spec.get("split", "test"))
        preset = str(spec["preset"])
        seed = int(spec.get("seed", TEST_SEED))
        size = int(spec.get("size", 0)) or None
        frames = int(spec.get("frames", 5))
        source = synthetic_test_set(
            str(kind),
            preset,
            data_root,
            split=split,
            limit=int(spec.get("limit", 0)) or None,
            size=size,
            frames=frames,
            seed=seed,
            photos=str(spec.get("photos", "clean")),
            max_side=int(spec.get("max_side", MAX_SIDE)),
        )
        if kind == "rain-video":
            raw = score_clips(model, source, device, "")
            what = f"{raw['n'] // frames} synthetic {preset}-rain clips of {frames} frames ({size or 256}²)"
        else:
            raw = score_pairs(model, source, device, "")
            where = f"{size}² crops" if size else "whole photos"
            what = f"{raw['n']} synthetic {preset} {kind}, {where}"
        what += f" of the {split!r} split of {spec.get('photos', 'clean')}/, seed {seed}"
    out: dict[str, Any] = {"psnr_y": round(raw["psnr_y"], 3), "ssim_y": round(raw["ssim_y"], 4)}
    out["input_psnr_y"] = round(raw["input_psnr_y"], 3)
    if "flicker" in raw:
        out["flicker"] = round(raw["flicker"], 3)
        out["input_flicker"] = round(raw["input_flicker"], 3)
    out["n"] = raw["n"]
    out["data"] = what
    return out
