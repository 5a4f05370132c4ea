"""Record expert demonstrations as episodes (one per camera), and build corpora of them, resumably.

A *rollout* runs the scripted expert from one seed and renders every step from each requested camera; each
camera becomes one episode in the project's format (:mod:`tracegen.io.episode`): RGB video, metric depth,
per-frame K and w2c, instructions, proprioception and actions, exact ground-truth tracks (a query grid every
``query_every`` frames; segmentation is rendered only at those frames), and metadata (suite, task,
embodiment, camera, seed, success).

Seeds: a group (suite, task, embodiment, cameras) tries seeds ``seed, seed + 1, ...`` in order and keeps
successful rollouts until it has ``episodes`` of them (or records exactly ``episodes`` seeds with
``keep_failures``). The simulator and renderer are deterministic, so the same arguments give identical files.

Resuming: episodes are written atomically (a temporary directory renamed into place), so a killed build
leaves no half-written episode; on a rerun, seeds whose episodes all exist are not simulated again, nor are seeds
whose rollout failed under the same recording config and package versions (a marker file in ``.failed/`` remembers
each; delete the folder after changing an expert's code).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from tracegen.io.episode import Episode, is_episode, write_episode
from tracegen.io.files import describe_changes, load_json, save_json
from tracegen.provenance import package_version
from tracegen.sim.cameras import CameraSpec
from tracegen.sim.env import STATE_NAMES, SimEnv, make_env
from tracegen.sim.gt_tracks import TrackRecorder
from tracegen.sim.instructions import instructions

FAILED_DIR = ".failed"  # in a corpus folder: one small JSON file per seed whose rollout failed and was not kept


@dataclass(frozen=True)
class RecordConfig:
    """How rollouts are recorded (shared by every group of a corpus)."""

    height: int = 224
    width: int = 224
    fast_render: bool = True
    max_steps: int | None = None  # None: the environment's episode limit
    stop_on_success: bool = True
    settle_steps: int = 5  # steps still recorded after the first success
    query_every: int = 5  # a ground-truth query grid every this many frames
    grid: int = 20
    keep_failures: bool = False
    max_attempts: int | None = None  # seeds tried per group; None: 3 * episodes + 5
    codec: str = "h264"


@dataclass
class Rollout:
    """One recorded rollout: an episode per camera."""

    seed: int
    success: bool
    episodes: dict[str, Episode]  # camera label -> episode


@dataclass
class _CameraTrack:
    """Per-camera buffers during a rollout."""

    spec: CameraSpec
    tracks: TrackRecorder
    rgb: list = field(default_factory=list)
    depth: list = field(default_factory=list)
    K: list = field(default_factory=list)
    w2c: list = field(default_factory=list)

    def capture(self, env: SimEnv, query: bool) -> None:
        pose = env.camera(self.spec)
        frame = env.render(self.spec, depth=True, seg=query, pose=pose)
        K, w2c = pose.K(env.height, env.width), pose.w2c()
        self.tracks.observe(env.data, K, w2c, frame.depth, frame.geom_ids() if query else None)
        self.rgb.append(frame.rgb)
        self.depth.append(frame.depth)
        self.K.append(K)
        self.w2c.append(w2c)


def record_rollout(env: SimEnv, cameras: list[CameraSpec], seed: int, cfg: RecordConfig = RecordConfig()) -> Rollout:
    """Run the expert from ``seed`` and record it from every camera (frame t is the state before action t)."""
    env.reset(seed)
    cams = [_CameraTrack(c.for_episode(seed), TrackRecorder(env.model, cfg.grid)) for c in cameras]
    max_steps = env.max_steps if cfg.max_steps is None else min(cfg.max_steps, env.max_steps)
    states, actions, success_frame = [], [], None
    for t in range(max_steps + 1):
        for cam in cams:
            cam.capture(env, query=t % cfg.query_every == 0)
        states.append(env.proprio())
        done = cfg.stop_on_success and success_frame is not None and t >= success_frame + cfg.settle_steps
        if t == max_steps or done:
            break
        action = env.expert_action()
        env.step(action)
        actions.append(action)
        if success_frame is None and env.success:
            success_frame = t + 1
    actions.append(np.zeros(env.action_dim, np.float32))  # no action after the last frame
    success = success_frame is not None
    meta = {
        **env.describe(),
        "source": "sim",
        "seed": seed,
        "success": success,
        "success_frame": success_frame,
        "fps": env.fps,
        "state_names": list(STATE_NAMES),
        "render": {"fast": env.fast_render},
    }
    episodes = {}
    for spec, cam in zip(cameras, cams, strict=True):
        cam_meta = {
            **meta,
            "camera": spec.label,
            "camera_spec": cam.spec.describe(),
            "episode_id": episode_name(env.suite, env.task, env.embodiment, spec.label, seed),
            "gt_body_names": cam.tracks.body_names(),
        }
        episodes[spec.label] = Episode(
            rgb=np.stack(cam.rgb),
            fps=env.fps,
            instructions=instructions(env.suite, env.task),
            depth=np.stack(cam.depth),
            K=np.stack(cam.K),
            w2c=np.stack(cam.w2c),
            state=np.stack(states).astype(np.float32),
            action=np.stack(actions).astype(np.float32),
            gt=cam.tracks.result(),
            meta=cam_meta,
        )
    return Rollout(seed, success, episodes)


def episode_name(suite: str, task: str, embodiment: str, camera: str, seed: int) -> str:
    return f"{suite}_{task}_{embodiment}_{camera}_s{seed:06d}"


# ---------------------------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class CorpusEntry:
    """One group of a corpus: a task, one embodiment (Meta-World variant or robosuite robot), its cameras."""

    suite: str
    task: str
    embodiment: str
    cameras: tuple[str, ...]
    episodes: int
    seed: int = 0

    def camera_specs(self) -> list[CameraSpec]:
        return [CameraSpec.parse(c) for c in self.cameras]

    def paths(self, out: Path, seed: int) -> list[Path]:
        return [out / episode_name(self.suite, self.task, self.embodiment, c.label, seed) for c in self.camera_specs()]

    def failure_marker(self, out: Path, seed: int) -> Path:
        """A file that remembers a seed whose rollout failed and was not kept, with the config and versions it failed
        under, so that a resumed corpus does not simulate it again (the expert fails the same seed every time)."""
        return out / FAILED_DIR / f"{self.suite}_{self.task}_{self.embodiment}_s{seed:06d}"


@dataclass
class GroupResult:
    """What recording one group did. ``attempts``/``successes`` count rollouts simulated in this run."""

    entry: CorpusEntry
    written: int = 0  # episodes written (all cameras)
    skipped: int = 0  # episodes already on disk
    known_failures: int = 0  # seeds passed over: an earlier run saw their rollout fail (same config and versions)
    attempts: int = 0
    successes: int = 0
    frames: int = 0
    seconds: float = 0.0
    seeds: list[int] = field(default_factory=list)  # seeds of the kept rollouts
    error: str | None = None

    @property
    def success_rate(self) -> float:
        return self.successes / self.attempts if self.attempts else float("nan")


def record_group(
    entry: CorpusEntry,
    out: str | Path,
    cfg: RecordConfig = RecordConfig(),
    env: SimEnv | None = None,
    progress: bool = False,
) -> GroupResult:
    """Record ``entry.episodes`` rollouts (successful ones unless ``keep_failures``) into ``out``;
    resumable: episodes on disk are kept, and seeds whose rollout failed before are not simulated again."""
    out, start = Path(out), time.perf_counter()
    result = GroupResult(entry)
    specs = entry.camera_specs()
    own_env = env is None
    max_attempts = cfg.max_attempts or 3 * entry.episodes + 5
    bar = _progress(entry.episodes, f"{entry.task}/{entry.embodiment}", progress)
    try:
        for seed in range(entry.seed, entry.seed + max_attempts):
            if len(result.seeds) == entry.episodes:
                break
            paths = entry.paths(out, seed)
            if all(is_episode(p) for p in paths):
                result.skipped += len(paths)
                result.seeds.append(seed)
                bar.update(1)
                continue
            marker = entry.failure_marker(out, seed)
            if not cfg.keep_failures and failed_before(marker, cfg):
                result.known_failures += 1
                continue
            if env is None:
                env = make_env(entry.suite, entry.task, entry.embodiment, cfg.height, cfg.width, cfg.fast_render)
            rollout = record_rollout(env, specs, seed, cfg)
            result.attempts += 1
            result.successes += rollout.success
            if not (rollout.success or cfg.keep_failures):
                save_json(marker, failure_record(cfg))
                continue
            for spec, path in zip(specs, paths, strict=True):
                ep = rollout.episodes[spec.label]
                write_episode(path, ep, codec=cfg.codec)
                result.written += 1
                result.frames += ep.num_frames
            result.seeds.append(seed)
            bar.update(1)
    finally:
        bar.close()
        if own_env and env is not None:
            env.close()
    result.seconds = time.perf_counter() - start
    return result


def check_same_recording(corpus_file: Path, cfg: RecordConfig) -> None:
    """Refuse to add to a corpus recorded with other settings (image size, grid, step limit, ...): its finished
    episodes would be kept beside new ones made otherwise. A setting the file predates counts as its default."""
    if not corpus_file.is_file():
        return
    saved = load_json(corpus_file).get("record", {})
    before = json.loads(json.dumps({**asdict(RecordConfig()), **saved}))
    changes = describe_changes(before, json.loads(json.dumps(asdict(cfg))))
    if changes:
        raise ValueError(
            f"{corpus_file}: this corpus was recorded with other settings ({changes}); record into another --out, "
            "or use the settings it was recorded with"
        )


def failure_record(cfg: RecordConfig) -> dict:
    """What a failure marker holds: the recording config and the versions of the code that ran the rollout."""
    versions = {p: package_version(p) for p in ("tracegen", "mujoco", "metaworld", "robosuite")}
    record = {"record": asdict(cfg), "versions": versions}
    return json.loads(json.dumps(record))  # as it reads back (tuples as lists)


def failed_before(marker: Path, cfg: RecordConfig) -> bool:
    """Whether ``marker`` remembers a failed rollout of its seed under this very recording config and code versions
    (another config, e.g. a longer episode limit, or another simulator may succeed, so the seed is tried)."""
    try:
        return marker.is_file() and json.loads(marker.read_text()) == failure_record(cfg)
    except (OSError, ValueError):  # unreadable: try the seed again
        return False


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="ep", disable=not enabled, leave=False)


# ---------------------------------------------------------------------------------------------- corpus


def expand_entries(raw: Iterable[dict]) -> list[CorpusEntry]:
    """Corpus entries from dicts. ``task``/``tasks`` and ``embodiment``/``embodiments``/``robots`` may be
    lists (their product is taken); ``tasks = "all"`` is every task of the suite, ``"avdc"`` the AVDC tasks.
    Unknown suites, tasks and embodiments fail here, listing the valid names."""
    entries = []
    for item in raw:
        item = dict(item)
        suite = item.pop("suite")
        tasks = _as_list(item.pop("tasks", None) or item.pop("task"))
        embodiments = _as_list(item.pop("embodiments", None) or item.pop("robots", None) or item.pop("embodiment"))
        cameras = tuple(_as_list(item.pop("cameras", None) or item.pop("camera")))
        episodes, seed = int(item.pop("episodes")), int(item.pop("seed", 0))
        if item:
            raise ValueError(f"unknown corpus entry keys {sorted(item)}")
        for task in _suite_tasks(suite, tasks):
            entries.extend(CorpusEntry(suite, task, e, cameras, episodes, seed) for e in embodiments)
    check_entries(entries)
    return entries


def check_entries(entries: Iterable[CorpusEntry]) -> None:
    """Fail early (listing the valid names) for an unknown suite, task, embodiment/robot or camera."""
    for e in entries:
        _check_names(e)


def _check_names(entry: CorpusEntry) -> None:
    """Fail early (listing the valid names) for an unknown suite, task or embodiment/robot."""
    from tracegen.sim.env import suite_names, unknown_name

    names = suite_names(entry.suite)
    tasks = names.tasks
    task = entry.task.removesuffix("-v3") if entry.suite == "metaworld" else entry.task
    if task not in tasks:
        raise unknown_name(f"{entry.suite} task", entry.task, tasks)
    if entry.embodiment not in names.embodiments:
        kind = "embodiment" if entry.suite == "metaworld" else "robot"
        raise unknown_name(f"{entry.suite} {kind}", entry.embodiment, names.embodiments)
    for spec in entry.camera_specs():
        if spec.name not in names.cameras:
            raise unknown_name(f"{entry.suite} camera", spec.name, names.cameras)


DEFAULT_CORPUS: list[dict] = [
    # Every Meta-World task with each embodiment variant, from one upright benchmark camera...
    dict(
        suite="metaworld",
        tasks="all",
        embodiments=["sawyer", "floating_gripper", "hand"],
        cameras=["corner3"],
        episodes=2,
        seed=0,
    ),
    # ...and the robosuite tasks whose expert works for every arm (NutAssemblySquare's does for some only).
    dict(
        suite="robosuite",
        tasks=["Lift", "Stack", "Door", "PickPlaceCan"],
        robots=["Panda", "Sawyer", "IIWA", "UR5e", "Jaco", "Kinova3"],
        cameras=["agentview"],
        episodes=2,
        seed=0,
    ),
]


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _suite_tasks(suite: str, tasks: list[str]) -> list[str]:
    if tasks == ["all"]:
        from tracegen.sim.env import suite_names

        return list(suite_names(suite).tasks)
    if tasks == ["avdc"]:
        from tracegen.sim.protocol import AVDC_METAWORLD

        return list(AVDC_METAWORLD.tasks)
    return tasks


def load_corpus_config(path: str | Path) -> tuple[list[CorpusEntry], RecordConfig]:
    """Read a corpus file (TOML or JSON): optional ``[record]`` settings and ``[[entry]]`` tables."""
    path = Path(path)
    if path.suffix == ".toml":
        import tomllib

        raw = tomllib.loads(path.read_text())
    else:
        raw = json.loads(path.read_text())
    cfg = RecordConfig(**raw.get("record", {}))
    return expand_entries(raw["entry"]), cfg


def _record_group_worker(args: tuple[CorpusEntry, str, RecordConfig]) -> GroupResult:
    entry, out, cfg = args
    try:
        return record_group(entry, out, cfg)
    except Exception as e:  # noqa: BLE001 -- one failing group must not stop the corpus; it is reported
        return GroupResult(entry, error=f"{type(e).__name__}: {e}")


def build_corpus(
    entries: list[CorpusEntry],
    out: str | Path,
    cfg: RecordConfig = RecordConfig(),
    workers: int = 1,
    progress: bool = True,
) -> list[GroupResult]:
    """Record every group into ``out`` with ``workers`` processes; one result per group, in entry order.

    Finished episodes are skipped. llvmpipe rendering already uses every core, so more workers help only when
    simulation or environment construction dominates (robosuite).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".tmp-*"):  # left by a killed writer; never a readable episode
        shutil.rmtree(stale, ignore_errors=True)
    check_same_recording(out / "corpus.json", cfg)
    save_json(out / "corpus.json", {"record": asdict(cfg), "entry": [asdict(e) for e in entries]})
    jobs = [(e, str(out), cfg) for e in entries]
    from tqdm.auto import tqdm

    results = []
    with tqdm(total=sum(e.episodes for e in entries), desc="corpus", unit="rollout", disable=not progress) as bar:
        for r in _run(jobs, workers):
            results.append(r)
            bar.update(r.entry.episodes)
            bar.set_postfix(groups=f"{len(results)}/{len(jobs)}")
    order = {e: i for i, e in enumerate(entries)}
    return sorted(results, key=lambda r: order[r.entry])


