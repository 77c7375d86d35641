"""Training data: real pairs from folders and pairs synthesized on the fly from clean photos.

A batch is a pure function of (seed, step, rank): resuming at step s draws exactly the batches an
uninterrupted run would have drawn, and each data-parallel rank draws its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.core.image_io import list_images, read_image

#: Photos of ../shared/data/clean whose name hashes to these buckets (of 10) never train: 8 = validation, 9 = test.
VAL_BUCKET, TEST_BUCKET = 8, 9


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


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


@dataclass
class PairFolder:
    """Real degraded/clean pairs with the same file names in two folders, held in memory as 8-bit."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    names: list[str]

    @classmethod
    def load(cls, degraded_dir: Path, clean_dir: Path, holdout: int = 0, part: str = "train") -> PairFolder:
        """The pairs of one part: ``train`` leaves out the held-out names (1 in ``holdout``), ``val`` keeps only them."""
        clean = {p.name: p for p in list_images([clean_dir])}
        items = [
            p for p in list_images([degraded_dir]) if p.name in clean and is_holdout(p.name, holdout) == (part == "val")
        ]
        if not items:
            raise WeatherStudioError(f"no pairs in {degraded_dir} / {clean_dir}")
        return cls(
            [_to_uint8(read_image(p).rgb) for p in items],
            [_to_uint8(read_image(clean[p.name]).rgb) for p in items],
            [p.name for p in items],
        )

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
    """A list of H×W×C uint8 (or float in [0, 1]) arrays as an N×C×H×W float32 tensor in [0, 1]."""
    arr = np.stack(batch)
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))
    return t.float().div_(255.0) if arr.dtype == np.uint8 else t.float()


def batch_rng(seed: int, step: int, rank: int) -> np.random.Generator:
    """The generator for one rank's batch at one step."""
    return np.random.default_rng([seed, step, rank])
