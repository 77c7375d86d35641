"""Training losses of the networks, one module per network (no Qt, no downloads)."""

from weatherstudio.models.losses.desnownet import DesnowNetLoss, maxpool_pyramid_loss
from weatherstudio.models.losses.resdesnow import ResDesnowLoss, load_vgg19_features, total_variation, vgg19_features

__all__ = [
    "DesnowNetLoss",
    "ResDesnowLoss",
    "load_vgg19_features",
    "maxpool_pyramid_loss",
    "total_variation",
    "vgg19_features",
]
