"""Two closed-loop runs compared episode by episode: which planner wins where, and is the difference more than luck.

    tracegen bench compare BASELINE.json CANDIDATE.json [--json FILE]

Each argument is a ``tracegen bench metaworld --json`` result (its per-episode log, ``<json>.episodes.jsonl``, is
read) or the log itself. Episodes are paired by (task, camera, seed): both runs saw the same initial state, so an
episode counts only where the two disagree. *Won*: the candidate succeeds where the baseline fails; *lost*: the
reverse. Under "no difference" each disagreement is a fair coin, so the exact two-sided sign test (McNemar's test
without the normal approximation) gives ``p``, and ``z = (won - lost) / sqrt(won + lost)`` its normal size. Unpaired
totals of two 825-episode runs hide this: two runs 10 episodes apart may disagree on 150.

Plain Python on the logs; no simulator, no model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tracegen.errors import DataError
from tracegen.io.files import describe_changes, load_json

Key = tuple[str, str, int]  # (task, camera, seed)


def episode_log_path(path: str | Path) -> Path:
    """The per-episode log of a bench result (``X.json`` -> ``X.episodes.jsonl``), or ``path`` if it is one."""
    path = Path(path)
    log = path if path.name.endswith(".episodes.jsonl") else path.with_suffix(".episodes.jsonl")
    if not log.is_file():
        raise DataError(
            path,
            f"no per-episode log at {log}; pass the --json file of a `tracegen bench metaworld` run (its log is "
            "written beside it as episodes end) or the .episodes.jsonl itself",
        )
    return log


# training settings that say how a run ran, not what it trained: left out of a comparison's differences
HOW_IT_RAN = ("out", "threads", "device", "log_every", "eval_every", "ckpt_every")


def run_differences(baseline: str | Path, candidate: str | Path) -> str:
    """What the two runs differ in, ``"key: old -> new, ..."`` (empty: nothing recorded differs): their settings
    (``X.settings.json`` beside each log: planner, checkpoint, sampler, every executor rule) and, for two models,
    their checkpoints' training settings and models (``checkpoint.train.*`` from ``train_config.json``,
    ``checkpoint.model.*`` from ``config.json``: a warm-up's model is its init's), and the code that ran their
    episodes (``code``: :func:`tracegen.provenance.code_label` per episode, "unrecorded" before it was). Says
    ``unknown (...)`` when a settings file is missing or unreadable (logs of before they existed, a log copied
    alone)."""
    from tracegen.bench.metaworld import episode_codes, read_log

    settings = []
    for run in (baseline, candidate):
        log = episode_log_path(run)
        found = _read_object(_settings_path(log))
        if isinstance(found, str):
            return f"unknown ({found})"
        found.pop("rollout", None)  # the changed rules, again: "rules" holds every rule's value
        found["code"] = episode_codes(read_log(log))
        settings.append(found)
    trainings = [_training_settings(s.get("checkpoint")) for s in settings]
    if all(t is not None for t in trainings):
        for s, (train, model) in zip(settings, trainings, strict=True):
            s["checkpoint.train"] = {k: v for k, v in train.items() if k not in HOW_IT_RAN + ("model",)}
            s["checkpoint.model"] = model  # the model as built (a warm-up's comes from its --init)
    return describe_changes(*settings)


def _settings_path(log: Path) -> Path:
    return log.with_name(log.name.removesuffix(".episodes.jsonl") + ".settings.json")


def _read_object(path: Path) -> dict | str:
    """The JSON object in ``path``, or what is wrong with it (``"<file>: <problem>"``)."""
    try:
        found = load_json(path)
    except DataError as e:
        return str(e)
    return found if isinstance(found, dict) else f"{path}: not a JSON object"


def _training_settings(checkpoint: str | None) -> tuple[dict, dict] | None:
    """A model checkpoint's training settings (``train_config.json``) and model configuration (``config.json``'s
    ``model``), or None (no checkpoint, or either file not found from here)."""
    if not checkpoint:
        return None
    train, config = (_read_object(Path(checkpoint) / name) for name in ("train_config.json", "config.json"))
    if isinstance(train, str) or isinstance(config, str) or not isinstance(config.get("model"), dict):
        return None
    return train, config["model"]


def load_outcomes(path: str | Path) -> dict[Key, bool]:
    """Success per (task, camera, seed) of one run's log. A line cut by a kill is skipped (the bench runs that
    episode again); an episode logged twice keeps its last record, as the bench's summary does."""
    from tracegen.bench.metaworld import read_log

    log = episode_log_path(path)
    try:
        records = read_log(log)
    except UnicodeDecodeError:
        raise DataError(log, "is not text; pass the .episodes.jsonl a `tracegen bench metaworld` run wrote") from None
    outcomes = {}
    for r in records:
        try:
            outcomes[(str(r["task"]), str(r["camera"]), int(r["seed"]))] = bool(r["success"])
        except (KeyError, TypeError, ValueError) as e:
            missing = [k for k in ("task", "camera", "seed", "success") if k not in r] if isinstance(r, dict) else []
            what = f"no field {', '.join(missing)}" if missing else str(e)
            raise DataError(
                log, f"not a bench episode ({what}): {json.dumps(r)[:80]}; pass a `tracegen bench metaworld` log"
            ) from None
    if not outcomes:
        raise DataError(
            log, "no finished episode (every line empty or not JSON); pass a log with at least one finished episode"
        )
    return outcomes


