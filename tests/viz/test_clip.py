"""Rollout clips: the recorder keeps plan and step frames with the plan in force drawn, bounded in number; the GIF
decodes with every frame; and watching a rollout does not change it."""

import numpy as np
import pytest
from PIL import Image

from tracegen.sim.render import Frame
from tracegen.viz.clip import ClipRecorder, write_gif


class FakeEnv:
    """Renders a grey image whose brightness counts the steps."""

    def __init__(self):
        self.t = 0

    def render(self, camera, depth=True, seg=False):
        self.t += 1
        return Frame(rgb=np.full((32, 32, 3), 10 * self.t % 250, np.uint8))


def moving_trace() -> np.ndarray:
    traj = np.zeros((4, 5, 3))
    traj[..., :2] = 16.0
    traj[0, :, 0] = np.linspace(4, 28, 5)  # only point 0 moves
    return traj


def test_frames_are_bounded_drawn_and_the_gif_decodes(tmp_path):
    rec, env = ClipRecorder("corner", every=2, max_frames=10, size=64), FakeEnv()
    rec.on_step(env)
    rec.on_step(env)  # before the first plan: nothing to draw on, nothing rendered
    rec.on_plan(Frame(rgb=np.zeros((32, 32, 3), np.uint8)), moving_trace())
    for _ in range(60):
        rec.on_step(env)
    frames = rec.frames()
    assert len(frames) == 10 and env.t == 30  # 1 plan + 30 of 60 steps, thinned to max_frames
    assert frames[0].shape[1] == 64 and frames[0].shape[0] > 64  # upscaled x2, caption band below
    assert (frames[0][:64].astype(int).sum(-1) > 200).any()  # the moving point's coloured tail
    path = write_gif(frames, tmp_path / "clip.gif")
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 10 and gif.size == (64, frames[0].shape[0])


def test_large_renders_are_shrunk_with_their_trace():
    rec = ClipRecorder("corner", size=128)
    rgb, traj = np.zeros((240, 320, 3), np.uint8), np.zeros((1, 3, 3))
    traj[0, :, :2] = [[300.0, 200.0], [310.0, 200.0], [319.0, 200.0]]  # moves right, ends near the right edge
    rec.on_plan(Frame(rgb=rgb), traj)
    (frame,) = rec.frames()
    assert frame.shape[1] == 128 and frame.shape[0] == 96 + 28  # 96 x 128 image, caption band below
    assert frame[80, 123:128].max() > 0 and frame[80, :100].max() == 0  # the tail stayed at the right edge


def test_no_frames_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_gif([], tmp_path / "clip.gif")
    assert not list(tmp_path.iterdir())


def test_watching_a_rollout_does_not_change_it():
    from tracegen.act.planners import OraclePlanner
    from tracegen.act.rollout import rollout
    from tracegen.sim.env import make_env

    with make_env("metaworld", "button-press", height=64, width=64) as env:
        bare = rollout(env, OraclePlanner(), "corner", 0, "press the button")
        rec = ClipRecorder("corner")
        watched = rollout(env, OraclePlanner(), "corner", 0, "press the button", recorder=rec)
    assert (watched.success, watched.steps, watched.plans) == (bare.success, bare.steps, bare.plans)
    assert rec.plans == bare.plans and rec.steps == bare.steps and len(rec.frames()) > bare.plans
