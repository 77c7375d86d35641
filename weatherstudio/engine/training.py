"""One training engine for every network: ``weatherstudio train CONFIG``.

Adam with linear warm-up and cosine decay (optionally restarted at given steps, for multi-phase recipes),
per-parameter-group learning-rate scales from the objective, patch batches drawn as a pure function of
(seed, step, rank), validation every N steps on held-out data with the papers' Y-channel PSNR/SSIM,
checkpoints that resume exactly, a tqdm bar with loss and speed, a CSV log of the losses and a JSON log of
validation scores. Under ``torchrun`` the same command runs data-parallel (DistributedDataParallel; gloo on
CPU, nccl on GPU), and at the end every rank's weight digest is gathered into ``ddp_digests.json`` (they must
agree); on a GPU the forward runs under bf16 autocast.

Config keys (TOML): ``seed``, ``checkpoint_every``, ``prefetch`` (draw the next batch in a worker thread;
default on with CUDA), ``channels_last`` (NHWC weights and image batches: ~1.4× faster convolutions on a
CPU for small-channel networks such as LPNet; default off), ``autocast`` (``"bf16"``: bf16 autocast on a
CPU with native bf16 as well, fp32 weights, loss and optimiser; default: on CUDA only); ``[model] arch,
config``; ``[data] crop, batch`` and the objective's own keys (see :mod:`.objectives`); ``[optim] lr,
final_lr, warmup, steps, weight_decay, betas, grad_clip, restarts, phase_lr_scales`` (and the objective's, e.g.
``offset_lr_scale``); ``[val] every`` (+ the objective's ``n``, ``size``, ...; ``live``: with ``ema``, also
score the trained weights beside their average, default true, false halves each validation's time);
``[eval.NAME]`` sets scored once at the end
(:func:`weatherstudio.engine.objectives.evaluate_spec`); ``precise_bn`` (N: before every validation and the
weight file, batch norm's running statistics are recomputed over N fixed training batches; see
:meth:`Trainer.precise_batchnorm`); ``frozen_bn`` (true: batch norm normalises with its running statistics and
keeps them during training, its scale and shift still trained; what fine-tuning uses, see :meth:`Trainer.train_mode`).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import json
import math
import os
import platform
import shlex
import sys
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.engine.averaging import WeightAverage
from weatherstudio.engine.datasets import batch_rng
from weatherstudio.engine.objectives import Objective, evaluate_spec, make_objective
from weatherstudio.models.registry import build_model
from weatherstudio.models.weightfile import save_weights

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: Added to the seed for the batches that recompute batch-norm statistics: a stream of its own, so the
#: training batches (a function of seed, step, rank) never change with ``precise_bn``.
PRECISE_BN_SEED = 7_919_000_003


def default_data_root() -> Path | None:
    """$WEATHERSTUDIO_DATA, else ``../shared/data`` beside a source checkout; None for an installed or bundled app.

    Only a source checkout (``pyproject.toml`` two folders above the package) has a ``../shared`` to look for.
    """
    env = os.environ.get("WEATHERSTUDIO_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    if not (repo / "pyproject.toml").is_file():
        return None
    return repo.parent / "shared" / "data"


def require_data_root(data_root: Path | None) -> Path:
    """``data_root``, or the default; a clear error when neither exists."""
    root = data_root or default_data_root()
    if root is None:
        raise WeatherStudioError("no data folder: pass --data DIR (or set WEATHERSTUDIO_DATA)")
    if not Path(root).is_dir():
        raise WeatherStudioError(f"data folder {root} not found (pass --data DIR or set WEATHERSTUDIO_DATA)")
    return Path(root)


def build_network(arch: str, config: str | dict[str, Any] | None) -> nn.Module:
    """A restoration network from the registry, or the weather classifier (``weather``)."""
    from weatherstudio.models.weather import WeatherClassifier, build_classifier

    if arch == WeatherClassifier.arch:
        return build_classifier(config)
    return build_model(arch, config)


@dataclass
class TrainCallbacks:
    """Hooks a caller (the studio, a fine-tune run, a test) gives the loop; all optional, all on its thread.

    ``on_step(step, losses, lr)`` after every step; ``on_validation(step, scores)`` after every validation;
    ``should_stop()`` between steps — True ends the run at once (a checkpoint is written first). A pause is
    ``should_stop`` blocking until the user resumes (see :class:`weatherstudio.engine.control.RunControl`).
    """

    on_step: Callable[[int, dict[str, float], float], None] | None = None
    on_validation: Callable[[int, dict[str, Any]], None] | None = None
    should_stop: Callable[[], bool] | None = None


def load_config(name_or_path: str) -> dict[str, Any]:
    """A TOML training config: a path, or the name of one shipped in ``engine/configs``."""
    path = Path(name_or_path)
    if not path.is_file():
        path = CONFIG_DIR / (name_or_path if name_or_path.endswith(".toml") else f"{name_or_path}.toml")
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
        raise WeatherStudioError(f"no training config {name_or_path!r}; shipped configs: {shipped}")
    with path.open("rb") as f:
        cfg = tomllib.load(f)
    cfg["_path"] = str(path)
    cfg["_name"] = path.stem
    return cfg


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


def leave_distributed() -> None:
    """Leave the process group before the process exits: a gloo group left to the interpreter's teardown can abort
    a rank that finishes first ("terminate called without an active exception", exit code −6)."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # the DistributedDataParallel wrapper (and the group it holds) goes first
        dist.destroy_process_group()


