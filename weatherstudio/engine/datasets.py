"""Training data: real pairs from folders and pairs synthesized on the fly from clean photos.

A batch is a pure function of (seed, step, rank): resuming at step s draws exactly the batches an
uninterrupted run would have drawn, and each data-parallel rank draws its own.

Synthetic pairs come from the clean photos of ``<data>/clean``, split once and for all by a hash of each
photo's folder and name (:func:`split_of`): 8 in 10 train, 1 validates, 1 is the synthetic test set. The
training photos are read once into memory (long side ≤ :data:`MAX_SIDE`, 8-bit); each sample is a random crop,
a random flip and weather synthesized on the crop at the scale the synthesis would use for the whole photo.
Validation and test sets are made the same way from the other splits with fixed seeds.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.core.image_io import list_images, read_image, to_uint8

#: Photos of ../shared/data/clean whose name hashes to these buckets (of 10) never train: 8 = validation, 9 = test.
VAL_BUCKET, TEST_BUCKET = 8, 9
#: Seeds of the fixed synthetic sets made on those photos (any training seed gives the same validation and test data).
VAL_SEED, TEST_SEED = 8, 9


def split_of(path: Path) -> str:
    """'train', 'val' or 'test' for a clean photo, fixed by a hash of its folder and name."""
    key = f"{path.parent.name}/{path.name}".encode()
    bucket = int(hashlib.sha1(key).hexdigest(), 16) % 10
    return {VAL_BUCKET: "val", TEST_BUCKET: "test"}.get(bucket, "train")


def is_holdout(name: str, every: int) -> bool:
    """Whether a real pair is held out for validation: one name in ``every``, fixed by a hash (0: none)."""
    return every > 0 and int(hashlib.sha1(name.encode()).hexdigest(), 16) % every == 0


def clean_photos(root: Path, split: str) -> list[Path]:
    """The clean photos under ``root`` (recursively, by folder) that belong to ``split``."""
    folders = sorted({p.parent for p in root.rglob("*") if p.is_file()})
    return [p for p in list_images(folders) if split_of(p) == split]


#: A user's own data (fine-tuning) holds out this share for validation, at least one item.
USER_HOLDOUT = 0.2


def user_holdout(names: list[str]) -> set[str]:
    """The names a user's own data holds out for validation: ``max(1, round(0.2·n))`` of them, picked by a
    hash of the name (fixed for a given folder; independent of the order files are listed in)."""
    if len(names) < 2:
        raise WeatherStudioError(
            f"{len(names)} usable image(s): fine-tuning needs at least 2 (one is held out to validate)"
        )
    k = max(1, round(USER_HOLDOUT * len(names)))
    return set(sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())[:k])


#: A user's image smaller than this on a side is skipped (it cannot teach a network anything).
USER_MIN_SIDE = 32


def read_user_images(paths: list[Path], max_side: int = 0) -> tuple[dict[str, np.ndarray], list[str]]:
    """A user's images by name (8-bit RGB, long side ≤ ``max_side``), and a note for each one skipped
    (unreadable, or smaller than :data:`USER_MIN_SIDE` on a side)."""
    images: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    for p in paths:
        try:
            rgb = load_photo(p, max_side)
        except (WeatherStudioError, OSError, ValueError) as exc:
            skipped.append(f"{p.name}: {str(exc).splitlines()[0][:120]}")
            continue
        if min(rgb.shape[:2]) < USER_MIN_SIDE:
            skipped.append(f"{p.name}: {rgb.shape[1]}×{rgb.shape[0]} px, under {USER_MIN_SIDE} px on a side")
            continue
        images[p.name] = rgb
    return images, skipped


@dataclass
class PairFolder:
    """Real degraded/clean pairs with the same file names in two folders, held in memory as 8-bit."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    names: list[str]
    skipped: list[str] = field(default_factory=list)  # a user's pairs that could not be used, and why

    @classmethod
    def load(
        cls, degraded_dir: Path, clean_dir: Path, holdout: int = 0, part: str = "train", user: bool = False
    ) -> PairFolder:
        """The pairs of one part: ``train`` leaves out the held-out names (1 in ``holdout``, or a user's
        folders' :func:`user_holdout` with ``user``); ``val`` is them."""
        clean = {p.name: p for p in list_images([clean_dir])}
        paired = [p for p in list_images([degraded_dir]) if p.name in clean]
        if user:
            return cls._load_user(degraded_dir, clean_dir, paired, clean, part)
        items = [p for p in paired if is_holdout(p.name, holdout) == (part == "val")]
        if not items:
            raise WeatherStudioError(f"no pairs in {degraded_dir} / {clean_dir}")
        return cls(
            [to_uint8(read_image(p).rgb) for p in items],
            [to_uint8(read_image(clean[p.name]).rgb) for p in items],
            [p.name for p in items],
        )

    @classmethod
    def _load_user(
        cls, degraded_dir: Path, clean_dir: Path, paired: list[Path], clean: dict[str, Path], part: str
    ) -> PairFolder:
        """A user's paired folders: unreadable, tiny or differently sized pairs skipped (and listed)."""
        for d in (degraded_dir, clean_dir):
            if not d.is_dir():
                raise WeatherStudioError(f"no folder {d}")
        if not paired:
            names = [p.name for p in list_images([degraded_dir])][:3]
            raise WeatherStudioError(
                f"no pairs: none of the images in {degraded_dir} ({', '.join(names) or 'none'}) has a file of the "
                f"same name in {clean_dir}"
            )
        degraded, skipped = read_user_images(paired)
        targets, skipped_clean = read_user_images([clean[n] for n in degraded])
        skipped += [f"{clean_dir.name}/{s}" for s in skipped_clean]
        names = []
        for n in targets:
            if degraded[n].shape != targets[n].shape:
                skipped.append(
                    f"{n}: {degraded[n].shape[1]}×{degraded[n].shape[0]} against "
                    f"{targets[n].shape[1]}×{targets[n].shape[0]} in {clean_dir.name}/"
                )
            else:
                names.append(n)
        if len(names) < 2:
            why = f" (skipped: {'; '.join(skipped[:3])})" if skipped else ""
            raise WeatherStudioError(
                f"{degraded_dir} / {clean_dir}: {len(names)} usable pair(s){why}; fine-tuning needs at least 2"
            )
        held = user_holdout(names)
        items = [n for n in names if (n in held) == (part == "val")]
        return cls([degraded[n] for n in items], [targets[n] for n in items], items, skipped)

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass
class ClipFolder:
    """A user's rainy clips with their clean frames (``<clip>/input`` and ``<clip>/target``, same frame names),
    held as 8-bit with the long side ≤ ``max_side``; one clip in five (at least one) held out by name."""

    inputs: list[list[np.ndarray]]
    targets: list[list[np.ndarray]]
    names: list[str]
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path, part: str = "train", max_side: int = 640, min_frames: int = 2) -> ClipFolder:
        from weatherstudio.engine.bench import clip_folders

        if not Path(root).is_dir():
            raise WeatherStudioError(f"no folder {root}")
        clips, skipped = [], []
        for name, inputs, targets in clip_folders(Path(root)):
            xs, bad = read_user_images(inputs, max_side)
            ys, bad_clean = read_user_images(targets, max_side)
            frames = [n for n in xs if n in ys and xs[n].shape == ys[n].shape]
            if bad or bad_clean or len(frames) < min_frames:
                skipped.append(
                    f"{name}: {len(frames)} usable frame pair(s)"
                    + (f" ({(bad + bad_clean)[0]})" if bad or bad_clean else "")
                )
                continue
            clips.append((name, [xs[n] for n in frames], [ys[n] for n in frames]))
        if len(clips) < 2:
            why = f" (skipped: {'; '.join(skipped[:3])})" if skipped else ""
            raise WeatherStudioError(f"{root}: {len(clips)} usable clip(s){why}; fine-tuning needs at least 2")
        held = user_holdout([c[0] for c in clips])
        keep = [c for c in clips if (c[0] in held) == (part == "val")]
        return cls([c[1] for c in keep], [c[2] for c in keep], [c[0] for c in keep], skipped)

    def __len__(self) -> int:
        return len(self.inputs)


