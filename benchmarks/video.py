"""Video: how fast a frame shows when scrubbing, and what decode + encode cost on top of the network.

    python benchmarks/video.py [--sizes 640x480 1920x1080] [--models lpnet resdesnow ...] [--frames 8]
                               [--speed fast|balanced|small] [--encoders h264 hevc ...]

For each size, a synthetic H.264 clip (a moving scene, keyframe every 48 frames, 2 B-frames, AAC sound) is
written to a temporary folder. Then:

* **seek**: the time to decode a random frame from a fresh reader position (what the studio shows the moment
  the slider stops: input frame), a step of +1 frame (from the cache or the next decode), a step back, 10
  frames back (pictures held from the way there) and 10 frames on in the same group of pictures (what a slow
  drag asks: the decoder carries on instead of seeking again);
* **per network** (shipped weights): the network's own seconds per frame on the decoded frames (restore only),
  and ``Session.restore_video`` on the same frames (decode + restore + encode H.264 + copy the sound), each
  ``--repeats`` times in turn, the fastest run of each counting — the overhead is the difference, as a share
  of the export time, fixed costs (opening, the encoder's start and flush) included, so use enough ``--frames``
  (24+); the
  first restored frame after a seek (with a temporal network's warm-up) is the "restored frame shown" latency;
* **encoders** (``--encoders``): each codec at each encoder speed on the decoded frames — milliseconds a frame
  (wall clock, and CPU time over all threads: what an export's network loses), file size, and PSNR-Y of what
  it wrote against what it was given (the price of a faster speed).

Prints a table; not a pass/fail test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_clip(path: Path, width: int, height: int, frames: int, fps: int = 24) -> Path:
    import av

    tb = Fraction(1, fps * 100)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"crf": "20", "g": "48", "bf": "2", "preset": "veryfast"}
        v.time_base = v.codec_context.time_base = tb
        a = out.add_stream("aac", rate=48000)
        a.layout = "mono"
        for i in range(frames):
            base = 0.5 + 0.25 * np.sin((xx + 3 * i) / 37.0) * np.cos((yy - 2 * i) / 29.0)
            streaks = (((xx + 2 * yy + 17 * i).astype(int) % 29) == 0) * 0.3
            img = np.clip(np.stack([base, base * 0.9, base * 0.7], -1) + streaks[..., None], 0, 1)
            frame = av.VideoFrame.from_ndarray((img * 255).astype(np.uint8), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i * 100, tb
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        n = int(48000 * frames / fps)
        tone = (0.1 * np.sin(np.arange(n) * 2 * np.pi * 220 / 48000)).astype(np.float32)[None]
        for start in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), "fltp", "mono")
            af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    return path


def seek_times(path: Path) -> dict[str, float]:
    """Medians in ms, each from a reader with no decoder near the target (as after the slider jumped):
    ``key`` first picture after a far seek (the keyframe before the target), ``far`` the exact target frame,
    ``next`` a +1 step, ``back`` a −1 step (cached), ``back10`` 10 frames back (a picture held from the way
    there, converted), ``fwd10`` 10 frames on in the same group of pictures (the decoder carries on)."""
    from weatherstudio.core.video_io import VideoReader

    times: dict[str, list[float]] = {k: [] for k in ("key", "far", "next", "back", "back10", "fwd10")}

    def timed(name: str, index: int) -> None:
        t = time.perf_counter()
        r.frame(index)
        times[name].append(time.perf_counter() - t)

    with VideoReader(path, cache_frames=24) as r:
        rng = np.random.default_rng(0)
        gop = 48
        for target in rng.integers(r.frame_count // 4, r.frame_count - 2, 8):
            target = int(target)
            r.forget()
            shown: list[float] = []
            t = time.perf_counter()
            r.frame(target, on_keyframe=lambda i, a, s=shown, t0=t: s.append(time.perf_counter() - t0))
            times["far"].append(time.perf_counter() - t)
            times["key"].append(shown[0] if shown else times["far"][-1])
            timed("next", target + 1)
            timed("back", target)
            if target % gop >= 12:
                r._cache.clear()
                timed("back10", target - 10)
            start = target - target % gop + 2  # early in its group of pictures, then 10 frames on
            r.forget()
            r.frame(start)
            timed("fwd10", start + 10)
    return {k: 1000 * float(np.median(v)) for k, v in times.items() if v}


def encoder_table(path: Path, codecs: list[str], frames: int, out_dir: Path) -> None:
    """ms a frame, size and PSNR-Y of each codec × speed on ``frames`` decoded frames of ``path``."""
    from weatherstudio.core.metrics import psnr_y
    from weatherstudio.core.video_io import CODECS, ENCODER_SPEED, SPEEDS, VideoReader, VideoWriter

    suffix = {"vp9": ".webm", "prores": ".mov"}
    print(f"{'codec':<7} {'speed':<9} {'encode ms/frame':>16} {'CPU ms/frame':>13} {'size kB':>8} {'PSNR-Y dB':>10}")
    with VideoReader(path) as r:
        given = [r.frame(i).copy() for i in range(frames)]
        for codec in codecs:
            speeds = SPEEDS if codec in ENCODER_SPEED else SPEEDS[:1]
            for speed in speeds:
                out = out_dir / f"enc_{codec}_{speed}{suffix.get(codec, '.mkv')}"
                q = CODECS[codec].default_quality if CODECS[codec].quality else None
                t, cpu = time.perf_counter(), time.process_time()
                w = VideoWriter(out, r, codec, q, overwrite=True, speed=speed)
                for i, f in enumerate(given):
                    w.write(i, f)
                w.finish()
                ms = (time.perf_counter() - t) / frames * 1000
                cpu_ms = (time.process_time() - cpu) / frames * 1000  # all threads: what it takes from a network
                with VideoReader(out) as back:
                    score = float(np.mean([psnr_y(back.frame(i), f) for i, f in enumerate(given)]))
                size_kb = out.stat().st_size / 1024
                print(f"{codec:<7} {speed:<9} {ms:>16.1f} {cpu_ms:>13.1f} {size_kb:>8.0f} {score:>10.2f}")


def network_times(
    path: Path, arch: str, frames: int, out_dir: Path, speed: str = "fast", repeats: int = 2
) -> tuple[float, float, float]:
    """(restore s/frame, export s/frame, first restored frame after a seek in s) for ``arch``.

    The network alone and the export are timed ``repeats`` times each, in turn, and the fastest run of each
    counts: the same number of tries on both sides, so a stall of the machine does not count on one side only.
    """
    from weatherstudio.core.video_io import VideoReader
    from weatherstudio.engine.restore import RestoreOptions, restore
    from weatherstudio.engine.session import ModelChoice, Session

    session = Session()
    ready = session.model(ModelChoice(arch))
    options = RestoreOptions()
    with VideoReader(path) as r:
        decoded = [r.frame(i).copy() for i in range(frames)]
    state = None
    for f in decoded[:2]:  # warm-up on whole frames, memory carried: first-touch memory is not counted
        state = restore(f, ready.model, options, state=state).state

    def model_only() -> float:
        t = time.perf_counter()
        state = None
        for f in decoded:
            state = restore(f, ready.model, options, state=state).state
        return (time.perf_counter() - t) / frames

    def export() -> float:
        t = time.perf_counter()
        session.restore_video(
            path, out_dir / f"{arch}.mp4", ModelChoice(arch), options, frames=f"0:{frames}", overwrite=True, speed=speed
        )
        return (time.perf_counter() - t) / frames

    model_runs, export_runs = [], []
    for _ in range(max(1, repeats)):
        model_runs.append(model_only())
        export_runs.append(export())
    target = frames + 5
    frame = session.video_frame(path, target)
    t = time.perf_counter()
    session.restore_image(frame.rgb, ModelChoice(arch), options, frame_of=(str(path), target))
    first_s = time.perf_counter() - t
    return min(model_runs), min(export_runs), first_s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=["640x480", "1920x1080"])
    p.add_argument("--models", nargs="*", default=["lpnet", "resdesnow", "j4rnet", "gtrain", "desnownet"])
    p.add_argument("--frames", type=int, default=8, help="frames restored per network and size")
    p.add_argument("--clip-frames", type=int, default=120, help="length of the synthetic clip")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--speed", default="fast", help="the export's encoder speed (fast, balanced, small)")
    p.add_argument("--encoders", nargs="*", default=[], help="also time these codecs at every encoder speed")
    p.add_argument("--no-seek", action="store_true", help="skip the seek timings")
    p.add_argument("--repeats", type=int, default=2, help="runs of the network alone and of the export (fastest)")
    args = p.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            clip = write_clip(tmp / f"clip_{size}.mp4", w, h, max(args.clip_frames, args.frames + 8))
            if args.encoders:
                print(f"\n{size}: encoders on {args.frames} decoded frames")
                encoder_table(clip, args.encoders, args.frames, tmp)
            if not args.no_seek:
                t = seek_times(clip)
                print(
                    f"\n{size} H.264 (keyframe every 48, 2 B-frames): after a far seek, first picture (its "
                    f"keyframe) {t['key']:.0f} ms, exact frame {t['far']:.0f} ms; +1 frame {t['next']:.1f} ms; back "
                    f"1 frame {t['back']:.2f} ms (cached); back 10 frames {t['back10']:.1f} ms (held pictures); "
                    f"10 frames on {t['fwd10']:.0f} ms (decoding on)"
                )
            if not args.models:
                continue
            print(f"\n{size}: export with encoder speed {args.speed!r}")
            print(
                f"{'network':<10} {'restore s/frame':>16} {'export s/frame':>15} {'overhead':>9} "
                f"{'model fps':>10} {'export fps':>11} {'restored after seek s':>22}"
            )
            for arch in args.models:
                model_s, export_s, first_s = network_times(clip, arch, args.frames, tmp, args.speed, args.repeats)
                overhead = (export_s - model_s) / export_s
                print(
                    f"{arch:<10} {model_s:>16.3f} {export_s:>15.3f} {overhead:>8.1%} {1 / model_s:>10.2f} "
                    f"{1 / export_s:>11.2f} {first_s:>22.2f}"
                )


if __name__ == "__main__":
    main()
