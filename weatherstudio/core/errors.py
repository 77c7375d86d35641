"""WeatherStudio's own exceptions. ``str(error)`` is always one line that can be shown to the user as is."""

from __future__ import annotations


class WeatherStudioError(Exception):
    """Base class of every error WeatherStudio raises on purpose (catch this one at the CLI / GUI boundary)."""


class ImageReadError(WeatherStudioError):
    """An image could not be read: missing, unreadable, corrupt, truncated, unsupported or too large."""


class ImageWriteError(WeatherStudioError):
    """An image could not be written, or writing it would have replaced a file the user did not allow."""
