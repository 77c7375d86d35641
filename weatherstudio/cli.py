"""The ``weatherstudio`` command line (never imports Qt; the ``gui`` subcommand loads it lazily)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weatherstudio import __version__
from weatherstudio.core.errors import WeatherStudioError

EXIT_ERROR = 2


def _progress_bar(total: int, desc: str, unit: str):
    from tqdm import tqdm

    stream = sys.stderr if sys.stderr is not None else open(os.devnull, "w")  # noqa: SIM115
    return tqdm(total=total, desc=desc, unit=unit, file=stream, leave=False, dynamic_ncols=True)


def _restore_options(args: argparse.Namespace, return_maps: bool = False):
    from weatherstudio.engine.restore import RestoreOptions

    return RestoreOptions(
        device=args.device,
        tile=args.tile,
        overlap=args.overlap,
        fp16=getattr(args, "fp16", None),
        return_maps=return_maps,
        backend=getattr(args, "backend", None) or "auto",
        align_memory=getattr(args, "align_memory", True),
    )


def _output_plan(inputs: list[str], output: str, n_sources: int) -> tuple[Path, bool]:
    """The output and whether it names one file: an existing folder is always a folder, whatever its name."""
    out = Path(output)
    single_file = (
        n_sources == 1
        and Path(inputs[0]).is_file()
        and not out.is_dir()
        and not output.endswith(("/", os.sep))
        and out.suffix != ""
    )
    return out, single_file


def _remove_videos(args: argparse.Namespace, videos: list[Path], session, choice) -> int:
    """Each video file restored into a video (``-o`` a file for one input, else a folder)."""
    from weatherstudio.core.video_io import WRITE_SUFFIXES

    out = Path(args.output)
    failures = 0
    for src in videos:
        one_file = len(args.inputs) == 1 and not out.is_dir() and out.suffix != ""
        own = src.suffix.lower() if src.suffix.lower() in WRITE_SUFFIXES else ".mp4"  # AVI, GIF → mp4
        dest = out if one_file else out / (src.stem + (args.suffix or own))
        bar = _progress_bar(0, src.name, "frame")

        def progress(done: int, total: int, bar=bar) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = session.restore_video(
                src,
                dest,
                choice,
                _restore_options(args),
                frames=args.frames,
                codec=args.codec,
                quality=args.crf,
                speed=args.speed,
                overwrite=args.overwrite,
                maps_dir=Path(args.maps) if args.maps else None,
                fps=args.fps,
                progress=progress,
            )
        except (WeatherStudioError, MemoryError) as exc:
            bar.close()
            failures += 1
            print(f"error: {exc}" if str(exc) else f"error: {src}: out of memory", file=sys.stderr)
            continue
        except RuntimeError as exc:  # torch.OutOfMemoryError on a GPU
            if "out of memory" not in str(exc).lower():
                raise
            bar.close()
            failures += 1
            print(f"error: {src}: out of memory on the device (try a smaller --tile or --device cpu)", file=sys.stderr)
            continue
        bar.close()
        how = result.decision.message() or (result.model.arch if result.model else "")
        fps = result.frames / max(result.seconds, 1e-9)
        print(f"{src} -> {result.output}  ({how}, {result.frames} frames, {result.seconds:.1f} s, {fps:.2f} fps)")
        for dropped in result.dropped_streams:
            print(f"  note: {dropped} could not go into {dest.suffix} and was left out")
        for note in result.notes:
            print(f"  note: {src.name}: {note}")
    return failures


def cmd_remove(args: argparse.Namespace) -> int:
    from weatherstudio.core.image_io import list_images
    from weatherstudio.core.video_io import WRITE_SUFFIXES, is_video_file
    from weatherstudio.engine.backends import where_it_ran
    from weatherstudio.engine.pipeline import output_path_for
    from weatherstudio.engine.session import Session, model_choice

    to_video = len(args.inputs) == 1 and Path(args.output).suffix.lower() in WRITE_SUFFIXES
    to_video = to_video and not Path(args.output).is_dir()

    def is_video(p: Path) -> bool:  # a video file, or a folder of frames written out as a video
        return (p.is_file() and is_video_file(p)) or (p.is_dir() and to_video)

    videos = [Path(p) for p in args.inputs if is_video(Path(p))]
    if videos:
        session = Session(args.device)
        choice = model_choice(args.model, args.config, args.weights, allow_untrained=args.untrained)
        failures = _remove_videos(args, videos, session, choice)
        rest = [p for p in args.inputs if not is_video(Path(p))]
        if not rest:
            return EXIT_ERROR if failures else 0
        args = argparse.Namespace(**{**vars(args), "inputs": rest})
    sources = list_images([Path(p) for p in args.inputs])
    if not sources:
        raise WeatherStudioError("no images found in " + ", ".join(args.inputs))
    out, single_file = _output_plan(args.inputs, args.output, len(sources))
    if not single_file:
        out.mkdir(parents=True, exist_ok=True)
    session = Session(args.device)
    choice = model_choice(args.model, args.config, args.weights, allow_untrained=args.untrained)
    if choice.arch != "auto":
        ready = session.model(choice)  # fail before any file is touched when the network cannot load
        if ready.info.untrained:
            print(f"warning: {choice.arch} runs with untrained (random) weights", file=sys.stderr)
        if ready.model.temporal:
            print(f"{choice.arch} is a video model: {len(sources)} inputs restored as consecutive frames in name order")

    def output_for(src: Path) -> Path:
        return out if single_file else output_path_for(src, out, args.suffix)

    bars: dict[int, object] = {}

    def progress(index: int, src: Path, done: int, total: int) -> None:
        bar = bars.get(index)
        if bar is None:
            for old in bars.values():
                old.close()
            bars.clear()
            bar = bars[index] = _progress_bar(total, src.name, "tile")
        bar.total = total
        bar.n = done
        bar.refresh()

    failures = 0
    files = _progress_bar(len(sources), "images", "img") if len(sources) > 1 else None
    outcomes = session.restore_files(
        sources,
        output_for,
        choice,
        _restore_options(args),
        maps_dir=Path(args.maps) if args.maps else None,
        overwrite=args.overwrite,
        protected=tuple(sources),
        quality=args.quality,
        progress=progress,
    )
    for outcome in outcomes:
        for bar in bars.values():
            bar.close()
        bars.clear()
        if files:
            files.update(1)
        src = outcome.source
        if outcome.error:
            failures += 1
            print(f"error: {outcome.error}", file=sys.stderr)
            continue
        decision = outcome.decision
        if decision is not None and decision.pass_through:
            print(f"{src} -> {outcome.output}  ({decision.message()})")
            continue
        r = outcome.result
        size = f"{r.image.shape[1]}×{r.image.shape[0]}"
        how = f"{decision.message()}, " if decision is not None else ""
        where = where_it_ran(r.device, r.backend)
        print(f"{src} -> {outcome.output}  ({how}{size}, {r.seconds:.2f} s, {r.tiles} tile(s), {where})")
        for note in r.notes:
            print(f"  note: {note}")
        if outcome.map_files:
            print(f"  maps: {len(r.maps)} written to {args.maps}")
    if files:
        files.close()
    return EXIT_ERROR if failures else 0


def cmd_classify(args: argparse.Namespace) -> int:
    """The weather in each photo: rain, snow or clear, with the classifier's confidence."""
    from weatherstudio.core.image_io import list_images, read_image
    from weatherstudio.engine.weather import classify, load_classifier

    sources = list_images([Path(p) for p in args.inputs])
    if not sources:
        raise WeatherStudioError("no images found in " + ", ".join(args.inputs))
    model, _ = load_classifier(args.weights)
    rows, failures = [], 0
    for src in sources:
        try:
            guess = classify(model, read_image(src).rgb)
        except WeatherStudioError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
            continue
        row = {"path": str(src), "weather": guess.weather, "confidence": round(guess.confidence, 4)}
        row["probabilities"] = {k: round(v, 4) for k, v in guess.probabilities.items()}
        rows.append(row)
        if not args.json:
            print(f"{src}  {guess.weather}  {guess.confidence:.0%}")
    if args.json:
        print(json.dumps(rows, indent=2))
    return EXIT_ERROR if failures else 0


