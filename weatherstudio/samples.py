"""The sample media and icon WeatherStudio ships (made by ``resources/make_samples.py`` from public-domain photos)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".mp4")
VIDEO_SUFFIXES = (".mp4",)


@dataclass(frozen=True)
class Sample:
    path: Path
    weather: str  # "rain" or "snow"
    clean: Path | None  # the clean original it was synthesized from (a clip's: a folder of frames)

    @property
    def is_clip(self) -> bool:
        return self.path.is_dir() or self.is_video

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_SUFFIXES


def resource_dirs() -> list[Path]:
    """Folders that may hold the shipped resources: inside the package (a bundled app), then the checkout's."""
    package = Path(__file__).resolve().parent
    return [package / "resources", package.parent / "resources"]


def sample_dirs() -> list[Path]:
    """Folders that may hold samples."""
    return [d / "samples" for d in resource_dirs()]


def app_icon() -> Path | None:
    """The application icon (``resources/icons/weatherstudio.svg``), or None when it is not installed."""
    for folder in resource_dirs():
        icon = folder / "icons" / "weatherstudio.svg"
        if icon.is_file():
            return icon
    return None


def find_samples() -> list[Sample]:
    """Every sample photo and clip, in name order (empty when none is installed)."""
    for folder in sample_dirs():
        if not folder.is_dir():
            continue
        found = []
        for p in sorted(folder.iterdir()):
            if p.name == "clean" or not (p.is_dir() or p.suffix.lower() in SAMPLE_SUFFIXES):
                continue
            weather = "snow" if "snow" in p.name.lower() else "rain"
            clean = folder / "clean" / (p.stem if p.suffix.lower() in VIDEO_SUFFIXES else p.name)
            found.append(Sample(p, weather, clean if clean.exists() else None))
        if found:
            return found
    return []


def default_sample(weather: str | None = None) -> Sample | None:
    """The first still photo (of ``weather``, if given)."""
    for s in find_samples():
        if not s.is_clip and (weather is None or s.weather == weather):
            return s
    return None
