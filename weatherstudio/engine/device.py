"""Choosing the compute device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""

from __future__ import annotations

import torch

from weatherstudio.core.errors import WeatherStudioError


class DeviceError(WeatherStudioError):
    """A device that was asked for but is not there."""


def available_devices() -> list[str]:
    """``cpu`` and every CUDA device, e.g. ``["cpu", "cuda:0"]``."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return out


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Turn a user's device choice into a :class:`torch.device`, with a clear error if it is absent."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda") or name.startswith("gpu"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} asked for, but no CUDA GPU is available; use 'cpu' or 'auto'")
        index = name.partition(":")[2]
        idx = int(index) if index.isdigit() else 0
        if idx >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
        return torch.device(f"cuda:{idx}")
    raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
