"""J4R-Net: declared maps, gradients, training signal and the carried recurrent state. The output contract, for
both configs, is checked in test_model_contract.py."""

from __future__ import annotations

import pytest
import torch
from model_checks import (
    assert_gradients_reach_every_parameter,
    assert_loss_decreases,
    assert_map_in_declared_range,
    contract_run,
    seeded_model,
)

from weatherstudio.models import MapKind, get_entry
from weatherstudio.models.j4rnet import J4RNet, _conv_part, _to_few
from weatherstudio.models.losses.j4rnet import J4RNetLoss, high_pass


def _model(config: str = "lite", seed: int = 0) -> J4RNet:
    model = seeded_model("j4rnet", config, seed)
    assert isinstance(model, J4RNet)
    return model


def _clip(n: int = 2, t: int = 4, h: int = 19, w: int = 23, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, t, 3, h, w, generator=g)


def test_registry_entry() -> None:
    entry = get_entry("j4rnet")
    assert set(entry.configs) >= {"paper", "lite"}
    model = _model()
    assert model.temporal
    assert model.task == "rain"
    assert model.warmup_frames == model.config["clip_length"] - 1 == 4
    assert _model("paper").warmup_frames == 8
    assert model.receptive_field > model.effective_context > 1


@pytest.mark.parametrize("config", ["lite", "paper"])
def test_declared_maps_and_carried_state(config: str) -> None:
    run = contract_run("j4rnet", config)
    kinds = {s.name: s.kind for s in run.specs}
    assert kinds["alpha"] is MapKind.MASK
    assert kinds["streaks"] is MapKind.RESIDUAL
    assert kinds["gate_update"] is MapKind.GATE
    assert kinds["gate_read"] is MapKind.GATE
    # The streak layer is a plain conv: its range is for display, but the initialised network stays inside it.
    assert_map_in_declared_range(run, "streaks")
    assert run.state is not None
    assert run.state.shape == (2, _model(config).channels, *run.x.shape[-2:])


def test_backward_reaches_every_parameter() -> None:
    model = _model().train()
    clip = _clip(t=3)
    target = {
        "clean": torch.rand_like(clip),
        "streaks": torch.rand_like(clip) * 0.3,
        "alpha": (torch.rand(2, 3, 1, 19, 23) > 0.8).float(),
    }
    # Equal weights so that every term's gradient is far above rounding.
    loss = J4RNetLoss(1.0, 1.0, 1.0)(model.forward_train(clip), target)
    loss.backward()
    assert_gradients_reach_every_parameter(model)


def test_loss_decreases_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = _model().train()
    clean = torch.rand(1, 3, 3, 16, 16)
    streaks = (torch.rand(1, 3, 3, 16, 16) > 0.85).float() * 0.4
    alpha = (torch.rand(1, 3, 1, 16, 16) > 0.9).float()
    rainy = ((1 - alpha) * (clean + streaks) + alpha * 0.9).clamp(0, 1)
    target = {"clean": clean, "streaks": streaks, "alpha": alpha}
    loss_fn = J4RNetLoss()
    assert_loss_decreases(model, lambda: loss_fn(model.forward_train(rainy), target), 40, lr=1e-3, factor=0.75)


def test_frame_by_frame_equals_forward_clip() -> None:
    model = _model()
    clip = _clip(t=5)
    with torch.no_grad():
        whole = model.forward_clip(clip, return_maps=True)
        model.reset_state()
        steps = [model(clip[:, t], return_maps=True) for t in range(clip.shape[1])]
        fresh_last = _model()(clip[:, -1])  # the last frame without any memory
    assert len(whole) == len(steps) == 5
    for a, b in zip(whole, steps, strict=True):
        assert (a.image - b.image).abs().max() < 1e-5
        assert set(a.maps) == set(b.maps)
        for k in a.maps:
            assert (a.maps[k] - b.maps[k]).abs().max() < 1e-5, k
    # The memory matters: the last frame differs from the same frame processed alone.
    assert (steps[-1].image - fresh_last.image).abs().max() > 1e-4
    # forward_clip leaves the carried state alone.
    state = model.get_state()
    with torch.no_grad():
        model.forward_clip(clip)
    assert model.get_state() is state


