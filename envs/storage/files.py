"""Writing files so that nobody ever reads half of one, and identifying what was written.

Every artefact reprl writes (checkpoints, agent zips, datasets, configs, reports, pictures)
goes to a temporary name in the destination's directory and is renamed onto the destination
only once complete; a killed writer leaves at most a hidden ``.NAME.PID.HEX.tmp`` file, never a
file that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from importlib import metadata
from pathlib import Path
from typing import Any


def library_version() -> str:
    """Installed version of ``reprl``, ``"0+unknown"`` when it is not installed."""
    try:
        return metadata.version("reprl")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def temporary_name(path: str | os.PathLike[str]) -> Path:
    """A fresh hidden temporary name beside ``path`` (same directory, so rename is atomic)."""
    p = Path(path)
    return p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = False) -> Iterator[Path]:
    """Yields a temporary path to write; renames it onto ``path`` when the block succeeds.

    Args:
        path: the destination; its parent directories are created.
        durable: fsync the file and the directory, so the rename survives a power cut.

    Yields:
        The temporary path (deleted if the block raises).
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(dest)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        try:  # not every platform can open a directory
            fd = os.open(dest.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            with suppress(OSError):  # some filesystems refuse to fsync a directory
                os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = False) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Writes UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Writes ``data`` as indented JSON to ``path`` atomically (see :func:`atomic_path`)."""
    atomic_write_text(path, json.dumps(data, indent=2))


def json_plain(value: Any, where: str = "value") -> Any:
    """A JSON-plain deep copy of ``value``: tuples become lists; anything JSON would not
    round-trip unchanged (non-str keys, non-finite floats, other types) is refused.

    Raises:
        TypeError: naming the offending path below ``where``.
    """
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be str, got {k!r}")
            out[k] = json_plain(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [json_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise TypeError(f"{where}: non-finite float {value} is not JSON-plain")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: {type(value).__name__} is not JSON-plain")
