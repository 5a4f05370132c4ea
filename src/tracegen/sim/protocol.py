"""Evaluation protocols as data: which tasks, cameras, seeds and budgets a closed-loop number is measured on.

:data:`AVDC_METAWORLD` is the Meta-World protocol of AVDC (Ko et al., ICLR 2024;
``flow-diffusion/AVDC_experiments/experiment/benchmark_mw.py``): 11 tasks x 3 cameras x 25 evaluation seeds,
success within 500 steps, at most 5 replans, and 5 demonstration videos per task x camera.

Differences from the original, to report next to every number:

* AVDC ran Meta-World **v2** goal-observable environments; Meta-World 3.1.1 has only **v3** (same tasks,
  revised scenes and rewards). Evaluation seed ``s`` here is
  ``ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[task](seed=s)``, as AVDC seeded its v2 environments
  (:class:`tracegen.sim.metaworld_env.MetaWorldEnv` reproduces that state exactly).
* The ``corner*`` cameras keep their positions and fields of view but are re-aimed upright
  (:func:`tracegen.sim.cameras.upright`); AVDC rendered the original orientation through mujoco-py.
* Demonstrations come from Meta-World's scripted experts on seeds disjoint from the evaluation seeds
  (``demo_seed_start`` onwards, successful episodes only).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """A closed-loop evaluation protocol.

    Attributes:
        name: identifier used in result files.
        suite: simulator suite (``metaworld``).
        tasks: task names (without version suffix).
        cameras: camera names; every task is evaluated from every camera.
        eval_seeds: initial-state seeds per task x camera.
        max_steps: an episode succeeds if the task is solved within this many environment steps.
        max_replans: the published protocol's replanning budget (AVDC: at most 1 + 5 video predictions per
            episode), for reference: tracegen's executor has its own (``BenchConfig.max_replans`` plans).
        demos_per_task_camera: demonstration videos available per task x camera.
        demo_seed_start: demonstrations use seeds from here on (successful episodes only).
        render_hw: (height, width) of the rendered observations.
        version: simulator and task version the numbers are measured on.
    """

    name: str
    suite: str
    tasks: tuple[str, ...]
    cameras: tuple[str, ...]
    eval_seeds: tuple[int, ...]
    max_steps: int
    max_replans: int
    demos_per_task_camera: int
    demo_seed_start: int
    render_hw: tuple[int, int]
    version: str

    def __post_init__(self) -> None:
        if self.demo_seed_start <= max(self.eval_seeds):
            raise ValueError(f"{self.name}: demonstration seeds must be disjoint from the evaluation seeds")

    def episodes(self) -> list[tuple[str, str, int]]:
        """Every evaluation episode as ``(task, camera, seed)``, task-major."""
        return [(t, c, s) for t in self.tasks for c in self.cameras for s in self.eval_seeds]

    @property
    def num_episodes(self) -> int:
        return len(self.tasks) * len(self.cameras) * len(self.eval_seeds)

    def corpus_entries(self, embodiment: str = "sawyer") -> list[dict]:
        """The demonstration set as corpus entries for :func:`tracegen.sim.recorder.build_corpus`."""
        return [
            dict(
                suite=self.suite,
                task=t,
                embodiment=embodiment,
                cameras=list(self.cameras),
                episodes=self.demos_per_task_camera,
                seed=self.demo_seed_start,
            )
            for t in self.tasks
        ]


AVDC_TASKS = (
    "door-open",
    "door-close",
    "basketball",
    "shelf-place",
    "button-press",
    "button-press-topdown",
    "faucet-close",
    "faucet-open",
    "handle-press",
    "hammer",
    "assembly",
)

AVDC_METAWORLD = Protocol(
    name="avdc-metaworld",
    suite="metaworld",
    tasks=AVDC_TASKS,
    cameras=("corner", "corner2", "corner3"),
    eval_seeds=tuple(range(25)),
    max_steps=500,
    max_replans=5,
    demos_per_task_camera=5,
    demo_seed_start=1000,
    render_hw=(240, 320),
    version="metaworld-3.1.1-v3",
)

PROTOCOLS = {p.name: p for p in (AVDC_METAWORLD,)}