def cmd_models(args: argparse.Namespace) -> int:
    from weatherstudio.models.registry import build_model, entries
    from weatherstudio.weights import available_weights, shipped_weights

    table = []
    for name, entry in sorted(entries().items()):
        configs = {}
        for cname in entry.configs:
            model = build_model(name, cname)
            configs[cname] = {"parameters": model.num_parameters(), "config": entry.configs[cname]}
        weights = [
            {
                "path": str(w.path),
                "config": w.config_name,
                "scores": w.metadata.get("scores", {}),
                **({"finetuned_from": w.metadata["finetune"]["from"]["file"]} if "finetune" in w.metadata else {}),
            }
            for w in available_weights(name)
        ]
        table.append(
            {
                "name": name,
                "task": entry.cls.task,
                "temporal": entry.cls.temporal,
                "summary": entry.summary,
                "configs": configs,
                "weights": weights,
            }
        )
    from weatherstudio.models.weather import CONFIGS, WeatherClassifier, build_classifier

    table.append(
        {
            "name": WeatherClassifier.arch,
            "task": "classify",
            "temporal": False,
            "summary": "rain / snow / clear for --model auto (the project's own network)",
            "configs": {c: {"parameters": build_classifier(c).num_parameters(), "config": CONFIGS[c]} for c in CONFIGS},
            "weights": [
                {"path": str(w.path), "config": w.config_name, "scores": w.metadata.get("scores", {})}
                for w in shipped_weights(WeatherClassifier.arch)
            ],
        }
    )
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    for row in table:
        print(f"{row['name']}  [{row['task']}{', video' if row['temporal'] else ''}]  {row['summary']}")
        for cname, c in row["configs"].items():
            print(f"    config {cname:<6} {c['parameters']:>12,} parameters")
        for w in row["weights"] or [{"path": "(no trained weights shipped)", "config": "", "scores": {}}]:
            origin = f"  (fine-tuned from {w['finetuned_from']})" if "finetuned_from" in w else ""
            print(f"    weights {w['path']}{origin}")
            scores = w["scores"] if isinstance(w["scores"], dict) else {}
            for set_name, v in scores.items():  # the held-out sets scored when the file was trained
                if isinstance(v, dict) and "accuracy" in v:
                    per = ", ".join(
                        f"{c} {v[f'{c}_accuracy']:.1%}" for c in ("clear", "rain", "snow") if f"{c}_accuracy" in v
                    )
                    print(f"      {set_name}: accuracy {v['accuracy']:.1%} of {v.get('n', '?')} ({per})")
                elif isinstance(v, dict) and "psnr_y" in v:
                    nan = float("nan")
                    line = f"      {set_name}: PSNR-Y {v['psnr_y']:.2f} dB (input {v.get('input_psnr_y', nan):.2f})"
                    if "flicker" in v:
                        line += f", flicker {v['flicker']:.2f} (input {v.get('input_flicker', nan):.2f})"
                    print(line)
    return 0


