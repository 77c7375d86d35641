"""A pyramid network restored as two graphs: its coarse levels once at half size, its finest level in exact tiles.

LPNet (Fu et al., TNNLS 2019) as one graph is tiled with a 32-pixel blended overlap, because its coarse levels
see far; every tile's overlap then recomputes all five levels. Split (:mod:`weatherstudio.models.lpnet_parts`):

1. down(x) of the whole photo (the pyramid's first step, eq. 1), at half size;
2. the coarse part on it, tiled at half size with its own overlap: G_1(Y);
3. the finest part in full-size tiles whose input — L_0 = x − up(down(x)) and up(G_1(Y)) — is built per tile from
   the two half-size images, so no full-size intermediate is ever held. Its context ends 11 pixels out, so its
   tiles overlap by 22 and are cut in the middle: they give exactly the whole image's finest level.

On this 2-core CPU that took a 12 MP photo in ONNX Runtime from 5.29 s to 4.86 s (medians,
``benchmarks/pyramid_split.py``), and the result is closer to the whole-image one than the one-graph blend: 0.6/255
at most against up to 9/255 on enlarged real photos (the coarse levels' seams have twice the margin in photo pixels;
the finest level's have none). The torch path (maps, CUDA, training) stays one graph.
"""

from __future__ import annotations

import numpy as np
import torch

from weatherstudio.core.pyramid import downsample_array
from weatherstudio.core.tiling import Tile, plan_tiles
from weatherstudio.engine.backends import runtime_model
from weatherstudio.engine.restore import (
    CancelFn,
    ProgressFn,
    RestoreOptions,
    RestoreResult,
    TileFn,
    _restore_tiled,
    tile_geometry,
)
from weatherstudio.models.base import RestorationModel
from weatherstudio.models.lpnet_parts import finest_input, half_size_levels


def restore_split(
    image: np.ndarray,
    model: RestorationModel,
    options: RestoreOptions,
    progress: ProgressFn | None,
    should_cancel: CancelFn | None,
    on_tile: TileFn | None,
    notes: list[str],
) -> RestoreResult:
    """Restore ``image`` (H×W×3 float32) with ``model`` (a :class:`~weatherstudio.engine.backends.RuntimeModel` of a
    network with ``pyramid_parts``) as its two parts in the same runtime; ``progress`` and the result's ``tiles``
    count both parts' tiles, ``on_tile`` receives the finest part's (full-size) tiles."""
    net = getattr(model, "net", model)
    backend = getattr(model, "backend", "torch")
    coarse, finest = (runtime_model(part, backend) for part in net.pyramid_parts())
    cpu = torch.device("cpu")
    height, width = image.shape[:2]
    g1 = downsample_array(image)
    c_tile, c_overlap = tile_geometry(coarse, *g1.shape[:2], cpu)
    f_tile, f_overlap = tile_geometry(finest, height, width, cpu, options.tile)
    n_coarse = len(plan_tiles(*g1.shape[:2], c_tile, c_overlap, coarse.tile_align, coarse.size_congruence))
    n_fine = len(plan_tiles(height, width, f_tile, f_overlap, finest.tile_align, finest.size_congruence))
    total = n_coarse + n_fine

    def part_progress(offset: int) -> ProgressFn | None:
        """A part's progress as a share of both parts' tiles (the second part's start is the first one's end)."""
        if progress is None:
            return None
        return lambda done, _n: None if offset and not done else progress(offset + done, total)

    levels = _restore_tiled(
        g1, coarse, cpu, c_tile, c_overlap, False, False, part_progress(0), should_cancel, None, None, False, notes
    )
    planes = half_size_levels(g1, levels.image)

    def crop(t: Tile) -> torch.Tensor:
        return torch.from_numpy(finest_input(image, planes, (t.y, t.y + t.h), (t.x, t.x + t.w)))[None]

    result = _restore_tiled(
        image,
        finest,
        cpu,
        f_tile,
        f_overlap,
        False,
        False,
        part_progress(n_coarse),
        should_cancel,
        on_tile,
        None,
        False,
        notes,
        crop=crop,
    )
    notes.append(
        f"{net.arch}: coarse levels once at half size ({levels.tiles} tile{'s' * (levels.tiles > 1)}), "
        f"the finest in {result.tiles} exact tile{'s' * (result.tiles > 1)}"
    )
    result.tiles = total  # as progress counts them (``tile`` and ``overlap`` stay the finest part's)
    return result
