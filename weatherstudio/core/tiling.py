"""Overlapping tiles and their blending weights (the BasicSR/Real-ESRGAN tiled-inference habit).

Tiles of side ``tile`` start every ``tile − overlap`` pixels (origins aligned to ``align`` so that pyramid
maps at scale 1/2**k stitch exactly). Inside an overlap of width O, a tile's weight is 0 over the quarter
nearest its own edge (where context is missing), falls linearly across the middle half and is 1 beyond,
mirrored for its neighbour; at the image border it stays 1. The weights of every pixel sum to one, so the
blend has no seam, and no tile contributes from within O/4 of its cut edge.

``congruence`` serves networks whose sampling grid depends on the input size (LPNet's TensorFlow 'SAME'
stride-2 padding shifts by one pixel with the size's parity): an interior tile is extended so that its size
is congruent to the image's modulo ``congruence``, and it then samples the very grid the whole image does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One tile: its box in the image (``y``, ``x``, ``h``, ``w``) and its neighbours' sides."""

    y: int
    x: int
    h: int
    w: int
    top: bool  # has a neighbour above
    bottom: bool
    left: bool
    right: bool


def _axis(size: int, tile: int, overlap: int, align: int) -> tuple[list[int], int]:
    """Tile origins along one axis and the tile length actually used.

    As few tiles as ``tile`` allows, then shrunk evenly so that they cover ``size`` with little waste (a
    4000-pixel side in 512-pixel tiles gets nine 480-pixel tiles, not nine 512-pixel tiles of which the
    last mostly repeats its neighbour). Origins stay multiples of ``align``.
    """
    if size <= tile:
        return [0], size
    step_max = max(align, (tile - overlap) // align * align)
    count = math.ceil((size - overlap) / step_max)
    step = min(step_max, math.ceil((size - overlap) / count / align) * align)
    length = min(tile, step + overlap)
    starts = [i * step for i in range(count)]
    while starts[-1] + length < size:  # alignment rounding left the border uncovered: one more tile
        starts.append(starts[-1] + step)
    return [s for s in starts if s < size], length


def _extent(start: int, tile: int, size: int, last: bool, congruence: int) -> int:
    if last:
        return size - start
    n = min(tile, size - start)
    n += (size - n) % congruence  # same residue as the image; stays inside it (the last tile ends at the border)
    return min(n, size - start)


def plan_tiles(height: int, width: int, tile: int, overlap: int, align: int = 1, congruence: int = 1) -> list[Tile]:
    """Cover ``height × width`` with tiles of about ``tile`` pixels overlapping by at least ``overlap``."""
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than the overlap ({overlap})")
    ys, tile_h = _axis(height, tile, overlap, align)
    xs, tile_w = _axis(width, tile, overlap, align)
    tiles = []
    for i, y in enumerate(ys):
        h = _extent(y, tile_h, height, i == len(ys) - 1, congruence)
        for j, x in enumerate(xs):
            w = _extent(x, tile_w, width, j == len(xs) - 1, congruence)
            tiles.append(Tile(y, x, h, w, i > 0, i < len(ys) - 1, j > 0, j < len(xs) - 1))
    return tiles


def _edge_profile(overlap: int) -> np.ndarray:
    """Weights across an overlap of ``overlap`` samples, from the tile's cut edge inwards: 0, rise, 1."""
    pos = np.arange(overlap, dtype=np.float32) + 0.5
    dead = overlap / 4.0
    return np.clip((pos - dead) / max(overlap / 2.0, 1e-6), 0.0, 1.0)


def _ramp(n: int, rise_start: int, rise_end: int) -> np.ndarray:
    """1-D weights of a tile of ``n`` samples with overlaps ``rise_start`` before and ``rise_end`` after."""
    r = np.ones(n, np.float32)
    if rise_start > 0:
        k = min(rise_start, n)
        r[:k] = np.minimum(r[:k], _edge_profile(rise_start)[:k])
    if rise_end > 0:
        k = min(rise_end, n)
        r[n - k :] = np.minimum(r[n - k :], _edge_profile(rise_end)[:k][::-1])
    return r


def tile_weight(
    t: Tile, overlap_before: tuple[int, int], overlap_after: tuple[int, int], scale: float = 1.0
) -> np.ndarray:
    """The blending weight of tile ``t`` (``h × w`` at ``scale``), ramps as wide as the actual overlaps."""
    h, w = math.ceil(t.h * scale), math.ceil(t.w * scale)
    oy0, ox0 = (round(v * scale) for v in overlap_before)
    oy1, ox1 = (round(v * scale) for v in overlap_after)
    wy = _ramp(h, oy0 if t.top else 0, oy1 if t.bottom else 0)
    wx = _ramp(w, ox0 if t.left else 0, ox1 if t.right else 0)
    return np.outer(wy, wx)


def overlaps(tiles: list[Tile]) -> dict[Tile, tuple[tuple[int, int], tuple[int, int]]]:
    """For each tile, the overlap with its neighbour before (y, x) and after (y, x), in pixels."""
    ys = sorted({(t.y, t.h) for t in tiles})
    xs = sorted({(t.x, t.w) for t in tiles})

    def spans(pairs: list[tuple[int, int]]) -> dict[int, tuple[int, int]]:
        out = {}
        for i, (s, n) in enumerate(pairs):
            before = pairs[i - 1][0] + pairs[i - 1][1] - s if i > 0 else 0
            after = s + n - pairs[i + 1][0] if i < len(pairs) - 1 else 0
            out[s] = (max(before, 0), max(after, 0))
        return out

    sy, sx = spans(ys), spans(xs)
    return {t: ((sy[t.y][0], sx[t.x][0]), (sy[t.y][1], sx[t.x][1])) for t in tiles}
