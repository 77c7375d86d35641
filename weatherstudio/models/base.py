"""The contract every network in WeatherStudio follows.

A model takes a batch of RGB images in [0, 1] (``N×3×H×W``) and returns a :class:`ModelOutput`: the
restored image and, only when asked for, a dictionary of named intermediate maps. Each map is described
by a :class:`MapSpec` so that a viewer can display any model's maps without knowing the model.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    import numpy as np


class MapKind(enum.StrEnum):
    """What an intermediate map is, which decides how a viewer shows it."""

    MASK = "mask"  # probability / translucency in [0, 1], one channel
    IMAGE = "image"  # an RGB image in [0, 1]
    RESIDUAL = "residual"  # a signed RGB (or 1-channel) difference, centred on 0
    PYRAMID = "pyramid"  # one level of an image pyramid (RGB, may be signed), at a reduced scale
    GATE = "gate"  # a recurrent gate activation, per channel, averaged to one channel
    MAGNITUDE = "magnitude"  # a non-negative quantity (e.g. offset length in pixels)


@dataclass(frozen=True)
class MapSpec:
    """Describes one intermediate map.

    ``value_range`` is the range the values are expected to take (used for display levels);
    ``scale`` is the map's resolution relative to the input (1 for full size, 1/2**k for pyramid level k);
    ``group`` lets a viewer show related maps (e.g. the levels of one pyramid) as a strip.
    """

    name: str
    kind: MapKind
    value_range: tuple[float, float]
    channels: int
    description: str
    units: str = ""
    scale: float = 1.0
    group: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "value_range": list(self.value_range),
            "channels": self.channels,
            "description": self.description,
            "units": self.units,
            "scale": self.scale,
            "group": self.group,
        }


@dataclass
class ModelOutput:
    """The restored image (``N×3×H×W`` in [0, 1]) and the maps, keyed by :attr:`MapSpec.name`."""

    image: torch.Tensor
    maps: dict[str, torch.Tensor] = field(default_factory=dict)


class RestorationModel(nn.Module):
    """Base class of every WeatherStudio network.

    Subclasses set :attr:`arch` (the registry name), implement :meth:`forward` and :meth:`map_specs`,
    and describe the geometry the engine needs for tiling:

    * :attr:`receptive_field` — pixels of context one output pixel depends on (full width);
    * :attr:`size_multiple` — the input height and width must be a multiple of this (the engine pads);
    * :attr:`temporal` and :attr:`warmup_frames` — for video models that carry state across frames.
    """

    arch: ClassVar[str] = ""
    task: ClassVar[str] = "rain"  # "rain" or "snow"
    temporal: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)

    @property
    def receptive_field(self) -> int:
        raise NotImplementedError

    @property
    def size_multiple(self) -> int:
        return 1

    @property
    def effective_context(self) -> int:
        """Context (pixels, full width) that measurably changes an output pixel; the engine's default tile
        overlap derives from it. Defaults to the theoretical receptive field."""
        return self.receptive_field

    #: Interior tiles get a size congruent to the image's modulo this, so that size-dependent sampling
    #: (TensorFlow 'SAME' stride-2 padding) follows the same grid as on the whole image.
    size_congruence: ClassVar[int] = 1

    #: Tile side the engine uses by default on a CPU (bounded by memory: activations × tile²).
    default_tile: ClassVar[int] = 512

    #: Tile origins are multiples of this, so that maps at 1/2**k of the size stitch exactly.
    tile_align: ClassVar[int] = 32

    #: Pixels each side that an output pixel depends on *exactly* (a stack of convolutions, no pyramid, no global
    #: operation); None where context fades rather than ends. Where it is set, the engine overlaps tiles by twice
    #: this and cuts each overlap in its middle: the tiled output then equals the whole-image one.
    exact_context: ClassVar[int | None] = None

    #: Channels of the input the network takes (an RGB photo: 3; a part of a split network may take more).
    input_channels: ClassVar[int] = 3

    #: Whether the output is an image in [0, 1] (clipped after blending) rather than an intermediate level.
    clips_output: ClassVar[bool] = True

    #: Whether the engine hands tiles over in channels-last memory (oneDNN's and cuDNN's fast kernels for a torch
    #: network; a CPU runtime takes plain NCHW, and converting there and back cost ~0.5 s on a 12 MP LPNet photo).
    channels_last_input: ClassVar[bool] = True

    @property
    def warmup_frames(self) -> int:
        """How many previous frames a stateful model needs to reach its steady state."""
        return 0

    def map_specs(self) -> list[MapSpec]:
        raise NotImplementedError

    def input_for(self, rgb: np.ndarray) -> np.ndarray:
        """This network's input (H×W×C float32) for an RGB photo: the photo itself; a part of a split network
        builds its own (an export is checked against torch on real photos through this)."""
        return rgb

    def reset_state(self) -> None:
        """Forget any state carried across frames (video models override this)."""

    def get_state(self) -> Any:
        """The state carried to the next frame (``None`` for single-image models).

        The engine swaps states with :meth:`set_state` to keep one per tile when it tiles a video frame.
        """
        return None

    def set_state(self, state: Any) -> None:
        """Restore a state returned by :meth:`get_state`."""

    #: Whether the state is a picture-aligned memory that :meth:`align_state` can move with the scene.
    aligns_state: ClassVar[bool] = False

    def align_state(self, state: Any, flow: np.ndarray) -> Any:
        """``state`` moved to the next frame's geometry: ``flow`` (h×w×2, pixels (dx, dy)) gives, per pixel of
        the next frame, where its scene point was in the last one. Models without such memory return it as is."""
        return state

    def forward(self, x: torch.Tensor, return_maps: bool = False) -> ModelOutput:  # noqa: D102
        raise NotImplementedError

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
