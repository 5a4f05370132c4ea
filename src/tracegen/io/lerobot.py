"""LeRobot datasets read with pyarrow + PyAV, without the ``lerobot`` package (CONVENTIONS.md §2).

A v3.0 dataset keeps many episodes per file; the episodes table says where each one lives::

    meta/info.json                              codebase_version, fps, features, path templates, ...
    meta/tasks.parquet                          task string <-> task_index
    meta/episodes/chunk-000/file-000.parquet    one row per episode: length, tasks, its data and video files,
                                                videos/<key>/from_timestamp|to_timestamp (its span of the mp4)
    data/chunk-000/file-000.parquet             one row per frame: episode_index, frame_index, task_index,
                                                observation.state, action, ...
    videos/<key>/chunk-000/file-000.mp4         one camera's episodes concatenated (AV1 by default)

The legacy v2.x layout has one file per episode instead: ``data/chunk-000/episode_000000.parquet``,
``videos/chunk-000/<key>/episode_000000.mp4``, ``meta/episodes.jsonl`` and ``meta/tasks.jsonl``.

Cameras are the features of dtype ``video`` (mp4) or ``image`` (encoded images inside the data parquet).
Every problem with the input is a :class:`~tracegen.errors.DataError` naming the offending file.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tracegen.errors import DataError, check
from tracegen.io.episode import Episode
from tracegen.io.files import load_json
from tracegen.io.video import read_video

V3 = ("v3.0",)
V2 = ("v2.0", "v2.1")
CAMERA_DTYPES = ("video", "image")
STATE, ACTION = "observation.state", "action"
PANDAS_INDEX = "__index_level_0__"  # where pandas stores an unnamed index (LeRobot's task strings)
VIDEO_FIELDS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


def is_lerobot_dataset(path: str | Path) -> bool:
    return (Path(path) / "meta" / "info.json").is_file()


def lerobot_info(path: str | Path) -> dict[str, Any]:
    """The validated ``meta/info.json`` plus ``version``, ``camera_keys`` (the video and image features, in
    order) and ``num_episodes``."""
    info_path = Path(path) / "meta" / "info.json"
    check(info_path.is_file(), info_path, "not found: not a LeRobot dataset")
    info = load_json(info_path)
    check(isinstance(info, dict), info_path, "must hold a JSON object")
    version = info.get("codebase_version")
    check(version in V3 + V2, info_path, f"unsupported codebase_version {version!r}; supported: {V3 + V2}")
    missing = [k for k in ("fps", "features", "total_episodes", "data_path") if k not in info]
    check(not missing, info_path, f"missing field(s) {missing}")
    fps, features = info["fps"], info["features"]
    check(isinstance(fps, int | float) and fps > 0, info_path, f"fps must be > 0, got {fps!r}")
    check(isinstance(features, dict), info_path, "features must be a JSON object")
    check(isinstance(info["total_episodes"], int), info_path, "total_episodes must be an integer")
    cameras = [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") in CAMERA_DTYPES]
    return {**info, "version": version, "camera_keys": cameras, "num_episodes": info["total_episodes"]}


def read_lerobot_episode(path: str | Path, episode_index: int, camera: str | None = None) -> Episode:
    """Episode ``episode_index`` seen by ``camera`` (default: the first video key).

    Returns ``rgb (T, H, W, 3)`` uint8, ``state (T, Ds)`` and ``action (T, Da)`` float32 (None when the dataset
    has none), the task strings as instructions, and no cameras (K and w2c are None).
    """
    return _read_episode(_Dataset.open(path), episode_index, camera)


def iter_lerobot_episodes(
    path: str | Path, camera: str | None = None, episodes: list[int] | None = None
) -> Iterator[Episode]:
    """The episodes ``episodes`` (default: all, by index) of a dataset, read one at a time."""
    ds = _Dataset.open(path)
    for i in sorted(ds.episodes) if episodes is None else episodes:
        yield _read_episode(ds, i, camera)


# ---------------------------------------------------------------------------------------------- the dataset


@dataclass
class _Dataset:
    """An opened dataset: its validated info and its episodes table, one row (dict) per episode index."""

    root: Path
    info: dict[str, Any]
    episodes: dict[int, dict[str, Any]]
    episodes_path: Path

    @classmethod
    def open(cls, path: str | Path) -> _Dataset:
        root = Path(path)
        info = lerobot_info(root)
        if info["version"] in V3:
            episodes_path = root / "meta" / "episodes"
            rows = _episode_rows_v3(episodes_path, info["camera_keys"])
        else:
            episodes_path = root / "meta" / "episodes.jsonl"
            rows = _read_jsonl(episodes_path, required=("episode_index", "length"))
        return cls(root, info, {int(r["episode_index"]): r for r in rows}, episodes_path)

    @property
    def v3(self) -> bool:
        return self.info["version"] in V3

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def info_path(self) -> Path:
        return self.root / "meta" / "info.json"

    @property
    def tasks_path(self) -> Path:
        return self.root / "meta" / ("tasks.parquet" if self.v3 else "tasks.jsonl")

    @cached_property
    def tasks(self) -> dict[int, str]:
        """task_index -> task string, read on first use."""
        if not self.v3:
            rows = _read_jsonl(self.tasks_path, required=("task_index", "task"))
            return {int(r["task_index"]): str(r["task"]) for r in rows}
        table = _read_parquet(self.tasks_path, ("task_index",), optional=("task", PANDAS_INDEX))
        names = [n for n in ("task", PANDAS_INDEX) if n in table.column_names]
        check(bool(names), self.tasks_path, f"no task strings: expected a 'task' or '{PANDAS_INDEX}' column")
        indices, texts = table.column("task_index").to_pylist(), table.column(names[0]).to_pylist()
        return dict(zip(indices, texts, strict=True))

    def row(self, i: int) -> dict[str, Any]:
        """The episodes-table row of episode ``i``."""
        if i not in self.episodes:
            known = sorted(self.episodes)
            span = f"indices {known[0]}..{known[-1]}" if known else "none"
            raise DataError(
                self.episodes_path, f"episode index {i} out of range; the dataset has {len(known)} episode(s), {span}"
            )
        return self.episodes[i]

    def camera(self, camera: str | None) -> str:
        """``camera``, checked, or the default: the first video key (else the first image key)."""
        keys = self.info["camera_keys"]
        check(bool(keys), self.info_path, "has no camera: no feature of dtype 'video' or 'image'")
        if camera is None:
            videos = [k for k in keys if self.dtype(k) == "video"]
            return (videos or keys)[0]
        check(camera in keys, self.info_path, f"unknown camera key {camera!r}; valid keys: {keys}")
        return camera

    def dtype(self, key: str) -> str:
        return self.info["features"][key]["dtype"]

    def fill(self, template_key: str, **fields: Any) -> Path:
        """A file of the dataset: an info.json template (``data_path``, ``video_path``) filled with ``fields``."""
        template = self.info.get(template_key)
        check(isinstance(template, str), self.info_path, f"missing path template {template_key!r}")
        try:
            return self.root / template.format(**fields)
        except (KeyError, IndexError, ValueError, TypeError) as e:
            problem = f"cannot fill {template_key} {template!r} with {fields}: {e!r}"
            raise DataError(self.info_path, problem) from None

    def chunk(self, row: dict[str, Any]) -> int:
        """v2.x: the chunk directory of an episode."""
        return int(row["episode_index"]) // int(self.info.get("chunks_size", 1000))


def _episode_rows_v3(folder: Path, cameras: list[str]) -> list[dict[str, Any]]:
    """The rows of every ``meta/episodes/chunk-*/file-*.parquet``, each tagged with its file in ``_file``."""
    files = sorted(folder.glob("chunk-*/file-*.parquet"))
    check(bool(files), folder, "no episode tables (chunk-*/file-*.parquet)")
    required = ("episode_index", "length", "data/chunk_index", "data/file_index")
    optional = ["tasks"] + [f"videos/{k}/{f}" for k in cameras for f in VIDEO_FIELDS]
    rows = []
    for f in files:
        rows += [{**r, "_file": f} for r in _read_parquet(f, required, optional).to_pylist()]
    return rows


# ---------------------------------------------------------------------------------------------- one episode


def _read_episode(ds: _Dataset, i: int, camera: str | None) -> Episode:
    camera = ds.camera(camera)
    row = ds.row(i)
    table, data_path = _frame_table(ds, row, camera)
    if ds.dtype(camera) == "image":
        rgb = _decode_images(table, camera, data_path)
    else:
        rgb = _decode_video(ds, row, camera, table.num_rows)
    instructions = _instructions(ds, row, table)
    robot = ds.info.get("robot_type")
    meta = {
        "episode_id": f"{ds.root.name}/episode_{i:06d}",
        "source": "lerobot",
        "dataset": str(ds.root),
        "episode_index": i,
        "camera": camera,
        "robot_type": robot,
        "embodiment": robot,
        "task": instructions[0] if instructions else None,
        "codebase_version": ds.info["version"],
    }
    ep = Episode(
        rgb,
        ds.fps,
        instructions,
        state=_matrix(table, STATE, data_path),
        action=_matrix(table, ACTION, data_path),
        meta={k: v for k, v in meta.items() if v is not None},
    )
    ep.validate(data_path)
    return ep


def _frame_table(ds: _Dataset, row: dict[str, Any], camera: str) -> tuple[pa.Table, Path]:
    """The episode's T rows of its data parquet in frame order (frame_index checked to be 0..T-1), and the file."""
    i = int(row["episode_index"])
    if ds.v3:
        path = ds.fill("data_path", chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
    else:
        path = ds.fill("data_path", episode_chunk=ds.chunk(row), episode_index=i)
    optional = {STATE, ACTION, "task_index"} | ({camera} if ds.dtype(camera) == "image" else set())
    required = ("episode_index", "frame_index")
    table = _read_parquet(path, required, optional, filters=[("episode_index", "=", i)]).sort_by("frame_index")
    T, length = table.num_rows, int(row["length"])
    check(length == T, path, f"episode {i} has {T} rows but its length in the episodes table is {length}")
    frames = table.column("frame_index").to_numpy()
    check(np.array_equal(frames, np.arange(T)), path, f"episode {i}: frame_index is not 0..{T - 1}")
    return table, path


def _decode_video(ds: _Dataset, row: dict[str, Any], camera: str, T: int) -> np.ndarray:
    """The episode's T frames ``(T, H, W, 3)`` uint8: its span of a shared mp4 (v3), or a whole mp4 (v2)."""
    i = int(row["episode_index"])
    start = end = None
    context = f"episode {i}"
    if ds.v3:
        keys = [f"videos/{camera}/{f}" for f in VIDEO_FIELDS]
        missing = [k for k in keys if row.get(k) is None]
        check(not missing, row["_file"], f"episode {i}: missing column(s) {missing}")
        chunk, file, t0, t1 = (row[k] for k in keys)
        path = ds.fill("video_path", video_key=camera, chunk_index=chunk, file_index=file)
        # The frames nearest to t0 + k / fps: half a frame of slack absorbs rounding of the span's timestamps.
        half = 0.5 / ds.fps
        start, end = float(t0) - half, float(t1) - half
        context += f" (span {t0:.3f}..{t1:.3f} s)"
    else:
        path = ds.fill("video_path", video_key=camera, episode_chunk=ds.chunk(row), episode_index=i)
    try:
        return read_video(path, expected_frames=T, start_time=start, end_time=end)
    except DataError as e:
        raise DataError(e.path, f"{context}: {e.problem}") from None


def _decode_images(table: pa.Table, key: str, path: Path) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` uint8 from column ``key``: structs holding encoded PNG / JPEG ``bytes``."""
    frames = []
    for cell in table.column(key).to_pylist():
        data = cell.get("bytes") if isinstance(cell, dict) else None
        check(data is not None, path, f"column {key!r}: an image has no embedded bytes")
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        check(bgr is not None, path, f"column {key!r}: an image is not decodable")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    check(len({f.shape for f in frames}) == 1, path, f"column {key!r}: images of one episode differ in size")
    return np.stack(frames)


def _matrix(table: pa.Table, key: str, path: Path) -> np.ndarray | None:
    """Column ``key`` as ``(T, D)`` float32 (D = 1 for a scalar column); None when there is no such column."""
    if key not in table.column_names:
        return None
    column = table.column(key)
    kind = column.type
    try:
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            return np.stack(column.to_numpy(zero_copy_only=False)).astype(np.float32)
        return column.to_numpy(zero_copy_only=False).astype(np.float32)[:, None]
    except (ValueError, TypeError) as e:
        raise DataError(path, f"column {key!r} is not a numeric (T, D) array (ragged or null rows?): {e}") from None


def _instructions(ds: _Dataset, row: dict[str, Any], table: pa.Table) -> list[str]:
    """The episode's task strings: the episodes table's ``tasks``, else its frames' task_index in the tasks."""
    tasks = row.get("tasks")
    if tasks:
        return [tasks] if isinstance(tasks, str) else [str(t) for t in tasks]
    if "task_index" not in table.column_names:
        return []
    indices = list(dict.fromkeys(table.column("task_index").to_pylist()))  # unique, in order of appearance
    unknown = [k for k in indices if k not in ds.tasks]
    check(not unknown, ds.tasks_path, f"task_index {unknown} of episode {row['episode_index']} not found")
    return [ds.tasks[k] for k in indices]


# ---------------------------------------------------------------------------------------------- files


def _read_parquet(
    path: Path, required: Collection[str], optional: Collection[str] = (), filters: list | None = None
) -> pa.Table:
    """The ``required`` columns, and those of ``optional`` that exist, of the rows selected by ``filters``."""
    check(path.is_file(), path, "file not found")
    try:
        names = pq.read_schema(path).names
        missing = [c for c in required if c not in names]
        check(not missing, path, f"missing column(s) {missing}; present: {names}")
        columns = [c for c in names if c in required or c in optional]
        return pq.read_table(path, columns=columns, filters=filters)
    except (pa.ArrowException, OSError) as e:
        first_line = (str(e) or type(e).__name__).splitlines()[0]
        raise DataError(path, f"cannot read as parquet (truncated or corrupt?): {first_line}") from None


def _read_jsonl(path: Path, required: Collection[str]) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file, each checked to have the ``required`` keys."""
    check(path.is_file(), path, "file not found")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(path, f"line {n} is not valid JSON: {e}") from None
        check(
            isinstance(rows[-1], dict) and all(k in rows[-1] for k in required),
            path,
            f"line {n} must be a JSON object with keys {list(required)}",
        )
    return rows
