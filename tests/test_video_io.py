"""Video files with real encode and decode (PyAV): exact random access, and exports that keep sound and timing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from weatherstudio.core.video_io import VideoError, VideoReader, VideoWriter  # noqa: E402


def _clip(
    path: Path,
    n: int = 30,
    size: tuple[int, int] = (48, 64),
    fps: int = 24,
    audio: bool = True,
    rotation: int = 0,
    gop: int = 8,
    vfr: bool = False,
) -> Path:
    """A moving gradient (each frame distinct) in H.264 with B-frames and a keyframe every ``gop``, plus AAC."""
    h, w = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height = w, h
        v.pix_fmt = "yuv444p" if w % 2 or h % 2 else "yuv420p"  # an odd size needs 4:4:4
        v.options = {"crf": "12", "g": str(gop), "bf": "2"}
        tb = Fraction(1, 1000 if vfr else fps * 10)  # the muxer may change the stream's own after the header
        v.time_base = v.codec_context.time_base = tb
        if rotation:
            v.set_display_rotation(rotation)
        a = None
        if audio:
            a = out.add_stream("aac", rate=48000)
            a.layout = "mono"
        yy, xx = np.mgrid[0 : v.height, 0 : v.width]
        t_ms = 0
        for i in range(n):
            img = np.stack([(xx * 4 + i * 7) % 256, (yy * 5 + i * 3) % 256, (xx + yy + i * 11) % 256], -1)
            frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24").reformat(format=v.pix_fmt)
            if vfr:
                frame.pts, frame.time_base = t_ms, tb
                t_ms += 40 if i % 3 else 80
            else:
                frame.pts, frame.time_base = i * 10, tb
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        if a is not None:
            samples = int(48000 * n / fps)
            tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 48000)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(tone[:, start : start + 1024]), format="fltp", layout="mono"
                )
                af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)
    return path


def test_seeking_to_any_frame_gives_the_pixels_of_decoding_from_the_start(tmp_path: Path) -> None:
    path = _clip(tmp_path / "c.mp4")
    with VideoReader(path, cache_frames=2) as seq:
        sequential = [seq.frame(i).copy() for i in range(seq.frame_count)]
    assert len(sequential) == 30
    order = [17, 3, 29, 0, 16, 15, 8, 9, 28, 1]
    with VideoReader(path, cache_frames=2) as rnd:
        for i in order:
            assert np.array_equal(rnd.frame(i), sequential[i]), f"frame {i}"
    assert not np.array_equal(sequential[5], sequential[6])  # each frame is distinct


def test_seeks_that_skip_non_reference_pictures_and_abandoned_decodes_stay_exact(tmp_path: Path) -> None:
    """A long group of pictures with B-pyramids: a seek leaves out the non-reference B-frames before its target,
    a drag abandons decodes half-way and carries on forward, and every frame is still the sequential pixels."""
    path = _clip(tmp_path / "long.mp4", n=40, gop=40, audio=False)
    with VideoReader(path, cache_frames=2, raw_cache_bytes=0) as seq:
        sequential = [seq.frame(i).copy() for i in range(seq.frame_count)]
    with VideoReader(path, cache_frames=2, raw_cache_bytes=0) as r:
        for i in (30, 12, 39, 21, 22, 25, 5, 33):
            assert np.array_equal(r.frame(i), sequential[i]), f"frame {i}"
        assert r.skipped_pictures > 0  # x264's B-frames that nothing refers to were not decoded
        for start, then in ((28, 20), (10, 14), (30, 35), (8, 2)):
            calls = iter(range(100))
            assert r.frame(start, should_stop=lambda c=calls: next(c) >= 3) is None  # abandoned mid-way
            assert np.array_equal(r.frame(then), sequential[then]), f"frame {then} after abandoning {start}"


def test_frames_passed_on_the_way_to_a_seek_come_back_without_another_seek(tmp_path: Path) -> None:
    path = _clip(tmp_path / "gop.mp4", n=24, gop=24, audio=False)
    with VideoReader(path, cache_frames=2) as seq:
        sequential = [seq.frame(i).copy() for i in range(seq.frame_count)]
    with VideoReader(path, cache_frames=2) as r:
        r.frame(20)
        position = r._next
        for i in (19, 18, 12, 4, 0):
            assert np.array_equal(r.frame(i), sequential[i])
        assert r._next == position  # scrubbing back came from the held pictures, not from a new decode
        assert np.array_equal(r.frame(21), sequential[21])  # and the decoder carried on where it stood


def test_variable_frame_rate_is_indexed_by_timestamp(tmp_path: Path) -> None:
    path = _clip(tmp_path / "vfr.mkv", n=12, audio=False, vfr=True)
    with VideoReader(path) as r:
        assert r.info.variable_rate
        assert r.frame_count == 12
        steps = np.diff(r.timestamps)
        assert set(steps.tolist()) == {40, 80}
        first = [r.frame(i).copy() for i in range(12)]
    with VideoReader(path, cache_frames=2) as r:
        assert np.array_equal(r.frame(7), first[7])


def test_metadata_of_a_rotated_phone_clip(tmp_path: Path) -> None:
    path = _clip(tmp_path / "phone.mp4", n=6, size=(48, 64), rotation=-90)
    with VideoReader(path) as r:
        assert r.info.rotation in (90, 270)
        assert (r.info.width, r.info.height) == (48, 64)
        assert r.frame(0).shape == (64, 48, 3)  # shown upright
        assert r.info.fps == 24
        assert r.info.streams[0].kind == "audio"


def test_export_keeps_frames_timing_audio_and_odd_size(tmp_path: Path) -> None:
    src = _clip(tmp_path / "odd.mov", n=20, size=(47, 63))
    with VideoReader(src) as r:
        assert (r.info.width, r.info.height) == (63, 47)
        out = VideoWriter(tmp_path / "out.mp4", r)
        for i in range(r.frame_count):
            out.write(i, r.frame(i))
        dst = out.finish()
        stamps = r.timestamps
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        sa, sb = a.streams.audio[0], b.streams.audio[0]
        assert sb.codec_context.name == sa.codec_context.name == "aac"
        pa = [p for p in a.demux(sa) if p.size]
        pb = [p for p in b.demux(sb) if p.size]
        assert [bytes(p) for p in pa] == [bytes(p) for p in pb]  # copied, not re-encoded
    with VideoReader(dst) as r2:
        assert (r2.info.width, r2.info.height) == (63, 47)  # the odd size is kept
        assert r2.frame_count == 20
        assert r2.info.fps == 24
        assert [p * r2.info.time_base for p in r2.timestamps] == [p * r.info.time_base for p in stamps]


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    with pytest.raises(VideoError, match="notes.mp4: not a video FFmpeg can read"):
        VideoReader(text)
    sound = tmp_path / "sound.m4a"
    with av.open(str(sound), "w") as out:
        a = out.add_stream("aac", rate=48000)
        a.layout = "mono"
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = 48000, 0, Fraction(1, 48000)
        for p in [*a.encode(af), *a.encode(None)]:
            out.mux(p)
    with pytest.raises(VideoError, match="sound.m4a: holds no video stream"):
        VideoReader(sound)
    with pytest.raises(VideoError, match="no such file"):
        VideoReader(tmp_path / "missing.mp4")


def test_cancel_leaves_no_file_and_the_input_is_never_overwritten(tmp_path: Path) -> None:
    src = _clip(tmp_path / "c.mp4", n=6)
    with VideoReader(src) as r:
        with pytest.raises(VideoError, match="is the input video"):
            VideoWriter(src, r, overwrite=True)
        out = VideoWriter(tmp_path / "x.mp4", r)
        out.write(0, r.frame(0))
        out.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4"]


def test_remove_restores_a_video_and_keeps_its_sound(tmp_path: Path) -> None:
    from weatherstudio.cli import main

    src = _clip(tmp_path / "rainy.mp4", n=12, size=(48, 64))
    dst = tmp_path / "clean.mkv"
    assert main(["remove", str(src), "-o", str(dst), "--model", "lpnet", "--codec", "ffv1"]) == 0
    with VideoReader(src) as a, VideoReader(dst) as b:
        assert b.frame_count == a.frame_count == 12
        assert b.info.fps == a.info.fps
        assert (b.info.width, b.info.height) == (a.info.width, a.info.height)
        assert b.info.codec == "ffv1"
        assert not np.array_equal(b.frame(3), a.frame(3))  # restored, not copied
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        da = sum(p.duration for p in a.demux(a.streams.audio[0]) if p.size) * a.streams.audio[0].time_base
        db = sum(p.duration for p in b.demux(b.streams.audio[0]) if p.size) * b.streams.audio[0].time_base
        assert abs(float(da - db)) <= 1024 / 48000  # within one audio frame


def test_a_frame_range_and_a_cancelled_export(tmp_path: Path) -> None:
    from weatherstudio.engine.restore import RestoreCancelled
    from weatherstudio.engine.session import ModelChoice, Session

    src = _clip(tmp_path / "c.mp4", n=12)
    session = Session()
    part = session.restore_video(src, tmp_path / "part.mp4", ModelChoice("lpnet"), frames="4:9")
    assert part.frames == 5
    with VideoReader(part.output) as r:
        assert r.frame_count == 5
    calls = []
    with pytest.raises(RestoreCancelled, match="export cancelled"):
        session.restore_video(
            src,
            tmp_path / "never.mp4",
            ModelChoice("lpnet"),
            progress=lambda d, t: calls.append(d),
            should_cancel=lambda: len(calls) >= 3,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "part.mp4"]  # no half file


def test_bench_scores_a_video_against_its_clean_frames(tmp_path: Path) -> None:
    """A video of synthetic rain over known clean frames: the scores equal scoring the decoded frames directly."""
    import json
    import subprocess
    import sys

    from weatherstudio.core.image_io import write_image
    from weatherstudio.core.metrics import flicker, psnr_y

    src = _clip(tmp_path / "v.mkv", n=6, audio=False)
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    with VideoReader(src) as r:
        frames = [r.frame(i).copy() for i in range(r.frame_count)]
    clean = [np.clip(f * 0.9 + 0.05, 0, 1) for f in frames]
    for i, c in enumerate(clean):
        write_image(clean_dir / f"f{i:02d}.png", c)
    clean = [np.round(c * 255) / 255 for c in clean]  # as read back from the 8-bit PNGs
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "weatherstudio",
            "bench",
            "--model",
            "lpnet",
            "--video",
            str(src),
            "--clean",
            str(clean_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["frames"] == 6
    assert abs(report["input_psnr_y"] - np.mean([psnr_y(f, c) for f, c in zip(frames, clean)])) < 1e-3
    assert abs(report["input_flicker"] - flicker(frames, clean)) < 1e-3


def test_a_cut_short_file_restores_what_decodes_and_says_so(tmp_path: Path) -> None:
    from weatherstudio.engine.session import ModelChoice, Session

    full = _clip(tmp_path / "full.mkv", n=30)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    with VideoReader(cut) as r:
        assert 0 < r.frame_count < 30
        assert "cut short" in r.info.notes[0]
        n = r.frame_count
    outcome = Session().restore_video(cut, tmp_path / "out.mkv", ModelChoice("lpnet"), codec="ffv1")
    assert outcome.frames == n
    assert "cut short" in outcome.notes[0]
    with VideoReader(full) as r:
        assert r.info.notes == ()


def test_a_video_stream_without_frames_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as out:
        v = out.add_stream("ffv1", rate=24)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv444p"
        out.start_encoding()  # the header, and no frame after it
    with pytest.raises(VideoError, match="empty.mkv: holds no frames"):
        VideoReader(empty)


def test_a_folder_of_frames_and_an_animated_gif_export_to_video(tmp_path: Path) -> None:
    from PIL import Image

    from weatherstudio.cli import main
    from weatherstudio.core.image_io import write_image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        write_image(frames / f"f{i}.png", np.random.default_rng(i).random((40, 56, 3), dtype=np.float32))
    out = tmp_path / "frames.mkv"
    maps = tmp_path / "maps"
    code = main(["remove", str(frames), "-o", str(out), "--model", "lpnet", "--fps", "12", "--maps", str(maps)])
    assert code == 0
    with VideoReader(out) as r:
        assert r.frame_count == 4
        assert r.info.fps == 12
    assert (maps / "frames_000003_output_level1.npy").is_file()  # every frame's maps
    gif = tmp_path / "anim.gif"
    pics = [Image.fromarray((np.random.default_rng(i).random((40, 56, 3)) * 255).astype(np.uint8)) for i in range(5)]
    pics[0].save(gif, save_all=True, append_images=pics[1:], duration=100, loop=0)
    assert main(["remove", str(gif), "-o", str(tmp_path / "anim.mp4"), "--model", "lpnet"]) == 0
    with VideoReader(tmp_path / "anim.mp4") as r:
        assert r.frame_count == 5
        assert r.info.fps == 10


def test_a_rotated_clip_exports_upright(tmp_path: Path) -> None:
    src = _clip(tmp_path / "phone.mp4", n=4, size=(48, 64), rotation=-90)
    with VideoReader(src) as r:
        w = VideoWriter(tmp_path / "up.mp4", r)
        for i in range(r.frame_count):
            w.write(i, r.frame(i))
        w.finish()
        first = r.frame(0)
    with VideoReader(tmp_path / "up.mp4") as r2:
        assert r2.info.rotation == 0
        assert (r2.info.width, r2.info.height) == (48, 64)
        assert np.abs(r2.frame(0) - first).mean() < 0.03  # the same upright picture, through a lossy codec


def test_ten_bit_input_is_read_at_sixteen_bits(tmp_path: Path) -> None:
    path = tmp_path / "deep.mkv"
    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1", rate=24)
        v.width, v.height, v.pix_fmt = 32, 24, "yuv444p10le"
        ramp = np.tile(np.linspace(0, 65535, 32, dtype=np.uint16), (24, 1))
        img = np.stack([ramp, ramp, ramp], -1)
        frame = av.VideoFrame.from_ndarray(img, format="rgb48le").reformat(format="yuv444p10le")
        frame.pts, frame.time_base = 0, Fraction(1, 24)
        for p in [*v.encode(frame), *v.encode(None)]:
            out.mux(p)
    with VideoReader(path) as r:
        assert r.info.bit_depth == 10
        grey = r.frame(0)[0, :, 0]
        assert len(np.unique(np.round(grey * 1023))) > 28  # finer than 8-bit steps survive
        assert np.all(np.diff(grey) > 0)


def test_subtitles_are_copied(tmp_path: Path) -> None:
    src = _clip(tmp_path / "talk.mkv", n=8, audio=False)
    with_subs = tmp_path / "subs.mkv"
    with av.open(str(src)) as a, av.open(str(with_subs), "w") as out:
        v = out.add_stream_from_template(a.streams.video[0])
        sub = out.add_stream("ass")
        for packet in a.demux(a.streams.video[0]):
            if packet.size:
                packet.stream = v
                out.mux(packet)
        del sub  # a subtitle stream with its header, as players see one
    with VideoReader(with_subs) as r:
        kinds = [s.kind for s in r.info.streams]
        assert "subtitle" in kinds
        w = VideoWriter(tmp_path / "out.mkv", r, codec="ffv1")
        for i in range(r.frame_count):
            w.write(i, r.frame(i))
        w.finish()
    with VideoReader(tmp_path / "out.mkv") as r2:
        assert [s.kind for s in r2.info.streams] == kinds


def test_an_unknown_codec_is_one_line(tmp_path: Path) -> None:
    src = _clip(tmp_path / "k.mkv", n=4, audio=False)
    data = src.read_bytes()
    assert b"V_MPEG4/ISO/AVC" in data
    odd = tmp_path / "odd.mkv"
    odd.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_WSTUDIO/NOPE!"))  # a codec id no decoder knows
    with pytest.raises(VideoError, match=r"odd.mkv: cannot decode its .* video \(Decoder not found\)"):
        VideoReader(odd)


def test_prores_keeps_ten_bits(tmp_path: Path) -> None:
    src = _clip(tmp_path / "s.mkv", n=2, audio=False)
    ramp = np.tile(np.linspace(0.2, 0.3, 64, dtype=np.float32), (48, 1))[..., None].repeat(3, axis=2)
    with VideoReader(src) as r:
        w = VideoWriter(tmp_path / "p.mov", r, codec="prores")
        for i in range(r.frame_count):
            w.write(i, ramp)
        w.finish()
    with VideoReader(tmp_path / "p.mov") as r:
        assert r.info.bit_depth == 10
        levels = np.unique(np.round(r.frame(0)[24, 4:-4, 1] * 1023))
    assert len(levels) > 40  # a 0.1-wide ramp over 64 px: ~26 steps in 8 bits, ~100 in 10


def test_a_range_starts_at_zero_and_its_sound_ends_with_it(tmp_path: Path) -> None:
    from weatherstudio.engine.session import ModelChoice, Session

    src = _clip(tmp_path / "c.mp4", n=24)
    part = Session().restore_video(src, tmp_path / "part.mkv", ModelChoice("lpnet"), frames="12:18", codec="ffv1")
    assert part.notes == []  # an exported range is not "cut short"
    with VideoReader(part.output) as r:
        assert r.frame_count == 6
        assert r.timestamps[0] == 0
        assert r.info.notes == ()
    with av.open(str(part.output)) as c:
        a = c.streams.audio[0]
        packets = [p for p in c.demux(a) if p.size]
        start = float(packets[0].pts * a.time_base)
        end = float((packets[-1].pts + packets[-1].duration) * a.time_base)
    frame = 1024 / 48000
    assert abs(start) <= frame
    assert abs(end - 6 / 24) <= 2 * frame  # the sound of frames 12–17 only


@pytest.mark.parametrize(("speed", "preset_marks"), [("fast", b"subme=2"), ("small", b"subme=8")])
def test_encoder_speed_reaches_x264(tmp_path: Path, speed: str, preset_marks: bytes) -> None:
    """x264 writes its settings into the stream: "fast" is its veryfast preset (subme 2), "small" slow (8)."""
    src = _clip(tmp_path / "s.mkv", n=3, audio=False)
    with VideoReader(src) as r:
        w = VideoWriter(tmp_path / f"{speed}.mp4", r, speed=speed)
        for i in range(r.frame_count):
            w.write(i, r.frame(i))
        w.finish()
    data = (tmp_path / f"{speed}.mp4").read_bytes()
    assert b"x264 - core" in data and preset_marks in data and b"crf=18.0" in data


def test_an_unknown_encoder_speed_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    src = _clip(tmp_path / "s.mkv", n=2, audio=False)
    with VideoReader(src) as r, pytest.raises(VideoError, match="unknown encoder speed 'warp'"):
        VideoWriter(tmp_path / "out.mp4", r, speed="warp")
    assert list(tmp_path.iterdir()) == [src]
