"""Training on a lent GPU machine that cannot see ``../shared``: the ``*_paper`` configs (README "GPU runs").

Such a machine receives the repository alone (at most 64 MiB a call) and sends back at most 8 files of 16 MiB
each, 64 MiB together. Three steps, each a ``weatherstudio remote`` command:

1. :func:`pack_data`, here: the data a config trains on — its real pairs, and the train- and val-split clean
   photos with their long side at most 640 px (the size the configs hold them at) — as JPEG in one zip file.
   Every file keeps its name, since names fix the photo splits and the pairs held out for validation; the
   test-split photos stay behind (the test sets are scored here, never there).
2. :func:`train_for`, there: unpack, measure the config's seconds per step on that machine, fit its schedule
   to a wall-clock budget (steps from the measured rate, warm-up at most 5 % of them, no restarts), train, and
   write the weights as safetensors pieces of at most 15 MiB (fp16 where fp32 would not come back) with the
   training record and the validation scores.
3. :func:`collect`, here: join the pieces into one fp32 weight file and score it on the config's ``[eval]``
   sets, the same code that scores the CPU runs.
"""

from __future__ import annotations

import json
import math
import time
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.core.image_io import is_supported

MANIFEST = "weatherstudio-pack.json"
PACK_FORMAT = 1
#: What comes back from the lent machine (its tool's limits, less a file and a margin for the run's record).
PIECE_BYTES = 15 * 2**20
MAX_PIECES = 7
MAX_RETURN_BYTES = 56 * 2**20
#: A packed image is at most this large (a guard against a corrupt or hostile pack).
MAX_ENTRY_BYTES = 32 * 2**20
#: Of a time budget, what the training loop gets; the rest covers loading, validations and writing the pieces.
TRAIN_SHARE = 0.85
PROBE_STEPS = 12
PROBE_WARMUP = 4
#: Names whose packed JPEG bytes are written back as they are (the rest are decoded and re-encoded by suffix).
_JPEG_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif"}


