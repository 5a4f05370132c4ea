"""The README's command-line tour, run as it stands (in order, in a fresh folder) at tiny sizes: the commands a new
user types first must work. Only sizes change: fewer steps, episodes and seeds, the tiny model preset."""

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from tracegen.cli import app

ROOT = Path(__file__).resolve().parents[1]
TINY = [  # (pattern, replacement): sizes only
    (r"--steps \d+", "--steps 2"),
    (r"--episodes 5", "--episodes 2"),
    (r"--episodes 2 --seed 1500", "--episodes 1 --seed 1500"),
    (r"(tracegen train .*?--steps 2)", r"\1 batch_size=4 threads=1"),
    (r"(tracegen train --data traces/ .*)", r"\1 --preset tiny"),
    (r"(tracegen bench metaworld .*?)--json", r"\1--seeds 1 --json"),
    (r"(tracegen bench-latency .*)", r"\1 --runs 3"),
]


def tour_commands() -> list[str]:
    """The tour's command lines, comments dropped, each without its leading ``tracegen``."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("The command line, one verb per job", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.strip().splitlines()]
    for pattern, replacement in TINY:
        lines = [re.sub(pattern, replacement, line) for line in lines]
    assert all(line.startswith("tracegen ") for line in lines), lines
    return [line.removeprefix("tracegen ") for line in lines]


def test_the_readme_tour_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = tour_commands()
    assert len(commands) >= 15  # the whole tour: record, convert, train, forge, predict, evaluate, bench, look
    for command in commands:
        result = CliRunner().invoke(app, shlex.split(command), catch_exceptions=False)
        assert result.exit_code == 0, f"tracegen {command}\n{result.output[-2000:]}"
    assert (tmp_path / "pred.png").stat().st_size > 1000 and (tmp_path / "trace.mp4").stat().st_size > 1000
