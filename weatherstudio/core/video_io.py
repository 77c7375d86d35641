"""Video files through PyAV (FFmpeg's libraries): frame-accurate random access, and writing with sound kept.

:class:`VideoReader` indexes a file's video packets once (a demux pass, nothing decoded) and numbers the
frames by presentation time, so frame N is found by its timestamp — exact for variable frame rate too: seek
to the keyframe before it and decode forward. On the way, H.264 pictures no other picture refers to
(nal_ref_idc = 0, H.264 §7.4.1) that come more than :data:`HELD_BEFORE` frames before the target are not
decoded at all (a third to a half of an x264 stream's B-frames), and the pictures that are decoded are held
as the codec left them (YUV, ~1.5 bytes a pixel) in a memory-bounded cache, converted to RGB only when asked
for; with a small cache of converted frames, stepping ±1 and scrubbing back are instant, and dragging
forward through a group of pictures keeps the decoder going instead of seeking again. Frames come out
upright (a phone's display rotation applied) as H×W×3 float32 RGB in [0, 1], from 8- or 10-bit sources alike.

:class:`VideoWriter` encodes restored frames (H.264 by default; HEVC, VP9, AV1, ProRes, FFV1 lossless) with
the source's timestamps, copies its audio and subtitle streams packet for packet (no re-encode), pads an odd
size for the encoder's chroma subsampling and records the crop, writes to a hidden temporary name and
renames it into place — never over the input; a cancelled or failed export leaves nothing behind.

A file that is cut short (a copy that stopped, a camera that lost power) is read as far as it goes: its
frames up to the break are indexed and restored, and :attr:`VideoInfo.notes` says how many of how many.
"""

from __future__ import annotations

import os
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from weatherstudio.core.errors import WeatherStudioError

HELD_BEFORE = 8  # a seek decodes every picture this many frames before its target (stepping back finds them held)
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif"}


class VideoError(WeatherStudioError):
    """A video that cannot be read or written; the message is one line for the user."""


@dataclass(frozen=True)
class CodecChoice:
    """An encoder the export offers: FFmpeg's name, pixel format, quality option and the containers it fits.

    ``odd_pix_fmt``: the format used for an odd frame size (no chroma subsampling, so the size is kept); None
    where the encoder has none, and the frame is then padded by a pixel.
    """

    encoder: str
    pix_fmt: str
    quality: str  # "crf", "profile" (ProRes) or "" (lossless)
    default_quality: int
    containers: tuple[str, ...]
    odd_pix_fmt: str | None = None


CODECS: dict[str, CodecChoice] = {
    "h264": CodecChoice("libx264", "yuv420p", "crf", 18, (".mp4", ".mov", ".mkv", ".m4v"), "yuv444p"),
    "hevc": CodecChoice("libx265", "yuv420p", "crf", 22, (".mp4", ".mov", ".mkv", ".m4v"), "yuv444p"),
    "vp9": CodecChoice("libvpx-vp9", "yuv420p", "crf", 31, (".webm", ".mkv"), "yuv444p"),
    "av1": CodecChoice("libsvtav1", "yuv420p", "crf", 30, (".mp4", ".webm", ".mkv")),
    "prores": CodecChoice("prores_ks", "yuv422p10le", "profile", 3, (".mov", ".mkv"), "yuv444p10le"),
    "ffv1": CodecChoice("ffv1", "yuv444p", "", 0, (".mkv",), "yuv444p"),
}
#: Encoder speed, traded against file size at the same quality setting. "fast" is the default: the network is
#: the slow part of an export, and x264's "veryfast" takes ~81 ms of CPU a 1080p frame here against "medium"'s
#: ~113, for a file about as large at the same CRF and ~0.65 dB further from the frames it was given
#: (``benchmarks/video.py --encoders`` measures both).
SPEEDS = ("fast", "balanced", "small")
ENCODER_SPEED: dict[str, dict[str, dict[str, str]]] = {
    "h264": {s: {"preset": p} for s, p in zip(SPEEDS, ("veryfast", "medium", "slow"), strict=True)},
    "hevc": {
        s: {"preset": p, "x265-params": "log-level=error"}
        for s, p in zip(SPEEDS, ("veryfast", "medium", "slow"), strict=True)
    },
    "vp9": {s: {"deadline": "good", "cpu-used": c, "row-mt": "1"} for s, c in zip(SPEEDS, "521", strict=True)},
    "av1": {s: {"preset": p} for s, p in zip(SPEEDS, ("10", "8", "5"), strict=True)},
}
#: The codec each container gets when none is named.
DEFAULT_CODEC = {".webm": "vp9"}
#: Containers an export writes (AVI is read, not written: its muxer cannot keep variable timestamps).
WRITE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # "audio" or "subtitle"
    codec: str
    language: str = ""


