"""GT-RAIN modified ResNet: deformable conv correctness, shapes, maps, gradients, loss (the output contract for both
configs is in test_model_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_checks import (
    assert_gradients_reach_every_parameter,
    assert_loss_decreases,
    assert_map_in_declared_range,
    contract_run,
    seeded_model,
)

from weatherstudio.models import MapKind, get_entry
from weatherstudio.models.gtrain import (
    DeformConv,
    GTRainNet,
    _torchvision_deform,
    deform_conv2d_torch,
    modulated_deform_conv2d,
)
from weatherstudio.models.losses.gtrain import GTRainLoss, info_nce


def _model(config: str | dict = "lite", seed: int = 0) -> GTRainNet:
    model = seeded_model("gtrain", config, seed)
    assert isinstance(model, GTRainNet)
    return model


def test_registry_and_parameter_count() -> None:
    assert set(get_entry("gtrain").configs) >= {"paper", "lite"}
    paper = _model("paper")
    assert 12.8e6 < paper.num_parameters() < 13.0e6  # ≈ 12.9 M (REFERENCE_FACTS)
    assert paper.size_multiple == 4
    assert _model().num_parameters() < paper.num_parameters() / 5


@pytest.mark.parametrize("config", ["lite", "paper"])
def test_declared_maps(config: str) -> None:
    run = contract_run("gtrain", config)
    kinds = {s.name: s.kind for s in run.specs}
    assert kinds["residual"] is MapKind.RESIDUAL
    assert kinds["offset_magnitude"] is MapKind.MAGNITUDE
    # The residual is output − input, two images in [0, 1]: its display range is a bound.
    assert torch.allclose(run.out.maps["residual"], run.out.image - run.x)
    assert_map_in_declared_range(run, "residual")
    # Zero-initialised offsets: nothing deforms yet.
    assert run.out.maps["offset_magnitude"].abs().max() == 0
    assert_map_in_declared_range(run, "offset_magnitude")


@pytest.mark.parametrize("size", [(5, 6), (8, 8), (13, 30)])
def test_tiny_and_odd_sizes(size: tuple[int, int]) -> None:
    with torch.no_grad():
        out = _model()(torch.rand(1, 3, *size), return_maps=True)
    assert out.image.shape == (1, 3, *size)
    assert out.maps["offset_magnitude"].shape == (1, 1, *size)


def test_variant_with_mish_and_kaiming() -> None:
    model = _model({"preset": "lite", "activation": "mish", "init": "kaiming"})
    assert isinstance(model.blocks[0].act, torch.nn.Mish)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 20, 24))
    assert out.image.shape == (1, 3, 20, 24)
    assert torch.isfinite(out.image).all()
    for block in model.blocks:  # offsets still start at zero
        assert block.dconv1.offset.weight.abs().max() == 0
        assert block.dconv2.modulator.bias.abs().max() == 0


def test_zero_offsets_make_the_deformable_conv_a_plain_conv() -> None:
    torch.manual_seed(0)
    layer = DeformConv(6, 5)
    x = torch.randn(2, 6, 11, 14)
    y, offset = layer(x)
    plain = layer.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
    assert offset.abs().max() == 0
    assert (y - plain).abs().max() < 1e-5
    # The same inside a whole network at initialisation.
    model = _model()
    block = model.blocks[0]
    f = torch.randn(1, model.widths[2], 6, 7)
    y1, _ = block.dconv1(f)
    assert (y1 - block.dconv1.conv(F.pad(f, (1, 1, 1, 1), mode="reflect"))).abs().max() < 1e-5


def test_integer_offsets_shift_the_samples() -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 3, 9, 10)
    weight = torch.randn(4, 3, 3, 3)
    bias = torch.randn(4)
    ho, wo = 7, 8
    offset = torch.zeros(1, 18, ho, wo)
    offset[:, 0::2] = 1.0  # every tap one row down
    offset[:, 1::2] = -2.0  # and two columns left
    mask = torch.ones(1, 9, ho, wo)
    y = deform_conv2d_torch(x, offset, weight, bias, mask)
    shifted = torch.zeros_like(x)
    shifted[:, :, :-1, 2:] = x[:, :, 1:, :-2]  # x[i + 1, j − 2], zeros outside
    assert (y - F.conv2d(shifted, weight, bias)).abs().max() < 1e-5
    # The mask scales each tap.
    y_half = deform_conv2d_torch(x, offset, weight, bias, 0.5 * mask)
    assert (y_half - F.conv2d(0.5 * shifted, weight, bias)).abs().max() < 1e-5


def _np_deform(x: np.ndarray, offset: np.ndarray, weight: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Direct DCNv2 with bilinear sampling, zeros outside (one image)."""
    c, h, w = x.shape
    cout = weight.shape[0]
    ho, wo = h - 2, w - 2

    def sample(ch: int, py: float, px: float) -> float:
        y0, x0 = int(np.floor(py)), int(np.floor(px))
        total = 0.0
        for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
            for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
                if 0 <= yy < h and 0 <= xx < w:
                    total += wy * wx * x[ch, yy, xx]
        return total

    out = np.zeros((cout, ho, wo))
    for oy in range(ho):
        for ox in range(wo):
            for i in range(3):
                for j in range(3):
                    k = i * 3 + j
                    py = oy + i + offset[2 * k, oy, ox]
                    px = ox + j + offset[2 * k + 1, oy, ox]
                    vals = np.array([sample(ch, py, px) for ch in range(c)]) * mask[k, oy, ox]
                    out[:, oy, ox] += weight[:, :, i, j] @ vals
    return out


