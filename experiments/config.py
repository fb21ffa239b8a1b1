"""Typed configs: dataclasses loaded from YAML, with dotted overrides from the command line.

Every stage's config is a dataclass whose fields carry a docstring-style comment; a YAML file
gives any subset of the fields, ``key=value`` overrides (``model.beta=4``, ``steps=2000``)
come last. Unknown keys and wrongly typed values are refused with a message naming the field,
what it expects and what came.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from envs.storage.files import atomic_write_text

C = TypeVar("C")


class ConfigError(ValueError):
    """An invalid config: unknown key, wrong type, bad value."""


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Checks/converts ``value`` to the annotated type ``tp`` (a small, strict subset)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {tp}, got {value!r}")
    if origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (inner, *_) = typing.get_args(tp) or (Any,)
        out = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where=where)
    return value


def from_dict(cls: type[C], data: dict[str, Any], *, where: str = "config") -> C:
    """Builds dataclass ``cls`` from a plain dict, checking keys and types.

    Raises:
        ConfigError: unknown keys or values of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; {cls.__name__} has {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check()
    return obj


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as a JSON/YAML-plain dict."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (e.g. steps=1000)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of plain dicts (``update`` wins)."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(
    cls: type[C], path: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()
) -> C:
    """Loads ``cls`` from defaults, then a YAML file, then dotted overrides.

    Raises:
        ConfigError: the file is not a YAML mapping, or a key/value is invalid.
    """
    data: dict[str, Any] = to_dict(cls())
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a YAML mapping, got {type(loaded).__name__}")
        data = merge(data, loaded)
    data = merge(data, parse_overrides(overrides))
    return from_dict(cls, data, where=str(path) if path else "config")


def config_hash(cfg: Any, ignore: Sequence[str] = ()) -> str:
    """A short stable hash of a config (minus ``ignore`` keys): same config, same artefact."""
    d = {k: v for k, v in to_dict(cfg).items() if k not in ignore}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def write_yaml(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Writes ``data`` as YAML atomically (temporary name, then rename)."""
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
