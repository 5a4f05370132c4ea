"""The closed-loop benchmark: schema, resume without double counting, refusals before any episode."""

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from tracegen.bench.metaworld import BenchConfig, read_log, resolve, run_bench
from tracegen.provenance import code_label


def test_oracle_succeeds_on_three_simple_tasks_and_json_schema(tmp_path):
    cfg = BenchConfig(
        protocol="mini",
        planner="oracle",
        out=str(tmp_path / "b.json"),
        seeds=1,
        tasks=("door-close", "button-press", "handle-press"),
    )
    result = run_bench(cfg, progress=False)
    assert result["overall_success"] == 1.0 and result["episodes"] == 3
    keys = ("overall_success", "per_task", "episodes", "mean_plan_ms", "mean_executor_ms", "planner", "checkpoint")
    for key in keys + ("data",):
        assert key in result
    assert result["mean_executor_ms"] > 0
    assert result["per_task"]["door-close"] == {"corner": "1/1"}
    assert json.loads((tmp_path / "b.json").read_text())["planner"] == "oracle"
    assert "| door-close |" in (tmp_path / "b.md").read_text()
    code = code_label()  # every episode says which code ran it; the summary lists them, and what ran it now
    assert {r["code"] for r in read_log(tmp_path / "b.episodes.jsonl")} == {code} and result["code"] == [code]
    assert result["provenance"]["code"] == code and result["provenance"]["packages"]["mujoco"]
    assert f"code {code}" in (tmp_path / "b.md").read_text()
    assert result["avdc_published_these_tasks"] == 76.9  # AVDC's mean over these three tasks, not its 43.1
    assert "| 76.9 (these tasks; all 11: 43.1) |" in (tmp_path / "b.md").read_text()


def test_a_killed_run_resumes_without_double_counting(tmp_path):
    out = tmp_path / "b.json"
    run_bench(BenchConfig(protocol="mini", planner="oracle", out=str(out), seeds=1, tasks=("door-close",)), False)
    log = out.with_suffix(".episodes.jsonl")
    with open(log, "a") as f:
        f.write('{"task": "door-cl')  # a line cut by a kill
    result = run_bench(
        BenchConfig(protocol="mini", planner="oracle", out=str(out), seeds=2, tasks=("door-close",)), False
    )
    assert result["episodes"] == 2 and result["episodes_run"] == 1  # wall_s times the one episode run now
    assert [r["seed"] for r in read_log(log)] == [0, 1]  # seed 0 was not run again
    other = BenchConfig(protocol="mini", planner="oracle", out=str(out), seeds=2, tasks=("door-close",), max_replans=3)
    with pytest.raises(ValueError, match="other settings .*max_replans: 40 -> 3"):
        run_bench(other, False)  # a log of other settings is not resumed into one table
    assert len(read_log(log)) == 2
    pushed = dataclasses.replace(other, max_replans=40, settings=("stuck_push_m=0",))
    with pytest.raises(ValueError, match="other settings .*rollout.stuck_push_m: None -> 0.0"):
        run_bench(pushed, False)  # nor a log of other executor rules
    settings = out.with_name("b.settings.json")
    before = json.loads(settings.read_text())
    before["rules"]["close_for_press_m"] = 0.0  # the log was written when this rule's default was another
    settings.write_text(json.dumps(before))
    with pytest.raises(ValueError, match="other settings .*rules.close_for_press_m: 0.0 -> 0.03"):
        run_bench(dataclasses.replace(other, max_replans=40), False)  # the same command, another default
    settings.unlink()  # a log that does not say how it ran (older, or copied alone) is not resumed either
    with pytest.raises(ValueError, match="no b.settings.json says how they ran"):
        run_bench(dataclasses.replace(other, max_replans=40), False)
    assert len(read_log(log)) == 2


