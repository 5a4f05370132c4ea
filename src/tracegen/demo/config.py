"""The demo's configuration: what each stage does, at the named scales (``SCALES``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tracegen.sim.protocol import AVDC_METAWORLD

PRETRAIN_TASKS = (
    "drawer-open",
    "drawer-close",
    "reach",
    "push",
    "window-open",
    "window-close",
    "plate-slide",
    "coffee-push",
)
TARGET_TASKS = ("button-press", "door-close", "handle-press")
EMBODIMENTS = ("sawyer", "floating_gripper", "hand")


@dataclass
class DemoConfig:
    """Sizes of every stage (``SCALES`` holds the named ones); images are ``size x width`` px."""

    out: str = "demo_out"
    size: int = 128  # rendered image height, px
    width: int | None = None  # rendered image width, px; None: square (size x size)
    cameras: tuple[str, ...] = ("corner",)  # every demonstration and closed-loop episode is seen from each
    pretrain_tasks: tuple[str, ...] | None = PRETRAIN_TASKS  # None: every Meta-World task that is not a target
    pretrain_embodiments: tuple[str, ...] = EMBODIMENTS
    pretrain_episodes: int = 2  # per task x embodiment
    target_tasks: tuple[str, ...] = TARGET_TASKS
    target_demos: int = 5  # per task (and camera): the paper's five warm-up videos
    eval_episodes: int = 2  # held-out episodes per target task, for trace accuracy
    rollout_seeds: int | None = 3  # closed-loop episodes per target task, camera and planner; None: the protocol's
    protocol: str | None = None  # closed loop: None, the demo's own episodes; "avdc", `tracegen bench metaworld`
    clips: int = 3  # rollout clips of the first seed of this many target tasks (warm-up model and oracle)
    pretrain_steps: int = 500
    warmup_steps: int = 150
    batch_size: int = 32
    preset: str = "default"
    workers: int = 2  # worker processes for recording and TraceForge, torch threads for training (one per core)
    demo_seed: int = 1000  # demonstrations come from seeds >= this (evaluation uses 0..)
    stages: list[str] = field(default_factory=lambda: ["record", "traces", "train", "eval", "closed_loop"])

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width) of every rendered image, px."""
        return self.size, self.width or self.size


STAGES = ("record", "traces", "train", "eval", "closed_loop")

SCALES = {
    "default": {},
    # the test suite's end-to-end run: every stage, tiny sizes
    "tiny": dict(
        size=64,
        pretrain_tasks=("drawer-close", "reach"),
        pretrain_embodiments=("sawyer", "hand"),
        pretrain_episodes=1,
        target_tasks=("button-press",),
        target_demos=2,
        eval_episodes=1,
        rollout_seeds=1,
        pretrain_steps=20,
        warmup_steps=10,
        batch_size=8,
        preset="tiny",
        workers=1,
        clips=1,
    ),
    # the real benchmark protocol (hours on 2 cores): every AVDC task from its three cameras at its render size,
    # five demonstrations per task and camera, pretraining on every other Meta-World task, the closed loop of
    # `tracegen bench metaworld --protocol avdc` (11 tasks x 3 cameras x 25 seeds per planner)
    "full": dict(
        size=AVDC_METAWORLD.render_hw[0],
        width=AVDC_METAWORLD.render_hw[1],
        cameras=AVDC_METAWORLD.cameras,
        pretrain_tasks=None,
        pretrain_episodes=1,  # x 3 cameras x 3 embodiments x 39 tasks: 351 episodes
        target_tasks=AVDC_METAWORLD.tasks,
        target_demos=AVDC_METAWORLD.demos_per_task_camera,
        demo_seed=AVDC_METAWORLD.demo_seed_start,
        rollout_seeds=None,
        protocol="avdc",
        pretrain_steps=5000,
        warmup_steps=1000,
    ),
}


def pretrain_tasks(cfg: DemoConfig) -> tuple[str, ...]:
    """The pretraining tasks; ``None`` in the config means every Meta-World task that is not a target task."""
    if cfg.pretrain_tasks is not None:
        return cfg.pretrain_tasks
    from tracegen.sim.env import suite_names

    return tuple(t for t in suite_names("metaworld").tasks if t not in cfg.target_tasks)


def make_config(scale: str = "default", **overrides) -> DemoConfig:
    """The configuration of a scale in :data:`SCALES`, with ``overrides`` (e.g. ``out``) on top."""
    if scale not in SCALES:
        raise ValueError(f"unknown demo scale {scale!r}; choose {', '.join(SCALES)}")
    return DemoConfig(**(SCALES[scale] | overrides))


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, default=str)