def _run(jobs: list, workers: int) -> Iterator[GroupResult]:
    if workers <= 1:
        yield from map(_record_group_worker, jobs)
        return
    with mp.get_context("spawn").Pool(workers, maxtasksperchild=8) as pool:
        yield from pool.imap_unordered(_record_group_worker, jobs)


def summary_table(results: list[GroupResult]) -> str:
    """A plain-text table: one row per group and a total."""
    header = (
        "suite",
        "task",
        "embodiment",
        "cameras",
        "written",
        "skipped",
        "success",
        "failed before",
        "frames",
        "seconds",
    )
    rows = [header]
    for r in results:
        e = r.entry
        rate = "error: " + r.error if r.error else (f"{r.successes}/{r.attempts}" if r.attempts else "-")
        rows.append(
            (
                e.suite,
                e.task,
                e.embodiment,
                ",".join(e.cameras),
                str(r.written),
                str(r.skipped),
                rate,
                str(r.known_failures),
                str(r.frames),
                f"{r.seconds:.1f}",
            )
        )
    tot = lambda name: sum(getattr(r, name) for r in results)  # noqa: E731
    rows.append(
        (
            "total",
            f"{len(results)} groups",
            "",
            "",
            str(tot("written")),
            str(tot("skipped")),
            f"{tot('successes')}/{tot('attempts')}",
            str(tot("known_failures")),
            str(tot("frames")),
            f"{tot('seconds'):.1f}",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def with_overrides(cfg: RecordConfig, **overrides) -> RecordConfig:
    """``cfg`` with the non-None overrides applied."""
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
