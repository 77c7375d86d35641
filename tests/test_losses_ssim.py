"""SSIM / MS-SSIM: identities, monotonicity, small-image behaviour and a numpy reference."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from weatherstudio.models.losses.ssim import MS_SSIM_WEIGHTS, MSSSIMLoss, SSIMLoss, ms_ssim, ms_ssim_scales, ssim


def _np_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def _np_filter(img: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Valid 2-D correlation by brute force."""
    k = win.shape[0]
    h, w = img.shape[0] - k + 1, img.shape[1] - k + 1
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = (img[i : i + k, j : j + k] * win).sum()
    return out


def _np_ssim_terms(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> tuple[float, float]:
    """Wang et al. 2004, eq. 13, on one channel: (mean SSIM, mean contrast-structure)."""
    win = _np_window()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _np_filter(a, win), _np_filter(b, win)
    var_a = _np_filter(a * a, win) - mu_a**2
    var_b = _np_filter(b * b, win) - mu_b**2
    cov = _np_filter(a * b, win) - mu_a * mu_b
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    lum = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    return float((lum * cs).mean()), float(cs.mean())


def _pair(seed: int, shape: tuple[int, ...], noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    # A smooth image (so SSIM is far from 0) plus noise.
    x = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    y = (x + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


def test_ssim_of_identical_images_is_one() -> None:
    x = torch.rand(2, 3, 40, 33)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert ms_ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert SSIMLoss()(x, x).item() == pytest.approx(0.0, abs=1e-5)
    assert MSSSIMLoss()(x, x).item() == pytest.approx(0.0, abs=1e-5)


def test_ssim_decreases_with_noise() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 64, generator=g), 3, stride=1, padding=1)
    n = torch.randn(x.shape, generator=g)
    s_vals = [ssim(x, (x + s * n).clamp(0, 1)).item() for s in (0.01, 0.05, 0.1, 0.3)]
    m_vals = [ms_ssim(x, (x + s * n).clamp(0, 1)).item() for s in (0.01, 0.05, 0.1, 0.3)]
    assert all(a > b for a, b in pairwise(s_vals)), s_vals
    assert all(a > b for a, b in pairwise(m_vals)), m_vals
    assert s_vals[0] < 1.0
    assert s_vals[-1] < 0.5


def test_ssim_matches_numpy_reference() -> None:
    x, y = _pair(1, (1, 2, 24, 30))
    expected = np.mean([_np_ssim_terms(x[0, c].numpy(), y[0, c].numpy())[0] for c in range(2)])
    assert ssim(x, y).item() == pytest.approx(expected, abs=1e-10)
    # The data range enters only through C1 and C2.
    expected255 = _np_ssim_terms(255 * x[0, 0].numpy(), 255 * y[0, 0].numpy(), 255.0)[0]
    assert ssim(255 * x[:, :1], 255 * y[:, :1], data_range=255.0).item() == pytest.approx(expected255, abs=1e-10)


def test_ms_ssim_matches_numpy_reference_on_three_scales() -> None:
    x, y = _pair(2, (1, 1, 46, 50), noise=0.05)
    assert ms_ssim_scales(46, 50) == 3  # 46 → 23 → 11
    a, b = x[0, 0].numpy(), y[0, 0].numpy()
    w = np.array(MS_SSIM_WEIGHTS[:3]) / sum(MS_SSIM_WEIGHTS[:3])
    value = 1.0
    for j in range(3):
        s, cs = _np_ssim_terms(a, b)
        value *= (s if j == 2 else cs) ** w[j]
        hh, ww = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
        a = a[:hh, :ww].reshape(hh // 2, 2, ww // 2, 2).mean((1, 3))
        b = b[:hh, :ww].reshape(hh // 2, 2, ww // 2, 2).mean((1, 3))
    assert ms_ssim(x, y).item() == pytest.approx(value, abs=1e-10)


def test_scale_count_follows_image_size() -> None:
    assert ms_ssim_scales(256, 256) == 5
    assert ms_ssim_scales(176, 300) == 5
    assert ms_ssim_scales(175, 300) == 4
    assert ms_ssim_scales(64, 64) == 3
    assert ms_ssim_scales(32, 64) == 2
    assert ms_ssim_scales(21, 64) == 1
    assert ms_ssim_scales(5, 5) == 1


@pytest.mark.parametrize("size", [(5, 7), (12, 12), (16, 16), (37, 53), (64, 64)])
def test_small_images_do_not_crash_and_have_finite_gradients(size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size, requires_grad=True)
    y = torch.rand(2, 3, *size)
    for fn in (ssim, ms_ssim):
        v = fn(x, y)
        (g,) = torch.autograd.grad(v, x)
        assert torch.isfinite(v)
        assert torch.isfinite(g).all()
        assert -1.0 <= v.item() <= 1.0
        assert g.abs().sum() > 0


def test_reduction_none_gives_one_value_per_image() -> None:
    x = torch.rand(3, 3, 32, 32)
    y = x.clone()
    y[1] = torch.rand(3, 32, 32)
    v = ssim(x, y, reduction="none")
    assert v.shape == (3,)
    assert v[0].item() == pytest.approx(1.0, abs=1e-6)
    assert v[1].item() < 0.5
    assert ms_ssim(x, y, reduction="none").shape == (3,)
    with pytest.raises(
        ValueError, match=r"SSIM needs two N×C×H×W tensors of the same shape, got \(3, 3, 32, 32\), \(3, 2, 32, 32\)"
    ):
        ssim(x, y[:, :2])
