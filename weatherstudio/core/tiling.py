"""Overlapping tiles and their blending weights (the BasicSR/Real-ESRGAN tiled-inference habit).

Tiles of side ``tile`` start every ``tile − overlap`` pixels (origins aligned to ``align`` so that pyramid
maps at scale 1/2**k stitch exactly). Inside an overlap of width O, a tile's weight is 0 over the quarter
nearest its own edge (where context is missing), falls linearly across the middle half and is 1 beyond,
mirrored for its neighbour; at the image border it stays 1. The weights of every pixel sum to one, so the
blend has no seam, and no tile contributes from within O/4 of its cut edge.

``congruence`` serves networks whose sampling grid depends on the input size (LPNet's TensorFlow 'SAME'
stride-2 padding shifts by one pixel with the size's parity): an interior tile is extended so that its size
is congruent to the image's modulo ``congruence``, and it then samples the very grid the whole image does.

``cut`` serves networks whose context ends at a known distance C (a plain stack of convolutions): with an overlap
of at least 2C, each overlap is cut in its middle (weights 0 then 1, no ramp) and every output pixel comes from a
tile that saw its whole context, so the tiled output equals the whole-image one.
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


def _edge_profile(overlap: int, cut: bool = False) -> np.ndarray:
    """Weights across an overlap of ``overlap`` samples, from the tile's cut edge inwards: 0, rise, 1 (``cut``: 0
    over the first half, 1 over the second; with an odd overlap the middle sample belongs to the tile before)."""
    pos = np.arange(overlap, dtype=np.float32) + 0.5
    if cut:
        return (pos > overlap / 2.0).astype(np.float32)
    dead = overlap / 4.0
    return np.clip((pos - dead) / max(overlap / 2.0, 1e-6), 0.0, 1.0)


def _ramp(n: int, rise_start: int, rise_end: int, cut: bool = False) -> np.ndarray:
    """1-D weights of a tile of ``n`` samples with overlaps ``rise_start`` before and ``rise_end`` after."""
    r = np.ones(n, np.float32)
    if rise_start > 0:
        k = min(rise_start, n)
        r[:k] = np.minimum(r[:k], _edge_profile(rise_start, cut)[:k])
    if rise_end > 0:
        k = min(rise_end, n)
        # the neighbour after starts its profile here: this tile's weight is its complement (mirror for a ramp)
        end = 1.0 - _edge_profile(rise_end, True) if cut else _edge_profile(rise_end)[::-1]
        r[n - k :] = np.minimum(r[n - k :], end[rise_end - k :])
    return r


def _tile_ramps(
    t: Tile, overlap_before: tuple[int, int], overlap_after: tuple[int, int], scale: float = 1.0, cut: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Tile ``t``'s separable weight at ``scale``: its row ramp and its column ramp (1 along uncut sides)."""
    h, w = math.ceil(t.h * scale), math.ceil(t.w * scale)
    oy0, ox0 = (round(v * scale) for v in overlap_before)
    oy1, ox1 = (round(v * scale) for v in overlap_after)
    return (
        _ramp(h, oy0 if t.top else 0, oy1 if t.bottom else 0, cut),
        _ramp(w, ox0 if t.left else 0, ox1 if t.right else 0, cut),
    )


def tile_weight(
    t: Tile, overlap_before: tuple[int, int], overlap_after: tuple[int, int], scale: float = 1.0, cut: bool = False
) -> np.ndarray:
    """The blending weight of tile ``t`` (``h × w`` at ``scale``), ramps as wide as the actual overlaps."""
    return np.outer(*_tile_ramps(t, overlap_before, overlap_after, scale, cut))


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


def _axis_weights(
    tiles: list[Tile], spans: dict[Tile, tuple[tuple[int, int], tuple[int, int]]], axis: int, cut: bool = False
):
    """The 1-D ramps of the tile grid along ``axis`` (0: rows, 1: columns): start → (length, ramp)."""
    ramps: dict[int, tuple[int, np.ndarray]] = {}
    for t in tiles:
        start, n = (t.y, t.h) if axis == 0 else (t.x, t.w)
        if start not in ramps:
            ramps[start] = (n, _tile_ramps(t, *spans[t], cut=cut)[axis])
    return ramps


def weights_sum_to_one(
    tiles: list[Tile],
    spans: dict[Tile, tuple[tuple[int, int], tuple[int, int]]],
    height: int,
    width: int,
    cut: bool = False,
) -> bool:
    """Whether the grid's blending weights sum to one at every pixel (checked per axis: the weights are
    separable: a full grid of rows × columns sums to one where each axis does)."""
    rows, cols = _axis_weights(tiles, spans, 0, cut), _axis_weights(tiles, spans, 1, cut)
    if len({(t.y, t.x) for t in tiles}) != len(rows) * len(cols):
        return False  # not a full grid
    for ramps, size in ((rows, height), (cols, width)):
        total = np.zeros(size, np.float64)
        for start, (n, ramp) in ramps.items():
            total[start : start + n] += ramp
        if not np.allclose(total, 1.0, rtol=0.0, atol=1e-6):
            return False
    return True


def blend_tile(
    out: np.ndarray,
    tile_out: np.ndarray,
    t: Tile,
    overlap_before: tuple[int, int],
    overlap_after: tuple[int, int],
    cut: bool = False,
) -> None:
    """Add tile ``t``'s output (h×w×C) into ``out`` (H×W×C, zeros at first) with its blending weight, for a grid
    whose weights sum to one (:func:`weights_sum_to_one`): where its weight is 1 no other tile contributes, so
    that part is copied as it is; only the ramps along its cut edges are multiplied and added (``cut``: none)."""
    wy, wx = _tile_ramps(t, overlap_before, overlap_after, cut=cut)
    full_y, full_x = np.flatnonzero(wy == 1.0), np.flatnonzero(wx == 1.0)
    region = out[t.y : t.y + t.h, t.x : t.x + t.w]
    if len(full_y) == 0 or len(full_x) == 0:
        region += tile_out * np.outer(wy, wx)[..., None]
        return
    y0, y1, x0, x1 = int(full_y[0]), int(full_y[-1]) + 1, int(full_x[0]), int(full_x[-1]) + 1
    region[y0:y1, x0:x1] = tile_out[y0:y1, x0:x1]
    if cut:
        return  # outside its weight-1 part a cut tile's weight is 0
    for ys, xs in (
        (slice(0, y0), slice(0, t.w)),
        (slice(y1, t.h), slice(0, t.w)),
        (slice(y0, y1), slice(0, x0)),
        (slice(y0, y1), slice(x1, t.w)),
    ):
        band = np.outer(wy[ys], wx[xs])[..., None]
        if band.size:
            region[ys, xs] += tile_out[ys, xs] * band
