"""LeRobot reader: v3.0 shards (AV1 + H.264, episodes concatenated), legacy v2.1, and clear errors on bad input."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lerobot_fixture import (
    ACTION,
    FPS,
    FRONT,
    LENGTHS,
    SIZE,
    STATE,
    TASKS,
    WRIST,
    episode_slice,
    episode_tasks,
    frame_ids,
    make_frames,
    write_v3,
    write_v21,
)
from tracegen.errors import DataError
from tracegen.io.lerobot import is_lerobot_dataset, iter_lerobot_episodes, lerobot_info, read_lerobot_episode

INFO = "meta/info.json"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
DATA = "data/chunk-000/file-000.parquet"
FRONT_MP4 = f"videos/{FRONT}/chunk-000/file-000.mp4"
TOP = "observation.images.top"


@pytest.fixture(scope="module")
def v3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine v3.0 dataset, shared: tests that change it work on a copy (``dataset``)."""
    return write_v3(tmp_path_factory.mktemp("lerobot") / "toy")


@pytest.fixture
def dataset(v3: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(v3, tmp_path / "toy"))


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def edit_parquet(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def set_column(table: pa.Table, name: str, values: list) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, pa.array(values, table.column(name).type))


# ---------------------------------------------------------------------------------------------- reading


def test_detects_and_describes(v3: Path, tmp_path: Path):
    assert is_lerobot_dataset(v3) and not is_lerobot_dataset(tmp_path)
    info = lerobot_info(v3)
    assert info["version"] == "v3.0" and info["num_episodes"] == len(LENGTHS) and info["fps"] == FPS
    assert info["camera_keys"] == [FRONT, WRIST]
    json.dumps(info)  # `tracegen inspect` prints it


@pytest.mark.parametrize("camera", [FRONT, WRIST])
@pytest.mark.parametrize("e", range(len(LENGTHS)))
def test_episode_decodes_exactly_its_own_frames(v3: Path, camera: str, e: int):
    ep = read_lerobot_episode(v3, e, camera)
    frames = episode_slice(e)
    assert ep.rgb.shape == (LENGTHS[e], SIZE, SIZE, 3) and ep.rgb.dtype == np.uint8
    assert frame_ids(ep.rgb, camera) == list(range(frames.start, frames.stop))  # not a neighbour's frames
    assert ep.state.dtype == ep.action.dtype == np.float32
    np.testing.assert_array_equal(ep.state, STATE[frames])
    np.testing.assert_array_equal(ep.action, ACTION[frames])
    assert ep.instructions == episode_tasks(e)
    assert ep.fps == FPS and ep.K is None and ep.w2c is None and ep.depth is None
    assert ep.meta | {"dataset": None} == {
        "episode_id": f"toy/episode_{e:06d}",
        "source": "lerobot",
        "dataset": None,
        "episode_index": e,
        "camera": camera,
        "robot_type": "so100",
        "embodiment": "so100",
        "task": episode_tasks(e)[0],
        "codebase_version": "v3.0",
    }


@pytest.mark.parametrize("shift", [-0.3, 0.3])
def test_span_timestamps_tolerate_rounding(dataset: Path, shift: float):
    """Spans off by a fraction of a frame still select the episode's frames (the nearest ones)."""
    for side in ("from", "to"):
        column = f"videos/{FRONT}/{side}_timestamp"
        edit_parquet(
            dataset / EPISODES, lambda t, c=column: set_column(t, c, [x + shift / FPS for x in t.column(c).to_pylist()])
        )
    ep = read_lerobot_episode(dataset, 1)
    assert frame_ids(ep.rgb, FRONT) == list(range(episode_slice(1).start, episode_slice(1).stop))


def test_default_camera_and_iteration(v3: Path):
    picked = list(iter_lerobot_episodes(v3, episodes=[2, 0]))
    assert [ep.meta["episode_index"] for ep in picked] == [2, 0]
    assert {ep.meta["camera"] for ep in picked} == {FRONT}  # the first video key
    every = list(iter_lerobot_episodes(v3, camera=WRIST))
    assert [ep.num_frames for ep in every] == list(LENGTHS)


@pytest.mark.parametrize("task_column", ["__index_level_0__", "task"])
def test_instructions_from_tasks_parquet(dataset: Path, task_column: str):
    """Without ``tasks`` in the episodes table, the frames' task_index is looked up in tasks.parquet."""
    edit_parquet(dataset / EPISODES, lambda t: t.drop_columns(["tasks"]))
    pq.write_table(pa.table({"task_index": [1, 0], task_column: TASKS[::-1]}), dataset / "meta/tasks.parquet")
    assert read_lerobot_episode(dataset, 2).instructions == list(TASKS)
    assert read_lerobot_episode(dataset, 1).instructions == [TASKS[1]]