def test_the_rewritten_convolutions_equal_the_plain_ones() -> None:
    """A 3×3 'same' convolution to few channels by output phases, and one whose input is zero outside some
    channels without them, are the plain convolution (values; gradients to the input, weight and bias)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 3, 3, padding=1)
    torch.nn.init.normal_(conv.bias)
    params = [conv.weight, conv.bias]
    for size in ((9, 14), (10, 7), (1, 1)):
        x = torch.randn(2, 8, *size, requires_grad=True)
        fast, plain = _to_few(conv, x), conv(x)
        torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
        g_fast = torch.autograd.grad(fast.square().sum(), [x, *params])
        g_plain = torch.autograd.grad(plain.square().sum(), [x, *params])
        for a, b in zip(g_fast, g_plain, strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        x = torch.randn(1, 8, 11, 6)
        zero_middle = torch.cat([x[:, :3], torch.zeros(1, 2, 11, 6), x[:, 5:]], 1)
        part = _conv_part(conv, torch.cat([x[:, :3], x[:, 5:]], 1), (0, 3), (5, 8))
        torch.testing.assert_close(part, conv(zero_middle), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(_conv_part(conv, x, (0, 8), outputs=2), conv(x)[:, :2], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("gate_maps", [False, True])
def test_a_zero_memory_is_left_out_of_the_sums(gate_maps: bool) -> None:
    """A first frame (memory None) gives what a memory of zeros gives, outputs and new memory, with less work."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = J4RNet(get_entry("j4rnet").configs["lite"]).eval()
    for p in model.parameters():  # nonzero biases and weights everywhere, so no term vanishes by chance
        torch.nn.init.normal_(p, std=0.1)
    x = torch.rand(2, 3, 21, 34)
    zeros = torch.zeros(2, model.channels, 21, 34)
    counts = []
    for h in (zeros, None):
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            out, h_new = model.step(x, h, gate_maps=gate_maps)
        counts.append(counter.get_total_flops())
        if h is zeros:
            ref, ref_h = out, h_new
    assert sorted(out) == sorted(ref)
    for key in ref:
        torch.testing.assert_close(out[key], ref[key], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_new, ref_h, atol=1e-5, rtol=1e-5)
    assert counts[1] < 0.85 * counts[0]


def test_reset_state_and_round_trip() -> None:
    model = _model()
    clip = _clip(n=1, t=4)
    with torch.no_grad():
        first = model(clip[:, 0]).image
        model(clip[:, 1])
        saved = model.get_state()
        a = model(clip[:, 2]).image
        model(clip[:, 3])  # move on
        model.set_state(saved)
        b = model(clip[:, 2]).image
        model.reset_state()
        assert model.get_state() is None
        again = model(clip[:, 0]).image
    assert torch.equal(a, b)
    assert torch.equal(first, again)
    with pytest.raises(TypeError, match="J4R-Net state must be a tensor or None, not list"):
        model.set_state([1, 2, 3])


def test_state_restarts_when_the_frame_size_changes() -> None:
    model = _model()
    with torch.no_grad():
        model(torch.rand(1, 3, 20, 20))
        out = model(torch.rand(1, 3, 17, 25))
        assert out.image.shape == (1, 3, 17, 25)
        assert model.get_state().shape[-2:] == (17, 25)
        x = torch.rand(1, 3, 17, 25)
        model.reset_state()
        expected = model(x).image
        model(torch.rand(3, 3, 17, 25))  # batch size changes too
        model(torch.rand(1, 3, 9, 9))
        assert torch.equal(model(x).image, expected)


def test_state_from_inference_mode_can_enter_autograd() -> None:
    model = _model()
    with torch.inference_mode():
        model(torch.rand(1, 3, 12, 12))
    out = model(torch.rand(1, 3, 12, 12, requires_grad=True))
    out.image.sum().backward()


