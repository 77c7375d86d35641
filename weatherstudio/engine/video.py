"""Restore frame sequences: a video model carries its memory from frame to frame (one state per tile).

J4R-Net (Liu et al., CVPR 2018) fuses each frame with a recurrent memory H_{t−1}. A sequence restorer keeps
that memory across calls; jumping to frame N warms the model up from frame N − k, where k is the model's
``warmup_frames`` (the clip length it was trained on), instead of running from frame 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from weatherstudio.engine.restore import CancelFn, ProgressFn, RestoreOptions, RestoreResult, restore
from weatherstudio.models.base import RestorationModel

FrameSource = Callable[[int], np.ndarray]


class SequenceRestorer:
    """Restores frames in order; a temporal model's state follows along, one state per tile."""

    def __init__(self, model: RestorationModel, options: RestoreOptions | None = None) -> None:
        self.model = model
        self.options = options or RestoreOptions()
        self.state: dict[int, Any] | None = None  # the last frame's memory (see ``restore``'s state contract)
        self.next_index: int | None = None

    @property
    def temporal(self) -> bool:
        return bool(self.model.temporal)

    def reset(self) -> None:
        self.state = None
        self.next_index = None

    def restore_next(
        self,
        frame: np.ndarray,
        index: int | None = None,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> RestoreResult:
        """Restore the frame that follows the last one (or frame ``index``; a jump resets the memory)."""
        if index is not None and self.next_index is not None and index != self.next_index:
            self.reset()
        result = restore(
            frame, self.model, self.options, progress=progress, should_cancel=should_cancel, state=self.state
        )
        self.state = result.state
        self.next_index = (index if index is not None else (self.next_index or 0)) + 1
        return result

    def restore_at(
        self, frames: FrameSource, index: int, progress: ProgressFn | None = None, should_cancel: CancelFn | None = None
    ) -> RestoreResult:
        """Frame ``index`` restored as if the whole clip had run: warm up on the ``warmup_frames`` before it.

        When the restorer has just restored frame ``index − 1`` its memory is used as is.
        """
        if not self.temporal or self.next_index == index:
            return self.restore_next(frames(index), index, progress, should_cancel)
        self.reset()
        start = max(0, index - int(self.model.warmup_frames))
        total = index - start + 1
        for i in range(start, index):
            self.restore_next(frames(i), i, should_cancel=should_cancel)
            if progress:
                progress(i - start + 1, total)
        return self.restore_next(frames(index), index, should_cancel=should_cancel)


def restore_sequence(
    frames: Sequence[np.ndarray], model: RestorationModel, options: RestoreOptions | None = None
) -> list[RestoreResult]:
    """Every frame of a clip in order, with the model's state carried through."""
    restorer = SequenceRestorer(model, options)
    return [restorer.restore_next(f, i) for i, f in enumerate(frames)]
