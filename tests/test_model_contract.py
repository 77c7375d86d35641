"""The contract of weatherstudio.models.base, for every registered model and each of its configs: shapes, the
cost-free ``return_maps=False`` path, the declared maps (channels, scale, value ranges), and for the ``lite``
configs (the ones that ship and train on a CPU) gradients reaching every trainable parameter.

What a single network adds to this (eq. 5 inversion, recurrent state, deformable convolutions, its loss) is in
its own ``test_model_<arch>.py``; the shared checks live in ``model_checks.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model_checks import TINY_SIZE, assert_gradients_reach_every_parameter, check_contract, contract_run, seeded_model

from weatherstudio.models import entries

CASES = [(arch, config) for arch, entry in sorted(entries().items()) for config in entry.configs]
LITE = [arch for arch, entry in sorted(entries().items()) if "lite" in entry.configs]

#: Parameters the restored image is locally flat in, by model, with the reason; their training loss reaches them.
FLAT_IN_IMAGE = {
    "desnownet": {
        "snow_extractor.1.weight": "the mask head's PReLU slope acts on negative values only, which the clamp to "
        "ẑ ∈ [0, 1] maps to 0; the eq. 7 loss on the unclamped z_raw trains it (test_model_desnownet)",
    },
}


def test_every_network_is_covered() -> None:
    """The five networks are registered (so a failed import cannot silently shrink the parametrisation)."""
    assert {arch for arch, _ in CASES} >= {"lpnet", "desnownet", "resdesnow", "j4rnet", "gtrain"}
    assert set(LITE) == {arch for arch, _ in CASES}


@pytest.mark.parametrize(("arch", "config"), CASES, ids=[f"{a}-{c}" for a, c in CASES])
def test_forward_contract(arch: str, config: str) -> None:
    """Batch 2 at an odd size (tiny for the full-resolution paper DesnowNet), maps on and off."""
    check_contract(contract_run(arch, config))


@pytest.mark.parametrize("arch", LITE)
def test_lite_backward_reaches_every_parameter(arch: str) -> None:
    """An MSE on the restored image alone back-propagates to every parameter that requires a gradient (but the
    few listed in :data:`FLAT_IN_IMAGE`). A tiny odd size: the pure-torch deformable convolution is slow backwards."""
    model = seeded_model(arch, "lite").train()
    x = torch.rand(2, 3, *TINY_SIZE)
    model.reset_state()
    if model.temporal:
        # From a zero memory the memory-side weights get no gradient (they multiply zeros): run one frame first.
        with torch.no_grad():
            model(torch.rand_like(x))
    F.mse_loss(model(x).image, torch.rand_like(x)).backward()
    assert_gradients_reach_every_parameter(model, frozen_ok=True, flat=FLAT_IN_IMAGE.get(arch))
