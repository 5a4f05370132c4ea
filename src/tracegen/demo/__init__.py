"""``tracegen demo``: the whole TraceGen loop on a small, real configuration, with a report at the end.

Stages (each cached under ``OUT/<stage>/``; a second run only redoes what is missing):

1. **record** — simulated demonstrations with exact ground truth: a pretraining corpus of *other* Meta-World tasks
   performed by three embodiments (Sawyer, floating gripper, hand-like effector), five demonstrations of each target
   task (benchmark tasks, Sawyer), and held-out evaluation episodes.
2. **traces** — observation-trace-language triplets: TraceForge (tracker + depth + cameras, no ground truth) turns
   the pretraining and target videos into traces; the held-out episodes keep their exact traces, to score against.
3. **train** — TraceGen pretrained on the corpus, then warmed up on the five target videos; and the same model
   trained from scratch on the five videos only.
4. **eval** — trace accuracy on held-out episodes (pretrained + warm-up vs scratch vs static / nearest-neighbour).
5. **closed loop** — the executor drives the Sawyer from each model's predictions, beside the oracle planner; a few
   rollouts are kept as clips with the plan's trace drawn on them. With ``protocol="avdc"`` (``--full``) this is
   ``tracegen bench metaworld --protocol avdc`` (:func:`tracegen.bench.metaworld.run_bench`, resumable).
6. **report** — ``OUT/report.md`` and ``OUT/report.html`` with pictures and clips.

Everything runs the same code as the full commands; only the sizes are small (``SCALES``: ``tiny`` for the tests,
``default``, ``full`` for the benchmark protocol). After each stage the driver prints an estimate of the time left
(:class:`TimeLeft`).
"""

from tracegen.demo.config import SCALES, STAGES, DemoConfig, make_config, pretrain_tasks
from tracegen.demo.plan import TimeLeft, closed_loop_episodes, describe_plan, expected_seconds, work_units
from tracegen.demo.run import check_cache, check_config, clear_stages, preflight, run_demo, summary_table
from tracegen.demo.stages import RUNNERS, Stage, closed_loop, evaluate, record, traces, train

__all__ = [
    "RUNNERS",
    "SCALES",
    "STAGES",
    "DemoConfig",
    "Stage",
    "TimeLeft",
    "check_cache",
    "check_config",
    "clear_stages",
    "closed_loop",
    "closed_loop_episodes",
    "describe_plan",
    "evaluate",
    "expected_seconds",
    "make_config",
    "preflight",
    "pretrain_tasks",
    "record",
    "run_demo",
    "summary_table",
    "traces",
    "train",
    "work_units",
]
