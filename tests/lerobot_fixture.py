"""Small but realistic LeRobot datasets written on the fly with pyarrow + PyAV: v3.0, or the legacy v2.1 layout.

Three episodes of ``LENGTHS`` frames at ``FPS``, seen by two cameras: ``FRONT`` in AV1 (libsvtav1, GOP 2, as
lerobot encodes) and ``WRIST`` in H.264 (GOP 5 with B-frames). In v3 each camera's episodes share one mp4 whose
keyframes do not line up with the episode starts, so reading an episode needs a real seek.

Global frame g (0..N-1 over the whole dataset) shows one white 8 x 8 block on black, in cell g of an 8 x 8 grid
(row-major) for ``FRONT`` and in cell 63 - g for ``WRIST``: :func:`frame_ids` recovers g despite lossy coding.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tracegen.io.files import save_json

LENGTHS = (12, 9, 15)
STARTS = (0, 12, 21)  # global index of each episode's first frame
N = sum(LENGTHS)
FPS = 10
SIZE, CELL = 64, 8  # 64 x 64 images, an 8 x 8 grid of 8-pixel cells
FRONT, WRIST = "observation.images.front", "observation.images.wrist"
STATE_KEY, ACTION_KEY = "observation.state", "action"
CAMERAS = {  # key -> (codec name in info.json, PyAV encoder, encoder options)
    FRONT: ("av1", "libsvtav1", {"g": "2", "crf": "30", "preset": "10"}),
    WRIST: ("h264", "libx264", {"g": "5", "bf": "3", "crf": "23"}),
}
TASKS = ("pick up the red block", "open the drawer")
EPISODE = np.repeat(np.arange(len(LENGTHS)), LENGTHS)  # (N,) episode of each global frame
FRAME_INDEX = np.arange(N) - np.array(STARTS)[EPISODE]  # (N,) frame index within its episode
TASK_INDEX = np.array([0] * 12 + [1] * 9 + [0] * 7 + [1] * 8)  # (N,) episode 2 switches task halfway
STATE = (np.arange(N * 4, dtype=np.float32).reshape(N, 4) / 8).astype(np.float32)  # (N, 4)
ACTION = (0.5 - np.arange(N * 3, dtype=np.float32).reshape(N, 3) / 16).astype(np.float32)  # (N, 3)


def episode_slice(e: int) -> slice:
    """The global frames of episode ``e``."""
    return slice(STARTS[e], STARTS[e] + LENGTHS[e])


def episode_tasks(e: int) -> list[str]:
    """The task strings of episode ``e``, in order of appearance."""
    return [TASKS[k] for k in dict.fromkeys(TASK_INDEX[episode_slice(e)].tolist())]


def make_frames(camera: str) -> np.ndarray:
    """All N frames ``(N, SIZE, SIZE, 3)`` uint8 of ``camera``."""
    frames = np.zeros((N, SIZE, SIZE, 3), np.uint8)
    for g in range(N):
        r, c = divmod(g if camera == FRONT else 63 - g, SIZE // CELL)
        frames[g, r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL] = 255
    return frames


def frame_ids(rgb: np.ndarray, camera: str) -> list[int]:
    """The global frame index shown by each frame of ``rgb (T, SIZE, SIZE, 3)``: its brightest cell."""
    k = SIZE // CELL
    cells = rgb.mean(-1).reshape(len(rgb), k, CELL, k, CELL).mean((2, 4)).reshape(len(rgb), k * k)
    brightest = cells.argmax(1)
    return (brightest if camera == FRONT else 63 - brightest).tolist()


def encode(path: Path, frames: np.ndarray, camera: str) -> None:
    """Write ``frames (T, H, W, 3)`` uint8 as an mp4 with the camera's encoder (yuv420p)."""
    _, encoder, options = CAMERAS[camera]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(encoder, rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        stream.options = dict(options)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _vectors(values: np.ndarray) -> pa.FixedSizeListArray:
    """``(T, D)`` float32 as the fixed-size list column lerobot writes."""
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), pa.float32()), values.shape[1])


def data_table(frames: slice) -> pa.Table:
    """The data parquet rows of global frames ``frames``."""
    return pa.table(
        {
            STATE_KEY: _vectors(STATE[frames]),
            ACTION_KEY: _vectors(ACTION[frames]),
            "timestamp": pa.array(FRAME_INDEX[frames] / FPS, pa.float32()),
            "frame_index": FRAME_INDEX[frames],
            "episode_index": EPISODE[frames],
            "index": np.arange(N)[frames],
            "task_index": TASK_INDEX[frames],
        }
    )


