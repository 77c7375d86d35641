"""The Laplacian pyramid of LPNet: TF 'SAME' geometry, exact reconstruction, kernel properties."""

from __future__ import annotations

import pytest
import torch

from weatherstudio.core.pyramid import (
    downsample,
    gaussian_kernel,
    gaussian_pyramid,
    laplacian_pyramid,
    same_padding,
    upsample,
)


@pytest.mark.parametrize(("size", "expected"), [(8, (1, 2)), (7, (2, 2)), (1, (2, 2)), (2, (1, 2))])
def test_tensorflow_same_padding(size: int, expected: tuple[int, int]) -> None:
    assert same_padding(size) == expected


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (1, 1), (5, 2)])
def test_levels_have_tensorflow_sizes_and_reconstruct_exactly(shape: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *shape, dtype=torch.float64)
    k = gaussian_kernel(3, dtype=torch.float64)
    lap = laplacian_pyramid(x, 5, k)
    h, w = shape
    for i, level in enumerate(reversed(lap)):
        assert level.shape[-2:] == (-(-h // 2**i), -(-w // 2**i))
    # G_0 = L_0 + up(G_1) and so on: collapsing the pyramid gives the image back.
    img = lap[0]
    for level in lap[1:]:
        img = level + upsample(img, k, level.shape[-2:])
    assert torch.allclose(img, x, atol=1e-12)


def test_upsample_is_the_adjoint_of_downsample() -> None:
    k = gaussian_kernel(3, dtype=torch.float64)
    x = torch.rand(1, 3, 11, 14, dtype=torch.float64)
    y = torch.rand(1, 3, 6, 7, dtype=torch.float64)
    lhs = (downsample(x, k) * y).sum()
    rhs = (x * upsample(y, k, (11, 14)) / 4).sum()
    assert torch.allclose(lhs, rhs)


def test_gaussian_pyramid_keeps_the_mean_of_a_constant_image_inside() -> None:
    x = torch.full((1, 3, 64, 64), 0.5)
    g = gaussian_pyramid(x, 3)
    assert g[-1] is x
    assert torch.allclose(g[0][..., 2:-2, 2:-2], torch.tensor(0.5))


@pytest.mark.parametrize("shape", [(37, 52), (64, 64), (65, 33), (1, 1), (2, 3), (301, 400)])
def test_the_array_pyramid_steps_match_the_network_s(shape: tuple[int, int]) -> None:
    """The OpenCV downsample and the windowed upsample (the engine's, outside the graph) equal the torch ones, at
    even and odd sizes and for any window of the upsampled level."""
    import numpy as np

    from weatherstudio.core.pyramid import downsample_array, upsample_region_planes

    rng = np.random.default_rng(sum(shape))
    h, w = shape
    x = rng.random((h, w, 3), dtype=np.float32)
    k = gaussian_kernel(3)
    down = downsample(torch.from_numpy(x.transpose(2, 0, 1).copy())[None], k)
    small = downsample_array(x)
    assert small.shape == (down.shape[2], down.shape[3], 3)
    assert np.abs(small - down[0].numpy().transpose(1, 2, 0)).max() < 1e-6
    up = upsample(down, k, (h, w))[0].numpy().transpose(1, 2, 0)
    planes = np.ascontiguousarray(small.transpose(2, 0, 1))
    assert np.abs(upsample_region_planes(planes, (h, w), (0, h), (0, w)).transpose(1, 2, 0) - up).max() < 1e-6
    windows = [((0, 1), (0, 1)), ((h - 1, h), (w - 1, w))]
    windows += [(tuple(sorted(rng.integers(0, h + 1, 2))), tuple(sorted(rng.integers(0, w + 1, 2)))) for _ in range(6)]
    for rows, cols in windows:
        if rows[1] <= rows[0] or cols[1] <= cols[0]:
            continue
        part = upsample_region_planes(planes, (h, w), rows, cols).transpose(1, 2, 0)
        assert np.abs(part - up[rows[0] : rows[1], cols[0] : cols[1]]).max() < 1e-6
