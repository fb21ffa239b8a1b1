"""Checkpoint format of representations: one safetensors file, JSON header in its metadata.

Layout: a standard safetensors file (``safetensors.torch.load_file`` opens it) whose tensors are
the model's ``state_dict`` (sub-modules keep their prefixes, e.g. the frozen DAE inside a
beta-VAE_DAE is stored under ``dae.``) and whose ``__metadata__`` holds:

- ``"format"``: ``"pt"`` (the safetensors convention),
- ``"reprl"``: a JSON object, the header::

    {
      "format_version": 1,              # int; readers refuse newer versions
      "method": "beta_vae",             # registry name
      "config": {...},                  # constructor kwargs, JSON-plain: cls(**config)
      "input_spec": {"shape": [3, 64, 64], "dtype": "float32",
                     "channel_order": "RGB", "value_range": [0.0, 1.0]},
      "latent_dim": 32,
      "library_version": "0.1.0",       # reprl's version, "0+unknown" if not installed
      "provenance": {"path": ..., "sha256": ...} or null   # dataset the weights came from
    }

No pickle is involved in writing or reading: a checkpoint from a stranger is safe to open.
:func:`load` reads the header before building anything and refuses a mismatch with a
:class:`CheckpointError` naming the expected and the actual value.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load

from envs.storage.files import library_version
from representations.base import InputSpec, Representation
from representations.checkpoint_file import FORMAT_VERSION as FORMAT_VERSION
from representations.checkpoint_file import HEADER_KEY as HEADER_KEY
from representations.checkpoint_file import CheckpointError as CheckpointError
from representations.checkpoint_file import _parse_header
from representations.checkpoint_file import file_provenance as file_provenance
from representations.checkpoint_file import make_header as make_header
from representations.checkpoint_file import read_header as read_header
from representations.checkpoint_file import save as save
from representations.registry import available, get_class


def build_from_header(header: Mapping[str, Any], *, where: str = "header") -> Representation:
    """Build the model a checkpoint header describes, with fresh (random) weights.

    The one place where a header becomes a model: :func:`load` fills the result with the
    checkpoint's weights; agents rebuild an encoder from a header embedded in an SB3 zip.

    Args:
        header: A checkpoint header (:func:`read_header`), or at least its fields ``method``,
            ``config``, ``input_spec`` and ``latent_dim``.
        where: What the header came from, prefixed to error messages (a path, a kwarg name).

    Returns:
        The model in eval mode on the CPU; its ``input_spec`` and ``latent_dim`` equal the
        header's.

    Raises:
        CheckpointError: A field is missing or of the wrong type, the method is not registered,
            the config does not build, or the built model disagrees with the header's input
            spec or latent size; the message names the expected and the actual value.
    """
    if not isinstance(header, Mapping):
        raise CheckpointError(f"{where}: expected a header dict, got {type(header).__name__}")
    required = ("method", "config", "input_spec", "latent_dim")
    missing = [k for k in required if k not in header]
    if missing:
        raise CheckpointError(f"{where}: expected fields {list(required)}, missing {missing}")
    method, config = header["method"], header["config"]
    if not isinstance(method, str) or not isinstance(config, Mapping):
        raise CheckpointError(
            f"{where}: expected a str method and a dict config, got {method!r} and "
            f"{type(config).__name__}"
        )
    try:
        cls = get_class(method)
    except ValueError:
        raise CheckpointError(
            f"{where}: method {method!r} is not registered in this reprl ({library_version()}); "
            f"known: {', '.join(available())}. Import the module that defines it first."
        ) from None
    try:
        model = cls(**config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(
            f"{where}: cannot build {method!r} from the header config: {e}"
        ) from None
    try:
        spec = InputSpec.from_dict(header["input_spec"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{where}: corrupt input_spec in header: {e}") from None
    latent_dim = header["latent_dim"]
    if spec != model.input_spec or latent_dim != model.latent_dim:
        raise CheckpointError(
            f"{where}: header does not match its config: header input_spec {spec}, latent_dim "
            f"{latent_dim}; config builds input_spec {model.input_spec}, latent_dim "
            f"{model.latent_dim}"
        )
    return model.eval()


class Checkpoint:
    """One checkpoint file, read once: its bytes, header and sha256 are kept, so the stages of
    a run (probe, training, provenance) ask it instead of opening the file again.

    Args:
        path: Checkpoint file written by :func:`save`.

    Raises:
        CheckpointError: Not a checkpoint or truncated, or of a newer format version.
        FileNotFoundError: If there is no file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._data = self.path.read_bytes()
        self.header: dict[str, Any] = _parse_header(self._data, str(self.path))
        self._sha256: str | None = None

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, method={self.method!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def method(self) -> str:
        """The registry name of the method."""
        return str(self.header["method"])

    @property
    def method_class(self) -> type[Representation]:
        """The registered class of the method (a CheckpointError if it is not registered)."""
        try:
            return get_class(self.method)
        except ValueError:
            raise CheckpointError(
                f"{self.path}: method {self.method!r} is not registered in this reprl "
                f"({library_version()}); known: {', '.join(available())}"
            ) from None

    @property
    def sha256(self) -> str:
        """Hex sha256 of the file's content (computed once)."""
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self._data).hexdigest()
        return self._sha256

    @property
    def latent_activity(self) -> dict[str, Any] | None:
        """``{"active", "latent_dim", "variational"}`` as pretraining measured them, or None."""
        activity = (self.header.get("provenance") or {}).get("latent_activity")
        if not isinstance(activity, dict):
            return None
        return {k: activity[k] for k in ("active", "latent_dim", "variational")}

    def build(self) -> Representation:
        """The model the header describes, with fresh weights (:func:`build_from_header`)."""
        return build_from_header(self.header, where=str(self.path))

    def load(
        self, *, expected_method: str | None = None, device: torch.device | str = "cpu"
    ) -> Representation:
        """The model with the checkpoint's weights (see :func:`load`)."""
        where = str(self.path)
        if expected_method is not None and self.method != expected_method:
            raise CheckpointError(
                f"{where}: expected a checkpoint of method {expected_method!r}, got {self.method!r}"
            )
        model = self.build()
        try:
            tensors = st_load(self._data)
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"{where}: corrupt tensor data: {e}") from None
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as e:
            raise CheckpointError(
                f"{where}: weights do not match the {self.method!r} architecture of the header: {e}"
            ) from None
        model.provenance = self.header["provenance"]
        return model.to(device).eval()


def load(
    path: str | os.PathLike[str] | Checkpoint,
    *,
    expected_method: str | None = None,
    device: torch.device | str = "cpu",
) -> Representation:
    """Build a representation from a checkpoint written by :func:`save`.

    The header is checked before anything is built; the weights are read with safetensors only.

    Args:
        path: Checkpoint file, or a :class:`Checkpoint` already read.
        expected_method: If given, refuse a checkpoint of another method.
        device: Where to put the model.

    Returns:
        The model in eval mode on ``device``; ``model.provenance`` holds the header's provenance.

    Raises:
        CheckpointError: Not a checkpoint or truncated; a newer format version; a method other
            than ``expected_method``; a method missing from the registry; a header that does not
            match the weights. The message names the expected and the actual value.
        FileNotFoundError: If there is no file.
    """
    ckpt = path if isinstance(path, Checkpoint) else Checkpoint(path)
    return ckpt.load(expected_method=expected_method, device=device)
