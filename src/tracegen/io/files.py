"""Safe file primitives: atomic writes, pickle-free npz/JSON reads with clear errors."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tracegen.errors import DataError


def _umask_mode(base: int) -> int:
    """``base`` permissions minus the process umask: what ``open()`` / ``mkdir()`` would have given."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block finishes.

    A killed process leaves at most a ``.tmp-*`` file that no reader looks at, never a half-written ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _umask_mode(0o666))  # mkstemp makes 0600 files; outputs are for other users and tools too
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it becomes ``path`` (replacing an old one) only on success.

    The old one is renamed aside (``.old-<name>``) before the new one takes its place and deleted after: a kill in
    between leaves that copy, which :func:`recover_dir` puts back, so there is always a whole ``path`` to go back to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}.", dir=path.parent))
    old = path.with_name(f".old-{path.name}")
    try:
        yield tmp
        os.chmod(tmp, _umask_mode(0o777))
        if old.exists():  # left by a kill after a successful swap: path is whole
            _remove_tree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists():
            _remove_tree(old)
    finally:
        if tmp.exists():
            _remove_tree(tmp)


def entries(folder: Path, pattern: str = "*") -> list[Path]:
    """What ``folder`` holds (matching ``pattern``), sorted, less hidden names: ``.tmp-*`` and ``.old-*`` are a
    writer's work in progress or its previous copy (:func:`atomic_dir`, :func:`atomic_path`), never data to read."""
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith("."))


def recover_dir(path: str | Path) -> None:
    """Put back the copy :func:`atomic_dir` renamed aside, if a kill came between its two renames (``path`` is
    missing, ``.old-<name>`` is there)."""
    path = Path(path)
    old = path.with_name(f".old-{path.name}")
    if not path.exists() and old.exists():
        with contextlib.suppress(FileNotFoundError):  # another process (a DDP rank) put it back first
            os.replace(old, path)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


NPZ_LEVEL = 1  # zlib level of compressed .npz files: several times faster to write than zlib's default (6)


def save_npz(path: str | Path, compress: bool = True, **arrays: np.ndarray) -> None:
    """Write arrays to ``path`` atomically; refuses object arrays (they would need pickle to read back).

    numpy's ``.npz`` layout (one ``<key>.npy`` member per array, in order, zip64 headers, members dated 1980-01-01,
    so the same arrays always give the same bytes), deflated at ``NPZ_LEVEL`` when ``compress``.
    """
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"{path}: array {key!r} has dtype object; tracegen never pickles data")
    method, level = (zipfile.ZIP_DEFLATED, NPZ_LEVEL) if compress else (zipfile.ZIP_STORED, None)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=method, compresslevel=level) as zf:
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:  # a ZipInfo of the name: fixed date
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def load_npz(path: str | Path, required: tuple[str, ...] = (), skip_pickled: bool = False) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` without pickle; missing keys in ``required`` are an error naming the file.

    Object arrays (which only pickle can read) are an error, or left out with ``skip_pickled=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                try:
                    arrays[key] = z[key]
                except ValueError:  # an object array refuses to load without pickle
                    if not skip_pickled:
                        problem = f"array {key!r} is a pickled object array, which tracegen never loads"
                        raise DataError(path, problem) from None
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DataError(path, f"not a readable .npz file (truncated or corrupt?): {e}") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise DataError(path, f"missing array(s) {missing}; present: {sorted(arrays)}")
    return arrays


def save_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (sorted keys, indented)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, f"not valid JSON: {e}") from None


def describe_changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """``"key: old -> new, ..."`` for every setting that differs, nested keys dotted (``"window.smooth_frames"``);
    a key missing on one side shows as None. Empty when nothing differs."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in d.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    a, b = flat(before), flat(after)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys)


def parse_setting(item: str) -> tuple[str, Any]:
    """A ``key=value`` setting from the command line: numbers, lists and true/false/null as JSON, the rest as text.
    Raises ValueError (naming the item) when there is no ``=``."""
    if "=" not in item:
        raise ValueError(f"setting {item!r} is not key=value")
    key, raw = item.split("=", 1)
    if raw[:1] in "[{0123456789-" or raw in ("true", "false", "null"):
        try:
            return key.strip(), json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(f"setting {item!r}: {raw!r} is not a number, list or true/false/null") from None
    return key.strip(), raw


def check_format(path: str | Path, meta: dict, name: str, supported: tuple[int, ...]) -> None:
    """Check a metadata dict's ``format`` name and ``format_version``."""
    if meta.get("format") != name:
        raise DataError(path, f"not a {name} file (format={meta.get('format')!r})")
    if meta.get("format_version") not in supported:
        raise DataError(
            path,
            f"unknown {name} format version {meta.get('format_version')!r}; this tracegen reads {list(supported)}"
            " (upgrade tracegen to read newer files)",
        )


def check_finite(path: str | Path, name: str, array: np.ndarray) -> None:
    """Error naming the file and array if ``array`` has NaN or inf."""
    bad = ~np.isfinite(array)
    if bad.any():
        raise DataError(path, f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf)")
