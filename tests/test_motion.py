"""Optical flow between frames and a video network's memory warped along it (core.motion, J4R-Net.align_state,
and the engine that joins them)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from weatherstudio.core.motion import backward_flow, motion_reference
from weatherstudio.engine.restore import FrameMemory, RestoreOptions, restore
from weatherstudio.engine.session import ModelChoice, load_choice
from weatherstudio.models.j4rnet import J4RNet
from weatherstudio.samples import find_samples


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 1.5)
    return (img - img.min()) / (img.max() - img.min())


def _shifted(img: np.ndarray, dy: int, dx: int, h: int, w: int, margin: int = 40) -> np.ndarray:
    """A view of ``img`` whose content sits (dy, dx) farther than in the view at offset 0."""
    return np.ascontiguousarray(img[margin - dy : margin - dy + h, margin - dx : margin - dx + w])


def test_flow_finds_a_camera_shift_at_720p() -> None:
    big = _texture(800, 1360)
    h, w = 720, 1280
    before = _shifted(big, 0, 0, h, w)
    for dy, dx in [(5, -3), (-12, 20), (0, 0)]:
        after = _shifted(big, dy, dx, h, w)
        flow = backward_flow(motion_reference(before), motion_reference(after))
        assert flow is not None and flow.shape == (h, w, 2)
        inner = flow[60:-60, 60:-60]
        # each pixel of the new frame was (−dx, −dy) away in the old one
        assert abs(float(np.median(inner[..., 0])) + dx) < 0.5
        assert abs(float(np.median(inner[..., 1])) + dy) < 0.5


def test_flow_needs_frames_of_one_size() -> None:
    a, b = _texture(64, 80), _texture(80, 64)
    assert backward_flow(motion_reference(a), motion_reference(b)) is None


def test_memory_moves_with_the_scene_and_new_ground_starts_empty() -> None:
    model = J4RNet(
        {
            "channels": 4,
            "clip_length": 5,
            "encoder_blocks": 1,
            "detect_blocks": 1,
            "removal_blocks": 1,
            "reconstruct_blocks": 1,
            "joint_blocks": 1,
        }
    )
    state = torch.rand(1, 4, 30, 40)
    flow = np.zeros((30, 40, 2), np.float32)
    flow[..., 0] = -3.0  # the scene moved 3 px right: each pixel was 3 px to its left
    flow[..., 1] = -2.0
    moved = model.align_state(state, flow)
    assert torch.allclose(moved[..., 2:, 3:], state[..., :-2, :-3], atol=1e-5)
    assert moved[..., :2, :].abs().max() < 1e-6 and moved[..., :, :3].abs().max() < 1e-6  # from outside: empty
    assert torch.allclose(model.align_state(state, np.zeros((30, 40, 2), np.float32)), state, atol=1e-5)


def test_restore_keeps_the_frame_reference_and_aligns_only_when_asked() -> None:
    ready = load_choice(ModelChoice("j4rnet"))
    big = _texture(200, 240, seed=3)
    frames = [_shifted(big, 0, 6 * i, 96, 128) for i in range(2)]
    first = restore(frames[0], ready.model, RestoreOptions(tile=0))
    assert isinstance(first.state, FrameMemory) and first.state.reference is not None
    aligned = restore(frames[1], ready.model, RestoreOptions(tile=0), state=first.state)
    plain = restore(frames[1], ready.model, RestoreOptions(tile=0, align_memory=False), state=first.state)
    assert np.abs(aligned.image - plain.image).max() > 1e-3
    off = restore(frames[0], ready.model, RestoreOptions(tile=0, align_memory=False))
    assert off.state is not None and off.state.reference is None


def test_aligned_memory_restores_a_panning_rainy_clip_better() -> None:
    """The bundled rocket photo, a camera panning over it and light synthetic rain: carrying J4R-Net's memory
    along the flow scores higher than leaving it where the last frame had it."""
    from weatherstudio.core.image_read import read_image
    from weatherstudio.core.metrics import psnr_y
    from weatherstudio.synth import synthesize_rain_video
    from weatherstudio.synth.video import CameraMotion

    photo = next(s for s in find_samples() if s.path.name == "rainy_rocket.jpg").clean
    clean = read_image(photo).rgb
    pan = CameraMotion(pan=(0.25, 0.25), shake=(1.0, 1.0))
    clip = synthesize_rain_video(clean, 6, "light", np.random.default_rng(5), size=(160, 160), camera=pan)
    ready = load_choice(ModelChoice("j4rnet"))
    scores = {}
    for align in (True, False):
        state, psnrs = None, []
        for f in clip:
            res = restore(f.x, ready.model, RestoreOptions(tile=0, backend="torch", align_memory=align), state=state)
            state = res.state
            psnrs.append(psnr_y(res.image, f.y))
        scores[align] = float(np.mean(psnrs[1:]))
    assert scores[True] > scores[False] + 0.3, scores
