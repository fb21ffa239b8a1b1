"""One A3C actor-learner: its own envs, a local copy of the actor-critic, n-step updates.

:func:`worker_main` is the target of each ``spawn``-ed worker process. It builds its envs
with the picklable env factory (:class:`WorkerEnvs` or any ``env_fn(rank, seed) -> VecEnv``),
wraps them as the main process's model sees its env (``VecMonitor``, the frozen encoder's
:class:`~agents.latent.EncodeObservations` on the fast path, SB3's ``VecTransposeImage`` for
channels-last images), then loops (Mnih et al. 2016, Algorithm S3):

1. copy the global parameters (shared memory) into the local actor-critic;
2. act ``n_steps`` steps in each of its ``N`` envs with the local policy;
3. n-step returns ``R_t = r_t + gamma * R_{t+1}`` (``R = V(s_T)`` at the end of the rollout,
   0 after a terminal state; a time-limit truncation bootstraps from the terminal
   observation's value, as SB3 does);
4. loss = policy loss ``-mean(A_t * log pi(a_t|s_t))`` + ``ent_coef`` x ``-mean(entropy)`` +
   ``vf_coef`` x ``mean((R_t - V(s_t))^2)`` (SB3 A2C's loss, so hyperparameters carry over);
5. backpropagate locally, clip the local gradient norm, hand the gradients to the global
   parameters and step the shared RMSProp, without any lock.

Counters and the stop flag are lock-free shared arrays: each worker writes only its own slots.
Episodes and loss statistics go to the main process through a queue every ~0.25 s; an exception
goes there as its traceback text before the worker exits with code 1.
"""

from __future__ import annotations

import copy
import functools
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.utils import obs_as_tensor, set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecTransposeImage
from torch import Tensor
from torch.nn import functional as F

from agents.recurrent import is_recurrent
from agents.vecenv import is_monitored
from envs.errors import ReprlError

#: Seconds between a worker's reports to the main process (episodes, losses).
REPORT_EVERY_S = 0.25


@dataclass(frozen=True)
class WorkerEnvs:
    """The picklable recipe of a worker's batched envs: ``envs.make_vec`` of one id.

    Worker ``rank`` with seed ``s`` gets ``envs.make_vec(env_id, num_envs,
    seed=spawn_seeds(s, num_envs, purpose="train"), device=device, **env_kwargs)``: the A3C
    gives each worker a seed of its own (:func:`envs.rng.spawn_seeds`), so no two workers
    share an env stream; ``s = None`` leaves the envs to fresh entropy.

    Args:
        env_id: One of :func:`envs.known_ids`.
        num_envs: Envs per worker, >= 1.
        env_kwargs: Keyword arguments of ``envs.make_vec`` (``frame_stack``, ``grayscale``,
            ``min_object_size``, ``info_factors``, ...).
        device: Where the batched envs keep their state (``"cpu"``, ``"cuda"``).
    """

    env_id: str
    num_envs: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def __call__(self, rank: int, seed: int | None) -> VecEnv:
        """Worker ``rank``'s envs, seeded from the worker's seed ``seed`` (or fresh)."""
        import envs
        from envs.rng import spawn_seeds

        seeds = None if seed is None else spawn_seeds(seed, self.num_envs, purpose="train")
        return envs.make_vec(
            self.env_id, self.num_envs, seed=seeds, device=self.device, **self.env_kwargs
        )