def test_image_feature(dataset: Path):
    """A camera stored as PNG images in the data parquet decodes losslessly; it is not the default camera."""
    pngs = [{"bytes": cv2.imencode(".png", f[..., ::-1])[1].tobytes(), "path": None} for f in make_frames(FRONT)]
    edit_parquet(dataset / DATA, lambda t: t.append_column(TOP, pa.array(pngs)))
    info = json.loads((dataset / INFO).read_text())
    image = {"dtype": "image", "shape": [SIZE, SIZE, 3], "names": ["height", "width", "channel"]}
    edit_json(dataset / INFO, features={TOP: image, **info["features"]})
    assert lerobot_info(dataset)["camera_keys"] == [TOP, FRONT, WRIST]
    np.testing.assert_array_equal(read_lerobot_episode(dataset, 1, TOP).rgb, make_frames(FRONT)[episode_slice(1)])
    assert read_lerobot_episode(dataset, 1).meta["camera"] == FRONT


def test_legacy_v21(tmp_path: Path):
    root = write_v21(tmp_path / "old")
    assert lerobot_info(root)["version"] == "v2.1"
    for camera in (FRONT, WRIST):
        ep = read_lerobot_episode(root, 1, camera)
        assert frame_ids(ep.rgb, camera) == list(range(episode_slice(1).start, episode_slice(1).stop))
        np.testing.assert_array_equal(ep.state, STATE[episode_slice(1)])
        assert ep.instructions == episode_tasks(1)
    assert [ep.num_frames for ep in iter_lerobot_episodes(root)] == list(LENGTHS)


# ---------------------------------------------------------------------------------------------- bad input


def shorten_front_span(table: pa.Table) -> pa.Table:
    """Episode 1's span of the front mp4 ends two frames early: 7 frames decode for 9 parquet rows."""
    ends = table.column(f"videos/{FRONT}/to_timestamp").to_pylist()
    ends[1] -= 2 / FPS
    return set_column(table, f"videos/{FRONT}/to_timestamp", ends)


BAD_INPUTS = {  # name: (how to break the dataset, episode and camera to read, file named, words in the message)
    "no info.json": (lambda r: (r / INFO).unlink(), (0, None), INFO, "not found"),
    "info.json not JSON": (lambda r: (r / INFO).write_text("{"), (0, None), INFO, "not valid JSON"),
    "old version": (lambda r: edit_json(r / INFO, codebase_version="v1.6"), (0, None), INFO, "'v1.6'"),
    "unknown camera": (lambda r: None, (0, "observation.images.top"), INFO, f"valid keys: ['{FRONT}', '{WRIST}']"),
    "episode out of range": (lambda r: None, (3, None), "meta/episodes", "3 episode(s), indices 0..2"),
    "negative episode": (lambda r: None, (-1, None), "meta/episodes", "out of range"),
    "no data parquet": (lambda r: (r / DATA).unlink(), (0, None), DATA, "not found"),
    "corrupt data parquet": (lambda r: (r / DATA).write_bytes(b"PAR1" + b"\0" * 64), (0, None), DATA, "parquet"),
    "no video": (lambda r: (r / FRONT_MP4).unlink(), (1, None), FRONT_MP4, "not found"),
    "corrupt video": (lambda r: (r / FRONT_MP4).write_bytes(b"\0" * 256), (1, None), FRONT_MP4, "decod"),
    "video shorter than rows": (
        lambda r: edit_parquet(r / EPISODES, shorten_front_span),
        (1, None),
        FRONT_MP4,
        "decoded 7 frames but 9 were expected",
    ),
    "rows disagree with length": (
        lambda r: edit_parquet(r / EPISODES, lambda t: set_column(t, "length", [12, 10, 15])),
        (1, None),
        DATA,
        "9 rows but its length in the episodes table is 10",
    ),
    "episodes table lacks a column": (
        lambda r: edit_parquet(r / EPISODES, lambda t: t.drop_columns([f"videos/{FRONT}/from_timestamp"])),
        (0, None),
        EPISODES,
        "from_timestamp",
    ),
    "no tasks.parquet": (
        lambda r: (
            edit_parquet(r / EPISODES, lambda t: t.drop_columns(["tasks"])),
            (r / "meta/tasks.parquet").unlink(),
        ),
        (0, None),
        "meta/tasks.parquet",
        "not found",
    ),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_names_the_file(dataset: Path, name: str):
    corrupt, (episode, camera), file, words = BAD_INPUTS[name]
    corrupt(dataset)
    with pytest.raises(DataError) as err:
        read_lerobot_episode(dataset, episode, camera)
    message = str(err.value)
    assert message.startswith(f"{dataset / file}: ") and words in message, message
    assert "\n" not in message
