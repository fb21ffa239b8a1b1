"""A method's configuration round-trips: ``Method(**model.config)`` and a saved checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from representations import load
from representations.base import Representation


def assert_config_round_trips(model: Representation, obs: torch.Tensor, tmp_path: Path) -> None:
    """``type(model)(**model.config)`` has the same config (and ``cfg``) and state_dict keys;
    the checkpoint loads with that config, those weights and the same codes of ``obs``.

    Args:
        model: A built model (its class configured by a :class:`MethodConfig`).
        obs: ``(B, C, H, W)`` frames of its input spec.
        tmp_path: Where the checkpoint goes.
    """
    rebuilt = type(model)(**model.config)
    assert rebuilt.config == model.config
    assert rebuilt.cfg == model.cfg  # type: ignore[attr-defined]
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    path = tmp_path / f"{model.name}.safetensors"
    model.save(path)
    back = load(path)
    assert type(back) is type(model) and back.config == model.config
    assert back.cfg == model.cfg  # type: ignore[attr-defined]
    for (k, a), (j, b) in zip(model.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == j and torch.equal(a, b), k
    model.eval()
    back.eval()
    with torch.no_grad():
        torch.testing.assert_close(back.encode(obs), model.encode(obs), rtol=0, atol=0)