@dataclass(frozen=True)
class VideoInfo:
    """What a user would miss if an export lost it."""

    path: Path
    width: int  # as displayed (after rotation)
    height: int
    frame_count: int
    fps: Fraction  # average frame rate
    duration: float  # seconds
    rotation: int  # display rotation in degrees (0, 90, 180, 270), applied to the frames we return
    codec: str
    pix_fmt: str
    bit_depth: int
    color_range: int
    colorspace: int
    variable_rate: bool
    time_base: Fraction
    streams: tuple[StreamInfo, ...] = field(default_factory=tuple)
    #: remarks for the user, e.g. that the file ends early and only its first frames decode
    notes: tuple[str, ...] = ()

    def timecode(self, index: int, pts: int | None = None) -> str:
        """``HH:MM:SS.mmm`` of frame ``index`` (by its timestamp when given)."""
        seconds = float(pts * self.time_base) if pts is not None else index / float(self.fps or 1)
        h, rem = divmod(seconds, 3600)
        m, s = divmod(rem, 60)
        return f"{int(h):02d}:{int(m):02d}:{s:06.3f}"


def _av() -> Any:
    try:
        import av
    except ImportError:  # pragma: no cover - a dependency of the package
        raise VideoError("reading video needs PyAV ('pip install av')") from None
    return av


def _avcc_nal_length(stream: Any) -> int:
    """The NAL length-prefix size (1, 2 or 4 bytes) of an H.264 stream stored the MP4/MKV way (avcC, ISO
    14496-15 §5.3.3), or 0 where its packets are not in that form (Annex B start codes, other codecs)."""
    ctx = stream.codec_context
    extra = bytes(ctx.extradata or b"") if ctx is not None else b""
    if ctx is None or ctx.name != "h264" or len(extra) < 7 or extra[0] != 1:
        return 0
    return (extra[4] & 3) + 1


def _h264_disposable(data: bytes, nal_length: int) -> bool:
    """Whether an H.264 access unit is a non-reference picture: every coded slice (NAL types 1–5) has
    nal_ref_idc = 0 (H.264 §7.4.1). Anything unparsable counts as a reference (decoded, to stay exact)."""
    i, slices = 0, 0
    while i + nal_length < len(data):
        size = int.from_bytes(data[i : i + nal_length], "big")
        header = data[i + nal_length]
        if 1 <= header & 0x1F <= 5:
            if header & 0x60:
                return False
            slices += 1
        if size <= 0:
            return False
        i += nal_length + size
    return slices > 0 and i == len(data)


def _rotation_of(stream: Any, first_frame: Any | None) -> int:
    """The display rotation (clockwise degrees) of a stream: the frame's display matrix, else the 'rotate' tag."""
    angle = 0.0
    if first_frame is not None and getattr(first_frame, "rotation", None):
        angle = -float(first_frame.rotation)  # FFmpeg reports counter-clockwise
    elif stream.metadata.get("rotate"):
        angle = float(stream.metadata["rotate"])
    return int(round(angle / 90.0)) * 90 % 360


def _bit_depth(pix_fmt: str) -> int:
    for depth in (16, 12, 10, 9):
        if f"p{depth}" in pix_fmt or f"{depth}le" in pix_fmt or f"{depth}be" in pix_fmt:
            return depth
    return 8


