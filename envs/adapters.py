"""Adapters from a batched torch environment to SB3, gymnasium-vector and gymnasium APIs.

A *batched environment* (:class:`envs.batched.BatchedEnv`) keeps N games in tensors and
auto-resets finished games inside ``step`` (SB3's convention), handing back their last frame
separately. The three
adapters here expose it as

- :class:`TorchVecEnv`: a stable-baselines3 ``VecEnv`` (numpy out, ``terminal_observation``,
  ``TimeLimit.truncated``, ground-truth factors in every ``info``);
- :class:`TorchVectorEnv`: a gymnasium ``VectorEnv`` (autoreset ``NEXT_STEP``, gymnasium's
  default, or ``SAME_STEP``; infos as a dict of arrays);
- :class:`TorchSingleEnv`: a single gymnasium ``Env`` (N = 1, no auto-reset visible).

Factors in ``info`` always describe the observation returned beside them; for a finished
episode, the factors of its last frame are in ``info["terminal_factors"]`` (SB3) or
``infos["final_info"]`` (gymnasium).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn
from torch import Tensor

from envs.batched import BatchedEnv, StepResult
from envs.errors import ReprlError

__all__ = [
    "BatchedEnv",
    "StepResult",
    "TorchSingleEnv",
    "TorchVecEnv",
    "TorchVectorEnv",
    "check_autoreset_mode",
    "factor_dicts",
    "factors_numpy",
]


def _obs_space(core: BatchedEnv) -> gym.spaces.Box:
    return gym.spaces.Box(0, 255, core.single_obs_shape, dtype=np.uint8)


def _to_numpy(x: Tensor) -> np.ndarray:
    return x.numpy() if x.device.type == "cpu" else x.cpu().numpy()


def factors_numpy(factors: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """Factors as numpy arrays, name -> (K,) or (K, B)."""
    return {k: _to_numpy(v) for k, v in factors.items()}


def factor_dicts(factors: dict[str, Tensor]) -> list[dict[str, Any]]:
    """Splits batched factors into one dict per game (ints, or (B,) int64 arrays for balls)."""
    arrays = factors_numpy(factors)
    columns = [a.tolist() if a.ndim == 1 else list(a) for a in arrays.values()]
    keys = list(arrays)
    return [dict(zip(keys, row)) for row in zip(*columns)]


class TorchVecEnv(VecEnv):
    """A batched torch environment as a stable-baselines3 ``VecEnv``.

    Args:
        core: the batched environment; its ``num_envs`` games are this VecEnv's envs.
        info_factors: put the ground-truth factors in every step's ``info`` dicts (costs about a
            microsecond per env and step); :meth:`get_factors` gives them batched either way.
    """

    def __init__(self, core: BatchedEnv, *, info_factors: bool = True) -> None:
        self.core = core
        self.info_factors = info_factors
        self.render_mode = "rgb_array"
        obs_space = _obs_space(core)
        super().__init__(core.num_envs, obs_space, gym.spaces.Discrete(core.num_actions))
        self._actions: np.ndarray | Tensor | None = None

    def reset(self) -> np.ndarray:
        seeds = None if all(s is None for s in self._seeds) else self._seeds
        obs = self.core.reset(seeds)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = (
            factor_dicts(self.core.factors())
            if self.info_factors
            else [{} for _ in range(self.num_envs)]
        )
        return _to_numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        # checked once, by core.step, before any state changes
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        res = self.core.step(self._actions)
        self._actions = None
        obs = _to_numpy(res.obs)
        done = _to_numpy(res.terminated | res.truncated)
        if self.info_factors:
            infos = factor_dicts(self.core.factors())
        else:
            infos = [{} for _ in range(self.num_envs)]
        if res.done_index.numel():
            final_obs = _to_numpy(res.final_obs)
            final_factors = factor_dicts(res.final_factors)
            truncated = _to_numpy(res.truncated)
            for j, i in enumerate(res.done_index.tolist()):
                infos[i]["terminal_observation"] = final_obs[j]
                infos[i]["terminal_factors"] = final_factors[j]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i])
        return obs, _to_numpy(res.reward), done, infos

    def get_factors(self) -> dict[str, np.ndarray]:
        """Factors of the current observations, name -> (N,) or (N, B) int64."""
        return factors_numpy(self.core.factors())

    def close(self) -> None:
        self._actions = None

    def get_images(self) -> Sequence[np.ndarray | None]:
        """N ``(H, W, 3)`` uint8 RGB frames of the current states (not stacked), for videos."""
        return list(_to_numpy(self.core.render()))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        idx = list(self._get_indices(indices))
        return [getattr(self.core, attr_name)] * len(idx)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        idx = list(self._get_indices(indices))
        if sorted(idx) != list(range(self.num_envs)):
            raise ReprlError(
                f"a batched env shares its attributes between all {self.num_envs} games; "
                f"set_attr needs all indices, got {idx}"
            )
        setattr(self.core, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        idx = list(self._get_indices(indices))
        result = getattr(self.core, method_name)(*method_args, **method_kwargs)
        return [result] * len(idx)

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))


def _info_arrays(factors: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """gymnasium vector infos: each factor plus its all-True ``_name`` mask."""
    out: dict[str, np.ndarray] = {}
    for k, v in factors_numpy(factors).items():
        out[k] = v
        out["_" + k] = np.ones(v.shape[0], dtype=bool)
    return out


def check_autoreset_mode(
    value: gym.vector.AutoresetMode | str,
    allowed: Sequence[gym.vector.AutoresetMode],
    why: str = "",
) -> gym.vector.AutoresetMode:
    """``value`` as a gymnasium ``AutoresetMode``, if it is one of ``allowed``.

    Args:
        value: a mode or its value (``"NextStep"``, ``"SameStep"``, ``"Disabled"``).
        allowed: the modes the env can honour.
        why: why only those (for the message).

    Raises:
        ReprlError: naming the allowed modes (and why) and what came.
    """
    try:
        mode = gym.vector.AutoresetMode(value)
    except ValueError:
        mode = None
    if mode not in allowed:
        raise ReprlError(
            f"autoreset_mode: {why}expected one of {[m.value for m in allowed]}, got {value!r}"
        )
    return mode


class TorchVectorEnv(gym.vector.VectorEnv):
    """A batched torch environment as a gymnasium ``VectorEnv``.

    Two autoreset modes, as gymnasium defines them (``metadata["autoreset_mode"]`` says which):

    - ``NEXT_STEP`` (gymnasium's default; its vector wrappers such as
      ``GrayscaleObservation`` and ``ResizeObservation`` need it): the step that ends episode
      i returns its last observation and the factors of that frame as ``infos``; the next
      ``step`` ignores action i and returns the new episode's first observation, reward 0,
      ``terminated = truncated = False`` (env i does not advance on that step).
    - ``SAME_STEP``: on the step that ends episode i, ``obs[i]`` is already the next
      episode's first frame; the last frame is ``infos["final_obs"][i]`` (masked by
      ``infos["_final_obs"]``) and its factors ``infos["final_info"][i]``.

    Args:
        core: the batched environment (it must offer ``get_state``/``set_state`` for
            ``NEXT_STEP``, as :class:`envs.breakout.BreakoutBatch` does).
        autoreset_mode: a ``gym.vector.AutoresetMode`` or its value (``"NextStep"``,
            ``"SameStep"``).

    Raises:
        ReprlError: an autoreset mode other than these two.
    """

    metadata = {
        "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP,
        "render_modes": ["rgb_array"],
        "render_fps": 30,
    }

    def __init__(
        self,
        core: BatchedEnv,
        autoreset_mode: gym.vector.AutoresetMode | str = gym.vector.AutoresetMode.NEXT_STEP,
    ) -> None:
        mode = check_autoreset_mode(
            autoreset_mode,
            (gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.SAME_STEP),
        )
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.core = core
        self.num_envs = core.num_envs
        self.single_observation_space = _obs_space(core)
        self.single_action_space = gym.spaces.Discrete(core.num_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = "rgb_array"
        self._pending = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: reset due next step
        self._next_obs: np.ndarray | None = None  # their first observations

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._np_random, _ = gym.utils.seeding.np_random(
                seed if isinstance(seed, int) else None
            )
        obs = self.core.reset(seed)
        self._pending[:] = False
        return _to_numpy(obs), _info_arrays(self.core.factors())

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self.autoreset_mode == gym.vector.AutoresetMode.SAME_STEP:
            return self._step_same(actions)
        return self._step_next(actions)

    def _step_same(self, actions: np.ndarray) -> tuple:
        res = self.core.step(actions)
        infos = _info_arrays(self.core.factors())
        if res.done_index.numel():
            mask = np.zeros(self.num_envs, dtype=bool)
            final_obs = np.empty(self.num_envs, dtype=object)
            final_info = np.empty(self.num_envs, dtype=object)
            index = res.done_index.tolist()
            mask[index] = True
            for j, (i, f) in enumerate(zip(index, factor_dicts(res.final_factors))):
                final_obs[i] = _to_numpy(res.final_obs[j])
                final_info[i] = f
            infos.update(
                final_obs=final_obs, _final_obs=mask, final_info=final_info, _final_info=mask.copy()
            )
        return (
            _to_numpy(res.obs),
            _to_numpy(res.reward),
            _to_numpy(res.terminated),
            _to_numpy(res.truncated),
            infos,
        )

    def _step_next(self, actions: np.ndarray) -> tuple:
        pending = self._pending.copy()
        if pending.any():
            index = torch.as_tensor(np.flatnonzero(pending), device=self.core.device)
            saved = self.core.get_state(index)
        res = self.core.step(actions)
        if pending.any():  # these envs showed a last frame; now they show their first one
            self.core.set_state(index, saved)
        obs = _to_numpy(res.obs).copy()
        reward = _to_numpy(res.reward).copy()
        terminated = _to_numpy(res.terminated).copy()
        truncated = _to_numpy(res.truncated).copy()
        factors = factors_numpy(self.core.factors())
        done = np.zeros(self.num_envs, dtype=bool)
        done[_to_numpy(res.done_index)] = True
        done &= ~pending
        if done.any():  # show the last frame and its factors now, the first one next step
            rows = np.flatnonzero(done)
            which = np.flatnonzero(done[_to_numpy(res.done_index)])
            self._next_obs = obs.copy()
            obs[rows] = _to_numpy(res.final_obs)[which]
            for k, v in factors_numpy(res.final_factors).items():
                factors[k][rows] = v[which]
        if pending.any():
            rows = np.flatnonzero(pending)
            assert self._next_obs is not None
            obs[rows] = self._next_obs[rows]
            reward[rows] = 0.0
            terminated[rows] = truncated[rows] = False
        self._pending = done
        infos: dict[str, Any] = {}
        for k, v in factors.items():
            infos[k] = v
            infos["_" + k] = np.ones(v.shape[0], dtype=bool)
        return obs, reward, terminated, truncated, infos

    def get_action_meanings(self) -> list[str]:
        """The meaning of each action index (as ALE's ``get_action_meanings``)."""
        return self.core.get_action_meanings()

    def render(self) -> np.ndarray:
        """(N, H, W, 3) uint8 current RGB frames (the observation size, not stacked)."""
        return _to_numpy(self.core.render())


class TorchSingleEnv(gym.Env):
    """One game of a batched torch environment as a gymnasium ``Env``.

    The batched core auto-resets a finished game at once; this adapter hides that: the step that
    ends an episode returns its last frame, and the following ``reset()`` (without a seed)
    returns the first frame of the episode the core already laid out, so a single env follows
    exactly the same random stream as game 0 of a batch with the same seed.

    Args:
        core: a batched environment with ``num_envs == 1``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, core: BatchedEnv, render_mode: str | None = None) -> None:
        if core.num_envs != 1:
            raise ReprlError(f"TorchSingleEnv needs a core with num_envs=1, got {core.num_envs}")
        if render_mode not in (None, "rgb_array"):
            raise ReprlError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.core = core
        self.render_mode = render_mode
        self.observation_space = _obs_space(core)
        self.action_space = gym.spaces.Discrete(core.num_actions)
        self._pending: tuple[np.ndarray, dict[str, Any]] | None = None

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and self._pending is not None:
            obs, info = self._pending
        else:
            obs = _to_numpy(self.core.reset(seed))[0]
            info = factor_dicts(self.core.factors())[0]
        self._pending = None
        return obs, info

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        res = self.core.step(np.asarray([action]).reshape(1))
        terminated, truncated = bool(res.terminated[0]), bool(res.truncated[0])
        if terminated or truncated:
            obs, info = _to_numpy(res.final_obs)[0], factor_dicts(res.final_factors)[0]
            self._pending = (_to_numpy(res.obs)[0], factor_dicts(self.core.factors())[0])
        else:
            obs, info = _to_numpy(res.obs)[0], factor_dicts(self.core.factors())[0]
        return obs, float(res.reward[0]), terminated, truncated, info

    def get_action_meanings(self) -> list[str]:
        """The meaning of each action index, as ALE's: ``["NOOP", "LEFT", "RIGHT"]``."""
        return self.core.get_action_meanings()

    def render(self) -> np.ndarray | None:
        """(H, W, 3) uint8 current RGB frame (with ``render_mode="rgb_array"``), not stacked."""
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None; pass render_mode='rgb_array'")
            return None
        return _to_numpy(self.core.render())[0]