def _bench_source(args: argparse.Namespace):
    """The records iterator and its description for ``bench``'s one source (folders, clips or synthetic)."""
    from weatherstudio.engine import bench

    given = [name for name in ("rainy", "clips", "synthetic", "video") if getattr(args, name)]
    if len(given) != 1 or bool(args.rainy or args.video) != bool(args.clean):
        raise WeatherStudioError(
            "give one source: --rainy DIR --clean DIR, --video FILE --clean DIR, --clips DIR, or --synthetic KIND"
        )
    if args.video:
        return bench.read_video_clip(Path(args.video), Path(args.clean)), 1, True, f"{args.video} vs {args.clean}"
    if args.rainy:
        pairs = bench.paired_files(Path(args.rainy), Path(args.clean))
        return bench.read_pairs(pairs), len(pairs), False, f"{args.rainy} vs {args.clean}"
    if args.clips:
        clips = bench.clip_folders(Path(args.clips))
        return bench.read_clips(clips), len(clips), True, f"clips of {args.clips}"
    from weatherstudio.engine.training import require_data_root

    presets = {"snow": "medium", "rain": "light", "rain-video": "light"}
    preset = args.preset or presets[args.synthetic]
    from weatherstudio.synth.writer import presets_for

    if preset not in presets_for(args.synthetic):
        raise WeatherStudioError(
            f"preset {preset!r} is not one of {', '.join(presets_for(args.synthetic))} for {args.synthetic}"
        )
    root = require_data_root(Path(args.data) if args.data else None)
    source = bench.synthetic_test_set(
        args.synthetic, preset, root, limit=args.limit, size=args.size, frames=args.frames, seed=args.seed
    )
    what = f"synthetic {preset} {args.synthetic} on the held-out test photos of {root / 'clean'}"
    return source, args.limit, args.synthetic == "rain-video", what


def cmd_bench(args: argparse.Namespace) -> int:
    from weatherstudio.engine.bench import iter_clip_scores, iter_scores, summarize
    from weatherstudio.engine.loader import load_model

    model, meta = load_model(args.model, args.weights, args.config, allow_untrained=args.untrained)
    source, total, clips, what = _bench_source(args)
    bar = _progress_bar(total or 0, "bench", "clip" if clips else "img")
    records = []
    scores = iter_clip_scores if clips else iter_scores
    for record in scores(model, source, _restore_options(args)):
        records.append(record)
        bar.set_postfix(psnr_y=f"{record['psnr_y']:.2f}", refresh=False)
        bar.update(1)
    bar.close()
    report = summarize(records)
    if args.json:
        d = report.as_dict(with_images=args.per_image)
        d.update({"model": args.model, "weights": meta.get("path", "untrained" if meta.get("untrained") else "")})
        d["data"] = what
        print(json.dumps(d, indent=2))
        return 0
    count = f"clips {report.n} ({report.frames} frames)" if clips else f"pairs {report.n}"
    print(f"model {args.model}  weights {meta.get('path', 'untrained')}  {count}  data: {what}")
    print(
        f"  Y channel (papers' protocol): PSNR {report.psnr_y:.2f} dB  SSIM {report.ssim_y:.4f}"
        f"   (input: {report.input_psnr_y:.2f} dB / {report.input_ssim_y:.4f})"
    )
    print(f"  RGB:                          PSNR {report.psnr_rgb:.2f} dB  SSIM {report.ssim_rgb:.4f}")
    if clips:
        print(
            f"  flicker (mean |ΔY_out − ΔY_clean| between frames, 8-bit): {report.flicker:.3f}"
            f"   (input: {report.input_flicker:.3f})"
        )
    print(f"  {report.sec_per_image:.3f} s per {'frame' if clips else 'image'}")
    return 0