def test_settings_reach_the_executor_and_the_summary(tmp_path):
    from tracegen.bench.metaworld import EpisodeRunner

    cfg = BenchConfig(
        protocol="mini",
        planner="oracle",
        out=str(tmp_path / "b.json"),
        seeds=1,
        tasks=("door-close",),
        settings=("executor.path_mode=rigid", "stuck_push_m=0"),
    )
    runner = EpisodeRunner(cfg)
    assert runner.rollout_cfg.executor.path_mode == "rigid" and runner.rollout_cfg.stuck_push_m == 0.0
    assert runner.rollout_cfg.max_env_steps == 500 and runner.rollout_cfg.executor.coherence_m == 0.02
    runner.close()
    result = run_bench(cfg, progress=False)
    assert result["settings"]["rollout"] == {"executor.path_mode": "rigid", "stuck_push_m": 0}
    run_bench(dataclasses.replace(cfg, settings=("executor.path_mode=rigid", "stuck_push_m=0", "gain=10")), False)
    # (resumed: a setting to its default value changes no rule, so the log's settings are the same)
    from tracegen.bench.metaworld import run_settings

    rules = run_settings(dataclasses.replace(cfg, settings=('executor.grasp_rules=["dip"]', "gain=10")))["rollout"]
    assert rules == {"executor.grasp_rules": ["dip"]}  # JSON-ready; the default gain is not a change


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(cameras=("topview",)), "not in protocol"),
        (dict(tasks=("drawer-open",)), "not in protocol"),
        (dict(planner="model"), "needs --ckpt"),
        (dict(planner="neighbour"), "needs --data"),
        (dict(planner="neighbour", data=("/no/such/traces",)), "/no/such/traces: does not exist"),
        (dict(protocol="libero"), "unknown protocol"),
        (dict(workers=0), "--workers must be at least 1"),
        (dict(settings=("executor.reach_radius=0",)), "'executor.reach_radius'; did you mean executor.reach_radius_m"),
        (dict(settings=("stuck_push_m=far",)), "setting stuck_push_m takes a float"),
        (dict(settings=("max_replans=40",)), "step budget is the protocol's"),  # refused by name, whatever value
        (dict(settings=("executor.path_mode=bogus",)), "unknown path_mode 'bogus'"),
        (dict(settings=('executor.grasp_rules=["dipp"]',)), "unknown grasp rule"),
        (dict(observe_as="octopus"), "not a Meta-World embodiment"),
        (dict(observe_as="hand"), "for the model and neighbour planners"),
        (dict(observe_reveal=True), "give --observe-as too"),
        (dict(settings=("steps_per_plan=0",)), "steps_per_plan=0 \\(at least 1\\)"),
        (dict(settings=("executor.min_effector_tracks=0",)), "min_effector_tracks=0"),
    ],
)
def test_refusals_before_any_episode(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        resolve(BenchConfig(**{"protocol": "mini", "planner": "oracle", "out": str(tmp_path / "x.json")} | change))


def test_a_task_or_camera_named_twice_runs_once(tmp_path):
    twice = BenchConfig(protocol="mini", planner="oracle", out=str(tmp_path / "x.json"), seeds=2)
    twice = dataclasses.replace(twice, tasks=("door-close", "door-close"), cameras=("corner", "corner"))
    assert resolve(twice)[1] == [("door-close", "corner", 0), ("door-close", "corner", 1)]


def test_checkpoint_for_another_grid_is_refused(tmp_path):
    from tracegen.model import TraceGen, preset

    TraceGen(preset("tiny", grid=10)).save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="10x10 grid"):
        resolve(BenchConfig(protocol="mini", planner="model", ckpt=str(tmp_path / "ckpt"), out=str(tmp_path / "b")))


def outcomes(out) -> dict:
    """seed -> (success, steps, plans, reason) of every episode in the log of ``out``."""
    rows = read_log(out.with_suffix(".episodes.jsonl"))
    return {r["seed"]: (r["success"], r["steps"], r["plans"], r["reason"]) for r in rows}


