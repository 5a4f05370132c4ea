"""Dotted ``key=value`` settings on nested frozen dataclasses: the command line's way into any typed config.

``apply_settings(ForgeConfig(), ["tracker.snap_radius=0"])`` or ``apply_settings(RolloutConfig(),
["stuck_push_m=0", "executor.path_mode=rigid"])``. A value must be of the setting's kind (a whole number passes for a
real one, a list for a tuple); an unknown key or a bad value raises ValueError naming it, with the nearest valid key.
The config's own ``__post_init__`` checks still run (``dataclasses.replace`` builds a new instance).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any, TypeVar

from tracegen.io.files import parse_setting

Config = TypeVar("Config")
Rule = tuple[str, Callable[[Any], bool]]  # a number's rule in words, and its test
AT_LEAST_ONE: Rule = ("at least 1", lambda v: v >= 1)
ABOVE_ZERO: Rule = ("above 0", lambda v: v > 0)
AT_LEAST_ZERO: Rule = ("at least 0", lambda v: v >= 0)
FRACTION: Rule = ("in [0, 1)", lambda v: 0 <= v < 1)


def out_of_range(cfg: Any, rules: dict[str, Rule]) -> list[str]:
    """``"key=value (rule)"`` for every setting of ``cfg`` that breaks its rule in ``rules`` (a config's
    ``__post_init__`` raises them together, naming each)."""
    return [f"{k}={getattr(cfg, k)} ({rule})" for k, (rule, ok) in rules.items() if not ok(getattr(cfg, k))]


def rules(rule: Rule, *keys: str) -> dict[str, Rule]:
    """``{key: rule}`` for each of ``keys``."""
    return dict.fromkeys(keys, rule)


def apply_settings(cfg: Config, items: list[str] | tuple[str, ...], example: str) -> Config:
    """``cfg`` with every ``key=value`` of ``items`` applied in order; ``example`` (a valid dotted key) is shown
    when a key is unknown and nothing is close to it."""
    keys = setting_keys(cfg)
    for item in items:
        key, value = parse_setting(item)
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"did you mean {close[0]}?" if close else f"settings are dotted names such as {example}"
            raise ValueError(f"unknown setting {key!r}; {hint}")
        cfg = _replace(cfg, key.split("."), key, value)
    return cfg


def setting_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Every settable dotted key of a (nested) dataclass instance."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        nested = dataclasses.is_dataclass(value) and not isinstance(value, type)
        out += setting_keys(value, f"{prefix}{f.name}.") if nested else [f"{prefix}{f.name}"]
    return out


def setting_value(cfg: Any, key: str) -> Any:
    """The value of the dotted ``key`` in ``cfg``."""
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def all_settings(cfg: Any) -> dict[str, Any]:
    """``{dotted key: value}`` of every setting of ``cfg``, tuples as lists (JSON-ready)."""
    return {key: _jsonable(setting_value(cfg, key)) for key in setting_keys(cfg)}


def changed_settings(cfg: Any, default: Any) -> dict[str, Any]:
    """``{dotted key: value}`` of every setting in which ``cfg`` differs from ``default`` (same config class),
    tuples as lists (JSON-ready)."""
    current = all_settings(cfg)
    return {key: value for key, value in current.items() if value != _jsonable(setting_value(default, key))}


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _replace(node: Any, path: list[str], key: str, value: Any) -> Any:
    name, rest = path[0], path[1:]
    old = getattr(node, name)
    new = _replace(old, rest, key, value) if rest else same_kind(key, old, value)
    return dataclasses.replace(node, **{name: new})


def same_kind(key: str, old: Any, value: Any) -> Any:
    """``value`` if it is of the setting's kind (a setting that is None by default takes anything), else
    ValueError naming the setting."""
    if old is None:  # no default to compare with: any value, lists as tuples (configs are frozen and hashable)
        return tuple(value) if isinstance(value, list) else value
    kind = type(old)
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    ok |= kind is float and isinstance(value, int) and not isinstance(value, bool)
    ok |= kind in (list, tuple) and isinstance(value, list | tuple)
    if not ok:
        article = "an" if kind.__name__[0] in "aeiou" else "a"
        raise ValueError(f"setting {key} takes {article} {kind.__name__}, not {value!r}")
    if kind is float:
        return float(value)
    return tuple(value) if kind is tuple else value
