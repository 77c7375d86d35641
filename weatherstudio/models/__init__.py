"""The five networks, their shared contract and weight files."""

from weatherstudio.models.base import MapKind, MapSpec, ModelOutput, RestorationModel
from weatherstudio.models.registry import build_model, entries, get_entry, register

__all__ = [
    "MapKind",
    "MapSpec",
    "ModelOutput",
    "RestorationModel",
    "build_model",
    "entries",
    "get_entry",
    "register",
]
