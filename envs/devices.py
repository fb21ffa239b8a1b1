"""Torch devices named in configs and command lines: parsed, and present on this machine.

One home for the check every layer needs (batched envs, pretraining, agents, experiment
configs): a device string torch does not parse, of a type reprl does not run on, or that this
machine does not have is refused with a message naming what came and what to use instead.
"""

from __future__ import annotations

from typing import Any

import torch

from envs.errors import ReprlError

DEVICE_TYPES = ("cpu", "cuda", "mps")
"""Device types reprl runs on."""


def check_device(device: Any, key: str = "device", *, here: bool = True) -> torch.device:
    """The torch device named by ``device``, checked.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...
        key: the config key or option, for the message.
        here: also check that this machine has the device (``False`` for a config that runs
            elsewhere, e.g. a sweep trial on a GPU node).

    Returns:
        The parsed ``torch.device``.

    Raises:
        ReprlError: ``"<key>: expected ..., got ..."`` naming what is missing.
    """
    expected = "cpu, cuda, cuda:N or mps"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ReprlError(f"{key}: expected a torch device, {expected}, got {device!r}") from None
    if dev.type not in DEVICE_TYPES:
        raise ReprlError(f"{key}: expected a torch device, {expected}, got {device!r}")
    if not here:
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ReprlError(
                f"{key}: expected an available device, got {device!r}: this machine has no "
                f"CUDA device (torch {torch.__version__}, torch.cuda.is_available() is False); "
                "use device=cpu"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ReprlError(
                f"{key}: expected one of cuda:0 .. cuda:{count - 1} (this machine's CUDA "
                f"devices), got {device!r}"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ReprlError(
            f"{key}: expected an available device, got {device!r}: this machine has no MPS "
            "device; use device=cpu"
        )
    return dev
