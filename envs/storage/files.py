"""Writing files so that nobody ever reads half of one, and identifying what was written.

Every artefact reprl writes (checkpoints, agent zips, datasets, configs, reports, pictures)
goes to a temporary name in the destination's directory and is renamed onto the destination
only once complete; a killed writer leaves at most a hidden ``.NAME.PID.HEX.tmp`` file, never a
file that looks finished. A full disk (``ENOSPC``, ``EDQUOT``) while writing or renaming leaves
the previous file at the destination untouched, removes the temporary one, and is raised as an
``OSError`` naming the destination (:func:`no_space`), so a caller can say which file and which
disk (:func:`disk_usage_line`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import secrets
import shutil
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


NO_SPACE_ERRNOS: tuple[int, ...] = tuple(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT") if hasattr(errno, name)
)
"""``errno`` values of a full disk (no space left, disk quota exceeded)."""


def is_no_space(e: BaseException) -> bool:
    """Whether ``e`` is a full disk: an ``OSError`` with a :data:`NO_SPACE_ERRNOS` errno, or
    one whose message carries it (HDF5 reports ``errno = 28`` inside its own message)."""
    if not isinstance(e, OSError):
        return False
    if e.errno in NO_SPACE_ERRNOS:
        return True
    text = str(e)
    return "No space left on device" in text or any(
        f"errno = {n}," in text for n in NO_SPACE_ERRNOS
    )


def no_space(path: str | os.PathLike[str], cause: OSError | None = None) -> OSError:
    """The ``OSError`` of a full disk while writing ``path`` (``filename`` = ``path``), with
    the errno of ``cause`` where it has one of :data:`NO_SPACE_ERRNOS`."""
    code = cause.errno if cause is not None and cause.errno in NO_SPACE_ERRNOS else errno.ENOSPC
    return OSError(code, os.strerror(code), os.fspath(path))


def disk_usage_line(path: str | os.PathLike[str]) -> str:
    """``"disk /mnt/x: 1.2 MiB free of 50.0 GiB"`` for the filesystem holding ``path`` (its
    nearest existing ancestor); ``""`` when even that cannot be asked."""
    p = Path(os.path.abspath(os.fspath(path)))
    while not p.exists() and p != p.parent:
        p = p.parent
    mount = p
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        usage = shutil.disk_usage(p)
    except OSError:
        return ""
    return f"disk {mount}: {_size(usage.free)} free of {_size(usage.total)}"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = False) -> Iterator[Path]:
    """Yields a temporary path to write; renames it onto ``path`` when the block succeeds.

    Args:
        path: the destination; its parent directories are created.
        durable: fsync the file and the directory, so the rename survives a power cut.

    Yields:
        The temporary path (deleted if the block raises).

    Raises:
        OSError: a full disk (:func:`is_no_space`) as :func:`no_space` of ``path``; the file
            already at ``path``, if any, is left as it was.
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
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if is_no_space(e) and getattr(e, "filename", None) != os.fspath(dest):
            raise no_space(dest, e) from e  # type: ignore[arg-type]
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
