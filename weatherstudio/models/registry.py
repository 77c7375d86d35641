"""Build a network from a name and a config (the BasicSR/KAIR registry habit)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.models.base import RestorationModel


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type[RestorationModel]
    configs: dict[str, dict[str, Any]]
    summary: str


_REGISTRY: dict[str, ModelEntry] = {}


class UnknownModelError(WeatherStudioError, KeyError):
    """Raised for a model or config name the registry does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def register(
    configs: dict[str, dict[str, Any]], summary: str
) -> Callable[[type[RestorationModel]], type[RestorationModel]]:
    """Class decorator: register a model under its ``arch`` with named configs (``lite``, ``paper``...)."""

    def wrap(cls: type[RestorationModel]) -> type[RestorationModel]:
        if not cls.arch:
            raise ValueError(f"{cls.__name__} has no arch name")
        _REGISTRY[cls.arch] = ModelEntry(cls.arch, cls, configs, summary)
        return cls

    return wrap


def _load_builtin() -> None:
    # Importing the model modules runs their @register decorators.
    from weatherstudio.models import lpnet  # noqa: F401

    for optional in ("desnownet", "resdesnow", "j4rnet", "gtrain"):
        try:
            __import__(f"weatherstudio.models.{optional}")
        except ModuleNotFoundError as exc:  # a network not written yet
            if exc.name != f"weatherstudio.models.{optional}":
                raise


def entries() -> dict[str, ModelEntry]:
    _load_builtin()
    return dict(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    table = entries()
    if name not in table:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(sorted(table))}")
    return table[name]


def default_config_name(name: str) -> str:
    """The config used when none is named: ``lite`` (what ships and runs on a CPU), else the first."""
    configs = get_entry(name).configs
    return "lite" if "lite" in configs else next(iter(configs))


def resolve_config(name: str, config: str | dict[str, Any] | None = None) -> dict[str, Any]:
    """The full config for ``name``: a named preset, or a dict of overrides on top of the default."""
    entry = get_entry(name)
    default_name = default_config_name(name)
    if config is None:
        return copy.deepcopy(entry.configs[default_name])
    if isinstance(config, str):
        if config not in entry.configs:
            raise UnknownModelError(f"model {name!r} has no config {config!r}; configs: {', '.join(entry.configs)}")
        return copy.deepcopy(entry.configs[config])
    base_name = config.get("preset", default_name)
    merged = copy.deepcopy(entry.configs[base_name])
    merged.update({k: v for k, v in config.items() if k != "preset"})
    return merged


def build_model(name: str, config: str | dict[str, Any] | None = None) -> RestorationModel:
    """Instantiate model ``name`` with a named config or a dict of options."""
    entry = get_entry(name)
    return entry.cls(resolve_config(name, config))
