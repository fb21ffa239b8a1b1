"""The checkpoint file of a representation: its header, writing it, reading the header back.

The lowest layer of :mod:`representations.checkpoint` (which documents the layout and builds
models from headers): it knows nothing of the registry, so :class:`Representation.save` can use
it without a circle of imports.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import save as st_save

from envs.errors import ReprlError
from envs.storage.files import atomic_write_bytes, file_sha256, json_plain, library_version

if TYPE_CHECKING:
    from representations.base import Representation

#: Version of the header layout written by :func:`save`.
FORMAT_VERSION = 1
#: Key of the reprl header in the safetensors metadata.
HEADER_KEY = "reprl"
_HEADER_FIELDS = (
    "format_version",
    "method",
    "config",
    "input_spec",
    "latent_dim",
    "library_version",
    "provenance",
)
_MAX_HEADER_BYTES = 100_000_000


class CheckpointError(ReprlError):
    """A file is not a readable reprl checkpoint, or not the one that was expected."""


def file_provenance(path: str | os.PathLike[str]) -> dict[str, str]:
    """Provenance record of a file: ``{"path": absolute path, "sha256": hex digest}``."""
    return {"path": str(Path(path).resolve()), "sha256": file_sha256(path)}


def make_header(
    model: Representation, provenance: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The header :func:`save` writes for ``model`` (see the module docstring)."""
    return {
        "format_version": FORMAT_VERSION,
        "method": model.name,
        "config": json_plain(model.config, "config"),
        "input_spec": model.input_spec.to_dict(),
        "latent_dim": int(model.latent_dim),
        "library_version": library_version(),
        "provenance": None if provenance is None else json_plain(provenance, "provenance"),
    }


def save(
    model: Representation,
    path: str | os.PathLike[str],
    provenance: Mapping[str, Any] | None = None,
) -> None:
    """Write ``model`` to ``path`` atomically (temporary file in the same directory, then rename).

    Args:
        model: Any registered representation.
        path: Destination file (conventionally ``*.safetensors``); parent dirs are created.
        provenance: JSON-plain record of the training data, e.g. :func:`file_provenance` of the
            dataset. ``None`` keeps ``model.provenance`` (set when the model was loaded).

    Raises:
        TypeError: If the config or provenance is not JSON-plain.
    """
    if provenance is None:
        provenance = model.provenance
    header = make_header(model, provenance)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = st_save(tensors, metadata={"format": "pt", HEADER_KEY: json.dumps(header)})

    atomic_write_bytes(path, data, durable=True)


def _parse_header(data: bytes, where: str) -> dict[str, Any]:
    """Read and check the reprl header from the raw bytes of a safetensors file."""
    if len(data) < 8:
        raise CheckpointError(
            f"{where}: not a reprl checkpoint: expected a safetensors file (8-byte header length "
            f"and a JSON header), got {len(data)} bytes"
        )
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{where}: not a reprl checkpoint: safetensors header length {n} is implausible"
        )
    if 8 + n > len(data):
        raise CheckpointError(
            f"{where}: truncated or not a checkpoint: expected a {n}-byte safetensors header, "
            f"the file has {len(data) - 8} bytes after the length field"
        )
    try:
        st_header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"{where}: not a reprl checkpoint: bad safetensors header ({e})"
        ) from None
    if not isinstance(st_header, dict):
        raise CheckpointError(f"{where}: not a reprl checkpoint: safetensors header not a dict")
    meta = st_header.get("__metadata__") or {}
    if not isinstance(meta, dict) or HEADER_KEY not in meta:
        raise CheckpointError(
            f"{where}: not a reprl checkpoint: expected a '{HEADER_KEY}' header in the "
            f"safetensors metadata, found keys {sorted(meta) if isinstance(meta, dict) else []}"
        )
    ends = [
        v["data_offsets"][1]
        for k, v in st_header.items()
        if k != "__metadata__" and isinstance(v, dict) and len(v.get("data_offsets", ())) == 2
    ]
    need, have = max(ends, default=0), len(data) - 8 - n
    if need != have:
        raise CheckpointError(
            f"{where}: truncated or corrupt checkpoint: expected {need} bytes of tensor data, "
            f"got {have}"
        )
    try:
        header = json.loads(meta[HEADER_KEY])
    except (TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{where}: corrupt reprl header ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: corrupt reprl header: expected a JSON object")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(
            f"{where}: corrupt reprl header: expected an integer format_version >= 1, "
            f"got {version!r}"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: checkpoint format_version {version} is newer than this reprl "
            f"({library_version()}) reads: expected format_version <= {FORMAT_VERSION}; "
            f"written by reprl {header.get('library_version', '?')}, upgrade reprl"
        )
    missing = [f for f in _HEADER_FIELDS if f not in header]
    if missing:
        raise CheckpointError(
            f"{where}: corrupt reprl header: expected fields {list(_HEADER_FIELDS)}, "
            f"missing {missing}"
        )
    if not isinstance(header["method"], str) or not isinstance(header["config"], dict):
        raise CheckpointError(f"{where}: corrupt reprl header: bad method or config")
    return header


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The reprl header of a checkpoint, without building the model.

    Raises:
        CheckpointError: If the file is not a (complete) reprl checkpoint, or of a newer format.
        FileNotFoundError: If there is no file.
    """
    return _parse_header(Path(path).read_bytes(), str(path))
