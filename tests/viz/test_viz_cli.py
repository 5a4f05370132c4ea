"""`tracegen viz traces` as a user runs it: real files in, real PNG / H.264 / .rrd out, one-line errors (exit 2)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from synthetic import synthetic_episode
from tracegen.io.convert import convert
from tracegen.io.episode import write_episode
from tracegen.io.files import save_npz
from tracegen.io.official import read_png, write_png
from tracegen.io.trace_dataset import TraceDataset
from tracegen.io.video import read_video


def viz(capsys, monkeypatch, *args):
    """Run ``tracegen viz traces ARGS`` in-process through the real entry point; (exit code, stdout, stderr)."""
    from tracegen.cli import main

    monkeypatch.setattr(sys, "argv", ["tracegen", "viz", "traces", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return exit_info.value.code or 0, out.out, out.err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("viz")
    write_episode(root / "eps" / "ep0", synthetic_episode())  # 24 frames of 48 x 64, moving left half
    convert(root / "eps", root / "traces", "tracegen")
    sample = TraceDataset(root / "traces")[0]
    write_png(root / "obs.png", sample.rgb)
    pred = sample.traj[None, :, : sample.num_valid].astype(np.float32)
    save_npz(root / "pred.npz", traj=pred, instruction=np.array("push the panel"), image_hw=np.array([48, 64]))
    return root, sample.num_valid


def test_mp4_has_one_frame_per_step_plus_the_hold(data, tmp_path, capsys, monkeypatch):
    root, steps = data
    code, out, err = viz(capsys, monkeypatch, root / "traces", "--out", tmp_path / "t.mp4", "--fps", 4, "--hold", 0.5)
    assert code == 0, err
    frames = read_video(tmp_path / "t.mp4")  # decodes with PyAV: a real H.264 file
    assert len(frames) == steps + 2 == json.loads(out)["frames"]
    assert frames.shape[1:] == (336 + 28, 448, 3)  # 48 x 64 upscaled x7 to reach 448, plus the caption band
    assert frames[0].std() > 5 and not np.array_equal(frames[0], frames[steps - 1])  # tails grow


def test_png_is_written_atomically(data, tmp_path, capsys, monkeypatch):
    root, _ = data
    target = tmp_path / "t.png"
    target.write_bytes(b"old")
    code, _, err = viz(capsys, monkeypatch, root / "traces", "--out", target, "--size", 64)
    assert code == 0, err
    assert read_png(target).shape == (48 + 28, 64, 3) and sorted(p.name for p in tmp_path.iterdir()) == ["t.png"]

    import tracegen.viz.render as render

    def boom(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render, "overlay_frame", boom)
    before = target.read_bytes()
    code, _, err = viz(capsys, monkeypatch, root / "traces", "--out", target)
    assert code == 2 and "No space left" in err and len(err.strip().splitlines()) == 1
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["t.png"]


def test_episode_video_3d_plot_and_rerun(data, tmp_path, capsys, monkeypatch):
    root, _ = data
    args = [root / "eps" / "ep0", "--index", 1, "--out", tmp_path / "e.mp4", "--3d", tmp_path / "e3d.png"]
    args += ["--hold", 0, "--size", 64]
    try:
        import rerun  # noqa: F401

        args += ["--rrd", tmp_path / "e.rrd"]
    except ImportError:
        pass
    code, out, err = viz(capsys, monkeypatch, *args)
    assert code == 0, err
    frames = read_video(tmp_path / "e.mp4")
    assert frames.shape == (24 - 5, 48 + 28, 64, 3)  # the video plays from query frame 5 to the end
    plot = read_png(tmp_path / "e3d.png")
    assert plot.shape[0] > 300 and plot.std() > 5
    if "--rrd" in args:
        import rerun.dataframe

        recording = rerun.dataframe.load_recording(str(tmp_path / "e.rrd"))
        entities = {c.entity_path for c in recording.schema().component_columns()}
        assert {"/camera/image", "/camera/tracks", "/camera/points", "/camera/cloud"} <= entities
        assert json.loads(out)["rrd"].endswith("e.rrd")


def test_prediction_on_its_image_and_3d_needs_intrinsics(data, tmp_path, capsys, monkeypatch):
    root, _ = data
    code, _, err = viz(capsys, monkeypatch, root / "pred.npz", "--image", root / "obs.png", "--out", tmp_path / "p.png")
    assert code == 0, err
    assert read_png(tmp_path / "p.png").shape == (336 + 28, 448, 3)
    code, _, err = viz(capsys, monkeypatch, root / "pred.npz", "--3d", tmp_path / "p3d.png")
    assert code == 2 and "pred.npz" in err and "--fovy" in err and not (tmp_path / "p3d.png").exists()
    code, _, err = viz(capsys, monkeypatch, root / "pred.npz", "--3d", tmp_path / "p3d.png", "--fovy", 60)
    assert code == 0, err
    assert (tmp_path / "p3d.png").is_file()
    flat = tmp_path / "flat.npz"  # a prediction made without depth: no point can be lifted
    pred = dict(np.load(root / "pred.npz"))
    pred["traj"] = pred["traj"].copy()
    pred["traj"][..., 2] = 0.0
    save_npz(flat, **pred)
    out, plot = tmp_path / "flat.png", tmp_path / "flat3d.png"
    code, _, err = viz(capsys, monkeypatch, flat, "--image", root / "obs.png", "--out", out, "--3d", plot, "--fovy", 60)
    assert code == 2 and "cannot be lifted" in err and not out.exists() and not plot.exists()  # nothing half-written


def test_bad_inputs_exit_2_naming_the_file(data, tmp_path, capsys, monkeypatch):
    root, _ = data
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    wrong_size = tmp_path / "small.png"
    write_png(wrong_size, np.zeros((10, 10, 3), np.uint8))
    out = tmp_path / "o.png"
    cases = [
        ([tmp_path / "missing"], "missing", "does not exist"),
        ([corrupt], "corrupt.npz", "corrupt"),
        ([text], "notes.txt", "unrecognised layout"),
        ([root / "traces", "--index", 10_000], "traces", "--index must be"),
        ([root / "pred.npz", "--image", wrong_size], "small.png", "--image given to `tracegen predict`"),
        ([root / "traces", "--image", root / "obs.png"], "obs.png", "only goes with"),
        ([root / "eps"], "ep0", None),  # a folder with one episode is that episode: fine
    ]
    for args, name, problem in cases:
        code, _, err = viz(capsys, monkeypatch, *args, "--out", out)
        if problem is None:
            assert code == 0, err
            continue
        assert code == 2, (args, err)
        assert err.startswith("error: ") and name in err and problem in err and len(err.strip().splitlines()) == 1
    code, _, err = viz(capsys, monkeypatch, root / "traces", "--out", tmp_path / "o.gif")
    assert code == 2 and ".mp4 or .png" in err
    code, _, err = viz(capsys, monkeypatch, root / "traces")
    assert code == 2 and "nothing to write" in err


def test_the_installed_command(data, tmp_path):
    root, _ = data
    run = [sys.executable, "-m", "tracegen.cli", "viz", "traces"]
    ok = subprocess.run([*run, root / "traces", "--out", tmp_path / "a.png"], capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["image"].endswith("a.png"), ok.stderr
    bad = subprocess.run([*run, tmp_path / "nope", "--out", tmp_path / "b.png"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "nope" in bad.stderr


def test_captions_fit_any_width():
    from tracegen.viz.render import CAPTION_PX, with_caption

    for width in (4, 40, 64, 448):
        image = with_caption(np.zeros((10, width, 3), np.uint8), "press the button (button-press, sawyer)", "step 9/32")
        assert image.shape == (10 + CAPTION_PX, width, 3)


def test_overlay_keeps_given_colours_and_rings_occluded_points():
    from tracegen.viz.overlay import draw_traces

    traj = np.array([[[10.0, 10.0]], [[40.0, 10.0]]])  # two static points of a 20 x 60 image, drawn at 450 px
    red = np.array([[255, 0, 0], [255, 0, 0]], np.uint8)
    out = draw_traces(np.zeros((20, 60, 3), np.uint8), traj, colors=red, visible=np.array([True, False]))
    scale = 8  # ceil(448 / 60)
    solid, ring = out[10 * scale + 3, 10 * scale + 3], out[10 * scale + 3, 40 * scale + 3]
    assert solid[0] > 200 and solid[1:].max() < 50  # a filled red dot
    assert ring.max() == 0 and out[10 * scale + 3, 40 * scale + 3 - 3 : 40 * scale + 3 + 4, 0].max() > 100  # hollow
