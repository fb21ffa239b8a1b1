"""Training where the envs live: SB3's PPO, its rollouts collected on a reprl batched env's device.

SB3's ``OnPolicyAlgorithm.collect_rollouts`` steps a ``VecEnv`` through numpy and per-env info
dicts, one vector step at a time. A reprl batched env (:attr:`envs.family.EnvFamily.batched`)
already holds its N games as tensors on a device; :class:`DevicePPO` keeps the whole loop
there::

    core.step(actions) -> (frozen encoder, newest frames only) -> policy(obs) -> Rollout
        -> compute_gae -> ppo_update (SB3's PPO.train loss) -> policy.optimizer

It trains the SB3 model :func:`agents.make_agent` built, in place: the model's own ``policy``,
``policy.optimizer``, hyperparameters (``clip_range`` and ``learning_rate`` schedules at the
model's ``_current_progress_remaining``), ``num_timesteps``, ``_n_updates``, logger
(``rollout/ep_rew_mean``, ``train/*``, ``time/fps``: SB3's keys, TensorBoard included) and
callbacks; so :func:`agents.save_agent` writes the same zip afterwards (a fast-path agent's
pixel-space export included) and ``PPO.load`` predicts with it from stacked pixels.

The env is the one the model holds: ``model.get_env()`` must be a chain of SB3's
``VecTransposeImage`` (SB3 adds it for pixel policies), reprl's
:class:`~agents.latent.EncodeObservations` (a frozen encoder's fast path), ``VecMonitor``,
around an :class:`envs.adapters.TorchVecEnv` (what :func:`envs.make_vec` gives for a reprl
batched env): :class:`DevicePPO` steps that adapter's core itself and keeps the wrappers'
state (``_last_obs``, the latent ring, the monitor's episode counters) in step when it stops,
so SB3's own ``learn`` can continue where it left off.

What matches SB3's loop, step for step:

- actions are sampled by ``policy(obs)`` from torch's global RNG, minibatch orders by
  ``np.random.permutation`` (SB3's ``RolloutBuffer.get``), so on the CPU a pixel agent trained
  here follows SB3's loop to float tolerance (tested);
- a step that ends an episode by the time limit (``truncated``) adds ``gamma * V(terminal
  obs)`` to its reward (SB3's ``TimeLimit.truncated`` bootstrap);
- frozen encoder, fast path: each step encodes the newest frame of every env (and the
  terminal frame of every finished episode) once, in one batch, and shifts it into a ring of
  ``k`` latents per env, as :class:`~agents.latent.EncodeObservations` does; a new episode's
  stack is ``k`` copies of its first frame (reprl's stacking semantics), so its latents are
  ``k`` copies of that frame's latent. The pixel stacks are never needed: the loop steps the
  core below an :class:`envs.stacking.StackedBatch` and encodes its frames as they come (a
  quarter less time per step at 16 envs on 2 CPU cores). The stacks' older frames then lag
  behind while the loop runs; their newest frame and every fresh stack are right, and those
  are all that :class:`~agents.latent.EncodeObservations` reads, so SB3's loop continues the
  run exactly;
- pixels stay in the env's channels-last layout, in the rollout too (uint8, a quarter of
  SB3's float32 copies); the policy gets ``(N, C, H, W)`` views of them, the numbers SB3's
  ``VecTransposeImage`` gives, on which torch's CPU convolutions run about 1.6x faster (so the
  two loops agree to float rounding, not bit for bit; ``channels_last=False`` feeds SB3's
  contiguous copies, and a CPU run then follows SB3's ``learn`` to 1e-5 after 10 updates);
- callbacks: ``on_step`` once per vector step (a ``False`` ends training, as in SB3); at each
  rollout's end ``locals["episodes"]`` is an :class:`EpisodeBatch` of the episodes finished in
  it (the experiment's ``EpisodeLog`` writes them), then ``on_rollout_end``.

Which envs: :data:`DEVICE_LOOP_FAMILIES` (reprl's Breakout and lab worlds, torch cores);
procgen, ALE and Memory Maze (MuJoCo behind its core) keep SB3's loop. :func:`resolve_loop`
is the rule configs use; :class:`DevicePPO` refuses anything else before it trains.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor, VecTransposeImage
from torch import Tensor

from agents.latent import EncodeObservations
from agents.ppo_update import (
    PPOSettings,
    Rollout,
    UpdateStats,
    explained_variance,
    policy_act,
    ppo_update,
)
from agents.recurrent import is_recurrent
from envs.adapters import TorchVecEnv
from envs.errors import ReprlError
from envs.stacking import StackedBatch

#: Training loops: reprl's device-resident PPO, SB3's own.
LOOPS: tuple[str, ...] = ("device", "sb3")
#: Env families (:attr:`envs.family.EnvFamily.name`) whose torch core the device loop steps.
DEVICE_LOOP_FAMILIES: tuple[str, ...] = ("breakout", "lab")
#: Algorithms the device loop trains.
DEVICE_LOOP_ALGOS: tuple[str, ...] = ("ppo",)


def device_loop_problem(env_id: str, algo: str, *, recurrent: bool = False) -> str | None:
    """Why the device loop cannot train ``algo`` on ``env_id`` (None: it can).

    Args:
        env_id: the training env's gymnasium id.
        algo: ``"ppo"``, ``"a2c"`` or ``"a3c"``.
        recurrent: the agent has an LSTM core.
    """
    from envs.registry import family

    fam = family(env_id)
    if algo not in DEVICE_LOOP_ALGOS:
        return f"it trains {list(DEVICE_LOOP_ALGOS)} only, got algo {algo!r}"
    if recurrent:
        return "it trains feedforward policies only, got an LSTM core"
    if not fam.batched or fam.name not in DEVICE_LOOP_FAMILIES:
        return (
            f"it steps the torch cores of reprl's {list(DEVICE_LOOP_FAMILIES)} envs only; "
            f"{env_id} is of the {fam.name!r} family (SB3's loop trains it)"
        )
    return None


def resolve_loop(
    loop: str | None, env_id: str, algo: str, *, recurrent: bool = False, key: str = "loop"
) -> str:
    """The loop that trains ``algo`` on ``env_id``: ``loop`` if given, else ``"device"`` where
    the device loop can (:func:`device_loop_problem`) and ``"sb3"`` elsewhere.

    Raises:
        ReprlError: ``loop`` is not one of :data:`LOOPS`, or ``"device"`` where it cannot run
            (the message says why and names ``key``).
    """
    if loop is not None and loop not in LOOPS:
        raise ReprlError(f"{key}: expected one of {list(LOOPS)} or none, got {loop!r}")
    problem = device_loop_problem(env_id, algo, recurrent=recurrent)
    if loop is None:
        return "sb3" if problem else "device"
    if loop == "device" and problem:
        raise ReprlError(f"{key}: 'device' cannot train this agent: {problem}; expected 'sb3'")
    return loop


@dataclass(frozen=True)
class EpisodeBatch:
    """The episodes that ended during one rollout (host arrays, in the order they ended).

    Attributes:
        global_step: ``(E,)`` int64, the model's ``num_timesteps`` after the ending step.
        returns: ``(E,)`` float32 undiscounted returns (the env's rewards, no bootstrap).
        lengths: ``(E,)`` int64 steps.
        factors: the env's ground-truth factors of each episode's last frame, name ->
            ``(E,)`` or ``(E, B)`` arrays (for Breakout ``bricks_left``, ``lives``, ...;
            ``infos[i]["terminal_factors"]`` of SB3's loop, batched); empty if none ended.
    """

    global_step: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    factors: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.returns)


def _same_device(a: torch.device | str, b: torch.device | str) -> bool:
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.type == "cuda":
        return (a.index or 0) == (b.index or 0)
    return True


@dataclass
class _Chain:
    """What :class:`DevicePPO` found in a model's env chain."""

    adapter: TorchVecEnv
    transpose: bool
    encode: EncodeObservations | None
    monitor: VecMonitor | None


_WRAPPERS = (VecTransposeImage, EncodeObservations, VecMonitor)


def _env_chain(env: VecEnv | None) -> _Chain:
    """The wrappers of a model's env down to its :class:`TorchVecEnv`.

    Raises:
        ReprlError: no env, a wrapper the device loop does not know (``VecNormalize``, a frame
            stacker, ...), or no reprl batched env at the bottom.
    """
    found: dict[type, Any] = {}
    while isinstance(env, VecEnvWrapper):
        kind = next((w for w in _WRAPPERS if isinstance(env, w)), None)
        if kind is None or kind in found:
            raise ReprlError(
                f"device loop: the model's env holds a {type(env).__name__}; expected only "
                f"{[w.__name__ for w in _WRAPPERS]} (once each) around an envs.TorchVecEnv"
            )
        found[kind] = env
        env = env.venv
    if not isinstance(env, TorchVecEnv):
        raise ReprlError(
            "device loop: expected the model's env to be a reprl batched env "
            "(envs.make_vec of a reprl/Breakout or reprl/Lab id: an envs.TorchVecEnv), got "
            f"{type(env).__name__}"
        )
    return _Chain(
        env, VecTransposeImage in found, found.get(EncodeObservations), found.get(VecMonitor)
    )


def check_device_loop(model: BaseAlgorithm) -> None:
    """Refuse a model the device loop cannot train, before anything runs.

    Raises:
        ReprlError: not an SB3 ``PPO`` (A2C, A3C, RecurrentPPO), an LSTM core, a non-discrete
            action space, gSDE, an env chain other than the module docstring's, a policy or
            encoder on another device than the env, a rollout ``n_steps * n_envs`` that
            ``batch_size`` does not divide.
    """
    if type(model) is not PPO:
        raise ReprlError(
            f"device loop: expected a stable_baselines3 PPO model, got {type(model).__name__}"
        )
    if is_recurrent(model.policy):
        raise ReprlError("device loop: expected a feedforward policy, got an LSTM core")
    if not isinstance(model.action_space, gym.spaces.Discrete) or model.use_sde:
        raise ReprlError(
            f"device loop: expected a Discrete action space without gSDE, got "
            f"{model.action_space} (use_sde={model.use_sde})"
        )
    chain = _env_chain(model.get_env())
    core_device = chain.adapter.core.device
    if not _same_device(model.device, core_device):
        raise ReprlError(
            f"device loop: the policy is on {model.device}, the env on {core_device}; expected "
            "one device (make_agent(..., device=...) as envs.make_vec(..., device=...))"
        )
    if chain.encode is not None and not _same_device(chain.encode.device, core_device):
        raise ReprlError(
            f"device loop: the encoder is on {chain.encode.device}, the env on {core_device}; "
            "expected one device"
        )
    size = model.n_steps * model.n_envs
    if size % model.batch_size:
        raise ReprlError(
            f"device loop: batch_size {model.batch_size} does not divide the rollout size "
            f"n_steps * n_envs = {model.n_steps} * {model.n_envs} = {size}"
        )


class _LatentRing:
    """A frozen encoder's latent stacks ``(N, k * d)``, advanced by the newest frames."""

    def __init__(self, wrapper: EncodeObservations) -> None:
        self.encoder = wrapper.encoder
        self.k, self.d = wrapper.frame_stack, wrapper.latent_dim
        self.channels = wrapper._channels

    def encode_newest(self, stacks: Tensor) -> Tensor:
        """``(M, H, W, C * j)`` uint8 frames or stacks -> ``(M, d)`` latents of their newest
        frames (the last ``C`` channels)."""
        frames = stacks[..., -self.channels :].permute(0, 3, 1, 2)
        with torch.inference_mode():  # read, never written, by the ring (outside the mode)
            # valid by construction: uint8 / 255 of the shape EncodeObservations checked
            return self.encoder.encode(frames.float().div_(255.0), check=False)

    def step(
        self, ring: Tensor, obs: Tensor, done_index: Tensor, final_obs: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The next ring and the latent stacks of the terminal observations.

        Args:
            ring: ``(N, k * d)`` latent stacks of the previous observations.
            obs: ``(N, H, W, C * j)`` uint8 frames (``j = 1``) or stacks (``j = k``) after
                the step: only the newest frame is read.
            done_index: ``(K,)`` envs whose episode ended (their ``obs`` start a new one:
                ``k`` copies of the first frame).
            final_obs: ``(K, H, W, C * j)`` uint8 terminal frames or stacks.

        Returns:
            ``(N, k * d)`` new ring and ``(K, k * d)`` terminal latent stacks.
        """
        n, d, k = len(obs), self.d, self.k
        frames = torch.cat([obs, final_obs]) if len(done_index) else obs
        z = self.encode_newest(frames)
        new = torch.empty_like(ring)
        if k > 1:
            new[:, :-d] = ring[:, d:]
        new[:, -d:] = z[:n]
        if not len(done_index):
            return new, ring[:0]
        new[done_index] = z[done_index].repeat(1, k)
        final = z[n:] if k == 1 else torch.cat([ring[done_index, d:], z[n:]], dim=1)
        return new, final


class _Episodes:
    """Episode returns and lengths as tensors; finished ones gathered until :meth:`flush`."""

    def __init__(self, returns: Tensor, lengths: Tensor) -> None:
        self.returns, self.lengths = returns, lengths
        self._done: list[tuple[Tensor, Tensor, int, dict[str, Tensor]]] = []

    def step(
        self,
        reward: Tensor,
        done_index: Tensor,
        global_step: int,
        final_factors: dict[str, Tensor] | None = None,
    ) -> None:
        self.returns += reward
        self.lengths += 1
        if len(done_index):
            ended = (self.returns[done_index], self.lengths[done_index], global_step)
            self._done.append((*ended, dict(final_factors or {})))
            self.returns[done_index] = 0
            self.lengths[done_index] = 0

    def flush(self) -> EpisodeBatch:
        """The episodes finished since the last flush (one host transfer per column)."""
        if not self._done:
            empty = np.zeros(0, np.int64)
            return EpisodeBatch(empty, np.zeros(0, np.float32), empty.copy())
        rets = torch.cat([r for r, _, _, _ in self._done]).cpu().numpy()
        lens = torch.cat([n for _, n, _, _ in self._done]).cpu().numpy().astype(np.int64)
        steps = np.concatenate([np.full(len(r), s, np.int64) for r, _, s, _ in self._done])
        names = set.intersection(*(set(f) for *_, f in self._done))
        factors = {k: torch.cat([f[k] for *_, f in self._done]).cpu().numpy() for k in names}
        self._done = []
        return EpisodeBatch(steps, rets.astype(np.float32), lens, dict(sorted(factors.items())))


class DevicePPO:
    """Trains an SB3 ``PPO`` model on its reprl batched env's device (module docstring).

    Args:
        model: Built by :func:`agents.make_agent` (``"ppo"``) on ``envs.make_vec`` of a reprl
            batched env, policy and env (and a fast-path encoder) on one device.
        channels_last: pixel policies get channels-last views of the env's frames (faster
            convolutions; float rounding differs from SB3's loop, which Adam then carries on);
            False: contiguous ``(C, H, W)`` copies, as SB3's, for bit-level comparisons.

    Raises:
        ReprlError: what :func:`check_device_loop` refuses.
    """

    def __init__(self, model: BaseAlgorithm, *, channels_last: bool = True) -> None:
        check_device_loop(model)
        self.model: PPO = model  # type: ignore[assignment]
        self._chain = _env_chain(model.get_env())
        self.core = self._chain.adapter.core
        self.device = torch.device(self.core.device)
        self.ring = None if self._chain.encode is None else _LatentRing(self._chain.encode)
        self._hwc = self._chain.transpose and channels_last  # pixels kept as the env gives them
        # the frozen fast path needs frames, not stacks: step below the stacker
        self._stacker = None
        self._step_core = self.core
        if self.ring is not None and isinstance(self.core, StackedBatch):
            self._stacker, self._step_core = self.core.stacker, self.core.core
        self._obs: Tensor | None = None

    # ------------------------------------------------------------------ state

    def _keep(self, obs: Tensor) -> Tensor:
        """Core stacks ``(N, H, W, C * k)`` as the loop keeps them: as they are (channels
        last), or SB3's transposed ``(N, C * k, H, W)`` copies."""
        if self._chain.transpose and not self._hwc:
            return obs.permute(0, 3, 1, 2).contiguous()
        return obs

    def _view(self, obs: Tensor) -> Tensor:
        """What the loop keeps as the policy takes it (``(N, C * k, H, W)`` pixels)."""
        return obs.permute(0, 3, 1, 2) if self._hwc else obs

    def _load_state(self) -> None:
        """The loop's state from the model's (``_last_obs`` after SB3's ``_setup_learn``)."""
        model = self.model
        self._obs = torch.as_tensor(np.asarray(model._last_obs), device=self.device)
        if self._hwc:  # SB3's transposed copy -> the env's layout
            self._obs = self._obs.permute(0, 2, 3, 1).contiguous()
        self._starts = torch.as_tensor(
            np.asarray(model._last_episode_starts), device=self.device
        ).to(torch.float32)
        n = self.core.num_envs
        mon = self._chain.monitor
        returns = torch.zeros(n, dtype=torch.float32, device=self.device)
        lengths = torch.zeros(n, dtype=torch.int64, device=self.device)
        if mon is not None:
            returns += torch.as_tensor(mon.episode_returns, device=self.device)
            lengths += torch.as_tensor(mon.episode_lengths, device=self.device)
        self.episodes = _Episodes(returns, lengths)

    def _store_state(self) -> None:
        """Hands the loop's state back to the model and its wrappers (SB3's ``learn`` goes on
        from here)."""
        assert self._obs is not None
        model = self.model
        model._last_obs = self._view(self._obs).contiguous().cpu().numpy()
        model._last_episode_starts = self._starts.cpu().numpy().astype(bool)
        if self._chain.encode is not None:
            self._chain.encode._latents = model._last_obs.copy()
        mon = self._chain.monitor
        if mon is not None:
            mon.episode_returns = self.episodes.returns.cpu().numpy().astype(np.float32)
            mon.episode_lengths = self.episodes.lengths.cpu().numpy().astype(np.int32)

    # ------------------------------------------------------------------ rollouts

    def _step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Any]:
        """One vector step: the policy's next obs, rewards with SB3's time-limit bootstrap,
        dones (float), the env's own rewards and the core's step result (the envs whose
        episode ended, their last factors)."""
        res = self._step_core.step(actions)
        done = (res.terminated | res.truncated).to(torch.float32)
        reward = res.reward.to(torch.float32)
        bootstrap = reward
        if self.ring is not None:
            frames, last = res.obs, res.final_obs
            if self._stacker is not None:  # the frames as the stacker would have stacked them
                frames, last = self._stacker.convert(frames), self._stacker.convert(last)
            obs, final = self.ring.step(self._obs, frames, res.done_index, last)
        else:
            obs = self._keep(res.obs)
            final = self._view(self._keep(res.final_obs))
        if len(res.done_index):
            trunc = res.truncated[res.done_index].to(torch.float32)
            v = self.model.policy.predict_values(final).flatten()
            bootstrap = reward.clone()
            bootstrap[res.done_index] += self.model.gamma * v * trunc
        return obs, bootstrap, done, reward, res

    def _collect(self, callback: BaseCallback, rollout: Rollout) -> bool:
        """SB3's ``collect_rollouts`` on the device; False if a callback ended training."""
        model, policy = self.model, self.model.policy
        policy.set_training_mode(False)
        callback.on_rollout_start()
        n = self.core.num_envs
        for t in range(rollout.n_steps):
            rollout.obs[t] = self._obs  # before the step: a core may reuse its buffers
            rollout.episode_starts[t] = self._starts
            with torch.no_grad():
                actions, values, log_probs = policy_act(policy, self._view(self._obs))
                obs, rewards, dones, env_rewards, res = self._step(actions)
            model.num_timesteps += n
            self.episodes.step(env_rewards, res.done_index, model.num_timesteps, res.final_factors)
            callback.update_locals({"n_steps": t})
            if not callback.on_step():
                self._obs, self._starts = obs, dones
                self._end_rollout(callback)
                return False
            rollout.actions[t] = actions.reshape(n)
            rollout.rewards[t] = rewards
            rollout.values[t] = values.flatten()
            rollout.log_probs[t] = log_probs
            self._obs, self._starts = obs, dones
        with torch.no_grad():
            last_values = policy.predict_values(self._view(self._obs))
        rollout.finish(last_values, self._starts, model.gamma, model.gae_lambda)
        self._end_rollout(callback)
        return True

    def _end_rollout(self, callback: BaseCallback) -> None:
        """The rollout's finished episodes into SB3's info buffer and the callbacks."""
        batch = self.episodes.flush()
        elapsed = round(time.time() - self._t_start, 6)
        self.model.ep_info_buffer.extend(
            {"r": round(float(r), 6), "l": int(n), "t": elapsed}
            for r, n in zip(batch.returns.tolist(), batch.lengths.tolist())
        )
        callback.update_locals({"episodes": batch})
        callback.on_rollout_end()

    # ------------------------------------------------------------------ updates

    def _settings(self) -> PPOSettings:
        model = self.model
        progress = model._current_progress_remaining
        vf = None if model.clip_range_vf is None else float(model.clip_range_vf(progress))
        return PPOSettings(
            n_epochs=model.n_epochs,
            batch_size=model.batch_size,
            clip_range=float(model.clip_range(progress)),
            clip_range_vf=vf,
            ent_coef=float(model.ent_coef),
            vf_coef=float(model.vf_coef),
            max_grad_norm=float(model.max_grad_norm),
            target_kl=model.target_kl,
            normalize_advantage=bool(model.normalize_advantage),
        )

    def _train(self, rollout: Rollout) -> UpdateStats:
        """``PPO.train`` on the rollout: learning rate, clip ranges, epochs, SB3's log keys."""
        model = self.model
        model.policy.set_training_mode(True)
        model._update_learning_rate(model.policy.optimizer)
        settings = self._settings()
        stats = ppo_update(model.policy, rollout, settings)
        model._n_updates += stats.epochs
        assert rollout.returns is not None
        log = model.logger.record
        log("train/entropy_loss", stats.entropy_loss)
        log("train/policy_gradient_loss", stats.policy_gradient_loss)
        log("train/value_loss", stats.value_loss)
        log("train/approx_kl", stats.approx_kl)
        log("train/clip_fraction", stats.clip_fraction)
        log("train/loss", stats.loss)
        log("train/explained_variance", explained_variance(rollout.values, rollout.returns))
        log("train/n_updates", model._n_updates, exclude="tensorboard")
        log("train/clip_range", settings.clip_range)
        if settings.clip_range_vf is not None:
            log("train/clip_range_vf", settings.clip_range_vf)
        return stats

    # ------------------------------------------------------------------ learn

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = 1,
        tb_log_name: str = "PPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> PPO:
        """``model.learn`` with the rollouts on the env's device: SB3's arguments and meaning.

        Args:
            total_timesteps: env steps (all envs together) to train for.
            callback: SB3 callback(s) (see the module docstring for what they see).
            log_interval: dump the logs every this many rollouts (None: never).
            tb_log_name: TensorBoard run name.
            reset_num_timesteps: start the step count (and the envs) afresh; False continues
                from the model's state (after SB3's or this loop's ``learn``).
            progress_bar: SB3's progress bar.

        Returns:
            The model, trained.
        """
        model = self.model
        total, callback = model._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        if model.ep_info_buffer is None:  # pragma: no cover - _setup_learn makes it
            model.ep_info_buffer = deque(maxlen=model._stats_window_size)
        self._load_state()
        self._t_start = time.time()
        assert self._obs is not None
        rollout = Rollout.empty(
            model.n_steps,
            self.core.num_envs,
            tuple(self._obs.shape[1:]),
            self._obs.dtype,
            self.device,
            channels_last=self._hwc,
        )
        callback.on_training_start(locals(), globals())
        iteration = 0
        try:
            while model.num_timesteps < total:
                if not self._collect(callback, rollout):
                    break
                iteration += 1
                model._update_current_progress_remaining(model.num_timesteps, total)
                if log_interval is not None and iteration % log_interval == 0:
                    model.dump_logs(iteration)
                self._train(rollout)
        finally:
            self._store_state()
        callback.on_training_end()
        return model


def learn_on_device(
    model: BaseAlgorithm, total_timesteps: int, *, channels_last: bool = True, **kwargs: Any
) -> PPO:
    """``DevicePPO(model, channels_last=...).learn(total_timesteps, **kwargs)``: train an SB3
    PPO model with the device loop (:class:`DevicePPO`, SB3's ``learn`` arguments)."""
    return DevicePPO(model, channels_last=channels_last).learn(total_timesteps, **kwargs)


__all__ = [
    "DEVICE_LOOP_ALGOS",
    "DEVICE_LOOP_FAMILIES",
    "LOOPS",
    "DevicePPO",
    "EpisodeBatch",
    "check_device_loop",
    "device_loop_problem",
    "learn_on_device",
    "resolve_loop",
]