def test_fractional_offsets_match_a_direct_reference() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 6, 7, generator=g, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64)
    offset = 2.5 * torch.randn(1, 18, 4, 5, generator=g, dtype=torch.float64)  # some samples fall outside
    mask = 2 * torch.rand(1, 9, 4, 5, generator=g, dtype=torch.float64)
    y = deform_conv2d_torch(x, offset, weight, None, mask)
    ref = _np_deform(x[0].numpy(), offset[0].numpy(), weight.numpy(), mask[0].numpy())
    assert np.abs(y[0].numpy() - ref).max() < 1e-9


def test_pure_torch_gradients_match_finite_differences() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    # Offsets kept away from integers, where bilinear interpolation has kinks.
    offset = torch.randint(-1, 2, (1, 18, 3, 4), generator=g) + 0.25 + 0.5 * torch.rand(1, 18, 3, 4, generator=g)
    offset = offset.double().requires_grad_()
    mask = torch.rand(1, 9, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(deform_conv2d_torch, (x, offset, weight, bias, mask), eps=1e-6, atol=1e-5)


def test_pure_torch_matches_torchvision() -> None:
    if _torchvision_deform() is None:
        pytest.skip("torchvision's compiled ops do not load here (e.g. a CUDA torchvision on a CPU torch)")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 10, 12, generator=g)
    weight = torch.randn(5, 4, 3, 3, generator=g)
    bias = torch.randn(5, generator=g)
    offset = 1.7 * torch.randn(2, 18, 8, 10, generator=g)
    mask = torch.rand(2, 9, 8, 10, generator=g) * 2
    a = modulated_deform_conv2d(x, offset, weight, bias, mask, use_torchvision=True)
    b = modulated_deform_conv2d(x, offset, weight, bias, mask, use_torchvision=False)
    assert (a - b).abs().max() < 1e-4


def test_offset_magnitude_is_in_input_pixels() -> None:
    model = _model()
    with torch.no_grad():
        for block in model.blocks:
            for dc in (block.dconv1, block.dconv2):
                dc.offset.bias[0::2] = 0.3  # dy, feature pixels
                dc.offset.bias[1::2] = 0.4  # dx → length 0.5 feature px = 2 input px
        out = model(torch.rand(1, 3, 21, 26), return_maps=True)
    assert torch.allclose(out.maps["offset_magnitude"], torch.full((1, 1, 21, 26), 2.0), atol=1e-5)


def test_encode_matches_forward_train_features() -> None:
    model = _model()
    rainy, clean = torch.rand(2, 3, 24, 28), torch.rand(2, 3, 24, 28)
    with torch.no_grad():
        feats = model.encode(rainy)
        train = model.forward_train(rainy, clean)
        out = model(rainy)
    assert feats.shape == (2, 4 * model.widths[2])
    assert torch.allclose(train["features"], feats, atol=1e-6)
    assert torch.allclose(train["features_clean"], model.encode(clean), atol=1e-6)
    assert torch.allclose(train["image"], out.image, atol=1e-6)
    assert _model("paper").encode(torch.rand(1, 3, 16, 16)).shape == (1, 1024)


def test_backward_reaches_every_parameter() -> None:
    model = _model().train()
    rainy, clean = torch.rand(2, 3, 20, 24), torch.rand(2, 3, 20, 24)
    GTRainLoss()(model.forward_train(rainy, clean), {"clean": clean}).backward()
    assert_gradients_reach_every_parameter(model)


def test_loss_decreases_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = _model().train()
    clean = F.avg_pool2d(torch.rand(2, 3, 32, 32), 3, stride=1, padding=1)
    rainy = (clean + (torch.rand(2, 3, 32, 32) > 0.9).float() * 0.5).clamp(0, 1)
    loss_fn = GTRainLoss()
    assert_loss_decreases(
        model, lambda: loss_fn(model.forward_train(rainy, clean), {"clean": clean}), 8, lr=1e-3, factor=0.3
    )


def test_loss_terms_and_info_nce() -> None:
    clean = torch.rand(2, 3, 16, 16)
    terms = GTRainLoss().terms({"image": clean.clone()}, {"clean": clean})
    assert set(terms) == {"l1", "ms_ssim", "total"}
    assert terms["total"].item() == pytest.approx(0.0, abs=1e-5)
    assert "τ=0.25" in GTRainLoss().description
    # InfoNCE: twins equal and the other pair orthogonal → low; twins swapped → high.
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    good = info_nce(a, a.clone())
    bad = info_nce(a, a.flip(0))
    assert good.item() < 0.05
    assert bad.item() > 3.0
    # The formula by hand for a 2-pair batch at τ = 0.25.
    z = F.normalize(torch.randn(4, 5), dim=1)
    sim = z @ z.t() / 0.25
    pos = [2, 3, 0, 1]
    by_hand = np.mean(
        [-(sim[i, pos[i]] - torch.logsumexp(torch.cat([sim[i, :i], sim[i, i + 1 :]]), 0)).item() for i in range(4)]
    )
    assert info_nce(z[:2], z[2:]).item() == pytest.approx(by_hand, rel=1e-5)
    # One pair: no negatives, nothing to contrast.
    assert info_nce(z[:1], z[2:3]).item() == pytest.approx(0.0, abs=1e-6)
    outputs = {"image": torch.rand(2, 3, 16, 16), "features": z[:2], "features_clean": z[2:]}
    full = GTRainLoss().terms(outputs, {"clean": clean})
    expected = 0.1 * full["l1"] + full["ms_ssim"] + 0.1 * full["robust"]
    assert full["total"].item() == pytest.approx(expected.item(), rel=1e-6)