def sign_test_p(won: int, lost: int) -> float:
    """Exact two-sided p of ``won`` against ``lost`` disagreements if each were a fair coin (1.0 for none)."""
    n, k = won + lost, min(won, lost)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def tally(pairs: list[tuple[bool, bool]]) -> dict:
    """Counts of (baseline, candidate) outcome pairs: each run's successes, won, lost, z and the sign test's p."""
    won = sum(b and not a for a, b in pairs)
    lost = sum(a and not b for a, b in pairs)
    return {
        "episodes": len(pairs),
        "baseline": sum(a for a, _ in pairs),
        "candidate": sum(b for _, b in pairs),
        "won": won,
        "lost": lost,
        "z": round((won - lost) / math.sqrt(won + lost), 2) if won + lost else 0.0,
        "p": float(f"{sign_test_p(won, lost):.3g}"),
    }


def compare_runs(baseline: str | Path, candidate: str | Path) -> dict:
    """The paired comparison of two bench runs over the episodes both hold: overall, per task and per camera."""
    a, b = load_outcomes(baseline), load_outcomes(candidate)
    common = sorted(set(a) & set(b))
    if not common:
        raise DataError(
            candidate,
            f"shares no episode (task, camera, seed) with {baseline}: were they run on other tasks, cameras or seeds?",
        )
    pairs = {key: (a[key], b[key]) for key in common}  # (baseline, candidate) success

    def per(field: int) -> dict[str, dict]:  # tallies grouped by one field of the key: 0 task, 1 camera
        groups: dict[str, list[tuple[bool, bool]]] = {}
        for key, pair in pairs.items():
            groups.setdefault(key[field], []).append(pair)
        return {name: tally(group) for name, group in sorted(groups.items())}

    return {
        "baseline": str(baseline),
        "candidate": str(candidate),
        "only_in_baseline": len(set(a) - set(b)),
        "only_in_candidate": len(set(b) - set(a)),
        "differences": run_differences(baseline, candidate),
        "overall": tally(list(pairs.values())),
        "per_task": per(0),
        "per_camera": per(1),
    }


def _differences_text(differences: str) -> str:
    return differences or "none recorded (the same planner, checkpoint and training settings, sampler and rules)"


def markdown(result: dict) -> str:
    """The comparison as a markdown table: one row per task, per camera, and overall."""
    lines = [
        f"Paired episodes: baseline {result['baseline']}, candidate {result['candidate']}",
        "",
        f"Settings that differ: {_differences_text(result['differences'])}",
        "",
        "| | episodes | baseline | candidate | won | lost | z | p (sign test) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def row(name: str, t: dict) -> str:
        cells = (t["episodes"], t["baseline"], t["candidate"], t["won"], t["lost"], t["z"], f"{t['p']:.2g}")
        return f"| {name} | " + " | ".join(str(c) for c in cells) + " |"

    lines += [row(task, t) for task, t in result["per_task"].items()]
    lines += [row(camera, t) for camera, t in result["per_camera"].items()]
    lines.append(row("**overall**", result["overall"]))
    unpaired = result["only_in_baseline"] + result["only_in_candidate"]
    if unpaired:
        lines += [
            "",
            f"Left out: {result['only_in_baseline']} episodes in the baseline only, {result['only_in_candidate']} in "
            "the candidate only.",
        ]
    return "\n".join(lines) + "\n"
