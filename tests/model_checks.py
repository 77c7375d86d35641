"""Checks shared by the model tests: the output contract of :mod:`weatherstudio.models.base`, gradient reach and a
short training run on a fixed batch.

:func:`contract_run` caches one forward pair per registered model and config, so that ``test_model_contract``
and the per-model files (which check what is specific to a network on the same outputs) pay for it once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from weatherstudio.models import MapKind, MapSpec, ModelOutput, RestorationModel, build_model

#: Kinds whose declared ``value_range`` is a bound the output obeys (probabilities, gate activations, images
#: clamped to [0, 1]). For the others — residuals, pyramid levels, magnitudes — the range is where a viewer sets
#: its display levels: nothing in the contract clamps them (an LPNet output level is a ReLU, a residual can be
#: a plain conv), so the contract only asks for finite values; a per-model test asserts the range where the
#: architecture bounds the map (a tanh, a difference of two images in [0, 1]).
BOUNDED_KINDS = frozenset({MapKind.MASK, MapKind.GATE, MapKind.IMAGE})

#: Input height × width of the contract forward: odd, so that padding and cropping paths run.
CONTRACT_SIZE = (37, 53)
#: Configs that run every layer at full resolution with hundreds of channels get a tiny odd size instead.
TINY_SIZE = (19, 23)
_TINY = {("desnownet", "paper")}


def contract_size(arch: str, config: str) -> tuple[int, int]:
    """The (H, W) of the contract forward for ``arch``/``config``."""
    return TINY_SIZE if (arch, config) in _TINY else CONTRACT_SIZE


def seeded_model(arch: str, config: str | dict[str, Any] = "lite", seed: int = 0) -> RestorationModel:
    """``build_model(arch, config)`` after ``torch.manual_seed(seed)``, in eval mode."""
    torch.manual_seed(seed)
    return build_model(arch, config).eval()


@dataclass(frozen=True)
class ContractRun:
    """One forward pair on ``x``: ``plain`` (``return_maps=False``) and ``out`` (``return_maps=True``), each from a
    reset state; ``specs`` the model's map specs and ``state`` its carried state after ``out``."""

    x: torch.Tensor
    plain: ModelOutput
    out: ModelOutput
    specs: tuple[MapSpec, ...]
    state: Any


def run_contract(model: RestorationModel, x: torch.Tensor) -> ContractRun:
    """Run ``model`` on ``x`` without and with maps (no gradients; temporal models reset before each call)."""
    with torch.no_grad():
        model.reset_state()
        plain = model(x)
        model.reset_state()
        out = model(x, return_maps=True)
    return ContractRun(x, plain, out, tuple(model.map_specs()), model.get_state())


@functools.cache
def contract_run(arch: str, config: str) -> ContractRun:
    """:func:`run_contract` on the seed-0 model in eval mode and ``torch.rand(2, 3, *contract_size)`` after it
    (cached: callers must not modify the tensors)."""
    model = seeded_model(arch, config)
    return run_contract(model, torch.rand(2, 3, *contract_size(arch, config)))


def assert_within(t: torch.Tensor, value_range: tuple[float, float], name: str = "") -> None:
    """Every value of ``t`` lies in the closed ``value_range`` (NaN fails)."""
    lo, hi = value_range
    t_min, t_max = float(t.min()), float(t.max())
    assert lo <= t_min and t_max <= hi, (name, t_min, t_max, value_range)


def assert_map_in_declared_range(run: ContractRun, name: str) -> None:
    """Map ``name`` of ``run`` lies inside its spec's ``value_range`` (for a display range the model bounds)."""
    (spec,) = [s for s in run.specs if s.name == name]
    assert_within(run.out.maps[name], spec.value_range, name)


def check_contract(run: ContractRun) -> None:
    """The output contract: the image has the input's shape and dtype and lies in [0, 1]; ``return_maps=False``
    gives no maps and the same image; exactly the declared maps come back, each finite, with the declared
    channels, a size of ``ceil(H·scale)×ceil(W·scale)``, and inside its range for the :data:`BOUNDED_KINDS`."""
    x, plain, out = run.x, run.plain, run.out
    n, _, h, w = x.shape
    assert out.image.shape == x.shape and out.image.dtype == x.dtype
    assert_within(out.image, (0.0, 1.0), "image")
    assert plain.maps == {}
    assert torch.equal(plain.image, out.image)
    names = [s.name for s in run.specs]
    assert len(names) == len(set(names)), names
    assert set(names) == set(out.maps)
    for spec in run.specs:
        t = out.maps[spec.name]
        assert t.shape == (n, spec.channels, math.ceil(h * spec.scale), math.ceil(w * spec.scale)), spec.name
        assert torch.isfinite(t).all(), spec.name
        if spec.kind in BOUNDED_KINDS:
            assert_within(t, spec.value_range, spec.name)


def assert_gradients_reach_every_parameter(
    model: torch.nn.Module, frozen_ok: bool = False, flat: Mapping[str, str] | None = None
) -> None:
    """After a backward pass, every parameter has a finite, non-zero gradient.

    With ``frozen_ok`` parameters that do not require a gradient are skipped (without, every parameter must
    require one). ``flat`` names parameters (with the reason) that the loss at hand is locally flat in: they must
    exist and get a finite gradient, which must be exactly zero — so that the exemption cannot outlive its reason.
    """
    flat = dict(flat or {})
    params = dict(model.named_parameters())
    assert set(flat) <= set(params), sorted(set(flat) - set(params))
    for name, p in params.items():
        if frozen_ok and not p.requires_grad:
            continue
        assert p.requires_grad, name
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        if name in flat:
            assert float(p.grad.abs().sum()) == 0.0, (name, flat[name])
        else:
            assert float(p.grad.abs().sum()) > 0.0, name


def assert_loss_decreases(
    model: torch.nn.Module,
    loss_fn: Callable[[], torch.Tensor],
    steps: int,
    lr: float,
    factor: float,
    weight_decay: float = 0.0,
) -> list[float]:
    """``steps`` Adam updates of ``model`` on the fixed batch inside ``loss_fn``; every loss is finite and the last
    is below ``factor`` × the first. Returns the losses."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses), losses
    assert losses[-1] < factor * losses[0], losses
    return losses
