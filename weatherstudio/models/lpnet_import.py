"""Import the LPNet authors' TensorFlow checkpoint variables (exported as ``.npz``) into our LPNet.

Names are ``inference/subnet{1..5}/{weights,biases}_{0..4}`` (subnet 1 is the coarsest level) and kernels
are stored height × width × in × out; ours are out × in × height × width.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from weatherstudio.models.lpnet import LPNet
from weatherstudio.models.registry import build_model
from weatherstudio.models.weightfile import WeightsError, apply_state_dict, save_weights


def state_dict_from_tf_npz(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Map the checkpoint's variables to our parameter names."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable .npz archive ({exc})") from None
    out: dict[str, torch.Tensor] = {}
    for name, value in arrays.items():
        parts = name.split("/")
        if len(parts) != 3 or not parts[1].startswith("subnet"):
            raise WeightsError(f"{path}: unexpected variable {name!r} for an LPNet checkpoint")
        level = int(parts[1].removeprefix("subnet")) - 1
        kind, index = parts[2].rsplit("_", 1)
        if kind == "weights":
            if value.ndim != 4:
                raise WeightsError(f"{path}: {name} is not a 4-D HWIO kernel")
            tensor = torch.from_numpy(np.ascontiguousarray(value.transpose(3, 2, 0, 1)))
            out[f"subnets.{level}.conv{index}.weight"] = tensor.float()
        elif kind == "biases":
            out[f"subnets.{level}.conv{index}.bias"] = torch.from_numpy(value).float()
        else:
            raise WeightsError(f"{path}: unexpected variable {name!r} for an LPNet checkpoint")
    return out


def import_lpnet_tf_npz(
    path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, metadata: dict[str, Any] | None = None
) -> LPNet:
    """Build an LPNet with the checkpoint's weights; write it as ``.safetensors`` when ``output`` is given."""
    model = build_model("lpnet", "paper")
    apply_state_dict(model, state_dict_from_tf_npz(path), str(path))
    model.eval()
    if output is not None:
        meta = {"source": f"imported from the LPNet authors' TensorFlow checkpoint ({Path(path).name})"}
        meta.update(metadata or {})
        save_weights(model, output, meta)
    return model  # type: ignore[return-value]