def random_crop_pair(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, size: int, flip: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The same random ``size``² crop of two aligned images, with a random horizontal flip."""
    h, w = a.shape[:2]
    if h < size or w < size:
        raise WeatherStudioError(f"image {w}×{h} smaller than the {size}px crop")
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    ca, cb = a[y : y + size, x : x + size], b[y : y + size, x : x + size]
    if flip and rng.random() < 0.5:
        ca, cb = ca[:, ::-1], cb[:, ::-1]
    return ca, cb


def to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
    """A list of H×W×C (or H×W masks) uint8 or float arrays as an N×C×H×W float32 tensor, uint8 scaled by 1/255."""
    arr = np.stack(batch)
    if arr.ndim == 3:
        arr = arr[..., None]
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))
    return t.float().div_(255.0) if arr.dtype == np.uint8 else t.float()


def to_clip_tensor(clips: list[list[np.ndarray]]) -> torch.Tensor:
    """Clips (lists of equally many H×W×C or H×W frames) as an N×T×C×H×W float32 tensor."""
    return torch.stack([to_tensor(frames) for frames in clips])


def batch_rng(seed: int, step: int, rank: int) -> np.random.Generator:
    """The generator for one rank's batch at one step."""
    return np.random.default_rng([seed, step, rank])


# -- clean photos in memory, and pairs synthesized from them ---------------------------------------------

#: Photos are held with their long side at most this many pixels: 300 photos fit in ~300 MB as 8-bit, a
#: random crop costs nothing, and the weather's size follows the (downscaled) photo, as it would for a
#: Snow100K-sized (640×480) picture.
MAX_SIDE = 640

_POOLS: dict[tuple, PhotoPool] = {}


def load_photo(path: Path, max_side: int = MAX_SIDE) -> np.ndarray:
    """One photo as H×W×3 uint8, area-downscaled so that its long side is at most ``max_side`` (0: as is)."""
    rgb = read_image(path).rgb
    h, w = rgb.shape[:2]
    if max_side and max(h, w) > max_side:
        f = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return to_uint8(rgb)


@dataclass
class PhotoPool:
    """The clean photos of one split (see :func:`clean_photos`), downscaled and held in memory as 8-bit."""

    photos: list[np.ndarray]
    names: list[str]
    split: str
    skipped: list[str] = field(default_factory=list)  # a user's files that could not be used, and why

    @classmethod
    def load(cls, root: Path, split: str, max_side: int = MAX_SIDE, user: bool = False) -> PhotoPool:
        """The photos of ``split`` under ``root``, read once per process (later calls share the arrays).

        ``user``: a user's own folder, split by :func:`user_photos` (and read again if its files changed).
        """
        key = (str(Path(root).resolve()), split, int(max_side))
        if user:
            return cls._load_user(Path(root), split, int(max_side))
        if key not in _POOLS:
            paths = clean_photos(Path(root), split) if Path(root).is_dir() else []
            if not paths:
                raise WeatherStudioError(f"no {split!r} photos under {root}")
            _POOLS[key] = cls(
                [load_photo(p, max_side) for p in paths], [f"{p.parent.name}/{p.name}" for p in paths], split
            )
        return _POOLS[key]

    @classmethod
    def _load_user(cls, root: Path, split: str, max_side: int) -> PhotoPool:
        if not root.is_dir():
            raise WeatherStudioError(f"no folder {root}")
        paths = list_images([root])
        key = (str(root.resolve()), f"user:{split}", max_side, tuple((p.name, p.stat().st_mtime_ns) for p in paths))
        if key not in _POOLS:
            if not paths:
                raise WeatherStudioError(f"{root}: no images (JPEG, PNG, TIFF, WebP, ...) in this folder")
            images, skipped = read_user_images(paths, max_side)
            if len(images) < 2:
                why = f" (skipped: {'; '.join(skipped[:3])}{' …' if len(skipped) > 3 else ''})" if skipped else ""
                raise WeatherStudioError(
                    f"{root}: {len(images)} usable photo(s) of {len(paths)}{why}; fine-tuning needs at least 2"
                )
            held = user_holdout(list(images))
            names = [n for n in images if (n in held) == (split == "val")]
            _POOLS[key] = cls([images[n] for n in names], names, split, skipped)
        return _POOLS[key]

    def __len__(self) -> int:
        return len(self.photos)


def random_crop(rng: np.random.Generator, image: np.ndarray, size: int) -> np.ndarray:
    """A random ``size``² crop; an image smaller than that is first upscaled (bicubic) to fit it."""
    h, w = image.shape[:2]
    if h < size or w < size:
        f = size / min(h, w)
        image = cv2.resize(
            image, (max(size, math.ceil(w * f)), max(size, math.ceil(h * f))), interpolation=cv2.INTER_CUBIC
        )
        h, w = image.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return image[y : y + size, x : x + size]


def flip(rng: np.random.Generator, *images: np.ndarray, vertical: bool = False) -> list[np.ndarray]:
    """The same random horizontal (and, with ``vertical``, vertical) flip of aligned images."""
    out = list(images)
    if rng.random() < 0.5:
        out = [a[:, ::-1] for a in out]
    if vertical and rng.random() < 0.5:
        out = [a[::-1] for a in out]
    return [np.ascontiguousarray(a) for a in out]


def rotated_crop_pair(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, size: int, sigma_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """The same random crop of two aligned images, rotated by an angle ~ N(0, σ) (GT-RAIN's augmentation).

    A window of side ``size·(|cos θ| + |sin θ|)`` (the smallest that holds the rotated crop) is cut out, rotated
    about its centre and its central ``size``² kept, so no border ever shows; the angle is shrunk when the
    image cannot hold the window.
    """
    h, w = a.shape[:2]
    theta = float(rng.normal(0.0, sigma_deg)) if sigma_deg > 0 else 0.0
    t = math.radians(theta)
    side = math.ceil(size * (abs(math.cos(t)) + abs(math.sin(t)))) + 2
    if side > min(h, w):
        side, theta = size, 0.0
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    wa, wb = a[y : y + side, x : x + side], b[y : y + side, x : x + side]
    if theta == 0.0:
        off = (side - size) // 2
        return wa[off : off + size, off : off + size], wb[off : off + size, off : off + size]
    c = (side - 1) / 2.0
    m = cv2.getRotationMatrix2D((c, c), theta, 1.0)
    m[:, 2] += (size - side) / 2.0  # centre of the window → centre of the output
    out = [
        cv2.warpAffine(np.ascontiguousarray(v), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        for v in (wa, wb)
    ]
    return out[0], out[1]


def synthesis_scale(shape: tuple[int, ...], kind: str) -> float:
    """The particle-size scale the synthesis would pick for a whole photo of ``shape`` (pass it for its crops)."""
    from weatherstudio.synth.common import image_scale
    from weatherstudio.synth.rain import RAIN_REFERENCE_SHORT_SIDE
    from weatherstudio.synth.snow import SNOW_REFERENCE_SHORT_SIDE

    ref = SNOW_REFERENCE_SHORT_SIDE if kind.startswith("snow") else RAIN_REFERENCE_SHORT_SIDE
    return image_scale(shape, ref)


def pick_preset(rng: np.random.Generator, presets: list[str], weights: list[float] | None = None) -> str:
    """One preset name, uniformly or by ``weights``."""
    if len(presets) == 1:
        return presets[0]
    if weights is None:
        return presets[int(rng.integers(len(presets)))]
    p = np.asarray(weights, np.float64)
    return presets[int(rng.choice(len(presets), p=p / p.sum()))]


def synthesize_crop(
    rng: np.random.Generator, photo: np.ndarray, kind: str, preset: str, crop: int, hflip: bool = True
) -> tuple:
    """A random (flipped) crop of ``photo`` with weather synthesized on it at the whole photo's scale.

    ``kind`` is "snow" (→ :class:`~weatherstudio.synth.SnowSample`) or "rain" (→ ``RainSample``). The
    synthesis pads its particle field beyond the crop, so no margin is needed for the sprites.
    """
    from weatherstudio.synth import synthesize_rain, synthesize_snow

    scale = synthesis_scale(photo.shape, kind)
    clean = random_crop(rng, photo, crop)
    if hflip:
        (clean,) = flip(rng, clean)
    if kind == "snow":
        return synthesize_snow(clean, preset, rng, scale=scale)
    if kind == "rain":
        return synthesize_rain(clean, preset, rng, scale=scale)
    raise WeatherStudioError(f"unknown synthetic weather {kind!r} (snow or rain)")


def snow_free_crop(rng: np.random.Generator, photo: np.ndarray, crop: int, hflip: bool = True) -> tuple:
    """A random (flipped) crop of ``photo`` as a snow-free :class:`~weatherstudio.synth.SnowSample`: x = y,
    mask z = 0 and aberration a = 1 (eq. 1 with no snow), so a training pair that asks for the identity."""
    from weatherstudio.synth import SnowSample

    clean = random_crop(rng, photo, crop)
    if hflip:
        (clean,) = flip(rng, clean)
    y = clean.astype(np.float32) / 255.0 if clean.dtype == np.uint8 else clean.astype(np.float32)
    z = np.zeros(y.shape[:2], np.float32)
    return SnowSample(y.copy(), y, z, np.ones_like(y))


def synthesize_clip(
    rng: np.random.Generator,
    photo: np.ndarray,
    preset: str,
    frames: int,
    size: int,
    region: float = 1.5,
    hflip: bool = True,
) -> list:
    """A rainy clip (list of ``RainSample``) of ``frames`` frames of ``size``² with a moving camera.

    The camera roams a random window ``region``× the frame size (so views stay near the photo's own
    resolution, as the training crops of single images do); streak sizes follow the whole photo.
    """
    from weatherstudio.synth import synthesize_rain_video

    scale = synthesis_scale(photo.shape, "rain")
    want = max(size, round(size * region))
    window = random_crop(rng, photo, min(want, max(size, min(photo.shape[:2]))))
    if hflip:
        (window,) = flip(rng, window)
    return synthesize_rain_video(window, frames, preset, rng, size=(size, size), scale=scale)


def iter_synthetic_pairs(
    pool: PhotoPool, kind: str, presets: list[str], n: int, size: int | None, seed: int
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """A fixed set of (name, degraded, clean) float32 pairs, made one at a time: ``n`` crops of ``size``² (None:
    whole photos).

    Pair i uses photo i mod len(pool), preset i mod len(presets) and its own generator seeded by (seed, i),
    so the set depends on nothing but its arguments. With ``size=None`` the whole photos are used once each
    (``n`` caps their number) and the weather is synthesized at their scale.
    """
    from weatherstudio.synth import synthesize_rain, synthesize_snow

    if kind not in ("snow", "rain"):
        raise WeatherStudioError(f"unknown synthetic weather {kind!r} (snow or rain)")
    count = min(n, len(pool)) if size is None else n
    for i in range(count):
        photo = pool.photos[i % len(pool)]
        preset = presets[i % len(presets)]
        rng = np.random.default_rng([seed, i])
        if size is None:
            fn = synthesize_snow if kind == "snow" else synthesize_rain
            s = fn(photo, preset, rng)
        else:
            s = synthesize_crop(rng, photo, kind, preset, size, hflip=False)
        yield f"{pool.names[i % len(pool)]}#{i}:{kind}-{preset}", s.x, s.y


def synthetic_pairs(
    pool: PhotoPool, kind: str, presets: list[str], n: int, size: int | None, seed: int
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """:func:`iter_synthetic_pairs` as a list (for a validation set held in memory)."""
    return list(iter_synthetic_pairs(pool, kind, presets, n, size, seed))


def iter_synthetic_clips(
    pool: PhotoPool, presets: list[str], n: int, frames: int, size: int, seed: int
) -> Iterator[tuple[str, list[np.ndarray], list[np.ndarray]]]:
    """A fixed set of (name, rainy frames, clean frames) clips, made one at a time like the pairs of
    :func:`iter_synthetic_pairs` (clip i: photo i, preset i mod len(presets), generator (seed, i))."""
    for i in range(n):
        photo = pool.photos[i % len(pool)]
        preset = presets[i % len(presets)]
        rng = np.random.default_rng([seed, i])
        clip = synthesize_clip(rng, photo, preset, frames, size, hflip=False)
        yield f"{pool.names[i % len(pool)]}#{i}:rain-video-{preset}", [f.x for f in clip], [f.y for f in clip]


def synthetic_clips(
    pool: PhotoPool, presets: list[str], n: int, frames: int, size: int, seed: int
) -> list[tuple[str, list[np.ndarray], list[np.ndarray]]]:
    """:func:`iter_synthetic_clips` as a list."""
    return list(iter_synthetic_clips(pool, presets, n, frames, size, seed))