def test_forward_train_matches_forward_clip_and_shapes() -> None:
    model = _model()
    clip = _clip(t=3)
    with torch.no_grad():
        train = model.forward_train(clip)
        clip_out = model.forward_clip(clip)
        single = model.forward_train(clip[:, 0])
    assert train["background"].shape == clip.shape
    assert train["alpha_logits"].shape == (2, 3, 2, 19, 23)
    assert train["alpha"].shape == (2, 3, 1, 19, 23)
    assert train["state"].shape == (2, model.channels, 19, 23)
    assert single["background"].shape == (2, 1, 3, 19, 23)
    for t in range(3):
        assert torch.allclose(train["background"][:, t].clamp(0, 1), clip_out[t].image)
    # α is the softmax's occluded-class probability.
    assert torch.allclose(train["alpha"], torch.softmax(train["alpha_logits"], 2)[:, :, 1:2])


def test_loss_terms() -> None:
    torch.manual_seed(3)
    logits = torch.randn(2, 1, 2, 8, 8)
    alpha = (torch.rand(2, 1, 1, 8, 8) > 0.5).float()
    clean = torch.rand(2, 1, 3, 8, 8)
    outputs = {
        "background": clean + 0.1,
        "reconstruction": clean + 0.2,
        "streaks": torch.zeros_like(clean),
        "alpha_logits": logits,
    }
    target = {"clean": clean, "streaks": torch.full_like(clean, 0.5), "alpha": alpha}
    terms = J4RNetLoss().terms(outputs, target)
    assert terms["joint"].item() == pytest.approx(0.01, rel=1e-4)
    assert terms["removal"].item() == pytest.approx(0.25, rel=1e-5)
    # A constant offset has no high frequencies.
    assert terms["rect"].item() == pytest.approx(0.0, abs=1e-10)
    # Two-class cross-entropy = logsumexp(f) − f[α] (the paper's l_detect) = BCE on f₁ − f₀.
    lse = torch.logsumexp(logits, 2) - torch.where(alpha.bool(), logits[:, :, 1:2], logits[:, :, 0:1])
    assert terms["detect"].item() == pytest.approx(lse.mean().item(), rel=1e-5)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, :, 1:2] - logits[:, :, 0:1], alpha)
    assert terms["detect"].item() == pytest.approx(bce.item(), rel=1e-5)
    expected = terms["joint"] + 1e-3 * terms["detect"] + 1e-4 * terms["rect"] + 1e-4 * terms["removal"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    # Real pairs: without streaks and alpha, only joint and rect remain.
    assert set(J4RNetLoss().terms(outputs, {"clean": clean})) == {"joint", "rect", "total"}
    assert "0.001·CE" in J4RNetLoss().description
    aliased = J4RNetLoss().terms(outputs, {"y": clean, "s": target["streaks"], "alpha": alpha})
    assert aliased["total"].item() == pytest.approx(terms["total"].item(), rel=1e-7)
    with pytest.raises(KeyError, match=r"J4R-Net's loss needs the clean frames \(target 'clean' or 'y'\)"):
        J4RNetLoss().terms(outputs, {"alpha": alpha})
    literal = J4RNetLoss(rect_on="background").terms(outputs, target)
    assert literal["rect"].item() == pytest.approx(0.0, abs=1e-10)


def test_high_pass_removes_constants_and_keeps_edges() -> None:
    x = torch.full((1, 3, 12, 12), 0.7)
    assert high_pass(x).abs().max() < 1e-6
    x[..., 6:] = 0.0
    assert high_pass(x).abs().max() > 0.1
    assert high_pass(torch.rand(2, 4, 3, 9, 9)).shape == (2, 4, 3, 9, 9)


def test_training_aligns_the_memory_along_the_flows() -> None:
    """forward_train with zero flows is the plain run; with a shift, the memory moves and the outputs change."""
    model = _model().eval()
    clip = _clip(n=2, t=3)
    zero = torch.zeros(2, 2, *clip.shape[-2:], 2)
    with torch.no_grad():
        plain = model.forward_train(clip)
        still = model.forward_train(clip, flows=zero)
        moved = model.forward_train(clip, flows=zero + 2.0)
    assert torch.allclose(plain["background"], still["background"], atol=1e-5)
    assert torch.equal(plain["background"][:, 0], moved["background"][:, 0])  # the first frame has no memory
    assert (plain["background"][:, 1:] - moved["background"][:, 1:]).abs().max() > 1e-4
