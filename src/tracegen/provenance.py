"""Which code and software made a result, written beside it: a number is only as good as knowing what produced it.

Every result file carries ``provenance`` (:func:`provenance`): tracegen's version, the git commit of the checkout
it ran from and whether that checkout had uncommitted changes, Python, the platform, the CPU count and the versions
of the packages that decide the numbers. ``tracegen bench metaworld`` also labels every episode of its log with
:func:`code_label`, so a benchmark resumed across commits says so in its summary (``code``) and in ``tracegen bench
compare``. Installed from a wheel (no git checkout), the commit is ``None`` and the label is the version alone.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from tracegen import __version__

PACKAGES = ("torch", "numpy", "mujoco", "metaworld", "robosuite", "opencv-python-headless", "pycolmap")
PACKAGE_ROOT = Path(__file__).resolve().parent  # src/tracegen in a checkout


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None if it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(root: Path, *args: str) -> str | None:
    """``git -C root ARGS``'s output, stripped; None when git is missing, fails or takes over 10 s."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def git_state(package_root: Path = PACKAGE_ROOT) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout that holds ``package_root`` as its ``src/tracegen``; ``(None, None)``
    when the package does not run from such a checkout (a wheel, or site-packages inside some other repository).
    ``dirty``: files differ from the commit or are new (``git status`` lists them; ignored files do not count)."""
    top = _git(package_root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() / "src" / "tracegen" != package_root.resolve():
        return None, None
    commit = _git(package_root, "rev-parse", "HEAD")
    if commit is None:  # a repository without a commit yet
        return None, None
    status = _git(package_root, "status", "--porcelain")
    return commit, None if status is None else bool(status)


def code_label(package_root: Path = PACKAGE_ROOT) -> str:
    """A short name of the running code: ``0.1.0+g1a2b3c4d5e6f`` (12 hex digits of the commit), ``.dirty`` appended
    for uncommitted changes or new files; the version alone outside a checkout."""
    commit, dirty = git_state(package_root)
    if commit is None:
        return __version__
    return f"{__version__}+g{commit[:12]}" + (".dirty" if dirty else "")


@functools.cache
def provenance() -> dict:
    """What made a result: ``{"tracegen", "code", "commit", "dirty", "python", "platform", "cpus", "packages"}``
    (computed once per process: the command-line entry points call it as they start, so that an edit or commit
    made during a long run is not credited to it)."""
    commit, dirty = git_state()
    return {
        "tracegen": __version__,
        "code": code_label(),
        "commit": commit,
        "dirty": dirty,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": {name: package_version(name) for name in PACKAGES},
    }
