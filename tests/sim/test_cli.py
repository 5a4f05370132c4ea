from typer.testing import CliRunner

from tracegen.io.episode import read_episode
from tracegen.sim.cli import app

runner = CliRunner()


def test_record_writes_episodes_and_a_summary(tmp_path):
    args = [
        "record",
        "--suite",
        "metaworld",
        "--task",
        "reach",
        "--camera",
        "corner",
        "--embodiment",
        "hand",
        "--episodes",
        "1",
        "--seed",
        "0",
        "--out",
        str(tmp_path),
        "--height",
        "32",
        "--width",
        "32",
        "--max-steps",
        "10",
        "--keep-failures",
        "--grid",
        "4",
        "--no-progress",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "total" in result.output
    (path,) = list(tmp_path.iterdir())
    ep = read_episode(path)
    assert ep.meta["embodiment"] == "hand" and ep.num_frames == 11


def test_bad_names_list_the_valid_ones(tmp_path):
    result = runner.invoke(app, ["record", "--task", "open-drawer", "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code != 0 and "valid Meta-World tasks: assembly" in result.output
    result = runner.invoke(
        app,
        [
            "record",
            "--suite",
            "robosuite",
            "--task",
            "Lift",
            "--robot",
            "R2D2",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert result.exit_code != 0 and "valid robosuite robots: Panda" in result.output


def test_list():
    result = runner.invoke(app, ["list", "metaworld"])
    assert result.exit_code == 0 and "tasks (50)" in result.output and "floating_gripper" in result.output
