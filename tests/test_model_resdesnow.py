"""Residual de-snowing network (Wan & Lee): the residue map, padding, gradients, and the eq. 1–4 loss with a real
(randomly initialised) VGG-19 weight file (the output contract for both configs is in test_model_contract.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from model_checks import (
    assert_gradients_reach_every_parameter,
    assert_loss_decreases,
    assert_map_in_declared_range,
    contract_run,
)

from weatherstudio.models import MapKind, build_model
from weatherstudio.models.blocks import conv2d_by_phases
from weatherstudio.models.losses import ResDesnowLoss, load_vgg19_features, total_variation, vgg19_features
from weatherstudio.models.resdesnow import ResDesnowNet

CONFIGS = ("lite", "paper")


def _pair(n: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.nn.functional.interpolate(torch.rand(n, 3, h // 4 + 1, w // 4 + 1, generator=g), size=(h, w))
    flakes = (torch.rand(n, 1, h, w, generator=g) > 0.9).float()
    return (y * (1 - 0.8 * flakes) + 0.8 * flakes).clamp(0, 1), y


def _random_vgg_state(prefix: str = "features.") -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {prefix + k: v for k, v in vgg19_features("pool5").state_dict().items()}


@pytest.mark.parametrize("cfg", CONFIGS)
def test_residue_restores_the_image(cfg: str) -> None:
    """The one map is the residue (a tanh output, so inside its range), and the image is input + residue."""
    model = build_model("resdesnow", cfg)
    assert isinstance(model, ResDesnowNet)
    assert model.task == "snow"
    assert model.size_multiple == 4
    run = contract_run("resdesnow", cfg)
    (spec,) = run.specs
    assert spec.name == "residue"
    assert spec.kind is MapKind.RESIDUAL
    assert spec.channels == 3
    assert_map_in_declared_range(run, "residue")
    torch.testing.assert_close(run.out.image, (run.x + run.out.maps["residue"]).clamp(0, 1))


def test_configs_and_receptive_field() -> None:
    paper = build_model("resdesnow", "paper")
    lite = build_model("resdesnow", "lite")
    assert len(paper.body) == 9
    assert paper.inception.fuse[1].out_channels == 64
    assert [m[0].out_channels for m in paper.encoder] == [128, 256]
    assert [m[0].out_channels for m in paper.decoder] == [128, 64]
    assert 11_000_000 < paper.num_parameters() < 12_000_000
    assert lite.num_parameters() < 500_000
    # inception 5×5 + 3×3, two stride-2 convs, 9 blocks of two 3×3 at stride 4, two deconvs, 7×7: 169 px.
    assert paper.receptive_field == 169
    assert lite.receptive_field == 169 - 16 * 5


def test_internal_padding_crops_back() -> None:
    """An odd-sized input gives the same result as running the reflect-padded input and cropping."""
    torch.manual_seed(0)
    model = build_model("resdesnow", "lite").eval()
    x = torch.rand(1, 3, 29, 34)
    padded = torch.nn.functional.pad(x, (0, 2, 0, 3), mode="reflect")
    with torch.no_grad():
        a = model.forward_train(x)["residue"]
        b = model.forward_train(padded)["residue"][..., :29, :34]
    torch.testing.assert_close(a, b)
    with torch.no_grad():  # tiny inputs: padded to 8 (replicated where too small to reflect)
        for size in ((6, 7), (4, 4), (2, 3), (1, 1)):
            assert model(torch.rand(1, 3, *size)).image.shape == (1, 3, *size)


@pytest.mark.parametrize(("size", "kernel"), [((20, 14), 7), ((19, 23), 7), ((9, 8), 3), ((7, 7), 7)])
def test_conv2d_by_phases_equals_the_convolution(size: tuple[int, int], kernel: int) -> None:
    """The output phases as channels of one stride-2 convolution, put back in place, are the convolution itself
    (even and odd outputs, values and gradients)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 3, kernel)
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(2, 5, *size, requires_grad=True)
    fast, plain = conv2d_by_phases(x, conv.weight, conv.bias), conv(x)
    assert fast.shape == plain.shape
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    (g_fast,) = torch.autograd.grad((fast * plain.detach()).sum(), x)
    (g_plain,) = torch.autograd.grad((plain * plain.detach()).sum(), x)
    torch.testing.assert_close(g_fast, g_plain, atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = build_model("resdesnow", "lite").train()
    x, y = _pair(2, 32, 36)
    ResDesnowLoss()(model.forward_train(x), y).backward()
    assert_gradients_reach_every_parameter(model)


def test_loss_decreases_on_fixed_batch() -> None:
    torch.manual_seed(0)
    model = build_model("resdesnow", "lite").train()
    crit = ResDesnowLoss()
    x, y = _pair(2, 32, 32, seed=4)
    assert_loss_decreases(model, lambda: crit(model.forward_train(x), y), 10, lr=3e-4, factor=0.8)


def test_total_variation_values() -> None:
    flat = torch.full((2, 3, 5, 6), 0.3)
    assert float(total_variation(flat)) == 0.0
    step = torch.zeros(1, 1, 4, 5)
    step[..., 2:, :] = 1.0  # one horizontal edge: 5 vertical differences of 1
    assert float(total_variation(step, "sum")) == pytest.approx(5.0)
    assert float(total_variation(step, "mean")) == pytest.approx(5.0 / 15)
    with pytest.raises(ValueError, match="unknown reduction 'max'"):
        total_variation(step, "max")


def test_loss_without_vgg() -> None:
    crit = ResDesnowLoss()
    assert crit.perceptual_enabled is False
    assert "perceptual term off" in crit.description
    assert "\n" not in crit.description
    y = torch.rand(1, 3, 8, 8)
    terms = crit.terms(y + 0.1, y)
    assert "perceptual" not in terms
    assert float(terms["mse"]) == pytest.approx(0.01, rel=1e-4)
    expected = 0.01 + 1e-4 * float(total_variation(y + 0.1))
    assert float(terms["total"]) == pytest.approx(expected, rel=1e-5)


def test_perceptual_with_vgg_file(tmp_path: Path) -> None:
    """A random VGG-19 in torchvision's state-dict layout, saved and read back through weights_only loading."""
    path = tmp_path / "vgg19_random.pth"
    state = _random_vgg_state()
    torch.save(state, path)
    crit = ResDesnowLoss(vgg_weights=path)
    assert crit.perceptual_enabled
    assert "VGG-19 conv3_3" in crit.description
    assert "vgg19_random.pth sha256:" in crit.description
    # The loaded layers hold the file's weights (conv3_3 is features.14) and are frozen.
    torch.testing.assert_close(crit.vgg[14].weight, state["features.14.weight"])
    assert len(crit.vgg) == 15
    assert not any(p.requires_grad for p in crit.vgg.parameters())

    torch.manual_seed(0)
    model = build_model("resdesnow", "lite").train()
    x, y = _pair(1, 32, 32)
    terms = crit.terms(model.forward_train(x), y)
    assert float(terms["perceptual"].detach()) > 0
    assert float(crit.terms(y, y)["perceptual"]) == 0.0
    torch.testing.assert_close(terms["total"], terms["mse"] + 10 * terms["perceptual"] + 1e-4 * terms["tv"])
    terms["total"].backward()
    assert all(p.grad is None for p in crit.vgg.parameters())
    assert model.to_residue[1].weight.grad is not None
    crit.train()
    assert not crit.vgg.training  # VGG stays in eval mode


def test_vgg_file_formats_and_errors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = _random_vgg_state(prefix="")  # a features-only dict, safetensors this time
    st = tmp_path / "vgg.safetensors"
    save_file({k: v for k, v in state.items() if int(k.split(".")[0]) <= 14}, str(st))
    net = load_vgg19_features(st, "conv3_3")
    torch.testing.assert_close(net[0].weight, state["0.weight"])

    missing = tmp_path / "short.pth"
    torch.save({f"features.{k}": v for k, v in state.items() if int(k.split(".")[0]) < 10}, missing)
    with pytest.raises(ValueError, match="lacks VGG-19 tensor features.10.weight"):
        load_vgg19_features(missing)
    wrong = tmp_path / "wrong.pth"
    bad = dict(state)
    bad["5.weight"] = torch.zeros(128, 3, 3, 3)
    torch.save(bad, wrong)
    with pytest.raises(ValueError, match="features.5.weight has shape"):
        load_vgg19_features(wrong)
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(ValueError, match="state dict"):
        load_vgg19_features(not_a_dict)
    with pytest.raises(ValueError, match="unknown VGG-19 layer"):
        vgg19_features("conv9_9")


def test_vgg_layout_matches_torchvision(tmp_path: Path) -> None:
    """Our VGG-19 feature stack loads a file written from torchvision's own VGG-19 layers, and computes the same."""
    try:
        from torchvision.models.vgg import cfgs, make_layers
    except Exception as exc:  # a torchvision wheel built for another torch raises RuntimeError on import
        pytest.skip(f"torchvision cannot be imported here ({type(exc).__name__}: {exc})")
    torch.manual_seed(0)
    features = make_layers(cfgs["E"])  # exactly torchvision.models.vgg19(weights=None).features
    path = tmp_path / "tv_vgg19.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    ours = load_vgg19_features(path, "relu3_3")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), features[:16](x))