def build_worker_env(
    env_fn: Callable[[int, int | None], VecEnv],
    rank: int,
    seed: int | None,
    *,
    encoder: torch.nn.Module | None = None,
    encode_device: str | torch.device = "cpu",
    frame_stack: int | None = None,
) -> VecEnv:
    """A worker's env, wrapped as the main process's model sees its own.

    Args:
        env_fn: ``env_fn(rank, seed)`` returns an SB3 ``VecEnv`` (pixels, as given to
            :func:`agents.make_agent`).
        rank: The worker's index, in ``[0, n_workers)``.
        seed: The worker's seed, or None.
        encoder: The frozen encoder of a fast-path agent: observations become its latents
            (:class:`~agents.latent.EncodeObservations`); None otherwise.
        encode_device: Where that encoder runs.
        frame_stack: Frames per observation for the encoder (``k``); None infers it.

    Returns:
        ``env_fn``'s env in ``VecMonitor`` (unless monitored already), then
        ``EncodeObservations`` (fast path) or ``VecTransposeImage`` (channels-last images).

    Raises:
        ReprlError: ``env_fn`` did not return a ``VecEnv``; the env does not fit the encoder.
    """
    venv = env_fn(rank, seed)
    if not isinstance(venv, VecEnv):
        raise ReprlError(
            f"env_fn: expected an SB3 VecEnv from env_fn({rank}, {seed}), got {type(venv).__name__}"
        )
    if not is_monitored(venv):
        venv = VecMonitor(venv)
    if encoder is not None:
        from agents.latent import EncodeObservations

        return EncodeObservations(venv, encoder, device=encode_device, frame_stack=frame_stack)
    space = venv.observation_space
    if is_image_space(space) and not is_image_space_channels_first(space):
        venv = VecTransposeImage(venv)
    return venv


def n_step_returns(rewards: Tensor, dones: Tensor, last_values: Tensor, gamma: float) -> Tensor:
    """The n-step returns of a rollout of ``T`` steps in ``N`` envs.

    ``R_t = r_t + gamma * (1 - d_t) * R_{t+1}`` backwards from ``R_T = last_values``: each
    step's return sums the discounted rewards up to the rollout's end (or its episode's end,
    ``d_t``: the env was reset after step ``t``) and bootstraps from the value of the state
    the rollout stopped in.

    Args:
        rewards: ``(T, N)`` float32, the reward of step ``t`` (a time-limit truncation's
            ``gamma * V(terminal observation)`` already added).
        dones: ``(T, N)`` bool, the episode ended after step ``t``.
        last_values: ``(N,)`` float32, ``V(s_T)`` of the observations after the last step.
        gamma: Discount, in [0, 1].

    Returns:
        ``(T, N)`` float32 returns.
    """
    rewards = rewards.float()
    returns = torch.empty_like(rewards)
    running = last_values.float().reshape(-1)
    not_done = 1.0 - dones.float()
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * not_done[t] * running
        returns[t] = running
    return returns


@dataclass
class WorkerSpec:
    """Everything one worker process needs (pickled once by ``spawn``).

    The global ``policy`` (parameters in shared memory) and ``optimizer`` (a
    :class:`~agents.a3c.optim.SharedRMSprop` over them) travel in the same pickle, so the
    worker's optimiser steps the worker's view of the shared parameters.
    """

    rank: int
    seed: int | None
    env_fn: Callable[[int, int | None], VecEnv]
    policy: Any
    optimizer: Any
    lr_schedule: Callable[[float], float]
    budget: int
    """Env steps of this ``learn`` call over all workers; a worker stops once they are taken."""
    steps_before: int
    """``num_timesteps`` before this call (the learning-rate schedule's progress)."""
    total_timesteps: int
    """``num_timesteps`` the call ends at."""
    n_steps: int
    gamma: float
    ent_coef: float
    vf_coef: float
    max_grad_norm: float
    threads: int
    updates: Any
    """RawArray('q', n_workers): updates applied by each worker."""
    env_steps: Any
    """RawArray('q', n_workers): env steps taken by each worker."""
    stop: Any
    """RawValue('b'): the main process asks the workers to stop."""
    queue: Any
    parent_pid: int
    encoder: torch.nn.Module | None = None
    encode_device: str = "cpu"
    frame_stack: int | None = None


