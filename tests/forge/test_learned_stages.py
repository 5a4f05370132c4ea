"""The learned-geometry stages' bookkeeping, with a stand-in for the model (no weights can be downloaded here)."""

from types import SimpleNamespace

import numpy as np
import pytest

from tracegen.forge.clip import Clip
from tracegen.forge.config import CameraConfig, DepthConfig, ForgeConfig
from tracegen.forge.learned import LearnedCamera, LearnedDepth


def stand_in(key: str, predicted_depth: float):
    """A learned model's answer for 3 frames: constant depth, identity intrinsics, a camera moving 10 cm per frame in
    its own units."""
    w2c = np.repeat(np.eye(4)[None], 3, 0)
    w2c[:, 0, 3] = [0.0, 0.1, 0.2]
    depth = np.full((3, 8, 8), predicted_depth, np.float32)
    return SimpleNamespace(key=key, predict=lambda clip: (depth, np.repeat(np.eye(3)[None], 3, 0), w2c))


def test_learned_poses_with_sensor_depth_are_put_in_its_metres_once():
    camera = LearnedCamera.__new__(LearnedCamera)
    camera.geometry = stand_in("vggt", predicted_depth=0.5)  # the sensor sees 2 m: the model's unit is 4 m
    clip = Clip("c", np.zeros((3, 8, 8, 3), np.uint8), 10.0, depth=np.full((3, 8, 8), 2.0, np.float32))
    camera.process(clip)
    np.testing.assert_allclose(clip.w2c[:, 0, 3], [0.0, 0.4, 0.8])  # metres, as the depth
    depth = LearnedDepth.__new__(LearnedDepth)  # the same model's depth stage: depth rescaled, poses left as they are
    depth.geometry, depth.cfg = camera.geometry, DepthConfig(kind="vggt", clean_edges="off")
    depth.process(clip)
    np.testing.assert_allclose(clip.depth, 2.0)
    np.testing.assert_allclose(clip.w2c[:, 0, 3], [0.0, 0.4, 0.8])


def test_sfm_poses_with_a_learned_depth_are_refused():
    with pytest.raises(ValueError, match="camera=colmap with depth=moge"):
        ForgeConfig(camera=CameraConfig(kind="colmap"), depth=DepthConfig(kind="moge"))
