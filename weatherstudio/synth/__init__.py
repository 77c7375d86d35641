"""Physical weather synthesis: snowy and rainy training pairs (and clips) from clean photos.

* :func:`synthesize_snow` — DesnowNet's model x = a⊙z + y⊙(1 − z) (Liu et al., TIP 2018, eq. 1).
* :func:`synthesize_rain` — J4R-Net's hybrid model O = (1 − α)(B + S) + αA (Liu et al., CVPR 2018, eq. 2).
* :func:`synthesize_rain_video`, :func:`synthesize_snow_video` — clips from a still with a moving camera
  and coherently falling weather.
* :func:`synthesize_folder` — writes pairs for a folder of photos.

All randomness comes from a numpy Generator (or a seed): same seed, bit-identical output.
"""

from weatherstudio.synth.common import as_rng, to_float_rgb
from weatherstudio.synth.rain import RAIN_PRESETS, RainField, RainParams, RainSample, compose_rain, synthesize_rain
from weatherstudio.synth.snow import SNOW_PRESETS, SnowField, SnowParams, SnowSample, compose_snow, synthesize_snow
from weatherstudio.synth.video import (
    STATIC_CAMERA,
    CameraMotion,
    camera_path,
    synthesize_rain_video,
    synthesize_snow_video,
)
from weatherstudio.synth.writer import KINDS, presets_for, synthesize_folder

__all__ = [
    "KINDS",
    "RAIN_PRESETS",
    "SNOW_PRESETS",
    "STATIC_CAMERA",
    "CameraMotion",
    "RainField",
    "RainParams",
    "RainSample",
    "SnowField",
    "SnowParams",
    "SnowSample",
    "as_rng",
    "camera_path",
    "compose_rain",
    "compose_snow",
    "presets_for",
    "synthesize_folder",
    "synthesize_rain",
    "synthesize_rain_video",
    "synthesize_snow",
    "synthesize_snow_video",
    "to_float_rgb",
]
