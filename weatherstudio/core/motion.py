"""Motion between two video frames, for aligning a video network's memory to the frame it is about to restore.

A recurrent deraining network (J4R-Net's GRU memory H_{t−1}) remembers the previous frame where it was. When a
hand-held camera shakes or pans, the memory no longer lies under the same scene point, and the network's fill
path pastes faint copies of edges where they used to be (ghosts). Warping the memory along the optical flow
from the new frame back to the previous one puts it back under the scene; a flow rather than one global shift,
because a pan moves near poles several times farther than the street behind them (parallax).

The flow is DIS (Kroeger et al., ECCV 2016, OpenCV's implementation, its "fast" preset) on the frames'
luminance, downscaled to at most 640 px. Its patches average thin streaks well enough: on 20 validation clips of
each synthetic rain (``val`` split), J4R-Net lite scored light 32.79 / heavy 23.58 dB with this flow, against
32.78 / 23.27 with the "medium" preset and 32.57 / 22.80 with the frames blurred by 3 px first (no alignment:
28.78 / 23.21).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The long side the flow is computed at (the flow is scaled back up to the frame).
FLOW_SIDE = 640


@dataclass(frozen=True)
class MotionReference:
    """What a frame's motion is measured from: its luminance at the flow's scale, 8-bit."""

    luma: np.ndarray
    height: int
    width: int


def motion_reference(rgb: np.ndarray) -> MotionReference:
    """The luminance (BT.601 weights) of an H×W×3 float RGB frame in [0, 1], area-downscaled to a long side of
    at most :data:`FLOW_SIDE`."""
    h, w = rgb.shape[:2]
    scale = min(1.0, FLOW_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = rgb if scale >= 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    luma = cv2.cvtColor(np.ascontiguousarray(small, np.float32), cv2.COLOR_RGB2GRAY)
    return MotionReference(np.clip(luma * 255.0 + 0.5, 0, 255).astype(np.uint8), h, w)


def backward_flow(previous: MotionReference, current: MotionReference) -> np.ndarray | None:
    """Per pixel of the current frame, where its scene point was in the previous one: an H×W×2 float32 (dx, dy)
    in frame pixels with ``current(x) ≈ previous(x + flow(x))``. None when the frames differ in size or are too
    small to measure."""
    if (previous.height, previous.width) != (current.height, current.width) or min(current.luma.shape) < 16:
        return None
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    flow = dis.calc(current.luma, previous.luma, None)
    sh, sw = current.luma.shape
    if (sh, sw) != (current.height, current.width):
        flow = cv2.resize(flow, (current.width, current.height), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= current.width / sw
        flow[..., 1] *= current.height / sh
    return np.ascontiguousarray(flow, np.float32)
