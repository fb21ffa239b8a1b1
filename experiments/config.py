"""Typed configs: dataclasses loaded from YAML, with dotted overrides from the command line.

Every config is a plain dataclass whose fields are documented in its docstring (``Attributes:``)
and typed with what OmegaConf's structured configs check: ``int``, ``float``, ``bool``, ``str``,
``Literal[...]`` for every closed choice, ``X | None``, nested dataclasses, lists of them and
``dict[str, Any]``. Loading is layered, later layers win: the dataclass defaults (or a given
base config), a YAML file, then ``key=value`` overrides (``model.beta=4``, ``seeds=[0,1]``,
values parsed as YAML). Unknown keys and wrongly typed values are refused with
:class:`ConfigError` naming the key's full path, what it expects and what came; a dataclass's
``validate()`` method, if it has one, runs last (cross-field checks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from envs.errors import ReprlError
from envs.storage.files import atomic_write_text

C = TypeVar("C")


class ConfigError(ReprlError):
    """An invalid config: unknown key, wrong type, bad value."""


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML file that must hold a mapping (an empty file is an empty mapping).

    Raises:
        ConfigError: the file is missing, not valid YAML, or not a mapping.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: expected a YAML config file, got a directory")
    if not p.is_file():
        raise ConfigError(f"{p}: expected a YAML config file, found no such file")
    try:
        loaded = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}: expected valid YAML, got a syntax error{at}: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{p}: expected a YAML mapping, got {type(loaded).__name__}")
    return loaded


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``; values parsed as YAML.

    Raises:
        ConfigError: an item without ``=`` or with an unparsable value.
    """
    out: dict[str, Any] = {}
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value (e.g. steps=1000)")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            raise ConfigError(f"override {item!r}: expected a YAML value after '='") from None
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} was already given a value")
        node[parts[-1]] = value
    return out


_KINDS = {
    "Integer": "an integer",
    "Float": "a number",
    "Boolean": "true or false",
    "String": "a string",
}
_REWRITES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"Value '(.*)' of type '\w+' could not be converted to (\w+)"),
        lambda m: f"expected {_KINDS.get(m[2], m[2])}, got {m[1]!r}",
    ),
    (
        re.compile(r"Invalid value '(.*)', expected one of \[(.*)\]"),
        lambda m: f"expected one of [{m[2]}], got {m[1]!r}",
    ),
    (
        re.compile(r"Key '(\w+)' not in '(\w+)'\.?(.*)"),
        lambda m: f"unknown key {m[1]!r} ({m[2]} has no such field){m[3]}",
    ),
    (
        re.compile(r"Incompatible value 'None' for field of type '(.*)'"),
        lambda m: f"expected {m[1]}, got null",
    ),
    (
        re.compile(r"Merge error: (\w+) is not a subclass of (\w+).*"),
        lambda m: f"expected a mapping of {m[2]} fields, got {m[1]}",
    ),
    (re.compile(r"Invalid value assigned: \w+ is not a ListConfig.*"), lambda m: "expected a list"),
    (re.compile(r"Cannot assign (\w+) to Dict.*"), lambda m: f"expected a mapping, got {m[1]}"),
    (
        re.compile(r"Invalid type assigned: \w+ is not a subclass of (\w+).*"),
        lambda m: f"expected the index of an existing {m[1]} of the list, got one past its end",
    ),
]


def _message(e: OmegaConfBaseException, where: str) -> str:
    key = getattr(e, "full_key", None) or ""
    msg = str(getattr(e, "msg", None) or e).splitlines()[0].strip()
    for pattern, rewrite in _REWRITES:
        m = pattern.fullmatch(msg)
        if m:
            msg = rewrite(m)
            break
    return f"{where}: {key}: {msg}" if key else f"{where}: {msg}"


def _strict_bools(cls: Any, data: Any, path: str) -> None:
    """OmegaConf turns 3 into True; a config wants true/false (or a clear error)."""
    if not (dataclasses.is_dataclass(cls) and isinstance(data, dict)):
        return
    hints = typing.get_type_hints(cls)
    for k, v in data.items():
        tp = hints.get(k)
        if tp is bool and not isinstance(v, bool):
            raise ConfigError(f"{path}{k}: expected true or false, got {v!r}")
        if dataclasses.is_dataclass(tp):
            _strict_bools(tp, v, f"{path}{k}.")
        elif typing.get_origin(tp) is list and isinstance(v, list):
            (inner,) = typing.get_args(tp) or (None,)
            for i, item in enumerate(v):
                _strict_bools(inner, item, f"{path}{k}[{i}].")


def build(
    cls: type[C],
    *layers: dict[str, Any] | C,
    overrides: Sequence[str] = (),
    where: str = "config",
) -> C:
    """Merges ``layers`` (plain dicts or instances of ``cls``) onto ``cls``'s schema, then
    applies dotted ``overrides``.

    Args:
        cls: the config dataclass.
        *layers: applied in order, later ones win; mappings merge key by key, lists replace.
        overrides: ``key=value`` items applied last; a key may index a list
            (``encoders.0.steps=4``).
        where: names the source in error messages (a file, "overrides", ...).

    Returns:
        A validated instance of ``cls``.

    Raises:
        ConfigError: unknown keys, wrong types, or a failed ``validate()``.
    """
    for layer in [*layers, parse_overrides(overrides)]:
        try:
            _strict_bools(cls, layer, "")
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), *layers)
        for item in overrides:
            key = item.partition("=")[0]
            value = parse_overrides([item])
            for part in key.strip().split("."):
                value = value[part]
            OmegaConf.update(merged, key.strip(), value, merge=True)
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(_message(e, where)) from None
    check = getattr(obj, "validate", None)
    if check is not None:
        check()
    return obj  # type: ignore[return-value]


def load_config(
    cls: type[C],
    path: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    *,
    base: C | None = None,
) -> C:
    """Loads ``cls`` from its defaults (or ``base``), then a YAML file, then dotted overrides.

    Raises:
        ConfigError: the file is not a YAML mapping, or a key/value is invalid.
    """
    layers: list[Any] = [] if base is None else [base]
    if path is not None:
        layers.append(read_yaml(path))
    where = str(path) if path is not None else "config"
    if overrides:
        where += " + overrides" if path is not None else " overrides"
    return build(cls, *layers, overrides=overrides, where=where)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a JSON/YAML-plain dict."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_hash(cfg: Any, ignore: Sequence[str] = ()) -> str:
    """A short stable hash of a config (minus ``ignore`` keys): same config, same artefact."""
    d = {k: v for k, v in to_dict(cfg).items() if k not in ignore}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def write_yaml(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Writes ``data`` as YAML atomically (temporary name, then rename)."""
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its description, read from the ``Attributes:`` section of ``cls``'s
    docstring (Google style), for help texts."""
    doc = cls.__doc__ or ""
    out: dict[str, str] = {}
    in_attrs, current, base_indent = False, None, 0
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "Attributes:":
            in_attrs = True
            continue
        if not in_attrs:
            continue
        if not stripped:
            current = None
            continue
        head, colon, rest = stripped.partition(":")
        indent = len(line) - len(line.lstrip())
        if colon and head.isidentifier() and (current is None or indent <= base_indent):
            current, base_indent = head, indent
            out[current] = rest.strip()
        elif current is not None:
            out[current] += " " + stripped
    return out
