"""One error type for bad data, so every reader fails the same way: ``<file>: <problem>``."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Invalid, corrupt or unsupported input data. ``str(err)`` is one line naming the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def check(condition: bool, path: str | Path, problem: str) -> None:
    """Raise :class:`DataError` for ``path`` unless ``condition`` holds."""
    if not condition:
        raise DataError(path, problem)


def run_cli(app) -> None:
    """Run a typer app so that bad data ends in one line ``error: <file>: <problem>`` and exit code 2."""
    import sys

    try:
        app()
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
