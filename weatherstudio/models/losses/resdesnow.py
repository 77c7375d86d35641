"""Loss of the residual de-snowing network (Wan & Lee, eqs. 1–4).

``L = λ1·L_M + λ2·L_p + λ3·L_T`` with λ = [1, 10, 1e-4]:

* ``L_M`` (eq. 1): mean squared error between prediction and clean image.
* ``L_p`` (eq. 2): perceptual loss, squared distance between VGG-19 feature maps Φ_l (Johnson et al. 2016),
  averaged over the feature elements as Johnson et al. normalise it. The layer defaults to ``conv3_3``, the one
  DeblurGAN (the generator this network extends, and its baseline) uses. It needs ImageNet VGG-19 weights,
  which cannot be downloaded at run time: pass ``vgg_weights``, a file holding torchvision's ``vgg19`` state
  dict (``.pth``/``.pt`` read with ``torch.load(weights_only=True)``, or ``.safetensors``); a features-only dict
  (keys ``features.N.*`` or ``N.*``) is enough, and only the layers up to Φ_l are read. Without it the term is
  off, :attr:`ResDesnowLoss.perceptual_enabled` is ``False`` and :attr:`ResDesnowLoss.description` says so.
* ``L_T`` (eq. 3): total variation, squared differences of vertical and horizontal neighbours. Eq. 3 is a sum,
  but at λ3 = 1e-4 a per-image sum outweighs the MSE on any realistic crop (on urban100 clean images the summed
  TV of a 3×256×256 crop times 1e-4 is ≈ 0.38, against an MSE of ≈ 0.006 for a 22 dB snowy input), which would
  blur the output. The default ``tv_reduction="mean"`` averages per element like eq. 1; ``"sum"`` is eq. 3 as
  printed (summed per image, averaged over the batch).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from weatherstudio.models.weightfile import file_sha256

# torchvision's VGG-19 ("E") configuration: conv widths, "M" for a 2×2 max-pool.
_VGG19_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"]
_VGG19_CFG += [512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """Names of the layers of torchvision's ``vgg19().features`` in index order (conv1_1, relu1_1, …, pool5)."""
    names: list[str] = []
    block, conv = 1, 0
    for v in _VGG19_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


def vgg19_features(upto: str = "conv3_3") -> nn.Sequential:
    """The first layers of torchvision's ``vgg19().features``, up to and including ``upto``.

    Built here (same layer types, order and state-dict keys as ``torchvision.models.vgg19(weights=None)
    .features``) so the loss does not allocate VGG's 120 M-parameter classifier nor depend on torchvision's
    compiled ops.
    """
    names = vgg19_layer_names()
    if upto not in names:
        raise ValueError(f"unknown VGG-19 layer {upto!r}; one of {', '.join(names)}")
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            cin = int(v)
    return nn.Sequential(*layers[: names.index(upto) + 1])


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path.name} does not hold a state dict of tensors")
    return obj


def load_vgg19_features(path: str | os.PathLike[str], upto: str = "conv3_3") -> nn.Sequential:
    """VGG-19 features up to ``upto`` with weights from a torchvision-layout state-dict file, frozen, in eval.

    Raises ``ValueError`` naming the first missing or mis-shaped tensor.
    """
    path = Path(path)
    state = _read_state_dict(path)
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in ("module.", "features."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    net = vgg19_features(upto)
    wanted = net.state_dict()
    picked: dict[str, torch.Tensor] = {}
    for key, ref in wanted.items():
        if key not in cleaned:
            raise ValueError(f"{path.name} lacks VGG-19 tensor features.{key}")
        if cleaned[key].shape != ref.shape:
            raise ValueError(
                f"{path.name}: features.{key} has shape {tuple(cleaned[key].shape)}, VGG-19 needs {tuple(ref.shape)}"
            )
        picked[key] = cleaned[key].to(ref.dtype)
    net.load_state_dict(picked)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def total_variation(x: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Eq. 3: squared differences of vertical and horizontal neighbours; ``"sum"`` per image (batch mean)
    or ``"mean"`` per element (each direction averaged over its differences, the two added)."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).square()
    dw = (x[..., :, 1:] - x[..., :, :-1]).square()
    if reduction == "sum":
        return (dh.sum() + dw.sum()) / x.shape[0]
    if reduction == "mean":
        return dh.mean() + dw.mean()
    raise ValueError(f"unknown reduction {reduction!r}")


class ResDesnowLoss(nn.Module):
    """``λ1·MSE + λ2·perceptual + λ3·TV`` (eq. 4). Call with the prediction (a tensor, or the dictionary of
    :meth:`ResDesnowNet.forward_train`, whose unclamped ``y_hat`` is used) and the clean image."""

    def __init__(
        self,
        lambdas: tuple[float, float, float] = (1.0, 10.0, 1e-4),
        vgg_weights: str | os.PathLike[str] | None = None,
        vgg_layer: str = "conv3_3",
        tv_reduction: str = "mean",
    ) -> None:
        super().__init__()
        if tv_reduction not in ("sum", "mean"):
            raise ValueError(f"unknown reduction {tv_reduction!r}")
        self.lambdas = tuple(float(v) for v in lambdas)
        self.vgg_layer = vgg_layer
        self.tv_reduction = tv_reduction
        self.vgg: nn.Sequential | None = None
        self._vgg_source = ""
        if vgg_weights is not None:
            path = Path(vgg_weights)
            self.vgg = load_vgg19_features(path, vgg_layer)
            self._vgg_source = f"{path.name} sha256:{file_sha256(path)[:12]}"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def perceptual_enabled(self) -> bool:
        return self.vgg is not None

    @property
    def description(self) -> str:
        """One line for weight-file metadata."""
        l1, l2, l3 = self.lambdas
        tv = f"{l3:g}·TV({self.tv_reduction})"
        if self.perceptual_enabled:
            return f"{l1:g}·MSE + {l2:g}·VGG-19 {self.vgg_layer} perceptual ({self._vgg_source}) + {tv}"
        return f"{l1:g}·MSE + {tv}; perceptual term off (no VGG-19 weights)"

    def train(self, mode: bool = True) -> ResDesnowLoss:
        super().train(mode)
        if self.vgg is not None:
            self.vgg.eval()  # VGG stays frozen in eval mode
        return self

    def perceptual(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Eq. 2: mean squared difference of VGG-19 features of ImageNet-normalised images."""
        if self.vgg is None:
            raise RuntimeError("perceptual term needs VGG-19 weights (vgg_weights=...)")
        mean, std = self.mean.to(pred.dtype), self.std.to(pred.dtype)
        feats_pred = self.vgg((pred - mean) / std)
        with torch.no_grad():
            feats_target = self.vgg((target - mean) / std)
        return F.mse_loss(feats_pred, feats_target)

    def terms(self, outputs: dict[str, torch.Tensor] | torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each term of eq. 4 (``perceptual`` only when enabled) and the weighted ``total``."""
        pred = outputs["y_hat"] if isinstance(outputs, dict) else outputs
        l1, l2, l3 = self.lambdas
        out = {"mse": F.mse_loss(pred, y), "tv": total_variation(pred, self.tv_reduction)}
        total = l1 * out["mse"] + l3 * out["tv"]
        if self.vgg is not None and l2 != 0.0:
            out["perceptual"] = self.perceptual(pred, y)
            total = total + l2 * out["perceptual"]
        out["total"] = total
        return out

    def forward(self, outputs: dict[str, torch.Tensor] | torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.terms(outputs, y)["total"]