class VideoReader:
    """Frame N of a video file on demand, exact by timestamp, with a small decoded-frame cache."""

    def __init__(self, path: str | os.PathLike[str], cache_frames: int = 8, raw_cache_bytes: int = 256 * 2**20) -> None:
        av = _av()
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"{self.path}: no such file")
        try:
            self._container = av.open(str(self.path))
        except av.error.EOFError:
            raise VideoError(f"{self.path}: holds no frames (the file ends before the first one)") from None
        except av.FFmpegError as exc:
            raise VideoError(f"{self.path}: not a video FFmpeg can read ({_reason(exc)})") from None
        videos = self._container.streams.video
        if not videos:
            self._container.close()
            kinds = sorted({s.type for s in self._container.streams}) or ["nothing"]
            raise VideoError(f"{self.path}: holds no video stream (only {', '.join(kinds)})")
        self._stream = videos[0]
        self._stream.thread_type = "AUTO"
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = max(2, cache_frames)
        self._raw: OrderedDict[int, tuple[Any, int]] = OrderedDict()  # decoded pictures (YUV) and their bytes
        self._raw_bytes = 0
        self._raw_budget = max(0, raw_cache_bytes)
        self._nal_length = _avcc_nal_length(self._stream)
        self.skipped_pictures = 0  # non-reference pictures a seek did not decode (for benchmarks)
        self._skip_before = 0
        self._decoder: Any = None  # an iterator of decoded frames, positioned after ``self._next``
        self._next = -1
        self._damaged = False
        self._pts = self._index_packets()
        if not self._pts:
            self.close()
            raise VideoError(f"{self.path}: the video stream holds no frames")
        self._index_of = {p: i for i, p in enumerate(self._pts)}
        first = self._decode_first()
        self.info = self._describe(first)

    # -- index and metadata -----------------------------------------------------------------------------------
    def _index_packets(self) -> list[int]:
        """Presentation timestamps of every video packet, sorted (a demux pass, nothing decoded); on the way,
        where the file's streams end (``self._file_end``, seconds), to tell a file that is cut short."""
        av = _av()
        pts: list[int] = []
        keys: set[int] = set()
        self._file_end = 0.0
        try:
            for packet in self._container.demux():
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None or packet.size == 0:
                    continue
                end = float((stamp + (packet.duration or 0)) * packet.time_base)
                self._file_end = max(self._file_end, end)
                if packet.stream.index == self._stream.index:
                    pts.append(int(stamp))
                    if packet.is_keyframe:
                        keys.add(int(stamp))
        except av.FFmpegError:
            self._damaged = True  # a damaged tail: the frames before it are indexed (and decoding stops there too)
        if pts:
            self._container.seek(0, stream=self._stream)
        ordered = sorted(set(pts))
        # the frame numbers of the keyframes, ascending (a seek to frame N starts at the last one ≤ N)
        self._keyframes = np.array([i for i, p in enumerate(ordered) if p in keys] or [0], dtype=np.int64)
        return ordered

    def _decode_first(self) -> Any:
        av = _av()
        try:
            self._container.seek(self._pts[0], stream=self._stream, backward=True)
            for frame in self._container.decode(self._stream):
                return frame
        except av.FFmpegError as exc:
            codec = self._stream.codec_context.name if self._stream.codec_context else "unknown"
            raise VideoError(f"{self.path}: cannot decode its {codec} video ({_reason(exc)})") from None
        raise VideoError(f"{self.path}: the video stream holds no decodable frame")

    def _describe(self, first: Any) -> VideoInfo:
        s = self._stream
        ctx = s.codec_context
        rotation = _rotation_of(s, first)
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
        tb = Fraction(s.time_base) if s.time_base else Fraction(1, 90000)
        steps = np.diff(self._pts) if len(self._pts) > 1 else np.array([1])
        variable = bool(len(steps) > 1 and steps.max() - steps.min() > max(1, 0.02 * np.median(steps)))
        span = (self._pts[-1] - self._pts[0]) * tb
        fps = Fraction(s.average_rate) if s.average_rate else None
        if not fps:
            fps = Fraction(len(self._pts) - 1, 1) / span if span > 0 else Fraction(25)
        duration = float(span) + 1.0 / float(fps)
        streams = tuple(
            StreamInfo(st.index, st.type, st.codec_context.name if st.codec_context else "", st.language or "")
            for st in self._container.streams
            if st.type in ("audio", "subtitle")
        )
        pix_fmt = first.format.name
        notes: list[str] = []
        expected = int(s.frames or 0)  # the video stream's own count or duration (never the audio's)
        if not expected and s.duration:
            expected = round(float(s.duration * tb) * float(fps))
        declared = self._container.duration / 1e6 if self._container.duration else 0.0  # the header's length
        start = float(self._container.start_time or 0) / 1e6
        missing = start + declared - self._file_end  # seconds the header promises but no stream holds
        if self._damaged or expected > len(self._pts) + 1 or missing > 2.0 / float(fps):
            total = max(expected, round(declared * float(fps)))
            of = f" of about {total}" if total > len(self._pts) else ""
            notes.append(f"the file is damaged or cut short: only its first {len(self._pts)}{of} frames can be read")
        return VideoInfo(
            self.path,
            w,
            h,
            len(self._pts),
            fps,
            duration,
            rotation,
            ctx.name,
            pix_fmt,
            _bit_depth(pix_fmt),
            int(getattr(first, "color_range", 0) or 0),
            int(getattr(first, "colorspace", 0) or 0),
            variable,
            tb,
            streams,
            tuple(notes),
        )

    @property
    def frame_count(self) -> int:
        return len(self._pts)

    @property
    def timestamps(self) -> list[int]:
        """Every frame's presentation timestamp, in the stream's time base."""
        return list(self._pts)

    # -- frames -----------------------------------------------------------------------------------------------
    def frame(
        self,
        index: int,
        on_keyframe: Callable[[int, np.ndarray], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> np.ndarray | None:
        """Frame ``index`` (0-based), upright, H×W×3 float32 RGB in [0, 1].

        When reaching it means a seek, ``on_keyframe(i, pixels)`` first gets the keyframe it starts from (what a
        scrubbing viewer can show at once), and ``should_stop()`` is asked after each decoded frame: True
        abandons the decode and returns None (a newer frame was asked for).
        """
        if not 0 <= index < len(self._pts):
            raise VideoError(f"{self.path}: no frame {index} (it has {len(self._pts)})")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        if index in self._raw:
            return self._keep(index, self._to_rgb(self._raw[index][0]))
        first = not self._decodes_forward_to(index)
        if first:
            self._seek(index)
        self._skip_before = self._pts[max(0, index - HELD_BEFORE)]
        while True:  # the pictures on the way are held as decoded, converted to RGB only when asked for
            got, arr = self._decode_one(convert_from=0 if first and on_keyframe else index)
            if got >= index and arr is not None:  # a timestamp not produced (damaged): the nearest after it
                return arr
            if first and on_keyframe and arr is not None:
                on_keyframe(got, arr)
            first = False
            if should_stop is not None and should_stop():
                return None

    def _decodes_forward_to(self, index: int) -> bool:
        """Whether the decoder, where it stands, reaches ``index`` sooner than a seek would: it is at or before
        it, with no keyframe in between (scrubbing forward through a group of pictures keeps decoding), and it
        cannot have been left out on the way to an earlier, abandoned target."""
        if self._decoder is None or self._next < 0 or index < self._next or self._pts[index] < self._skip_before:
            return False
        key = int(self._keyframes[np.searchsorted(self._keyframes, index, side="right") - 1])
        return key < self._next or index == self._next

    def _seek(self, index: int) -> None:
        av = _av()
        try:
            self._container.seek(self._pts[index], stream=self._stream, backward=True, any_frame=False)
        except av.FFmpegError as exc:
            raise VideoError(f"{self.path}: cannot seek to frame {index} ({_reason(exc)})") from None
        self._decoder = self._decode_packets()
        self._next = -1

    def _decode_packets(self) -> Any:
        """Decoded frames from the demuxer's position, leaving out the non-reference H.264 pictures shown before
        ``self._skip_before`` (the pts ``HELD_BEFORE`` frames before the one asked for, so that stepping back from
        it finds every frame held): nothing is predicted from them, so the frames after are the same pixels."""
        codec = self._stream.codec_context
        for packet in self._container.demux(self._stream):
            if (
                self._nal_length
                and packet.pts is not None
                and packet.pts < self._skip_before
                and not packet.is_keyframe
                and _h264_disposable(bytes(packet), self._nal_length)
            ):
                self.skipped_pictures += 1
                continue
            yield from codec.decode(packet)

    def _decode_one(self, convert_from: int = 0) -> tuple[int, np.ndarray | None]:
        """The next decoded frame: its index (by timestamp) and its pixels, converted (and cached) only from
        ``convert_from`` on — converting the frames between a keyframe and the target would double a seek."""
        av = _av()
        while True:
            try:
                frame = next(self._decoder)
            except StopIteration:
                self._decoder = None
                where = f"after frame {self._next - 1}" if self._next > 0 else "before the frame asked for"
                raise VideoError(f"{self.path}: the video ends early (damaged {where})") from None
            except av.FFmpegError as exc:
                self._decoder = None
                raise VideoError(f"{self.path}: damaged near frame {max(0, self._next)} ({_reason(exc)})") from None
            stamp = frame.pts if frame.pts is not None else frame.dts
            index = self._index_of.get(int(stamp)) if stamp is not None else None
            if index is None:
                continue
            self._next = index + 1
            self._keep_raw(index, frame)
            if index < convert_from:
                return index, None
            return index, self._keep(index, self._to_rgb(frame))

    def _keep(self, index: int, arr: np.ndarray) -> np.ndarray:
        self._cache[index] = arr
        self._cache.move_to_end(index)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arr

    def _keep_raw(self, index: int, frame: Any) -> None:
        """Hold a decoded picture (the codec's own planes, ~1.5 bytes a pixel), within the byte budget."""
        size = sum(int(p.buffer_size) for p in frame.planes)
        if size > self._raw_budget or index in self._raw:
            return
        self._raw[index] = (frame, size)
        self._raw_bytes += size
        while self._raw_bytes > self._raw_budget:
            self._raw_bytes -= self._raw.popitem(last=False)[1][1]

    def _to_rgb(self, frame: Any) -> np.ndarray:
        """Upright float32 RGB by the frame's own matrix and range: 16-bit for deep sources, 8-bit otherwise."""
        deep = _bit_depth(frame.format.name) > 8
        rgb = frame.reformat(
            format="rgb48le" if deep else "rgb24",
            src_colorspace=_colorspace(frame.colorspace, frame.height),
            src_color_range=int(frame.color_range or 1),
        )
        scale = np.float32(65535.0 if deep else 255.0)
        arr = np.divide(rgb.to_ndarray(), scale, dtype=np.float32)
        if self.info.rotation:
            arr = np.ascontiguousarray(np.rot90(arr, k=-(self.info.rotation // 90)))
        return arr

    def side_streams(self) -> list[Any]:
        """The audio and subtitle streams an export copies."""
        return [st for st in self._container.streams if st.type in ("audio", "subtitle")]

    def __iter__(self):
        for i in range(len(self._pts)):
            yield self.frame(i)

    def forget(self) -> None:
        """Drop every cached frame and the decoder's position (the next frame asked for seeks afresh)."""
        self._cache.clear()
        self._raw.clear()
        self._raw_bytes = 0
        self._decoder = None
        self._next = -1

    def close(self) -> None:
        self.forget()
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FrameSequence:
    """A folder of frames (image files in name order) as a silent video at a fixed frame rate, for export."""

    def __init__(self, folder: str | os.PathLike[str], fps: float = 24.0) -> None:
        from weatherstudio.core.image_io import list_images

        self.path = Path(folder)
        self.files = list_images([self.path])
        if not self.files:
            raise VideoError(f"{self.path}: no frames (images) in this folder")
        rate = Fraction(fps).limit_denominator(1001)
        self._pts = list(range(len(self.files)))
        first = self.frame(0)
        h, w = first.shape[:2]
        self.info = VideoInfo(
            self.path,
            w,
            h,
            len(self.files),
            rate,
            len(self.files) / float(rate),
            0,
            "images",
            "rgb24",
            8,
            0,
            2,
            False,
            1 / rate,
        )

    @property
    def frame_count(self) -> int:
        return len(self.files)

    def frame(self, index: int, **_: Any) -> np.ndarray:
        from weatherstudio.core.image_io import read_image

        rgb = read_image(self.files[index]).rgb
        if index and rgb.shape[:2] != (self.info.height, self.info.width):
            raise VideoError(f"{self.files[index].name}: not the size of the first frame; a video has one size")
        return rgb

    def side_streams(self) -> list[Any]:
        return []

    def close(self) -> None:
        """Nothing to close (the API of :class:`VideoReader`)."""

    def __enter__(self) -> FrameSequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: str | os.PathLike[str], fps: float = 24.0, streaming: bool = False) -> VideoReader | FrameSequence:
    """A video file, or a folder of frames played at ``fps``. ``streaming``: frames will be read once, in order
    (an export), so nothing is held for stepping back — held frames would make every new one fresh memory."""
    if Path(path).is_dir():
        return FrameSequence(path, fps)
    return VideoReader(path, cache_frames=2, raw_cache_bytes=0) if streaming else VideoReader(path)


def is_video_file(path: str | os.PathLike[str]) -> bool:
    """A video by its name — and an animated GIF (a still GIF is a photo)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".gif":
        try:
            from PIL import Image

            with Image.open(p) as im:
                return bool(getattr(im, "is_animated", False))
        except Exception:  # noqa: BLE001 - not readable: let the photo reader say why
            return False
    return suffix in VIDEO_SUFFIXES


def _colorspace(avcol_spc: int, height: int) -> int:
    """swscale's matrix for a frame's AVColorSpace: BT.709 when tagged (or unspecified HD), else BT.601."""
    if avcol_spc == 1 or (avcol_spc in (0, 2) and height >= 720):
        return 1  # ITU709
    if avcol_spc in (9, 10):
        return 9  # BT2020
    return 5  # ITU601


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0].strip() or type(exc).__name__


class VideoWriter:
    """Encode frames into ``dst`` with the source's timing, audio and subtitles (see the module)."""

    def __init__(
        self,
        dst: str | os.PathLike[str],
        source: VideoReader,
        codec: str | None = None,
        quality: int | None = None,
        overwrite: bool = False,
        start: int = 0,
        speed: str = "fast",
    ) -> None:
        """``start``: the first frame that will be written (a range's sound starts at its time); ``speed``: one
        of :data:`SPEEDS` (ProRes and FFV1 have one speed)."""
        av = _av()
        self.dst = Path(dst)
        suffix = self.dst.suffix.lower()
        if suffix not in WRITE_SUFFIXES:
            raise VideoError(f"{self.dst}: write a video as {', '.join(WRITE_SUFFIXES)}")
        if self.dst.resolve() == source.path.resolve() or (self.dst.exists() and self.dst.samefile(source.path)):
            raise VideoError(f"{self.dst}: is the input video; choose another output")
        if self.dst.exists() and not overwrite:
            raise VideoError(f"{self.dst}: exists; pass --overwrite to replace it")
        name = codec or DEFAULT_CODEC.get(suffix, "h264")
        if name not in CODECS:
            raise VideoError(f"unknown codec {name!r}; one of {', '.join(CODECS)}")
        choice = CODECS[name]
        if speed not in SPEEDS:
            raise VideoError(f"unknown encoder speed {speed!r}; one of {', '.join(SPEEDS)}")
        if suffix not in choice.containers:
            raise VideoError(f"{name} does not go in a {suffix} file; use {', '.join(choice.containers)}")
        self.source = source
        self.codec = name
        info = source.info
        self.width, self.height = info.width, info.height
        odd = self.width % 2 or self.height % 2
        pix_fmt = choice.odd_pix_fmt if odd and choice.odd_pix_fmt else choice.pix_fmt
        sub = 2 if pix_fmt.startswith(("yuv420", "yuv422")) else 1
        self.pad = ((-self.height) % sub, (-self.width) % sub)  # rows, columns added for the encoder
        self.dst.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.dst.with_name(f".{self.dst.stem}.{secrets.token_hex(4)}.part{suffix}")
        if name == "av1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise; errors only
        try:
            self._out = av.open(str(self.tmp), mode="w")
            self._video = self._out.add_stream(choice.encoder, rate=info.fps)
            self._video.width = self.width + self.pad[1]
            self._video.height = self.height + self.pad[0]
            self._video.pix_fmt = pix_fmt
            self._video.time_base = info.time_base
            self._video.codec_context.time_base = info.time_base
            q = choice.default_quality if quality is None else int(quality)
            options = dict(ENCODER_SPEED.get(name, {}).get(speed, {}))
            if choice.quality == "crf":
                options["crf"] = str(q)
                if name == "vp9":
                    options["b"] = "0"
            elif choice.quality == "profile":
                options["profile"] = "4" if pix_fmt.startswith("yuv444") else str(max(0, min(3, q)))
            self._video.options = options
            if any(self.pad):
                self._video.metadata["comment"] = f"padded by {self.pad[1]}×{self.pad[0]} px for {choice.encoder}"
            self._matrix = _colorspace(info.colorspace, info.height)
            ctx = self._video.codec_context
            ctx.colorspace = 1 if self._matrix == 1 else (9 if self._matrix == 9 else 6)
            ctx.color_range = 1  # limited ("MPEG") range, what players expect
            self._copied: dict[int, Any] = {}
            for st in source.side_streams():
                if st.type in ("audio", "subtitle"):
                    try:
                        self._copied[st.index] = self._out.add_stream_from_template(st)
                    except (ValueError, av.FFmpegError):
                        continue  # a stream this container cannot hold is dropped (the caller may say so)
        except (av.FFmpegError, ValueError) as exc:  # ValueError: an encoder this FFmpeg build lacks
            self._cleanup()
            raise VideoError(f"{self.dst}: cannot start the {name} encoder ({_reason(exc)})") from None
        self.dropped = [s for s in info.streams if s.index not in self._copied]
        self.frames_written = 0
        self._side = av.open(str(source.path)) if self._copied else None  # audio/subtitles, read alongside
        wanted = [st for st in self._side.streams if st.index in self._copied] if self._side else []
        self._side_packets = self._side.demux(wanted) if self._side else iter(())
        self._held: Any = None
        first = min(max(0, start), len(source._pts) - 1)
        self._origin = source._pts[first]  # the first written frame's timestamp becomes 0 (a range, or a TS file)
        self._start_time = float(self._origin * info.time_base)
        self._end_time: float | None = None  # the end of the last written frame
        self._scratch: np.ndarray | None = None  # write()'s float buffer, reused frame to frame

    def write(self, index: int, rgb: np.ndarray) -> None:
        """Encode the restored frame ``index`` (H×W×3 float32 in [0, 1]) with that frame's timestamp; the
        sound up to this frame's time is muxed alongside, so memory stays bounded however long the clip."""
        av = _av()
        deep = _bit_depth(self._video.pix_fmt) > 8  # ProRes: 10 bits from the float frame, not 8
        top = 65535.0 if deep else 255.0
        if self._scratch is None or self._scratch.shape != rgb.shape:
            self._scratch = np.empty(rgb.shape, np.float32)
        scaled = np.multiply(rgb, np.float32(top), out=self._scratch, casting="unsafe")
        scaled += np.float32(0.5)
        np.clip(scaled, 0, top, out=scaled)
        pixels = scaled.astype(np.uint16 if deep else np.uint8)
        if any(self.pad):
            pixels = np.pad(pixels, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        rgb_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb48le" if deep else "rgb24")
        frame = rgb_frame.reformat(
            format=self._video.pix_fmt, src_colorspace=self._matrix, dst_colorspace=self._matrix, dst_color_range=1
        )
        tb = self.source.info.time_base
        frame.pts = self.source._pts[index] - self._origin
        frame.time_base = tb
        seconds = float(self.source._pts[index] * tb)
        self._end_time = seconds + 1.0 / float(self.source.info.fps or 25)
        try:
            for packet in self._video.encode(frame):
                self._out.mux(packet)
            self._copy_side(seconds)
        except av.FFmpegError as exc:
            raise VideoError(f"{self.dst}: encoding frame {index} failed ({_reason(exc)})") from None
        self.frames_written += 1

    def _copy_side(self, until: float | None) -> None:
        """The source's audio and subtitle packets from the first written frame up to ``until`` seconds (None:
        the end of the last written frame), unchanged but for a shift that makes the first frame time 0."""
        if until is None:
            until = self._end_time if self._end_time is not None else self._start_time
        while True:
            packet = self._held
            self._held = None
            if packet is None:
                packet = next(self._side_packets, None)
            if packet is None:
                return
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is None:
                continue
            seconds = float(stamp * packet.time_base)
            if until is not None and seconds > until:
                self._held = packet
                return
            if self._start_time and seconds < self._start_time:
                continue  # before the range being exported
            if self._start_time:
                shift = round(self._start_time / float(packet.time_base))
                packet.pts = None if packet.pts is None else packet.pts - shift
                packet.dts = None if packet.dts is None else packet.dts - shift
            packet.stream = self._copied[packet.stream.index]
            self._out.mux(packet)

    def finish(self) -> Path:
        """Flush the encoder, copy the sound, and move the file into place."""
        av = _av()
        try:
            for packet in self._video.encode(None):
                self._out.mux(packet)
            self._copy_side(None)
            self._out.close()
            if self._side is not None:
                self._side.close()
        except av.FFmpegError as exc:
            self._cleanup()
            raise VideoError(f"{self.dst}: finishing the file failed ({_reason(exc)})") from None
        os.replace(self.tmp, self.dst)
        return self.dst

    def abort(self) -> None:
        """Stop without output: the partial file is removed."""
        self._cleanup()

    def _cleanup(self) -> None:
        for name in ("_out", "_side"):
            try:
                handle = getattr(self, name, None)
                if handle is not None:
                    handle.close()
            except Exception:  # noqa: BLE001 - closing a half-written file may fail; it is deleted anyway
                pass
        if self.tmp.exists():
            self.tmp.unlink()