def _features() -> dict:
    video = {"dtype": "video", "shape": [SIZE, SIZE, 3], "names": ["height", "width", "channels"]}
    scalar = {"shape": [1], "names": None}
    return {
        **{
            k: {
                **video,
                "info": {
                    "video.height": SIZE,
                    "video.width": SIZE,
                    "video.codec": codec,
                    "video.pix_fmt": "yuv420p",
                    "video.is_depth_map": False,
                    "video.fps": FPS,
                    "video.channels": 3,
                    "has_audio": False,
                },
            }
            for k, (codec, _, _) in CAMERAS.items()
        },
        STATE_KEY: {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
        ACTION_KEY: {"dtype": "float32", "shape": [3], "names": ["dx", "dy", "dz"]},
        "timestamp": {"dtype": "float32", **scalar},
        **{k: {"dtype": "int64", **scalar} for k in ("frame_index", "episode_index", "index", "task_index")},
    }


def _info(version: str, data_path: str, video_path: str) -> dict:
    return {
        "codebase_version": version,
        "robot_type": "so100",
        "fps": FPS,
        "features": _features(),
        "total_episodes": len(LENGTHS),
        "total_frames": N,
        "total_tasks": len(TASKS),
        "chunks_size": 1000,
        "splits": {"train": f"0:{len(LENGTHS)}"},
        "data_path": data_path,
        "video_path": video_path,
    }


def write_v3(root: Path) -> Path:
    """A v3.0 dataset at ``root``: one data parquet, one mp4 per camera, the episodes table and tasks.parquet."""
    save_json(
        root / "meta" / "info.json",
        _info(
            "v3.0",
            "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        ),
    )
    (root / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(data_table(slice(None)), root / "data" / "chunk-000" / "file-000.parquet")
    for camera in CAMERAS:
        encode(root / "videos" / camera / "chunk-000" / "file-000.mp4", make_frames(camera), camera)
    starts, ends, zeros = np.array(STARTS), np.array(STARTS) + LENGTHS, [0] * len(LENGTHS)
    episodes = {
        "episode_index": range(len(LENGTHS)),
        "tasks": [episode_tasks(e) for e in range(len(LENGTHS))],
        "length": LENGTHS,
        "dataset_from_index": starts,
        "dataset_to_index": ends,
        "data/chunk_index": zeros,
        "data/file_index": zeros,
        "meta/episodes/chunk_index": zeros,
        "meta/episodes/file_index": zeros,
        "stats/observation.state/mean": [STATE[episode_slice(e)].mean(0).tolist() for e in range(len(LENGTHS))],
    }
    for camera in CAMERAS:
        episodes |= {
            f"videos/{camera}/chunk_index": zeros,
            f"videos/{camera}/file_index": zeros,
            f"videos/{camera}/from_timestamp": starts / FPS,
            f"videos/{camera}/to_timestamp": ends / FPS,
        }
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    episodes_table = pa.table({k: list(v) for k, v in episodes.items()})
    pq.write_table(episodes_table, root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    # pandas' to_parquet, as lerobot calls it, stores the task strings (the unnamed index) as __index_level_0__
    pq.write_table(
        pa.table({"task_index": range(len(TASKS)), "__index_level_0__": TASKS}), root / "meta" / "tasks.parquet"
    )
    return root


def write_v21(root: Path) -> Path:
    """A legacy v2.1 dataset at ``root``: one data parquet and one mp4 per camera for each episode."""
    save_json(
        root / "meta" / "info.json",
        _info(
            "v2.1",
            "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        ),
    )
    (root / "data" / "chunk-000").mkdir(parents=True)
    frames = {camera: make_frames(camera) for camera in CAMERAS}
    for e in range(len(LENGTHS)):
        pq.write_table(data_table(episode_slice(e)), root / "data" / "chunk-000" / f"episode_{e:06d}.parquet")
        for camera in CAMERAS:
            encode(
                root / "videos" / "chunk-000" / camera / f"episode_{e:06d}.mp4",
                frames[camera][episode_slice(e)],
                camera,
            )
    episodes = [{"episode_index": e, "tasks": episode_tasks(e), "length": n} for e, n in enumerate(LENGTHS)]
    tasks = [{"task_index": k, "task": t} for k, t in enumerate(TASKS)]
    for name, rows in (("episodes.jsonl", episodes), ("tasks.jsonl", tasks)):
        (root / "meta" / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