def _encode(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise WeatherStudioError("could not encode an image as JPEG")
    return buf.tobytes()


def pack_data(
    data_root: Path,
    out: Path,
    *,
    pairs: list[str] | tuple[str, ...] = ("train/RainTrainL",),
    photos: str | None = "clean",
    quality: int = 90,
    max_side: int = 640,
    on_file: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write the pairs folders ``pairs`` and the train/val photos of ``photos`` (all under ``data_root``) to the
    zip file ``out`` as JPEG of ``quality``; returns a summary (files, bytes, what was left out)."""
    from weatherstudio.core.image_io import list_images
    from weatherstudio.core.image_read import read_image
    from weatherstudio.core.image_write import to_uint8
    from weatherstudio.engine.datasets import clean_photos, load_photo

    data_root, out = Path(data_root), Path(out)
    if out.exists():
        raise WeatherStudioError(f"{out}: exists; give a new file name")
    if not 50 <= int(quality) <= 100:
        raise WeatherStudioError(f"quality {quality}: give 50–100")
    entries: list[tuple[str, Path, str]] = []  # (name in the pack, source, "pair" | "photo")
    for folder in pairs:
        root = data_root / folder
        if not root.is_dir():
            raise WeatherStudioError(f"no pairs folder {root}")
        entries += [(p.relative_to(data_root).as_posix(), p, "pair") for p in list_images(root, recursive=True)]
    left_out = 0
    if photos:
        root = data_root / photos
        if not root.is_dir():
            raise WeatherStudioError(f"no photos folder {root}")
        for split in ("train", "val"):  # the splits clean_photos gives training and validation
            entries += [(p.relative_to(data_root).as_posix(), p, "photo") for p in clean_photos(root, split)]
        left_out = len(clean_photos(root, "test"))
    if not entries:
        raise WeatherStudioError(f"nothing to pack under {data_root}")
    manifest = {
        "format": PACK_FORMAT,
        "quality": int(quality),
        "max_side": int(max_side),
        "pairs": list(pairs),
        "photos": photos,
        "files": len(entries),
        "left_out": f"{left_out} test-split photos of {photos}/" if photos else "",
        "made": time.strftime("%Y-%m-%d"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            for name, path, kind in entries:
                rgb = load_photo(path, max_side) if kind == "photo" else to_uint8(read_image(path).rgb)
                z.writestr(name, _encode(rgb, quality))
                if on_file:
                    on_file(name)
            z.writestr(MANIFEST, json.dumps(manifest, indent=1))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return {**manifest, "bytes": out.stat().st_size}


def _safe_member(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or "\\" in name or not rel.parts:
        raise WeatherStudioError(f"the pack holds a file outside its folder ({name!r}): not unpacked")
    if not is_supported(rel):
        raise WeatherStudioError(f"the pack holds {name!r}, which is not an image: not unpacked")
    return rel


def unpack_data(pack: Path, dest: Path) -> dict[str, Any]:
    """Unpack a :func:`pack_data` file into the new or empty folder ``dest`` (a data root for ``--data``):
    each image under its own name, a ``.png`` name as PNG (lossless from the JPEG), a JPEG name as the JPEG."""
    pack, dest = Path(pack), Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise WeatherStudioError(f"{dest}: not empty; unpack into a new folder")
    try:
        z = zipfile.ZipFile(pack)
    except (OSError, zipfile.BadZipFile) as exc:
        raise WeatherStudioError(f"{pack}: not a data pack ({exc})") from exc
    with z:
        try:
            manifest = json.loads(z.read(MANIFEST))
        except (KeyError, ValueError) as exc:
            raise WeatherStudioError(f"{pack}: not a data pack (no readable {MANIFEST})") from exc
        if manifest.get("format") != PACK_FORMAT:
            raise WeatherStudioError(
                f"{pack}: pack format {manifest.get('format')!r}, this version reads {PACK_FORMAT}"
            )
        members = [i for i in z.infolist() if i.filename != MANIFEST and not i.is_dir()]
        for info in members:  # check everything before writing anything
            _safe_member(info.filename)
            if info.file_size > MAX_ENTRY_BYTES:
                raise WeatherStudioError(f"{pack}: {info.filename} is {info.file_size} bytes: not unpacked")
        for info in members:
            rel = _safe_member(info.filename)
            data = z.read(info)
            target = dest.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel.suffix.lower() in _JPEG_SUFFIXES:
                target.write_bytes(data)
                continue
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise WeatherStudioError(f"{pack}: {info.filename} does not decode")
            if not cv2.imwrite(str(target), img):
                raise WeatherStudioError(f"could not write {target}")
    return {**manifest, "unpacked": len(members), "to": str(dest)}


# -- a run fitted to a time budget (on the lent machine) ----------------------------------------------------


def _returnable_precision(n_bytes_fp32: int) -> str:
    """fp32 when the weights come back whole in fp32, else fp16; raises when even fp16 would not."""
    if n_bytes_fp32 <= MAX_RETURN_BYTES:
        return "fp32"
    if n_bytes_fp32 // 2 <= MAX_RETURN_BYTES:
        return "fp16"
    raise WeatherStudioError(
        f"the network's weights are {n_bytes_fp32 / 2**20:.0f} MiB in fp32 ({n_bytes_fp32 / 2**21:.0f} in fp16): more "
        f"than the {MAX_RETURN_BYTES / 2**20:.0f} MiB a lent machine's run can send back"
    )


def fitted_config(cfg: dict[str, Any], steps: int) -> dict[str, Any]:
    """``cfg`` with its schedule fitted to ``steps``: one cosine decay, warm-up ≤ 5 % of it, four validations;
    no ``[eval]`` sets (their data stays behind: :func:`collect` scores them)."""
    import copy

    out = copy.deepcopy(cfg)
    opt = out["optim"]
    opt["steps"] = int(steps)
    opt["warmup"] = int(min(int(opt.get("warmup", 0)), max(1, steps // 20)))
    opt.pop("restarts", None)
    opt.pop("phase_lr_scales", None)
    out["val"] = {**out.get("val", {}), "every": max(1, steps // 4)}
    out["checkpoint_every"] = max(50, steps // 4)
    out["eval"] = {}
    return out


def seconds_per_step(
    cfg: dict[str, Any],
    data_root: Path | None,
    device: str,
    run_dir: Path,
    *,
    warmup: int = PROBE_WARMUP,
    steps: int = PROBE_STEPS,
) -> float:
    """The median seconds per training step of ``cfg`` on ``device``, over ``steps`` steps after ``warmup``
    (allocator and kernel warm-up) in a fresh trainer: no validation, no ``[eval]`` scoring."""
    from weatherstudio.engine.training import TrainCallbacks, Trainer

    probe = fitted_config(cfg, warmup + steps)
    probe["val"]["every"] = 0
    stamps: list[float] = []
    trainer = Trainer(probe, run_dir, data_root, device, steps=warmup + steps)
    trainer.train(progress=False, callbacks=TrainCallbacks(on_step=lambda *_: stamps.append(time.perf_counter())))
    gaps = np.diff(stamps[warmup - 1 :])
    return float(np.median(gaps))


def train_for(
    config: str,
    minutes: float,
    out_dir: Path,
    *,
    pack: Path | None = None,
    data_root: Path | None = None,
    run_dir: Path = Path("runs/remote"),
    device: str = "auto",
    command: str | None = None,
) -> dict[str, Any]:
    """Train ``config`` for about ``minutes`` on this machine and write its weights in pieces into ``out_dir``.

    The data: ``pack`` (unpacked into ``run_dir/data``) or the data root ``data_root``. Writes
    ``<config>.partN.safetensors`` and ``<config>.json`` (the run: steps, measured s/step, validation)."""
    from weatherstudio.engine.training import Trainer, build_network, load_config

    cfg = load_config(config)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    net = build_network(cfg["model"]["arch"], cfg["model"].get("config", "lite"))
    precision = _returnable_precision(sum(t.numel() * 4 for t in net.state_dict().values() if t.is_floating_point()))
    del net
    start = time.perf_counter()
    if pack is not None:
        data_root = run_dir / "data"
        if not (data_root / MANIFEST).exists():
            info = unpack_data(pack, data_root)
            (data_root / MANIFEST).write_text(json.dumps({k: v for k, v in info.items() if k != "to"}))
    if data_root is None:
        raise WeatherStudioError("give the data: a pack (--pack) or a data root (--data)")
    packed = Path(data_root) / MANIFEST
    data_note = {"data_pack": json.loads(packed.read_text())} if packed.exists() else {}
    if (run_dir / "run" / "checkpoint.pt").exists():
        raise WeatherStudioError(f"{run_dir / 'run'}: holds an earlier run; give a new --run-dir")
    rate = seconds_per_step(cfg, Path(data_root), device, run_dir / "probe")
    steps = steps_that_fit(minutes - (time.perf_counter() - start) / 60.0, rate)
    fitted = fitted_config(cfg, steps)
    trainer = Trainer(fitted, run_dir / "run", Path(data_root), device, steps=steps, command=command)
    summary = trainer.train(progress=True)
    scores = trainer.final_scores()
    budget_note = {"minutes": minutes, "seconds_per_step": round(rate, 5), "steps": steps}
    extra = {"time_budget": budget_note, **data_note}
    weights = trainer.export(run_dir / f"{cfg['_name']}.safetensors", scores, extra)
    pieces = write_pieces(weights, out_dir, cfg["_name"], precision)
    record = {
        "config": cfg["_name"],
        **budget_note,
        "precision": precision,
        "pieces": [p.name for p in pieces],
        "losses": summary.get("losses", {}),
        "scores": scores,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "device": str(trainer.device),
    }
    (out_dir / f"{cfg['_name']}.json").write_text(json.dumps(record, indent=1, default=str))
    return record


def write_pieces(weights: Path, out_dir: Path, name: str, precision: str) -> list[Path]:
    """Split a weight file into safetensors pieces of at most :data:`PIECE_BYTES` in ``precision``; the first
    piece carries the file's metadata, every piece its index and the count."""
    from safetensors.torch import save_file

    from weatherstudio.models.weightfile import METADATA_KEY, read_metadata, read_tensors

    meta = read_metadata(weights)
    tensors = read_tensors(weights)
    dtype = torch.float16 if precision == "fp16" else torch.float32
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(tensors):
        t = tensors[key]
        t = t.to(dtype) if t.is_floating_point() else t
        n = t.numel() * t.element_size()
        if n > PIECE_BYTES:
            raise WeatherStudioError(f"{key}: {n / 2**20:.1f} MiB, larger than one piece")
        if size + n > PIECE_BYTES and groups[-1]:
            groups.append({})
            size = 0
        groups[-1][key] = t.contiguous()
        size += n
    if len(groups) > MAX_PIECES:
        raise WeatherStudioError(f"{len(groups)} pieces: more than the {MAX_PIECES} a run can send back")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, group in enumerate(groups):
        info = {"piece": i, "of": len(groups), "precision": precision, "name": name}
        if i == 0:
            info["metadata"] = meta
        path = out_dir / f"{name}.part{i}.safetensors"
        save_file(group, str(path), metadata={METADATA_KEY: json.dumps(info, sort_keys=True)})
        path.chmod(0o644)
        paths.append(path)
    return paths


# -- back here -----------------------------------------------------------------------------------------------


def collect(
    folder: Path, out: Path, *, data_root: Path | None = None, score: bool = True, device: str = "auto"
) -> dict[str, Any]:
    """Join the pieces in ``folder`` into the fp32 weight file ``out`` and (``score``) score it on its config's
    ``[eval]`` sets here; returns the scores (or the training record's validation when not scored)."""
    from safetensors import safe_open

    from weatherstudio.engine.training import Trainer, build_network, load_config
    from weatherstudio.models.weightfile import METADATA_KEY, apply_state_dict, save_weights

    folder, out = Path(folder), Path(out)
    if out.exists():
        raise WeatherStudioError(f"{out}: exists; give a new file name (nothing is overwritten)")
    parts = sorted(folder.glob("*.part*.safetensors"), key=lambda p: int(p.stem.rsplit(".part", 1)[1]))
    if not parts:
        raise WeatherStudioError(f"no weight pieces (*.partN.safetensors) in {folder}")
    tensors: dict[str, torch.Tensor] = {}
    infos = []
    for p in parts:
        with safe_open(str(p), framework="pt") as f:
            infos.append(json.loads((f.metadata() or {}).get(METADATA_KEY, "{}")))
            tensors.update({k: f.get_tensor(k) for k in f.keys()})
    names = {i.get("name") for i in infos}
    if len(names) != 1 or sorted(i.get("piece") for i in infos) != list(range(infos[0].get("of", -1))):
        raise WeatherStudioError(f"{folder}: the pieces are not one complete set ({[p.name for p in parts]})")
    meta = infos[0]["metadata"]
    model = build_network(meta["arch"], meta["config"])
    apply_state_dict(model, {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, str(folder))
    transfer = {"pieces": len(parts), "precision": infos[0]["precision"], "joined": time.strftime("%Y-%m-%d")}
    kept = {k: v for k, v in meta.items() if k not in ("arch", "config", "format_version")}
    if not score:
        save_weights(model, out, {**kept, "transfer": transfer})
        return dict(meta.get("scores", {}))
    import tempfile

    cfg = load_config(meta["training"]["config_file"].removesuffix(".toml"))
    with tempfile.TemporaryDirectory() as tmp:
        joined = save_weights(model, Path(tmp) / "joined.safetensors", {**kept, "transfer": transfer})
        trainer = Trainer(cfg, Path(tmp) / "run", data_root, device)  # its command: this one, as typed
        return trainer.rescore(joined, out)


def steps_that_fit(minutes: float, seconds_per_step: float) -> int:
    """How many steps a budget of ``minutes`` trains at ``seconds_per_step`` (the loop's share of it)."""
    return max(1, math.floor(max(0.0, minutes) * 60.0 * TRAIN_SHARE / seconds_per_step))
