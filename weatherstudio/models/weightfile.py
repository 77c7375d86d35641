"""Weight files: ``.safetensors`` with JSON metadata, and foreign ``.pth``/``.pt`` state dicts.

Weights are data, never code. A ``.pth`` is read only through ``torch.load(weights_only=True)``, which
refuses pickled objects that would run code; anything that is not a plain state dict is refused with a
message, and a state dict that does not fit the architecture gets a message naming the mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from weatherstudio.core.errors import WeatherStudioError
from weatherstudio.models.base import RestorationModel
from weatherstudio.models.registry import UnknownModelError, build_model

METADATA_KEY = "weatherstudio"
FORMAT_VERSION = 1
SAFETENSORS_SUFFIXES = {".safetensors"}
TORCH_SUFFIXES = {".pth", ".pt", ".ckpt", ".bin"}


class WeightsError(WeatherStudioError, ValueError):
    """A weight file that cannot be used; the message says why, in one line."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(model: RestorationModel, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights and metadata (arch, config, plus ``metadata``) atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"format_version": FORMAT_VERSION, "arch": model.arch, "config": model.config}
    meta.update(metadata or {})
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)})
        os.chmod(tmp, 0o644)  # a weight file is data to share, whatever the temporary file was created with
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a ``.safetensors`` weight file ({} for a foreign file without it)."""
    from safetensors import safe_open

    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        return {}
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weight file") from None
    except Exception as exc:  # safetensors raises its own error types for a corrupt header
        raise WeightsError(f"{path}: not a readable .safetensors file ({exc})") from None
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise WeightsError(f"{path}: its '{METADATA_KEY}' metadata is not valid JSON") from None


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weight file (``.safetensors``, or a ``.pth``/``.pt`` state dict read weights-only)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise WeightsError(f"{path}: no such weight file")
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise WeightsError(f"{path}: not a readable .safetensors file ({exc})") from None
    if suffix in TORCH_SUFFIXES:
        try:
            with warnings.catch_warnings():  # torch warns about pickle protocols before refusing them
                warnings.simplefilter("ignore", UserWarning)
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            foreign = unsafe_globals(path)
            if foreign is None:
                raise WeightsError(
                    f"{path}: not a readable PyTorch weight file (corrupt or not a checkpoint)"
                ) from None
            if not foreign:  # a pickle of allowed things only, in a form torch's weights-only loader does not read
                raise WeightsError(
                    f"{path}: not a readable PyTorch weight file (its pickle is not one a weights-only load reads)"
                ) from None
            more = ", …" if len(foreign) > 3 else ""
            raise WeightsError(
                f"{path}: refused — it holds pickled objects, not only tensors, and loading it could run code"
                f" (it would call {', '.join(foreign[:3])}{more})"
            ) from None
        except Exception as exc:
            raise WeightsError(f"{path}: not a readable PyTorch weight file ({type(exc).__name__}: {exc})") from None
        return _state_dict_from(obj, path)
    raise WeightsError(f"{path}: unsupported weight file type {suffix or '(none)'}; use .safetensors, .pth or .pt")


def unsafe_globals(path: Path) -> list[str] | None:
    """The globals (``module.name``) a refused pickle would import that weights-only loading does not allow.

    Only for the message of a file ``torch.load(weights_only=True)`` has already refused; nothing in it is
    imported or run. Sorted; ``None`` when the file is not a pickle at all.

    A zip checkpoint from ``torch.save`` is read by torch's own
    :func:`torch.serialization.get_unsafe_globals_in_checkpoint`. That reads neither the legacy (plain
    pickle) format nor pickle protocol 4+ (memoized strings, ``STACK_GLOBAL``), so those are unpickled by
    :class:`_RecordingUnpickler`, which stands an inert stub in for every global.
    """
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # ValueError: not a zip; UnpicklingError: an opcode torch's scanner does not read
        pass
    found = _recorded_globals(path)
    if found is None:
        return None
    from torch import _weights_only_unpickler as wo  # the allowlist get_unsafe_globals_in_checkpoint uses

    allowed: set[str] = set()
    for getter in ("_get_allowed_globals", "_get_user_allowed_globals"):
        allowed.update(getattr(wo, getter, dict)())
    return sorted(found - allowed)


class _Inert:
    """What :class:`_RecordingUnpickler` returns for every global: takes any arguments and state, does nothing."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


class _RecordingUnpickler(pickle.Unpickler):
    """Records each global a pickle asks for and hands back :class:`_Inert` instead of importing it.

    ``find_class`` (and ``persistent_load``) are the only ways a pickle reaches code; with both answered by
    an inert stub, unpickling builds only plain containers and stubs.
    """

    def __init__(self, file: Any, found: set[str]) -> None:
        super().__init__(file)
        self.found = found

    def find_class(self, module: str, name: str) -> type:
        self.found.add(f"{module}.{name}")
        return _Inert

    def persistent_load(self, pid: object) -> object:
        return _Inert()


def _recorded_globals(path: Path) -> set[str] | None:
    """Every global the pickle(s) in ``path`` import (a torch zip's ``data.pkl``, or the legacy pickles)."""
    import io
    import zipfile

    found: set[str] = set()
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    return None
                f: Any = io.BytesIO(z.read(name))
        else:
            f = path.open("rb")
    except Exception:  # unreadable, or a broken zip
        return None
    read_one = False
    with f:
        for _ in range(8):  # the legacy format is a few pickles in a row (magic, version, info, the object, …)
            try:
                _RecordingUnpickler(f, found).load()
            except Exception:  # the end of the pickles, or not a pickle (any more)
                break
            read_one = True
    return found if read_one or found else None


def _state_dict_from(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Find the state dict in what ``torch.load`` returned (plain, or under a usual key)."""
    if isinstance(obj, dict):
        for key in ("params_ema", "params", "state_dict", "model", "net", "generator"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: does not hold a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def apply_state_dict(model: RestorationModel, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load ``tensors`` into ``model``, or raise :class:`WeightsError` naming every kind of mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = [
        f"{k} {tuple(tensors[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(tensors))
        if tuple(own[k].shape) != tuple(tensors[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} ({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''})")
    if unexpected:
        problems.append(
            f"unexpected {len(unexpected)} ({', '.join(unexpected[:3])}{', …' if len(unexpected) > 3 else ''})"
        )
    if shapes:
        problems.append(f"wrong shape {len(shapes)} ({'; '.join(shapes[:3])}{'; …' if len(shapes) > 3 else ''})")
    if problems:
        raise WeightsError(
            f"{source} does not fit {model.arch} ({model.num_parameters():,} parameters): " + ", ".join(problems)
        )
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(tensors[k].to(v.dtype))


def load_weights(
    path: str | os.PathLike[str], arch: str | None = None, config: str | dict[str, Any] | None = None
) -> tuple[RestorationModel, dict[str, Any]]:
    """Build the model a weight file describes (or ``arch``/``config`` for a foreign file) and load it.

    Returns the model in eval mode and the file's metadata.
    """
    path = Path(path)
    tensors = read_tensors(path)
    meta = read_metadata(path)
    file_arch = meta.get("arch")
    if file_arch and arch and file_arch != arch:
        raise WeightsError(f"{path}: holds weights for {file_arch!r}, not for {arch!r}")
    arch = file_arch or arch
    if not arch:
        raise WeightsError(f"{path}: the file does not say which model it is for; choose the model")
    cfg = meta.get("config") if config is None else config
    try:
        model = build_model(arch, cfg)
    except UnknownModelError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    apply_state_dict(model, tensors, str(path))
    model.eval()
    return model, meta
