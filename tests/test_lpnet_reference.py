"""Our LPNet is the authors' network: same parameter count, same outputs as their TensorFlow graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import FIXTURES, needs_shared
from weatherstudio.models.lpnet_import import import_lpnet_tf_npz, state_dict_from_tf_npz
from weatherstudio.models.registry import build_model
from weatherstudio.models.weightfile import WeightsError, load_weights

REF = FIXTURES / "lpnet_reference"


def test_parameter_count_matches_the_paper() -> None:
    model = build_model("lpnet", "paper")
    assert model.num_parameters() == 7548
    per_level = [sum(p.numel() for p in s.parameters()) for s in model.subnets]
    assert per_level == [56, 147, 443, 1491, 5411]


@needs_shared
@pytest.mark.parametrize("name", ["rain-001.png", "rain-002.png", "rain-003.png"])
def test_reproduces_the_authors_tensorflow_outputs(name: str, tmp_path) -> None:
    from weatherstudio.core.image_io import read_image

    out_file = tmp_path / "light.safetensors"
    import_lpnet_tf_npz(REF / "weights_light.npz", out_file)
    model, meta = load_weights(out_file)  # through our own weight file, as the app would
    assert meta["arch"] == "lpnet"
    expected = np.load(REF / "expected_light.npz")[name]
    rgb = read_image(REF / "rainy" / name).rgb
    with torch.inference_mode():
        out = model(torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]).image[0].numpy().transpose(1, 2, 0)
    assert out.shape == expected.shape
    assert float(np.abs(out - expected).max()) < 1e-5


@needs_shared
def test_heavy_weights_import_and_differ_from_light() -> None:
    light = state_dict_from_tf_npz(REF / "weights_light.npz")
    heavy = state_dict_from_tf_npz(REF / "weights_heavy.npz")
    assert light.keys() == heavy.keys()
    assert any(not torch.equal(light[k], heavy[k]) for k in light)


def test_importer_rejects_a_non_lpnet_archive(tmp_path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"generator/conv1/kernel": np.zeros((3, 3, 3, 8), np.float32)})
    with pytest.raises(WeightsError, match="unexpected variable"):
        state_dict_from_tf_npz(bad)