def worker_main(spec: WorkerSpec) -> None:
    """The body of a worker process: trains until the budget is spent or it is told to stop.

    Ctrl-C is left to the main process (which stops the workers); any exception is sent to the
    main process as ``("error", rank, traceback text)`` and the worker exits with code 1.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _train(spec)
    except BaseException:
        spec.queue.put(("error", spec.rank, traceback.format_exc()))
        spec.queue.close()
        spec.queue.join_thread()
        raise SystemExit(1) from None
    spec.queue.close()
    spec.queue.join_thread()


def _should_stop(spec: WorkerSpec) -> bool:
    return (
        bool(spec.stop.value)
        or os.getppid() != spec.parent_pid  # the main process died: no orphans
        or sum(spec.env_steps) >= spec.budget
    )


def _env_actions(policy: Any, actions: np.ndarray, space: spaces.Space) -> np.ndarray:
    """What the env receives for the policy's actions (SB3's clipping of Box actions)."""
    if isinstance(space, spaces.Box):
        if policy.squash_output:
            return policy.unscale_action(actions)
        return np.clip(actions, space.low, space.high)
    return actions


def _train(spec: WorkerSpec) -> None:
    torch.set_num_threads(spec.threads)
    if spec.seed is not None:
        set_random_seed(spec.seed)  # python, numpy and torch, as SB3 seeds a model
    venv = build_worker_env(
        spec.env_fn,
        spec.rank,
        spec.seed,
        encoder=spec.encoder,
        encode_device=spec.encode_device,
        frame_stack=spec.frame_stack,
    )
    shared, opt = spec.policy, spec.optimizer
    if venv.observation_space != shared.observation_space:
        raise ReprlError(
            f"worker {spec.rank} observation space: expected {shared.observation_space} (the "
            f"model's), got {venv.observation_space}"
        )
    saved, shared.optimizer = shared.optimizer, None  # the local copy needs no optimiser
    try:
        local = copy.deepcopy(shared)
    finally:
        shared.optimizer = saved
    trainable = [
        (lp, gp)
        for lp, gp in zip(local.parameters(), shared.parameters(), strict=True)
        if gp.requires_grad
    ]
    synced = [lp for lp, _ in trainable] + list(local.buffers())
    sources = [gp for _, gp in trainable] + list(shared.buffers())
    n, n_envs, rank = spec.n_steps, venv.num_envs, spec.rank

    actor = Actor(venv, local, spec.gamma)
    episodes: list[tuple[float, int]] = []
    sums = {"policy_loss": 0.0, "value_loss": 0.0, "entropy_loss": 0.0, "grad_norm": 0.0}
    count, last_report = 0, time.monotonic()
    lr = spec.lr_schedule(1.0)
    try:
        while not _should_stop(spec):
            with torch.no_grad():
                for dst, src in zip(synced, sources, strict=True):
                    dst.copy_(src)
            rollout = actor.rollout(n, episodes)
            spec.env_steps[rank] += n * n_envs
            local.set_training_mode(True)
            policy_loss, value_loss, entropy_loss = rollout_losses(local, rollout, spec.gamma)
            loss = policy_loss + spec.ent_coef * entropy_loss + spec.vf_coef * value_loss
            for lp, _ in trainable:
                lp.grad = None
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(
                [lp for lp, _ in trainable], spec.max_grad_norm
            )
            for lp, gp in trainable:
                gp.grad = lp.grad
            done_steps = spec.steps_before + sum(spec.env_steps)
            lr = spec.lr_schedule(max(0.0, 1.0 - done_steps / spec.total_timesteps))
            for group in opt.param_groups:
                group["lr"] = lr
            opt.step()  # Hogwild: no lock around the shared parameters and statistics
            spec.updates[rank] += 1

            count += 1
            sums["policy_loss"] += policy_loss.item()
            sums["value_loss"] += value_loss.item()
            sums["entropy_loss"] += entropy_loss.item()
            sums["grad_norm"] += grad_norm.item()
            now = time.monotonic()
            if now - last_report >= REPORT_EVERY_S:
                _report(spec, episodes, sums, count, lr)
                episodes, count, last_report = [], 0, now
                sums = dict.fromkeys(sums, 0.0)
        _report(spec, episodes, sums, count, lr)
    finally:
        venv.close()


@dataclass
class Rollout:
    """``T`` steps of ``N`` envs, as one worker update uses them (time-major: row ``t * N +
    i`` is env ``i`` at step ``t``)."""

    obs: Tensor | dict[str, Tensor]
    """``(T * N, ...)`` observations the policy acted on."""
    actions: Tensor
    """``(T * N, ...)`` the actions taken (the policy's, before clipping)."""
    log_probs: Tensor
    """``(T * N,)`` their log-probabilities when taken (for checks; the loss recomputes them)."""
    rewards: Tensor
    """``(T, N)`` float32 rewards (a truncation's ``gamma * V(terminal obs)`` added)."""
    dones: Tensor
    """``(T, N)`` bool: the episode ended after step ``t``."""
    last_values: Tensor
    """``(N,)`` ``V`` of the observations after the last step."""
    starts: Tensor | None = None
    """LSTM core: ``(T, N)`` float32, 1 where step ``t`` began an episode (the state reset)."""
    state: Any = None
    """LSTM core: sb3-contrib's ``RNNStates`` before step 0 (no gradient flows into it)."""


def _critic_state(policy: Any, state: Any) -> tuple[Tensor, Tensor]:
    """The (h, c) that ``predict_values`` takes: the actor's LSTM when the critic shares it."""
    return state.pi if policy.shared_lstm else state.vf


def _env_state(state: Any, i: int) -> tuple[Tensor, Tensor]:
    return state[0][:, i : i + 1], state[1][:, i : i + 1]


class Actor:
    """A worker's envs and where they are: the last observations and, for an LSTM core, the
    state and episode starts, carried from one rollout to the next.

    Args:
        venv: The worker's env (:func:`build_worker_env`).
        policy: The worker's local actor-critic (feedforward or LSTM core).
        gamma: Discount of the truncation bootstrap, in [0, 1].
    """

    def __init__(self, venv: VecEnv, policy: Any, gamma: float) -> None:
        self.venv, self.policy, self.gamma = venv, policy, gamma
        self.recurrent = is_recurrent(policy)
        self.obs = venv.reset()
        n_envs, device = venv.num_envs, policy.device
        self.starts: Tensor | None = None
        self.state: Any = None
        if self.recurrent:
            self.starts = torch.ones(n_envs, device=device)
            layers, _, hidden = policy.lstm_hidden_state_shape
            zeros = torch.zeros(layers, n_envs, hidden, device=device)
            self.state = RNNStates((zeros, zeros.clone()), (zeros.clone(), zeros.clone()))

    def rollout(self, n_steps: int, episodes: list[tuple[float, int]]) -> Rollout:
        """Act ``n_steps`` steps in every env with the policy (sampled actions, no gradient).

        Args:
            n_steps: ``T``, >= 1.
            episodes: Finished episodes' ``(return, length)`` are appended to it.

        Returns:
            The rollout, with ``V`` of where it stopped.
        """
        policy, venv, device = self.policy, self.venv, self.policy.device
        policy.set_training_mode(False)
        n_envs = venv.num_envs
        rewards = np.zeros((n_steps, n_envs), np.float32)
        dones = np.zeros((n_steps, n_envs), bool)
        obs_buf, act_buf, logp_buf, starts_buf = [], [], [], []
        state0 = self.state
        for t in range(n_steps):
            obs_t = obs_as_tensor(self.obs, device)
            with torch.no_grad():
                if self.recurrent:
                    actions, _, log_prob, self.state = policy(obs_t, self.state, self.starts)
                else:
                    actions, _, log_prob = policy(obs_t)
            acts = actions.cpu().numpy()
            self.obs, reward, done, infos = venv.step(_env_actions(policy, acts, venv.action_space))
            reward = np.asarray(reward, np.float32).copy()
            for i in np.flatnonzero(done):
                info = infos[i]
                ep = info.get("episode")
                if ep is not None:
                    episodes.append((float(ep["r"]), int(ep["l"])))
                terminal = info.get("terminal_observation")
                if terminal is not None and info.get("TimeLimit.truncated", False):
                    reward[i] += self.gamma * self._value(policy.obs_to_tensor(terminal)[0], i)
            obs_buf.append(obs_t)
            act_buf.append(actions)
            logp_buf.append(log_prob)
            rewards[t], dones[t] = reward, done
            if self.recurrent:
                starts_buf.append(self.starts)
                self.starts = torch.as_tensor(done, dtype=torch.float32, device=device)
        with torch.no_grad():
            obs_t = obs_as_tensor(self.obs, device)
            if self.recurrent:
                state = _critic_state(policy, self.state)
                last_values = policy.predict_values(obs_t, state, self.starts)
            else:
                last_values = policy.predict_values(obs_t)
        return Rollout(
            obs=torch.cat(obs_buf) if isinstance(obs_buf[0], Tensor) else _cat_dict(obs_buf),
            actions=torch.cat(act_buf),
            log_probs=torch.cat(logp_buf),
            rewards=torch.as_tensor(rewards),
            dones=torch.as_tensor(dones),
            last_values=last_values.flatten().cpu(),
            starts=torch.stack(starts_buf) if self.recurrent else None,
            state=state0,
        )

    def _value(self, obs: Tensor, i: int) -> float:
        """``V`` of env ``i``'s terminal observation ``obs`` (batch of 1), after its last step."""
        with torch.no_grad():
            if not self.recurrent:
                return float(self.policy.predict_values(obs)[0, 0])
            state = _env_state(_critic_state(self.policy, self.state), i)
            start = torch.zeros(1, device=obs.device)
            return float(self.policy.predict_values(obs, state, start)[0, 0])


def _regroup(x: Tensor, rows: int) -> Tensor:
    """Rows of ``rows`` blocks reordered block-minor: time-major ``(T * N, ...)`` rows become
    env-major ``(N * T, ...)`` ones with ``rows = T`` (each env's steps together, the sequence
    layout sb3-contrib's LSTM policies read), and back with ``rows = N``."""
    return x.reshape(rows, -1, *x.shape[1:]).transpose(0, 1).reshape(x.shape)


def evaluate_rollout(policy: Any, rollout: Rollout) -> tuple[Tensor, Tensor, Tensor | None]:
    """``V(s_t)``, ``log pi(a_t|s_t)`` and the entropy at every step of ``rollout``, with
    gradients, time-major ``(T * N,)`` as the rollout's rows.

    An LSTM core re-runs each env's ``T`` steps from the rollout's first state, resetting it
    where an episode began, exactly as it acted: gradients flow back through the rollout and
    no further (truncated back-propagation through time).
    """
    actions = rollout.actions
    if isinstance(policy.action_space, spaces.Discrete):
        actions = actions.long().flatten()
    if rollout.state is None:
        values, log_prob, entropy = policy.evaluate_actions(rollout.obs, actions)
        return values.flatten(), log_prob, entropy
    n_steps, n_envs = rollout.rewards.shape
    obs = rollout.obs
    obs = (
        {k: _regroup(v, n_steps) for k, v in obs.items()}
        if isinstance(obs, dict)
        else (_regroup(obs, n_steps))
    )
    starts = rollout.starts.transpose(0, 1).flatten()
    values, log_prob, entropy = policy.evaluate_actions(
        obs, _regroup(actions, n_steps), rollout.state, starts
    )
    back = functools.partial(_regroup, rows=n_envs)
    return back(values.flatten()), back(log_prob), None if entropy is None else back(entropy)


def rollout_losses(policy: Any, rollout: Rollout, gamma: float) -> tuple[Tensor, Tensor, Tensor]:
    """A2C's three losses of a rollout, with n-step returns (:func:`n_step_returns`).

    Policy loss ``-mean(A_t * log pi(a_t|s_t))`` (``A_t = R_t - V(s_t)``, no gradient through
    ``A``), value loss ``mean((R_t - V(s_t))^2)``, entropy loss ``-mean(entropy)``
    (:func:`evaluate_rollout` gives the terms).

    Args:
        policy: The actor-critic that collected ``rollout`` (gradients are taken).
        rollout: ``T`` steps of ``N`` envs.
        gamma: Discount, in [0, 1].

    Returns:
        ``(policy_loss, value_loss, entropy_loss)``, scalars.
    """
    values, log_prob, entropy = evaluate_rollout(policy, rollout)
    returns = n_step_returns(rollout.rewards, rollout.dones, rollout.last_values, gamma)
    returns = returns.flatten().to(values.device)
    advantages = returns - values.detach()
    policy_loss = -(advantages * log_prob).mean()
    value_loss = F.mse_loss(returns, values)
    entropy_loss = -torch.mean(entropy) if entropy is not None else -torch.mean(-log_prob)
    return policy_loss, value_loss, entropy_loss


def _cat_dict(parts: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _report(
    spec: WorkerSpec,
    episodes: list[tuple[float, int]],
    sums: dict[str, float],
    count: int,
    lr: float,
) -> None:
    stats = {k: v / count for k, v in sums.items()} if count else {}
    if count:
        stats["learning_rate"] = float(lr)
    spec.queue.put(("report", spec.rank, episodes, stats))