def cmd_import_weights(args: argparse.Namespace) -> int:
    if args.source_format != "lpnet-tf-npz":
        raise WeatherStudioError(f"unknown source format {args.source_format!r}")
    from weatherstudio.models.lpnet_import import import_lpnet_tf_npz

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise WeatherStudioError(f"{out} exists; pass --overwrite to replace it")
    model = import_lpnet_tf_npz(args.file, out)
    print(f"{args.file} -> {out}  (lpnet, {model.num_parameters():,} parameters)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from weatherstudio.engine.onnx_export import export_onnx
    from weatherstudio.engine.session import ModelChoice, load_choice
    from weatherstudio.models.weightfile import file_sha256

    ready = load_choice(ModelChoice(args.model, args.config, args.weights, args.untrained))
    meta = ready.info.metadata
    provenance: dict[str, Any] = {"config_name": meta.get("config_name", args.config or "")}
    if meta.get("path"):
        provenance.update(weights=Path(meta["path"]).name, weights_sha256=file_sha256(meta["path"]))
    for key in ("scores", "training"):
        if key in meta:
            provenance[key] = meta[key]
    report = export_onnx(ready.model, args.output, provenance, overwrite=args.overwrite, check=args.check)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    io = f"{', '.join(report.inputs)} -> {', '.join(report.outputs)}"
    print(f"{args.model} -> {report.path}  ({io}; dynamic height and width; {report.seconds:.1f} s)")
    for c in report.checks:
        print(f"  checked against torch on {c.what}: max |difference| {c.max_abs_diff:.1e} (bar 1/255 = 3.9e-03)")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from weatherstudio.synth.writer import presets_for, synthesize_folder

    if args.preset not in presets_for(args.kind):
        raise WeatherStudioError(
            f"preset {args.preset!r} is not one of {', '.join(presets_for(args.kind))} for {args.kind}"
        )
    bar = _progress_bar(0, f"{args.kind} {args.preset}", "img")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    summary = synthesize_folder(
        args.kind,
        args.preset,
        Path(args.clean),
        Path(args.output),
        seed=args.seed,
        limit=args.limit,
        progress=progress,
        n_frames=args.frames,
        frame_size=tuple(args.frame_size) if args.frame_size else None,
    )
    bar.close()
    print(
        json.dumps(summary, indent=2, default=str) if args.json else f"wrote {args.output} ({args.kind}, {args.preset})"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from weatherstudio.engine.training import leave_distributed

    try:
        return _train(args)
    finally:
        leave_distributed()  # a rank started by torchrun leaves its process group before it exits


def _train(args: argparse.Namespace) -> int:
    from weatherstudio.engine.training import Trainer, load_config

    cfg = load_config(args.config)
    if args.rescore:
        if not args.export:
            raise WeatherStudioError("--rescore needs --export OUT (the rescored copy; the file itself is kept)")
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:  # a fresh run that never trains
            trainer = Trainer(cfg, Path(tmp), Path(args.data) if args.data else None, args.device, args.steps)
            scores = trainer.rescore(Path(args.rescore), Path(args.export))
        print(f"weights -> {args.export}")
        for k, v in scores.items():
            print(f"  {k}: {v}")
        return 0
    run_dir = Path(args.run_dir or Path("runs") / cfg["_name"])
    init = Path(args.init) if args.init else None
    trainer = Trainer(cfg, run_dir, Path(args.data) if args.data else None, args.device, args.steps, init=init)
    if trainer.step and trainer.dist.main:
        how = f"from {init} (Adam moments reset)" if trainer.warm_start else f"{run_dir}"
        print(f"resuming {how} at step {trainer.step}")
    summary = trainer.train(max_steps=args.max_steps)
    if trainer.dist.main:
        print(f"step {summary['step']}: " + ", ".join(f"{k} {v:.4g}" for k, v in summary["losses"].items()))
        if summary["step"] >= trainer.total_steps or args.export:
            out = Path(
                args.export or run_dir / f"{cfg['model']['arch']}_{cfg['model'].get('config', 'lite')}.safetensors"
            )
            scores = trainer.final_scores()
            trainer.export(out, scores)
            print(f"weights -> {out}")
            for k, v in scores.items():
                print(f"  {k}: {v}")
    return 0


def cmd_remote(args: argparse.Namespace) -> int:
    from weatherstudio.engine import remote

    if args.step == "pack":
        from weatherstudio.engine.training import require_data_root

        root = require_data_root(Path(args.data) if args.data else None)
        info = remote.pack_data(
            root,
            Path(args.out),
            pairs=args.pairs,
            photos=args.photos or None,
            quality=args.quality,
            max_side=args.max_side,
        )
        print(f"{args.out}: {info['files']} images, {info['bytes'] / 2**20:.1f} MiB (left out: {info['left_out']})")
    elif args.step == "train":
        record = remote.train_for(
            args.config,
            args.minutes,
            Path(args.out),
            pack=Path(args.pack) if args.pack else None,
            data_root=Path(args.data) if args.data else None,
            run_dir=Path(args.run_dir),
            device=args.device,
        )
        print(json.dumps(record, indent=1, default=str))
    else:
        scores = remote.collect(
            Path(args.folder),
            Path(args.out),
            data_root=Path(args.data) if args.data else None,
            score=not args.no_score,
            device=args.device,
        )
        print(f"weights -> {args.out}")
        for k, v in scores.items():
            print(f"  {k}: {v}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune a trained network on the user's photos or pairs (see :mod:`weatherstudio.engine.finetune`)."""
    from tqdm import tqdm

    from weatherstudio.engine.finetune import FinetuneCallbacks, FinetuneData, Finetuner, FinetuneSpec

    if sum(bool(x) for x in (args.pairs, args.photos, args.clips)) > 1:
        raise WeatherStudioError("give one of --photos, --pairs and --clips")
    if args.clips:
        data = FinetuneData(clips=Path(args.clips))
    elif args.pairs:
        data = FinetuneData(degraded=Path(args.pairs[0]), clean=Path(args.pairs[1]))
    elif args.photos:
        data = FinetuneData(photos=Path(args.photos), weather=args.weather, preset=args.preset)
    else:
        raise WeatherStudioError(
            "give --photos DIR (with --weather and --preset), --pairs DEGRADED_DIR CLEAN_DIR or --clips DIR"
        )
    spec = FinetuneSpec(
        args.model,
        data,
        weights=Path(args.weights) if args.weights else None,
        output=Path(args.output) if args.output else None,
        steps=args.steps,
        lr=args.lr,
        crop=args.crop,
        batch=args.batch,
        val_every=args.val_every,
        seed=args.seed,
        autocast="off" if args.fp32 else "auto",
        device=args.device,
    )
    job = Finetuner(spec)
    log = sys.stderr if args.json else sys.stdout
    print(job.describe(), file=log)
    for note in job.skipped:
        print(f"  skipped {note}", file=log)
    bar = tqdm(total=spec.steps, unit="step", dynamic_ncols=True, disable=not sys.stderr, desc="fine-tune")

    def on_step(step: int, losses: dict[str, float], lr: float) -> None:
        bar.set_postfix(loss=f"{losses['total']:.4f}", refresh=False)
        bar.update(1)

    def on_validation(step: int, scores: dict[str, Any]) -> None:
        bar.write(f"step {step}: validation PSNR-Y {scores.get('val_psnr_y', float('nan')):.2f} dB", file=log)

    result = job.run(FinetuneCallbacks(on_step=on_step, on_validation=on_validation))
    bar.close()
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"validation PSNR-Y {summary['val_before']:.2f} → {summary['val_after']:.2f} dB "
            f"(input {summary['val_input']:.2f}; best at step {result.best_step} of {result.steps})"
        )
        if summary["test_before"] is not None:
            print(f"project test photos: {summary['test_before']:.2f} → {summary['test_after']:.2f} dB")
        print(f"weights -> {result.output} ({result.seconds:.0f} s, {result.precision})")
    return 0


def has_display() -> bool:
    """Whether a window can be shown (an X11/Wayland display, or a platform that always has one)."""
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: open the studio on the bundled sample, or, with no display, do the same work headless."""
    if has_display() and not args.headless:
        return cmd_gui(argparse.Namespace(rest=[]))
    from weatherstudio.engine.session import ModelChoice, Session
    from weatherstudio.samples import find_samples

    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    samples = [s for s in find_samples() if not s.is_clip]
    if not samples:
        raise WeatherStudioError("no bundled sample found (resources/samples); run resources/make_samples.py")
    print("no display: restoring the bundled samples headless" if not args.headless else "restoring the samples")
    session = Session()
    for sample in samples:
        dest = out / f"{sample.path.stem}_restored.png"
        maps_dir = out / f"{sample.path.stem}_maps"
        (outcome,) = session.restore_files(
            [sample.path], lambda _src, d=dest: d, ModelChoice("auto"), maps_dir=maps_dir, overwrite=True
        )
        if outcome.error:
            print(f"  {sample.path.name}: skipped ({outcome.error})")
            continue
        how = outcome.decision.message() if outcome.decision else ""
        if outcome.result is None:  # passed through unchanged
            print(f"  {sample.path.name} -> {dest}  [auto: {how}]")
            continue
        n_maps = len(outcome.result.maps)
        maps = f"{n_maps} map" + ("s" if n_maps != 1 else "")
        line = f"  {sample.path.name} -> {dest}  [auto: {how}, {outcome.result.seconds:.2f} s, {maps}]"
        if sample.clean is not None:
            from weatherstudio.core.image_io import read_image
            from weatherstudio.core.metrics import psnr_y

            clean = read_image(sample.clean).rgb
            before, after = psnr_y(read_image(sample.path).rgb, clean), psnr_y(outcome.result.image, clean)
            line += f"  PSNR-Y {before:.2f} -> {after:.2f} dB"
        print(line)
        print(f"     maps: {maps_dir}")
    for clip in (s for s in find_samples() if s.is_video):
        dest = out / f"{clip.path.stem}_restored.mp4"
        try:
            video = session.restore_video(clip.path, dest, ModelChoice("auto"), overwrite=True)
        except WeatherStudioError as exc:
            print(f"  {clip.path.name}: skipped ({exc})")
            continue
        how = video.decision.message() or "as chosen"
        kept = f", kept {', '.join(video.kept_streams)}" if video.kept_streams else ""
        print(f"  {clip.path.name} -> {dest}  [auto: {how}, {video.frames} frames, {video.seconds:.2f} s{kept}]")
    if args.screenshot and _gui_available():
        shot = out / "studio.png"
        code = cmd_gui(argparse.Namespace(rest=["--screenshot", str(shot)]))
        if code == 0:
            print(f"  studio window screenshot: {shot}")
    return 0


def _gui_available() -> bool:
    try:
        import weatherstudio.app  # noqa: F401
    except ImportError:
        return False
    return True


def cmd_gui(args: argparse.Namespace) -> int:
    from weatherstudio.app import main as gui_main

    return gui_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    from weatherstudio.core.video_io import CODECS, SPEEDS

    p = argparse.ArgumentParser(prog="weatherstudio", description="Remove snow and rain from photos and videos.")
    p.add_argument("--version", action="version", version=f"weatherstudio {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def model_args(sp: argparse.ArgumentParser, default_model: str = "lpnet") -> None:
        what = "; auto: the best shipped network for each photo's weather" if default_model == "auto" else ""
        sp.add_argument(
            "--model", default=default_model, help=f"registered model name (see 'weatherstudio models'){what}"
        )
        sp.add_argument("--weights", help="weight file (.safetensors, .pth, .pt); default: the shipped weights")
        sp.add_argument("--config", help="model config for a foreign weight file (e.g. lite, paper)")
        sp.add_argument("--untrained", action="store_true", help="allow running with random weights (testing)")
        sp.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
        sp.add_argument("--tile", type=int, help="tile size in pixels (0: whole image; default: the model's)")
        sp.add_argument("--overlap", type=int, help="tile overlap in pixels (default: from the receptive field)")
        sp.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None, help="half precision on CUDA")
        sp.add_argument(
            "--backend",
            choices=["auto", "torch", "openvino", "onnxruntime"],
            default="auto",
            help="where a CPU restore runs: auto (OpenVINO or ONNX Runtime when installed, torch for maps), or one",
        )
        sp.add_argument(
            "--align-memory",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="video networks: warp the memory along the optical flow to each new frame (default on)",
        )

    r = sub.add_parser("remove", help="restore images (files or folders) and videos")
    r.add_argument("inputs", nargs="+", metavar="INPUT")
    r.add_argument("-o", "--output", required=True, help="output folder (or file, for one input file)")
    model_args(r, "auto")
    r.add_argument("--maps", metavar="DIR", help="also write every intermediate map (16-bit PNG + .npy)")
    r.add_argument("--suffix", help="output file extension (default: the input's)")
    r.add_argument("--quality", type=int, help="JPEG quality (default: the source's or 95)")
    r.add_argument("--overwrite", action="store_true", help="replace existing outputs (never the inputs)")
    r.add_argument("--frames", metavar="A:B", help="video: restore frames A to B − 1 only (from 0)")
    r.add_argument("--codec", choices=list(CODECS), help="video: the encoder")
    r.add_argument("--crf", type=int, help="video: quality (x264/x265/VP9/AV1 CRF; ProRes profile 0–3)")
    r.add_argument(
        "--speed",
        choices=SPEEDS,
        default=SPEEDS[0],
        help="video: encoder speed against file size (default fast: x264 veryfast; balanced: medium; small: slow)",
    )
    r.add_argument("--fps", type=float, default=24.0, help="a folder of frames written as a video: its frame rate")
    r.set_defaults(func=cmd_remove)

    c = sub.add_parser("classify", help="the weather in each photo: rain, snow or clear (what --model auto uses)")
    c.add_argument("inputs", nargs="+", metavar="INPUT")
    c.add_argument("--weights", help="classifier weight file (default: the shipped one)")
    c.add_argument("--json", action="store_true", help="a JSON list of {path, weather, confidence, probabilities}")
    c.set_defaults(func=cmd_classify)

    m = sub.add_parser("models", help="list the registered models, their configs and weights")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    b = sub.add_parser(
        "bench", help="PSNR/SSIM (Y channel, papers' protocol) on paired folders, clips or held-out synthetic sets"
    )
    model_args(b)
    b.add_argument("--rainy", help="folder of degraded images")
    b.add_argument("--clean", help="folder of clean images with the same names")
    b.add_argument("--video", help="a video file, scored against --clean DIR (its clean frames, in name order)")
    b.add_argument("--clips", help="folder of clips as 'synth --kind rain-video' writes them (adds flicker)")
    b.add_argument(
        "--synthetic",
        choices=["snow", "rain", "rain-video"],
        help="weather synthesized (fixed seed) on the held-out test split of <data>/clean",
    )
    b.add_argument("--preset", help="with --synthetic: snow small/medium/large/near, rain light/heavy/dense")
    b.add_argument("--data", help="with --synthetic: data root (default ../shared/data beside the repository)")
    b.add_argument("--limit", type=int, help="with --synthetic: at most this many photos/clips")
    b.add_argument("--size", type=int, help="with --synthetic: square crops of this size (clips: default 256)")
    b.add_argument("--frames", type=int, default=5, help="with --synthetic rain-video: frames per clip")
    b.add_argument("--seed", type=int, help="with --synthetic: the set's seed (default: the configs' test seed)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--per-image", action="store_true", help="with --json: include every image's scores")
    b.set_defaults(func=cmd_bench)

    i = sub.add_parser("import-weights", help="convert foreign weights to .safetensors")
    i.add_argument("--from", dest="source_format", required=True, choices=["lpnet-tf-npz"])
    i.add_argument("file")
    i.add_argument("-o", "--output", required=True)
    i.add_argument("--overwrite", action="store_true")
    i.set_defaults(func=cmd_import_weights)

    x = sub.add_parser("export", help="write a network as ONNX, checked against torch (ONNX Runtime, OpenVINO ...)")
    x.add_argument("--model", default="lpnet", help="registered model name (see 'weatherstudio models')")
    x.add_argument("--weights", help="weight file (.safetensors, .pth, .pt); default: the shipped weights")
    x.add_argument("--config", help="model config for a foreign weight file (e.g. lite, paper)")
    x.add_argument("--untrained", action="store_true", help="allow random weights (testing)")
    x.add_argument("--format", choices=["onnx"], default="onnx", help="the file format (ONNX, opset 17)")
    x.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    x.add_argument("--overwrite", action="store_true", help="replace an existing file")
    x.add_argument("--no-check", dest="check", action="store_false", help="skip the comparison with torch")
    x.add_argument("--json", action="store_true", help="print the report (inputs, outputs, checks) as JSON")
    x.set_defaults(func=cmd_export)

    s = sub.add_parser("synth", help="synthesize snowy/rainy training pairs (and masks) from clean photos")
    s.add_argument("--kind", required=True, choices=["snow", "rain", "snow-video", "rain-video"])
    s.add_argument("--preset", required=True, help="snow: small, medium, large, near; rain: light, heavy, dense")
    s.add_argument("--clean", required=True, help="folder of clean photos")
    s.add_argument("-o", "--output", required=True, help="output folder (input/, target/, mask/ ...)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--limit", type=int, help="at most this many photos")
    s.add_argument("--frames", type=int, default=8, help="frames per clip for the video kinds")
    s.add_argument("--frame-size", type=int, nargs=2, metavar=("H", "W"), help="clip frame size (default: full)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.set_defaults(func=cmd_synth)

    t = sub.add_parser("train", help="train a network from a TOML config (resumes an interrupted run)")
    t.add_argument("config", help="config name (see weatherstudio/engine/configs) or path")
    t.add_argument("--run-dir", help="folder for checkpoints and logs (default runs/<config>)")
    t.add_argument("--data", help="data root (default ../shared/data beside the repository)")
    t.add_argument("--device", default="auto")
    t.add_argument("--steps", type=int, help="override the config's total steps")
    t.add_argument("--max-steps", type=int, help="stop after this many more steps (resume later)")
    t.add_argument("--export", help="write the weights here now (default: at the end, into the run folder)")
    t.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="without a checkpoint, carry on from a weight file this config made, at the step it records",
    )
    t.add_argument(
        "--rescore",
        metavar="WEIGHTS",
        help="train nothing: score a finished weight file of this config again and write it to --export",
    )
    t.set_defaults(func=cmd_train)

    r2 = sub.add_parser("remote", help="train a config on a lent GPU machine: pack the data, train there, collect")
    steps = r2.add_subparsers(dest="step", required=True)
    rp = steps.add_parser("pack", help="the training data (pairs, train/val photos) as one JPEG zip that travels")
    rp.add_argument("out", help="the zip file to write (a new file)")
    rp.add_argument("--data", help="data root (default ../shared/data beside the repository)")
    rp.add_argument("--pairs", nargs="*", default=["train/RainTrainL"], help="pairs folders under the data root")
    rp.add_argument("--photos", default="clean", help="clean-photo folder ('' for none); its test split stays")
    rp.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    rp.add_argument("--max-side", type=int, default=640, help="photos' long side at most (default 640)")
    rt = steps.add_parser("train", help="train a config for a time budget; weights in pieces that come back")
    rt.add_argument("config", help="config name (e.g. gtrain_paper) or path")
    rt.add_argument("--minutes", type=float, required=True, help="wall-clock budget, loading and writing included")
    rt.add_argument("--out", required=True, help="folder for the pieces and the run's record (e.g. $OUT)")
    rt.add_argument("--pack", help="a data pack made by 'remote pack'")
    rt.add_argument("--data", help="or a data root")
    rt.add_argument("--run-dir", default="runs/remote", help="a new folder for the unpacked data and the run")
    rt.add_argument("--device", default="auto")
    rc = steps.add_parser("collect", help="join the pieces into one weight file and score it on the [eval] sets")
    rc.add_argument("folder", help="the folder holding <config>.partN.safetensors")
    rc.add_argument("-o", "--out", required=True, help="the weight file to write (a new file)")
    rc.add_argument("--data", help="data root for the scores (default ../shared/data beside the repository)")
    rc.add_argument("--no-score", action="store_true", help="join only")
    rc.add_argument("--device", default="auto")
    r2.set_defaults(func=cmd_remote)

    f = sub.add_parser("finetune", help="fine-tune a trained network on your own photos or pairs")
    f.add_argument("--model", required=True, help="lpnet, gtrain, resdesnow, desnownet or j4rnet")
    f.add_argument("--weights", help="the file to start from (default: the shipped one)")
    f.add_argument("--photos", help="a folder of clean photos; weather is synthesized on them")
    f.add_argument("--weather", choices=["snow", "rain", "rain-video"], help="with --photos (default: the network's)")
    f.add_argument("--preset", help="with --photos: snow small|medium|large|near, rain light|heavy|dense")
    f.add_argument("--pairs", nargs=2, metavar=("DEGRADED_DIR", "CLEAN_DIR"), help="paired folders, same names")
    f.add_argument("--clips", help="j4rnet: a folder of clips, each <clip>/input and <clip>/target frames")
    f.add_argument("--steps", type=int, default=200)
    f.add_argument("--lr", type=float, help="learning rate (default: a fifth of the network's training lr)")
    f.add_argument("--crop", type=int, help="training crop size (default: the network's)")
    f.add_argument("--batch", type=int, help="crops per step (default: at most 4)")
    f.add_argument("--val-every", type=int, help="validate every N steps (default: 5 times in the run)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--fp32", action="store_true", help="no bf16 autocast even where the CPU has it")
    f.add_argument("--device", default="auto")
    f.add_argument("-o", "--output", help="the new .safetensors (default: in your data folder; never overwritten)")
    f.add_argument("--json", action="store_true", help="print one JSON object: val_before, val_after, ...")
    f.set_defaults(func=cmd_finetune)

    d = sub.add_parser("demo", help="the main job: the studio on the bundled sample (headless without a display)")
    d.add_argument("-o", "--output", default="out/demo", help="where the headless results go (default out/demo)")
    d.add_argument("--headless", action="store_true", help="never open a window")
    d.add_argument("--no-screenshot", dest="screenshot", action="store_false", help="skip the offscreen screenshot")
    d.set_defaults(func=cmd_demo)

    g = sub.add_parser("gui", help="open the studio window", add_help=False)
    g.add_argument("rest", nargs=argparse.REMAINDER)
    g.set_defaults(func=cmd_gui)
    for name, sp in sub.choices.items():
        if name != "gui":  # the window parses its own options, --threads among them
            sp.add_argument("--threads", type=int, help="CPU threads for torch and OpenCV (default: all cores)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "gui":  # the window parses its own options (weatherstudio gui --help)
        args = argparse.Namespace(func=cmd_gui, rest=argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        if getattr(args, "threads", None) is not None:
            if args.threads < 1:
                raise WeatherStudioError(f"--threads {args.threads}: give 1 or more")
            from weatherstudio.engine.session import set_threads

            set_threads(args.threads)
        return int(args.func(args) or 0)
    except WeatherStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