class _LossStep(nn.Module):
    """Wraps network + objective so that DistributedDataParallel sees one forward: batch → loss terms."""

    def __init__(self, model: nn.Module, objective: Objective) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.objective.loss(self.model, batch)


def lr_at(
    step: int,
    base: float,
    total: int,
    warmup: int,
    final: float,
    restarts: tuple[int, ...] | list[int] = (),
    phase_scales: tuple[float, ...] | list[float] = (),
) -> float:
    """Linear warm-up, then cosine decay from ``base`` to ``final``.

    ``restarts`` (steps) cut the run into phases that each start over with the warm-up and decay to
    ``final`` by the phase's end (a recipe of pretraining then fine-tuning, each with its own decay).
    ``phase_scales[i]`` scales phase ``i``'s peak (1 where the list is shorter): a late phase that only
    refines starts lower, so its warm restart does not undo what the earlier ones learnt.
    """
    start, end, phase = 0, total, 0
    for r in sorted(int(r) for r in restarts if 0 < int(r) < total):
        if step >= r:
            start = r
            phase += 1
        else:
            end = r
            break
    if phase < len(phase_scales):
        base = final + (base - final) * float(phase_scales[phase])
    step, total = step - start, end - start
    warmup = min(warmup, max(0, total - 1))
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * t))


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of the model's state dict (names, shapes and bytes of every tensor, in order)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class Trainer:
    """Runs a config to the end (or to ``max_steps``), resuming from the run folder's checkpoint."""

    def __init__(
        self,
        cfg: dict[str, Any],
        run_dir: Path,
        data_root: Path | None = None,
        device: str = "auto",
        steps: int | None = None,
        command: str | None = None,
        init: Path | None = None,
        start_from: Path | None = None,
    ) -> None:
        from weatherstudio.engine.device import resolve_device

        self.cfg = cfg
        self.run_dir = run_dir
        self.data_root = require_data_root(data_root)
        self.device = resolve_device(device)
        self.dist = init_distributed(self.device)
        if self.device.type == "cuda" and self.dist.world > 1:
            self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        opt = cfg["optim"]
        self.total_steps = int(steps if steps is not None else opt["steps"])
        self.seed = int(cfg.get("seed", 0))
        torch.manual_seed(self.seed)  # identical initial weights on every rank
        m = cfg["model"]
        self.model = build_network(m["arch"], m.get("config", "lite")).to(self.device)
        if "output_init_scale" in m:  # e.g. DesnowNet: start near the identity (see its scale_output_init)
            if not hasattr(self.model, "scale_output_init"):
                raise WeatherStudioError(f"[model] output_init_scale: {m['arch']} has no output heads to scale")
            self.model.scale_output_init(float(m["output_init_scale"]))
        self.memory_format = torch.channels_last if cfg.get("channels_last", False) else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.initial_digest = weights_digest(self.model) if self.dist.world > 1 else ""
        if start_from is not None:  # fine-tuning: a trained file's weights, the schedule from step 0
            from weatherstudio.models.weightfile import apply_state_dict, read_tensors

            apply_state_dict(self.model, read_tensors(start_from), str(start_from))
        self.objective = make_objective(self.model, cfg, self.data_root)
        self.step_module: nn.Module = _LossStep(self.model, self.objective)
        if self.dist.world > 1:
            self.step_module = nn.parallel.DistributedDataParallel(
                self.step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        groups = self.objective.param_groups(self.model)
        self.optimizer = torch.optim.Adam(
            groups if groups is not None else self.model.parameters(),
            lr=float(opt["lr"]),
            betas=tuple(opt.get("betas", (0.9, 0.999))),
            weight_decay=float(opt.get("weight_decay", 0.0)),
        )
        self.step = 0
        self.wall = 0.0
        self.command = command or " ".join(shlex.quote(a) for a in ["weatherstudio", *sys.argv[1:]])
        self.checkpoint = run_dir / "checkpoint.pt"
        self.warm_start: dict[str, Any] = {}
        self.earlier_phases: list[dict[str, Any]] = []  # what the --init file's own runs recorded
        resumed: dict[str, Any] = {}
        if self.checkpoint.is_file():
            resumed = self._resume()
        elif init is not None:
            self._warm_start(Path(init))
            if self.dist.world > 1:
                self.initial_digest = weights_digest(self.model)
        self.average = self._weight_average(opt.get("ema"), resumed)

    def _weight_average(self, decay: Any, resumed: dict[str, Any]) -> WeightAverage | None:
        """[optim] ema: the weights' moving average this run validates and ships (engine/averaging.py), begun at
        the run's first step (a phase started with --init averages its own steps from the file's weights, which
        are the previous phase's average), resumed with its checkpoint. A checkpoint whose average disagrees with
        the config (another decay, one kept and one not) is an error, never silently averaged anew or dropped."""
        if decay is None or decay == 0:  # absent, 0 or false: no average
            if resumed.get("average"):
                raise WeatherStudioError(
                    f"{self.checkpoint}: its run kept a weight average (decay {resumed['average']['decay']}); "
                    "this config has no [optim] ema: restore it, or start a new run folder"
                )
            return None
        try:
            average = WeightAverage(self.model, decay)
        except ValueError as exc:
            raise WeatherStudioError(f"{self.cfg['_name']}: [optim] ema: {exc}") from None
        if self.batchnorm_layers() and not self.cfg.get("precise_bn"):
            raise WeatherStudioError(
                f"{self.cfg['_name']}: [optim] ema needs precise_bn for a network with batch norm (the running "
                "statistics follow the trained weights, not their average)"
            )
        if resumed:
            if not resumed.get("average"):
                raise WeatherStudioError(
                    f"{self.checkpoint}: its run kept no weight average; this config asks [optim] ema = {decay}: "
                    "remove it, or start a new run folder"
                )
            try:
                average.load_state_dict(resumed["average"])
            except ValueError as exc:
                raise WeatherStudioError(f"{self.checkpoint}: {exc}") from None
        return average

    # -- checkpoints ---------------------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        if not self.dist.main:
            return
        state = {
            "step": self.step,
            "wall": self.wall,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config_name": self.cfg["_name"],
            "earlier_phases": self.earlier_phases,
            "warm_start": self.warm_start,
            "average": self.average.state_dict() if self.average is not None else None,
        }
        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint)

    def _resume(self) -> dict[str, Any]:
        """Load the run folder's checkpoint; returns it (the weight average is restored once it exists)."""
        state = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.wall = float(state["wall"])
        self.earlier_phases = list(state.get("earlier_phases", []))
        self.warm_start = dict(state.get("warm_start", {}))
        return state

    def _warm_start(self, path: Path) -> None:
        """Continue a finished run from its weight file when its checkpoint is gone (another machine).

        The weights and the step and wall time recorded in the file's metadata are taken, so the learning-rate
        schedule (and the batches, a function of the step) carry on where that run stopped; Adam's moments
        start from zero, which a restart's warm-up absorbs. The exported metadata says so. Where the run kept a
        weight average (``[optim] ema``), the file holds that average, so the new phase trains on from it.
        """
        from weatherstudio.models.weightfile import apply_state_dict, read_tensors

        meta = self._own_metadata(path, f"--init {path}")
        training = meta.get("training", {})
        step = int(training.get("steps", 0))
        if not 0 < step < self.total_steps:
            raise WeatherStudioError(
                f"--init {path}: its run stopped at step {step}; this config runs to step {self.total_steps}"
            )
        apply_state_dict(self.model, read_tensors(path), str(path))  # copies into the tensors: layout kept
        self.step = step
        self.wall = float(training.get("wall_seconds", 0.0))
        self.warm_start = {"file": path.name, "step": step, "optimizer": "Adam moments reset at the warm start"}
        self.earlier_phases = earlier_phases(training)

    def _own_metadata(self, path: Path, what: str) -> dict[str, Any]:
        """The metadata of a weight file this config made (its network and variant), else a clear error."""
        from weatherstudio.models.weightfile import read_metadata

        meta = read_metadata(path)
        arch, cfg = self.cfg["model"]["arch"], self.cfg["model"].get("config", "lite")
        if meta.get("arch") != arch or meta.get("config_name", cfg) != cfg:
            raise WeatherStudioError(
                f"{what}: holds {meta.get('arch', 'unknown')} {meta.get('config_name', '')} weights, not {arch} {cfg}"
            )
        return meta

    # -- the loop ------------------------------------------------------------------------------------
    def train(
        self, max_steps: int | None = None, progress: bool = True, callbacks: TrainCallbacks | None = None
    ) -> dict[str, Any]:
        """Train up to ``max_steps`` more steps (or to the end); returns the last losses and validation.

        ``callbacks`` see each step and validation and may stop the run between steps (``stopped`` is then
        True in the summary, and the checkpoint holds the last step).
        """
        cb = callbacks or TrainCallbacks()
        stopped = False
        from tqdm import tqdm

        opt, data = self.cfg["optim"], self.cfg["data"]
        batch_size, crop = int(data["batch"]), int(data["crop"])
        val_cfg = self.cfg.get("val", {})
        val_every, score_live = int(val_cfg.get("every", 0)), bool(val_cfg.get("live", True))
        ckpt_every = int(self.cfg.get("checkpoint_every", 500))
        end = self.total_steps if max_steps is None else min(self.total_steps, self.step + max_steps)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / "losses.csv"
        bar = tqdm(
            total=end,
            initial=self.step,
            disable=not (progress and self.dist.main and sys.stderr),
            dynamic_ncols=True,
            desc=self.cfg["_name"],
        )
        use_amp = self.uses_bf16()
        last: dict[str, float] = {}
        val_scores: dict[str, Any] = {}
        pin = self.device.type == "cuda"

        def make_batch(step: int) -> dict[str, torch.Tensor]:
            rng = batch_rng(self.seed, step, self.dist.rank)
            cpu = self.objective.batch(rng, batch_size, crop, step=step)
            return {k: v.pin_memory() for k, v in cpu.items()} if pin else cpu

        # The next batch is drawn in a worker thread while this step runs (synthesis is numpy/OpenCV, which
        # release the GIL). Batches depend only on (seed, step, rank), so this changes timing, never data.
        prefetch = ThreadPoolExecutor(1) if self.cfg.get("prefetch", self.device.type == "cuda") else None
        pending = prefetch.submit(make_batch, self.step) if prefetch and self.step < end else None
        self.train_mode()
        while self.step < end:
            if cb.should_stop is not None and cb.should_stop():
                stopped = True
                self._save_checkpoint()
                break
            t0 = time.perf_counter()
            lr = lr_at(
                self.step,
                float(opt["lr"]),
                self.total_steps,
                int(opt.get("warmup", 0)),
                float(opt.get("final_lr", 1e-6)),
                opt.get("restarts", ()),
                opt.get("phase_lr_scales", ()),
            )
            for g in self.optimizer.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
            if pending is not None:
                cpu_batch = pending.result()
                pending = prefetch.submit(make_batch, self.step + 1) if self.step + 1 < end else None
            else:
                cpu_batch = make_batch(self.step)
            batch = {k: self._to_device(v) for k, v in cpu_batch.items()}
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                terms = self.step_module(batch)
            self.optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            clip = float(opt.get("grad_clip", 0.0))
            if clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()
            if self.average is not None:
                self.average.update(self.model)
            self.step += 1
            self.wall += time.perf_counter() - t0
            last = {k: float(v.detach()) for k, v in terms.items()}
            if self.dist.main:
                new = not log_path.exists()
                with log_path.open("a", newline="") as f:
                    w = csv.writer(f)
                    if new:
                        w.writerow(["step", "lr", "seconds", *last])
                    w.writerow([self.step, f"{lr:.3g}", f"{self.wall:.1f}", *(f"{v:.6g}" for v in last.values())])
            if cb.on_step is not None:
                cb.on_step(self.step, last, lr)
            bar.set_postfix(loss=f"{last['total']:.4f}", lr=f"{lr:.2g}", refresh=False)
            bar.update(1)
            if self.step % ckpt_every == 0 or self.step == end:
                self._save_checkpoint()
            if val_every and (self.step % val_every == 0 or self.step == self.total_steps) and self.dist.main:
                val_scores = self.validate()
                if self.average is not None and score_live:  # the trained weights too: what the average adds
                    val_scores.update({f"live_{k}": v for k, v in self.validate(averaged=False).items()})
                with (self.run_dir / "validation.jsonl").open("a") as f:
                    f.write(json.dumps({"step": self.step, **val_scores}) + "\n")
                if progress:
                    bar.write(
                        f"step {self.step}: validation "
                        + ", ".join(f"{k} {v:.4g}" for k, v in val_scores.items() if isinstance(v, float))
                    )
                if cb.on_validation is not None:
                    cb.on_validation(self.step, val_scores)
                self.train_mode()
        bar.close()
        if prefetch is not None:
            prefetch.shutdown(cancel_futures=True)
        if self.dist.world > 1:
            self._gather_digests()
        return {"step": self.step, "losses": last, "validation": val_scores, "stopped": stopped}

    def _gather_digests(self) -> None:
        """Every rank's weight digest into ``ddp_digests.json`` (rank 0 writes); they must all agree."""
        mine = weights_digest(self.model)
        digests: list[Any] = [None] * self.dist.world
        dist.all_gather_object(digests, mine)
        if self.dist.main:
            record = {"step": self.step, "initial": self.initial_digest, "ranks": digests}
            (self.run_dir / "ddp_digests.json").write_text(json.dumps(record, indent=1) + "\n")
            if len(set(digests)) != 1:
                print(f"warning: the {self.dist.world} ranks ended with different weights", file=sys.stderr)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A batch tensor on the training device, images (4-D) in the config's memory format."""
        t = t.to(self.device, non_blocking=True)
        return t.contiguous(memory_format=self.memory_format) if t.dim() == 4 else t

    def _back_to_training(self) -> None:
        """Undo what scoring did to the model (eval mode, its memory format, video state)."""
        self.model.reset_state()
        self.model.to(memory_format=self.memory_format)
        self.train_mode()

    def train_mode(self) -> None:
        """The model in training mode; with the config's ``frozen_bn`` its batch-norm layers stay in eval mode:
        they normalise with the running statistics and leave them as they are, while their scale and shift train.

        The usual practice for fine-tuning with small batches ("frozen BN"). Measured on GT-RAIN fine-tuned on
        five user photos (60 steps, batch 4, 64² crops; validation PSNR-Y before → after): day photos with heavy
        rain 20.36 → 27.20 dB frozen against 24.07 with batch statistics, night photos 18.84 → 28.28 against
        14.21, light rain 30.44 → 32.76 against never above the start (the best at 28.55).
        """
        self.model.train()
        if self.cfg.get("frozen_bn"):
            for m in self.batchnorm_layers():
                m.eval()

    def batchnorm_layers(self) -> list[nn.modules.batchnorm._BatchNorm]:
        """The model's batch-norm layers that keep running statistics (GT-RAIN, DesnowNet, the classifier)."""
        return [
            m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        ]

    def precise_batchnorm(self) -> dict[str, torch.Tensor] | None:
        """Recompute every batch-norm layer's running mean and variance as the plain average over the config's
        ``precise_bn`` training batches ("PreciseBN": Wu & Johnson, *Rethinking "Batch" in BatchNorm*, 2021,
        Sec. 3) instead of the exponential average (momentum 0.1) of the last few steps' batches.

        With small crops and batches the exponential average follows the last ~10 batches: GT-RAIN's validation
        swung 23.7–26.8 dB between checkpoints of the same low-rate phase, its outputs drifting a dozen levels
        dark, and one checkpoint went 24.03 → 27.04 dB with these statistics alone (README). The batches come
        from a seed stream of their own (:data:`PRECISE_BN_SEED`), always the same N, so the result is a
        function of the weights (and of the step, for an objective whose data follows a schedule); they run
        through the objective's training forward (GT-RAIN's rainy and clean images together, as in a step) in
        train mode without gradients, in fp32 (what inference runs in).
        Returns the statistics they replaced (for :meth:`_restore_batchnorm`), or None when the config asks for
        none or the model has no batch norm.
        """
        count = int(self.cfg.get("precise_bn", 0))
        layers = self.batchnorm_layers()
        if count <= 0 or not layers:
            return None
        names = {id(m): n for n, m in self.model.named_modules()}
        saved: dict[str, torch.Tensor] = {}
        for m in layers:
            for key in ("running_mean", "running_var", "num_batches_tracked"):
                saved[f"{names[id(m)]}.{key}"] = getattr(m, key).detach().clone()
        momenta = [m.momentum for m in layers]
        data = self.cfg["data"]
        was_training = self.model.training
        try:
            for m in layers:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the batches below
            self.model.train()
            with torch.no_grad():
                for i in range(count):
                    rng = batch_rng(self.seed + PRECISE_BN_SEED, i, self.dist.rank)
                    cpu = self.objective.batch(rng, int(data["batch"]), int(data["crop"]), step=self.step)
                    self.objective.loss(self.model, {k: self._to_device(v) for k, v in cpu.items()})
        finally:
            for m, momentum in zip(layers, momenta):
                m.momentum = momentum
            if was_training:
                self.train_mode()
            else:
                self.model.eval()
        return saved

    def _restore_batchnorm(self, saved: dict[str, torch.Tensor] | None) -> None:
        """Put back the running statistics :meth:`precise_batchnorm` replaced (training carries on with its own)."""
        if not saved:
            return
        buffers = dict(self.model.named_buffers())
        with torch.no_grad():
            for key, value in saved.items():
                buffers[key].copy_(value)

    def validate(self, averaged: bool = True) -> dict[str, Any]:
        """Y-channel PSNR/SSIM on the objective's held-out validation set (see ``Objective.validate``), with
        precise batch-norm statistics when the config asks (the training run's own are put back after), of the
        weights' moving average when the config keeps one (``averaged=False``: of the trained weights)."""
        with self.averaged() if averaged else contextlib.nullcontext():
            saved = self.precise_batchnorm()
            try:
                return self._validation_scores()
            finally:
                self._restore_batchnorm(saved)

    def averaged(self) -> contextlib.AbstractContextManager[None]:
        """Inside it the model holds the weights the run ships: their moving average (``[optim] ema``) if the
        config keeps one, else the trained weights themselves; the trained weights are back after it."""
        return self.average.applied(self.model) if self.average is not None else contextlib.nullcontext()

    def _validation_scores(self) -> dict[str, Any]:
        """The objective's validation with the model's statistics as they are; the model handed back for training."""
        self.model.eval()
        try:
            return self.objective.validate(self.model, self.device)
        finally:
            self._back_to_training()

    def final_scores(self, precise_bn: bool = True) -> dict[str, Any]:
        """Validation scores plus the config's ``[eval.*]`` sets (never trained on), for the weight file.

        With ``precise_bn`` (and the config's ``precise_bn``) the batch-norm statistics are recomputed first and
        kept: they are the ones the weight file will hold. A rescore keeps the file's own.
        """
        with self.averaged():
            if precise_bn:
                self.precise_batchnorm()
            scores: dict[str, Any] = dict(self._validation_scores())
            self.model.eval()
            try:
                evaluate = getattr(self.objective, "evaluate", None)  # an objective with its own kind of scores
                for name, spec in self.cfg.get("eval", {}).items():
                    if evaluate is not None:
                        scores[name] = evaluate(self.model, spec, self.device)
                    else:
                        scores[name] = evaluate_spec(self.model, spec, self.data_root, self.device)
            finally:
                self._back_to_training()
        return scores

    def rescore(self, weights: Path, out: Path) -> dict[str, Any]:
        """Score a finished weight file of this config again (validation and ``[eval.*]``, by this version of
        the engine, e.g. after an inference change) and write it to ``out``: the same tensors and training
        record, the new scores, and a ``rescored`` entry saying by which command."""
        from weatherstudio.models.weightfile import apply_state_dict, read_tensors

        meta = self._own_metadata(weights, str(weights))
        if Path(out).resolve() == Path(weights).resolve():
            raise WeatherStudioError(f"{out}: is the file being scored; write the rescored copy elsewhere")
        apply_state_dict(self.model, read_tensors(weights), str(weights))
        self.average = None  # the file's weights are what is scored, not an average this run never kept
        scores = self.final_scores(precise_bn=False)
        kept = {k: v for k, v in meta.items() if k not in ("arch", "config", "scores", "format_version")}
        rescored = {"command": self.command, "date": time.strftime("%Y-%m-%d"), "previous_scores": meta.get("scores")}
        save_weights(self.model, out, {**kept, "scores": scores, "rescored": rescored})
        return scores

    # -- the product ---------------------------------------------------------------------------------
    def uses_bf16(self) -> bool:
        """Whether the forward pass runs under bf16 autocast (CUDA always; a CPU when the config asks)."""
        return self.device.type == "cuda" or (self.cfg.get("autocast") == "bf16" and cpu_has_bf16())

    def export(self, path: Path, scores: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Write the trained weights with metadata saying exactly how they were made.

        ``training.phases`` lists every sitting that led to these weights, the ``--init`` file's own phases
        first, each with its command, steps, wall time, hardware and precision.
        """
        first = self.earlier_phases[-1]["to_step"] if self.earlier_phases else 0
        phase = {
            "command": self.command,
            "from_step": int(first),
            "to_step": self.step,
            "wall_seconds": round(self.wall - sum(p.get("wall_seconds", 0.0) for p in self.earlier_phases), 1),
            "hardware": hardware_description(self.device, self.dist.world),
            "precision": "bf16 autocast" if self.uses_bf16() else "fp32",
        }
        if self.average is not None:
            phase["weights"] = f"moving average of the phase's steps (decay {self.average.decay:g})"
        meta = {
            "config_name": self.cfg["model"].get("config", "lite"),
            "training": {
                "command": self.command,
                "config_file": Path(self.cfg["_path"]).name,
                "data": self.objective.data_description(),
                "loss": self.objective.description,
                "steps": self.step,
                "wall_seconds": round(self.wall, 1),
                "hardware": hardware_description(self.device, self.dist.world),
                "seed": self.seed,
                **({"warm_start": self.warm_start} if self.warm_start else {}),
                "phases": [*self.earlier_phases, phase],
            },
            "scores": scores or {},
            **(extra or {}),
        }
        with self.averaged():
            return save_weights(self.model, path, meta)


def earlier_phases(training: dict[str, Any]) -> list[dict[str, Any]]:
    """The phases a weight file's ``training`` metadata records; files older than phase records count as one."""
    if training.get("phases"):
        return [dict(p) for p in training["phases"]]
    if not training:
        return []
    start = int(training.get("warm_start", {}).get("step", 0))
    return [
        {
            "command": training.get("command", ""),
            "from_step": start,
            "to_step": int(training.get("steps", 0)),
            "wall_seconds": float(training.get("wall_seconds", 0.0)),
            "hardware": training.get("hardware", ""),
            "precision": "fp32" if "cuda" not in training.get("hardware", "").lower() else "bf16 autocast",
            **({"note": "earlier phases not recorded"} if start else {}),
        }
    ]


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512-BF16 or AMX), where bf16 autocast speeds training up."""
    probe = getattr(torch.backends.cpu, "get_cpu_capability", None)
    if probe is None:
        return False
    if probe() in ("AVX512_BF16", "AMX"):
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def hardware_description(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"
    return f"{world}× {what}, torch {torch.__version__}"
