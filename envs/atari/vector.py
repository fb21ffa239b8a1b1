"""Backend 1: ale-py's native :class:`~ale_py.vector_env.AtariVectorEnv` as an SB3 ``VecEnv``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from envs.atari.config import (
    GAMES,
    AtariConfig,
    check_actions,
    check_settable,
    import_ale,
    observation_space,
)
from envs.errors import ReprlError

_MAX_ALE_SEED = 2**31  # the vector backend takes int32 seeds; negative ones mean "don't reseed"


class AtariVectorVecEnv(VecEnv):
    """ale-py's :class:`~ale_py.vector_env.AtariVectorEnv` with SB3 ``VecEnv`` semantics.

    ale-py's pool is run in ``NEXT_STEP`` autoreset mode (the step that ends an episode returns
    its own last info), and the finished envs are reset at once with a masked ``reset``, so the
    step returns the new episodes' first frames as SB3 expects. (ale-py's ``SAME_STEP`` mode
    gives the last frame in ``info["final_obs"]`` but the new episode's ``lives`` etc.)

    Truncation is counted here, in agent steps, not by ale-py: ale-py 0.12.1 leaves its
    frameskip loop *before* grabbing the screen on the frame that reaches its
    ``max_num_frames_per_episode``, so its last frame of a truncated episode is the previous
    step's (stale) frame, and SB3 bootstraps truncated episodes from exactly that frame. ale-py's
    own cap is set one frame beyond ours so it never fires. The same early exit happens on game
    over and cannot be avoided from Python: for a *terminated* episode (which SB3 does not
    bootstrap) ``terminal_observation`` is the frame of the step before the last one.

    Emulation is left unaltered: no no-op starts, no FIRE on reset, no max-pooling of frames,
    no reward clipping, no life-loss episodes, like ``gym.make("ALE/Breakout-v5")``.

    Args:
        config: validated settings (mode and difficulty must be the defaults).
        num_envs: number of games, >= 1.
        num_threads: ale-py worker threads; 0 lets ale-py choose.
        **ale_kwargs: overrides forwarded to ``AtariVectorEnv`` (``noop_max``, ``maxpool``,
            ``use_fire_reset``, ``episodic_life``, ``life_loss_info``, ``reward_clipping``,
            ``thread_affinity_offset``).
    """

    backend = "ale_vector"

    def __init__(
        self, config: AtariConfig, num_envs: int, *, num_threads: int = 0, **ale_kwargs: Any
    ) -> None:
        if config.ram_labels:
            raise ReprlError(
                "ram_labels=True needs the gymnasium backend: ale-py 0.12's native vector env "
                "gives no access to the consoles' RAM (backend='auto' picks gymnasium then)"
            )
        if not config.uses_default_game:
            raise ReprlError(
                "the ale_vector backend cannot select a game mode or difficulty "
                f"(got mode={config.mode}, difficulty={config.difficulty}); use "
                "backend='gymnasium'"
            )
        import_ale()
        from ale_py.vector_env import AtariVectorEnv

        self.config = config
        self._attrs = [{**config.env_attrs(), "render_mode": "rgb_array"} for _ in range(num_envs)]
        settings: dict[str, Any] = {
            "noop_max": 0,
            "maxpool": False,
            "use_fire_reset": False,
            "episodic_life": False,
            "reward_clipping": False,
            **ale_kwargs,
        }
        self.ale = AtariVectorEnv(
            config.game,
            num_envs,
            num_threads=num_threads,
            max_num_frames_per_episode=config.max_steps * config.frameskip + 1,
            repeat_action_probability=float(config.repeat_action_probability),
            autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
            img_height=config.obs_size[0],
            img_width=config.obs_size[1],
            grayscale=False,
            stack_num=1,
            frameskip=config.frameskip,
            **settings,
        )
        action_space = self.ale.single_action_space
        assert isinstance(action_space, gym.spaces.Discrete)
        super().__init__(num_envs, observation_space(config), action_space)
        self._obs: np.ndarray | None = None  # (N, H, W, 3) last returned observations
        self._steps = np.zeros(num_envs, dtype=np.int64)  # agent steps into each episode
        self._pending = False
        self._started = False  # a first reset happened (later unseeded resets don't reseed)
        self._closed = False

    # -- core API --------------------------------------------------------------------------------

    def reset(self) -> np.ndarray:
        """Resets all envs.

        Env i is seeded with ``self._seeds[i]`` if :meth:`seed` was called (reduced modulo
        2**31, ale-py's seed range); the very first reset without seeds draws fresh entropy,
        later ones continue each env's random stream.

        Returns:
            ``(N, H, W, 3)`` uint8 first frames.
        """
        self._check_open()
        if self._pending:  # drop a step in flight
            self.ale.recv()
            self._pending = False
        entropy = np.random.default_rng().integers(0, _MAX_ALE_SEED, self.num_envs)
        seeds = np.array(
            [
                (s % _MAX_ALE_SEED) if s is not None else (-1 if self._started else int(e))
                for s, e in zip(self._seeds, entropy)
            ],
            dtype=np.int64,
        )
        obs, info = self.ale.reset(seed=seeds)
        self._started = True
        self._steps[:] = 0
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = _info_dicts(info, range(self.num_envs))
        self._obs = obs[:, 0]
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        """Validates the actions and hands them to ale-py's thread pool.

        Args:
            actions: ``(N,)`` integers in ``[0, num_actions)``.

        Raises:
            ReprlError: wrong shape, dtype or range (nothing is stepped).
            RuntimeError: closed, not reset yet, or a step is already in flight.
        """
        self._check_open()
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        if self._pending:
            raise RuntimeError("step_async() called twice without step_wait()")
        a = check_actions(actions, self.num_envs, int(self.action_space.n))
        self.ale.send(a)
        self._pending = True

    def step_wait(self) -> VecEnvStepReturn:
        """Collects the step; resets finished envs (SB3 semantics, see the module docstring).

        Returns:
            ``obs (N, H, W, 3) uint8``, ``rewards (N,) float32``, ``dones (N,) bool``,
            ``infos``: N dicts with ``lives``, ``episode_frame_number``, ``frame_number``, and on
            a done step ``terminal_observation`` ``(H, W, 3) uint8`` and ``TimeLimit.truncated``.
        """
        if not self._pending:
            raise RuntimeError("step_wait() called without step_async()")
        obs, reward, terminated, truncated, info = self.ale.recv()
        self._pending = False
        obs = obs[:, 0]  # (N, 1, H, W, 3) -> (N, H, W, 3)
        self._steps += 1
        truncated = (truncated | (self._steps >= self.config.max_steps)) & ~terminated
        dones = terminated | truncated
        infos = _info_dicts(info, range(self.num_envs))
        done_index = np.flatnonzero(dones)
        if done_index.size:
            new_obs, new_info = self.ale.reset(options={"reset_mask": dones})
            next_obs = obs.copy()
            next_obs[done_index] = new_obs[done_index, 0]
            reset_infos = _info_dicts(new_info, done_index)
            for j, i in enumerate(done_index.tolist()):
                infos[i]["terminal_observation"] = obs[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i])
                self.reset_infos[i] = reset_infos[j]
            obs = next_obs
            self._steps[done_index] = 0
        self._obs = obs
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        """Releases ale-py's thread pool; the VecEnv cannot be stepped afterwards."""
        if self._closed:
            return
        if self._pending:
            self.ale.recv()
            self._pending = False
        self.ale.close()
        del self.ale  # the pool's threads stop when its last reference goes
        self._closed = True

    def get_images(self) -> Sequence[np.ndarray | None]:
        """The current observations, N ``(H, W, 3)`` uint8 (what ``render()`` tiles)."""
        if self._obs is None:
            return [np.zeros((*self.config.obs_size, 3), np.uint8) for _ in range(self.num_envs)]
        return list(self._obs)

    ram_factors: tuple[str, ...] = ()
    """No factor here is a RAM byte: this backend has no RAM labels."""

    def get_factors(self) -> dict[str, np.ndarray]:
        """No ground truth on this backend (ale-py's vector env hides the RAM): ``{}``."""
        return {}

    # -- attribute access ------------------------------------------------------------------------

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Per-env settings (``env_id``, ``obs_size``, ``mode``, ..., ``render_mode``) or
        attributes stored with :meth:`set_attr`."""
        out = []
        for i in self._get_indices(indices):
            if attr_name not in self._attrs[i]:
                raise AttributeError(
                    f"env {i} has no attribute {attr_name!r}; known: {sorted(self._attrs[i])}"
                )
            out.append(self._attrs[i][attr_name])
        return out

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Stores a user attribute per env; the emulator settings cannot be changed."""
        check_settable(attr_name, self.config)
        for i in self._get_indices(indices):
            self._attrs[i][attr_name] = value

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        """Supports ``get_action_meanings`` (as ALE's ``AtariEnv``) and ``render``."""
        idx = list(self._get_indices(indices))
        if method_name == "get_action_meanings":
            return [list(GAMES[self.config.env_id].action_meanings) for _ in idx]
        if method_name == "render":
            images = self.get_images()
            return [images[i] for i in idx]
        raise AttributeError(
            f"the ale_vector backend has no per-env method {method_name!r}; "
            "supported: get_action_meanings, render"
        )

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """No env here is a gymnasium ``Env``, so none is wrapped."""
        return [False for _ in self._get_indices(indices)]

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this VecEnv is closed")


def _info_dicts(info: dict[str, np.ndarray], rows: Any) -> list[dict[str, Any]]:
    """ale-py's batched info -> one plain dict per row index in ``rows``."""
    keys = ("lives", "episode_frame_number", "frame_number")
    cols = [info[k] for k in keys]
    return [{k: int(c[i]) for k, c in zip(keys, cols)} for i in rows]