def test_two_workers_give_the_records_summary_and_videos_of_one(tmp_path):
    cfg = BenchConfig(protocol="mini", planner="oracle", seeds=2, tasks=("door-close",), videos=1)
    one = run_bench(dataclasses.replace(cfg, out=str(tmp_path / "one.json")), False)
    two = run_bench(dataclasses.replace(cfg, out=str(tmp_path / "two.json"), workers=2), False)
    assert outcomes(tmp_path / "one.json") == outcomes(tmp_path / "two.json")
    assert len(outcomes(tmp_path / "two.json")) == 2
    timing = ("wall_s", "mean_plan_ms", "mean_executor_ms")
    assert {k: v for k, v in one.items() if k not in timing} == {k: v for k, v in two.items() if k not in timing}
    assert (tmp_path / "one.md").read_text() == (tmp_path / "two.md").read_text()
    for name in ("one", "two"):  # a GIF of seed 0 (the first) only, wherever it ran
        videos = {r["seed"]: r.get("video") for r in read_log(tmp_path / f"{name}.episodes.jsonl")}
        assert videos == {0: f"{name}.videos/door-close_corner_0.gif", 1: None}
        with Image.open(tmp_path / videos[0]) as gif:
            assert gif.format == "GIF" and gif.n_frames > 1
            gif.seek(gif.n_frames - 1)
            assert np.asarray(gif.convert("RGB")).std() > 0


def test_a_dead_worker_fails_its_episode_and_the_run_goes_on(tmp_path):
    from dying_planner import DIE_ON_SEED

    out = tmp_path / "b.json"
    cfg = BenchConfig(
        protocol="mini", out=str(out), seeds=2, tasks=("door-close",), workers=2, planner_factory="dying_planner:make"
    )
    result = run_bench(cfg, False)
    assert result["episodes"] == 2 and result["errors"] == 1
    rows = read_log(out.with_suffix(".episodes.jsonl"))
    assert sorted(r["seed"] for r in rows) == [0, 1]  # each once
    for r in rows:
        died = r["reason"].startswith("error: worker process died (")
        assert died == (r["seed"] == DIE_ON_SEED), r
        assert died or r["reason"] == "static plans"
    run_bench(cfg, False)  # resumes: nothing left to run, and the died episode is not run again
    assert len(read_log(out.with_suffix(".episodes.jsonl"))) == 2


def test_a_runner_makes_its_planner_once_and_a_simulator_only_when_the_task_changes(tmp_path, monkeypatch):
    import dying_planner
    import tracegen.sim.env
    from tracegen.bench.metaworld import EpisodeRunner, Job

    made = {"planner": [], "env": []}

    def counted(name, make):
        def wrapper(*args, **kwargs):
            made[name].append(args[1] if name == "env" else None)  # make_env(suite, task, ...): the task
            return make(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(tracegen.sim.env, "make_env", counted("env", tracegen.sim.env.make_env))
    monkeypatch.setattr(dying_planner, "make", counted("planner", dying_planner.make))
    runner = EpisodeRunner(
        BenchConfig(protocol="mini", out=str(tmp_path / "b.json"), planner_factory="dying_planner:make")
    )
    seeds = [s for s in range(3) if s != dying_planner.DIE_ON_SEED]  # (that seed would end this process)
    jobs = [Job("door-close", "corner", s) for s in seeds] + [Job("button-press", "corner", seeds[0])]
    try:
        assert [runner.run(job)["reason"] for job in jobs] == ["static plans"] * 3
    finally:
        runner.close()
    assert made == {"planner": [None], "env": ["door-close", "button-press"]}


def test_a_worker_solves_with_one_blas_thread(tmp_path):
    from threadpoolctl import ThreadpoolController

    from tracegen.bench import metaworld

    blas = ThreadpoolController().select(user_api="blas")
    cfg = BenchConfig(protocol="mini", out=str(tmp_path / "b.json"), planner_factory="dying_planner:make")
    with blas.limit(limits=2):  # (restored on leaving)
        metaworld._init_worker(cfg)
        try:
            assert {lib["num_threads"] for lib in blas.info()} == {1}
        finally:
            metaworld._WORKER.pop("runner").close()
