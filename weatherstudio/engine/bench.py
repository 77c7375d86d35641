"""Score a model on paired data with the deraining papers' protocol (Y channel, MATLAB conventions)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.core.image_io import list_images, read_image
from weatherstudio.core.metrics import score_pair
from weatherstudio.engine.restore import RestoreOptions, restore
from weatherstudio.models.base import RestorationModel

METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")


@dataclass
class BenchReport:
    n: int
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    ssim_rgb: float
    sec_per_image: float
    input_psnr_y: float
    input_ssim_y: float
    per_image: list[dict] = field(default_factory=list)

    def as_dict(self, with_images: bool = False) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "per_image"}
        if with_images:
            d["per_image"] = self.per_image
        return d


def paired_files(degraded_dir: Path, clean_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs with the same file name in both folders (as the benchmarks ship them)."""
    degraded = list_images([degraded_dir])
    clean = {p.name: p for p in list_images([clean_dir])}
    pairs = [(p, clean[p.name]) for p in degraded if p.name in clean]
    if not pairs:
        raise WeatherStudioError(f"no pairs: no file name of {degraded_dir} is also in {clean_dir}")
    return pairs


def iter_scores(
    model: RestorationModel, pairs: list[tuple[Path, Path]], options: RestoreOptions | None = None
) -> Iterator[dict]:
    """Restore and score each pair, yielding one record per image (a generator: progress is per image)."""
    for rainy_path, clean_path in pairs:
        rainy = read_image(rainy_path).rgb
        clean = read_image(clean_path).rgb
        if rainy.shape != clean.shape:
            raise WeatherStudioError(f"{rainy_path.name}: sizes differ from its clean twin")
        start = time.perf_counter()
        out = restore(rainy, model, options).image
        seconds = time.perf_counter() - start
        scores = score_pair(out, clean)
        base = score_pair(rainy, clean)
        yield {
            "name": rainy_path.name,
            "seconds": seconds,
            **scores,
            "input_psnr_y": base["psnr_y"],
            "input_ssim_y": base["ssim_y"],
        }


def summarize(records: list[dict]) -> BenchReport:
    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in records]))

    return BenchReport(
        n=len(records),
        psnr_y=mean("psnr_y"),
        ssim_y=mean("ssim_y"),
        psnr_rgb=mean("psnr_rgb"),
        ssim_rgb=mean("ssim_rgb"),
        sec_per_image=mean("seconds"),
        input_psnr_y=mean("input_psnr_y"),
        input_ssim_y=mean("input_ssim_y"),
        per_image=records,
    )
