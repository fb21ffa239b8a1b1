"""Environment ids: gymnasium registration and ``make_vec`` for every id reprl knows.

``import envs`` registers the ``reprl/...`` ids with gymnasium, so ``gym.make("reprl/...")``
gives a single env and ``gym.make_vec("reprl/...", n, vectorization_mode="vector_entry_point")``
the batched gymnasium ``VectorEnv``. :func:`make_vec` gives the SB3 ``VecEnv`` for any id,
ours or the real Atari game's.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.vec_env import VecEnv

from envs.adapters import TorchSingleEnv, TorchVecEnv, TorchVectorEnv
from envs.breakout import VARIANTS, BreakoutBatch

BREAKOUT_IDS: dict[str, dict[str, Any]] = {
    "reprl/Breakout-v0": {},
    "reprl/BreakoutStandard-v0": {"variant": "standard"},
    "reprl/BreakoutOffsetPaddle-v0": {"variant": "offset_paddle"},
    "reprl/BreakoutMiddleWall-v0": {"variant": "middle_wall"},
    "reprl/BreakoutRandomTarget-v0": {"variant": "random_target"},
    "reprl/BreakoutJuggling-v0": {"variant": "juggling"},
    "reprl/BreakoutHalfNegative-v0": {"variant": "half_negative"},
}
"""Our Breakout ids and the kwargs each fixes (``reprl/Breakout-v0`` takes ``variant``)."""

ATARI_IDS = ("ALE/Breakout-v5",)


def known_ids() -> tuple[str, ...]:
    """Every id :func:`make_vec` accepts."""
    return (*BREAKOUT_IDS, *ATARI_IDS)


def _breakout_kwargs(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    fixed = BREAKOUT_IDS[env_id]
    clash = {k for k in fixed if k in kwargs and kwargs[k] != fixed[k]}
    if clash:
        raise ValueError(
            f"{env_id} fixes {fixed}; got conflicting { ({k: kwargs[k] for k in clash}) }. "
            f"Use reprl/Breakout-v0 with variant=... (one of {VARIANTS}) instead"
        )
    return {**kwargs, **fixed}


def make_breakout_batch(
    env_id: str, num_envs: int, *, seed: int | None = None, device: str | torch.device = "cpu",
    **kwargs: Any,
) -> BreakoutBatch:  # fmt: skip
    """The batched Breakout core behind one of :data:`BREAKOUT_IDS`."""
    return BreakoutBatch(num_envs, seed=seed, device=device, **_breakout_kwargs(env_id, kwargs))


def make_vec(
    env_id: str,
    num_envs: int,
    *,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    **kwargs: Any,
) -> VecEnv:
    """An SB3 ``VecEnv`` of ``num_envs`` copies of ``env_id``.

    Args:
        env_id: one of :func:`known_ids` (``reprl/Breakout*-v0``, ``ALE/Breakout-v5``).
        num_envs: number of parallel envs, >= 1.
        seed: env i is seeded with ``seed + i`` (SB3's convention); None: fresh entropy.
        device: where a batched env keeps its state ("cpu", "cuda"); observations come out as
            numpy either way.
        **kwargs: forwarded to the env (e.g. ``variant``, ``obs_size``, ``max_episode_steps``
            for Breakout; ``mode``, ``difficulty`` for ALE); ``info_factors=False`` leaves the
            factors out of the info dicts (ignored by envs without factors).

    Returns:
        The VecEnv; observations (N, H, W, 3) uint8, default 64 x 64.

    Raises:
        ValueError: an unknown id, num_envs < 1, or invalid kwargs for that env.
    """
    info_factors = kwargs.pop("info_factors", True)  # only our envs have factors to skip
    if env_id in BREAKOUT_IDS:
        core = make_breakout_batch(env_id, num_envs, seed=seed, device=device, **kwargs)
        return TorchVecEnv(core, info_factors=info_factors)
    if env_id in ATARI_IDS:
        from envs.atari import make_atari_vec

        return make_atari_vec(env_id, num_envs, seed=seed, device=str(device), **kwargs)
    raise ValueError(f"unknown env id {env_id!r}; expected one of {known_ids()}")


def _single_entry(
    env_id: str, *, seed: int | None = None, device: str = "cpu", render_mode: str | None = None,
    **kwargs: Any,
) -> TorchSingleEnv:  # fmt: skip
    core = make_breakout_batch(env_id, 1, seed=seed, device=device, **kwargs)
    return TorchSingleEnv(core, render_mode=render_mode)


def _vector_entry(
    env_id: str, num_envs: int = 1, *, seed: int | None = None, device: str = "cpu",
    **kwargs: Any,
) -> TorchVectorEnv:  # fmt: skip
    kwargs.pop("render_mode", None)
    return TorchVectorEnv(make_breakout_batch(env_id, num_envs, seed=seed, device=device, **kwargs))


def register_envs() -> None:
    """Registers the ``reprl/...`` ids with gymnasium (idempotent)."""
    for env_id in BREAKOUT_IDS:
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=_single_entry,
            vector_entry_point=_vector_entry,
            kwargs={"env_id": env_id},
            disable_env_checker=False,
        )
