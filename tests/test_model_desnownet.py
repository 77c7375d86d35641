"""DesnowNet (Liu et al., TIP 2018): configs, declared maps, train-mode ranges, eq. 5, receptive field, gradients and
the eq. 7–8 loss (the output contract for both configs is in test_model_contract.py)."""

from __future__ import annotations

import pytest
import torch
from model_checks import (
    assert_gradients_reach_every_parameter,
    assert_loss_decreases,
    assert_map_in_declared_range,
    check_contract,
    contract_run,
    run_contract,
)

from weatherstudio.models import MapKind, build_model
from weatherstudio.models.desnownet import DesnowNet, pyramid_convs, pyramid_heads, recover_translucency
from weatherstudio.models.losses import DesnowNetLoss, maxpool_pyramid_loss

CONFIGS = ("lite", "paper")


def _synthetic_snow(n: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x = a·z + y·(1 − z) (paper eq. 1) with a smooth clean image y, white-ish snow a and a sparse mask z."""
    g = torch.Generator().manual_seed(seed)
    y = torch.nn.functional.interpolate(torch.rand(n, 3, h // 4 + 1, w // 4 + 1, generator=g), size=(h, w))
    z = (torch.rand(n, 1, h, w, generator=g) > 0.9).float() * torch.rand(n, 1, h, w, generator=g)
    a = 0.9 + 0.1 * torch.rand(n, 3, h, w, generator=g)
    return a * z + y * (1 - z), y, z


def test_registry_and_configs() -> None:
    for cfg in CONFIGS:
        model = build_model("desnownet", cfg)
        assert isinstance(model, DesnowNet)
        assert model.arch == "desnownet"
        assert model.task == "snow"
        assert model.size_multiple == 1
    paper = build_model("desnownet", "paper")
    lite = build_model("desnownet", "lite")
    # Paper: Inception-V4 with widths halved ends at 768 channels; 5 dilated convs of 192 → 960.
    assert paper.descriptor_t[0].out_channels == 768
    assert paper.descriptor_t.out_channels == 960
    assert paper.descriptor_r[0][0][0][0].in_channels == 7  # RG reads (y′, ẑ, a)
    assert 30_000_000 < paper.num_parameters() < 40_000_000
    assert 200_000 < lite.num_parameters() < 600_000
    with pytest.raises(ValueError, match="blocks must give three counts: Inception-A, -B, -C"):
        build_model("desnownet", {"preset": "lite", "blocks": [1, 1]})


@pytest.mark.parametrize("cfg", CONFIGS)
def test_declared_maps(cfg: str) -> None:
    run = contract_run("desnownet", cfg)
    kinds = {s.name: s.kind for s in run.specs}
    assert set(kinds) == {"z_hat", "aberration", "y_prime", "residual", "y_hat"}
    assert kinds["z_hat"] is MapKind.MASK
    assert kinds["residual"] is MapKind.RESIDUAL
    # The residual is a tanh output (eq. 6): its display range is a bound too.
    assert_map_in_declared_range(run, "residual")


def test_forward_contract_in_train_mode() -> None:
    """BatchNorm on batch statistics (train mode): the output contract and map ranges still hold."""
    torch.manual_seed(0)
    model = build_model("desnownet", "lite").train()
    run = run_contract(model, torch.rand(2, 3, 37, 53))
    check_contract(run)
    assert_map_in_declared_range(run, "residual")


def test_forward_train_consistency() -> None:
    torch.manual_seed(1)
    model = build_model("desnownet", "lite").eval()
    x = torch.rand(1, 3, 24, 31)
    with torch.no_grad():
        out = model.forward_train(x)
        image = model(x).image
    torch.testing.assert_close(out["z_hat"], out["z_raw"].clamp(0, 1))
    torch.testing.assert_close(out["y_hat"], out["y_prime"] + out["residual"])
    torch.testing.assert_close(out["y_prime"], recover_translucency(x, out["z_hat"], out["aberration"]))
    torch.testing.assert_close(image, out["y_hat"].clamp(0, 1))


def test_eq5_inverts_snow_model() -> None:
    g = torch.Generator().manual_seed(3)
    y = torch.rand(2, 3, 16, 16, generator=g)
    a = torch.rand(2, 3, 16, 16, generator=g)
    z = 0.95 * torch.rand(2, 1, 16, 16, generator=g)
    x = a * z + y * (1 - z)  # eq. 1
    torch.testing.assert_close(recover_translucency(x, z, a), y, atol=2e-5, rtol=0)
    # Fully opaque snow hides y: eq. 5 returns x there, and nothing is inf/NaN, values or gradients.
    z_full = z.clone()
    z_full[..., :4, :] = 1.0
    a_req = a.clone().requires_grad_(True)
    z_req = z_full.clone().requires_grad_(True)
    x_full = a * z_full + y * (1 - z_full)
    rec = recover_translucency(x_full, z_req, a_req)
    torch.testing.assert_close(rec[..., :4, :], x_full[..., :4, :].clamp(0, 1))
    torch.testing.assert_close(rec[..., 4:, :], y[..., 4:, :], atol=2e-5, rtol=0)
    rec.sum().backward()
    assert torch.isfinite(a_req.grad).all()
    assert torch.isfinite(z_req.grad).all()
    assert float(a_req.grad[..., :4, :].abs().sum()) == 0.0


def test_receptive_field_matches_gradient_support() -> None:
    """One output pixel's gradient w.r.t. the input spans exactly ``receptive_field`` pixels (eval mode)."""
    torch.manual_seed(0)
    model = build_model("desnownet", "lite").eval()
    rf = model.receptive_field
    assert rf == 177  # lite: (1 + 2·(trunk 50 + pyramid 32 + head 6)) from the layer walk
    assert build_model("desnownet", "paper").receptive_field == 361
    size = rf + 12
    x = torch.rand(1, 3, size, size, requires_grad=True)
    c = size // 2
    y = model.forward_train(x)["y_hat"]
    y[0, :, c, c].sum().backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = torch.nonzero(support.any(dim=1)).flatten()
    cols = torch.nonzero(support.any(dim=0)).flatten()
    extent = (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)
    assert max(extent) == rf
    assert min(extent) <= rf
    assert int(rows.min()) == c - rf // 2 or int(cols.min()) == c - rf // 2


def test_pyramid_heads_as_one_convolution_equal_their_branches() -> None:
    """Max and sum pyramids (eqs. 4 and 6) run as one padded convolution (or, under 8 channels in all, by output
    phases) give each head's own output and gradients; heads it cannot merge are refused."""
    torch.manual_seed(0)
    x = torch.randn(2, 6, 23, 17, requires_grad=True)
    wide = [
        pyramid_convs(6, 1, [1, 3, 5, 7], "max"),
        pyramid_convs(6, 3, [3, 5], "max"),
        pyramid_convs(6, 3, [1, 7], "sum"),
    ]
    narrow = [pyramid_convs(6, 3, [1, 3, 5, 7], "sum")]
    for heads in (wide, narrow):
        for conv in (c for head in heads for c in head):
            torch.nn.init.normal_(conv.bias)  # nonzero biases: a sum head must add them
        fused = pyramid_heads(x, heads)
        separate = [head(x) for head in heads]
        for f, s in zip(fused, separate, strict=True):
            assert f.shape == s.shape
            torch.testing.assert_close(f, s, atol=1e-5, rtol=1e-5)
        params = [x, *(p for head in heads for p in head.parameters())]
        g_fused = torch.autograd.grad(sum((f * f).sum() for f in fused), params)
        g_separate = torch.autograd.grad(sum((s * s).sum() for s in separate), params)
        for a, b in zip(g_fused, g_separate, strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    dilated = pyramid_convs(6, 1, [3], "max")
    dilated[0].dilation = (2, 2)
    with pytest.raises(ValueError, match="undilated"):
        pyramid_heads(x, [dilated])
    with pytest.raises(ValueError, match="max or sum"):
        pyramid_heads(x, [pyramid_convs(6, 1, [3], "cat")])


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = build_model("desnownet", "lite").train()
    x, y, z = _synthetic_snow(2, 32, 40)
    loss = DesnowNetLoss()(model.forward_train(x), y, z)
    loss.backward()
    assert_gradients_reach_every_parameter(model)


def test_loss_decreases_on_fixed_batch() -> None:
    torch.manual_seed(0)
    model = build_model("desnownet", "lite").train()
    criterion = DesnowNetLoss()
    assert criterion.WEIGHT_DECAY == 5e-4
    assert criterion.weight_decay == 5e-4
    x, y, z = _synthetic_snow(2, 32, 32, seed=5)

    def loss() -> torch.Tensor:
        return criterion(model.forward_train(x), y, z)

    assert_loss_decreases(model, loss, 8, lr=1e-3, factor=0.7, weight_decay=criterion.weight_decay)


def test_maxpool_pyramid_loss_values() -> None:
    target = torch.zeros(1, 1, 16, 16)
    pred = torch.zeros(1, 1, 16, 16)
    target[0, 0, 0, 0] = 1.0
    pred[0, 0, 1, 1] = 1.0  # the same flake, one pixel off: inside every 2^i window for i ≥ 1
    assert float(maxpool_pyramid_loss(target, target)) == 0.0
    assert float(maxpool_pyramid_loss(target, pred, tau=4, reduction="sum")) == pytest.approx(2.0)
    assert float(maxpool_pyramid_loss(target, pred, tau=0, reduction="mean")) == pytest.approx(2.0 / 256)
    # A flake missing entirely is penalised at every level: 1 + 1 + 1 + 1 + 1 (τ = 4, sum).
    assert float(maxpool_pyramid_loss(target, torch.zeros_like(target), tau=4)) == pytest.approx(5.0)
    # Sum reduction averages over the batch; levels larger than the map are skipped.
    two = torch.cat([target, target]), torch.cat([pred, pred])
    assert float(maxpool_pyramid_loss(*two)) == pytest.approx(2.0)
    small = torch.zeros(1, 1, 5, 7)
    assert float(maxpool_pyramid_loss(small, small + 1, tau=4)) == pytest.approx(35 + 12 + 4)
    with pytest.raises(ValueError, match="unknown reduction 'median'"):
        maxpool_pyramid_loss(target, pred, reduction="median")


def test_loss_terms_and_weights() -> None:
    y = torch.rand(1, 3, 8, 8)
    z = torch.rand(1, 1, 8, 8)
    outputs = {"y_hat": y + 0.1, "y_prime": y.clone(), "z_hat": z.clamp(0, 1), "z_raw": z + 0.2}
    crit = DesnowNetLoss(lambda_z=3.0, tau=0)
    terms = crit.terms(outputs, y, z)
    assert float(terms["y_prime"]) == pytest.approx(0.0, abs=1e-9)
    assert float(terms["y_hat"]) == pytest.approx(0.01 * 3 * 64, rel=1e-4)
    assert float(terms["z_hat"]) == pytest.approx(0.04 * 64, rel=1e-4)  # compares the unclamped z_raw
    assert float(terms["total"]) == pytest.approx(0.01 * 3 * 64 + 3 * 0.04 * 64, rel=1e-4)
    assert "weight decay 0.0005" in crit.description


def test_scaled_output_init_starts_near_the_identity() -> None:
    """With its output heads scaled down, the untrained network returns (almost) its input: ẑ ≈ 0, r ≈ 0."""
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    changes = {}
    for scale in (1.0, 0.01):
        torch.manual_seed(0)
        model = build_model("desnownet", "lite").eval()
        model.scale_output_init(scale)
        with torch.no_grad():
            out = model.forward_train(x)
        changes[scale] = float((out["y_hat"] - x).abs().mean())
        if scale < 1:
            assert float(out["z_hat"].max()) < 0.05
            assert float(out["residual"].abs().max()) < 0.05
    assert changes[0.01] < 0.02 < changes[1.0]


def test_pool_branch_projects_first_and_is_the_same_function() -> None:
    """Inception's pool branch runs its 1×1 conv before the average pool (they commute); same keys, same output."""
    from torch import nn

    from weatherstudio.models.desnownet import PoolProjection

    torch.manual_seed(0)
    branch = PoolProjection(12, 4, bn_eps=1e-3)
    reference = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), branch[1])
    assert [k for k, _ in branch.named_parameters()] == ["1.0.weight", "1.1.weight", "1.1.bias"]
    x = torch.rand(2, 12, 9, 11)
    for train in (True, False):
        branch.train(train)
        reference.train(train)
        assert torch.allclose(branch(x), reference(x), atol=1e-5)  # edges included: padding is not counted
    model = build_model("desnownet", "lite")
    assert sum(isinstance(m, PoolProjection) for m in model.modules()) > 0
