"""PPO's rollout storage, GAE and clipped update on torch tensors: SB3's math, off its buffer.

What :class:`~agents.device_ppo.DevicePPO` runs between rollouts, as plain functions over a
:class:`Rollout` of ``(T, N, ...)`` tensors on any device, so a test can hand them the data
SB3's ``RolloutBuffer`` holds and compare:

- :func:`compute_gae` is ``RolloutBuffer.compute_returns_and_advantage`` (the same float32
  operations in the same order);
- :func:`ppo_update` is ``PPO.train`` without the logger: the same minibatches (SB3 flattens
  ``(T, N)`` env-major, ``swap_and_flatten``, and draws each epoch's order with
  ``np.random.permutation``; so does the default ``permutation`` here), the clipped surrogate,
  value clipping, entropy and value coefficients, per-minibatch advantage normalisation,
  gradient clipping, ``target_kl`` early stopping (checked on the minibatch before its step,
  as SB3 does) and the loss terms SB3 logs;
- :func:`policy_act` and :func:`policy_evaluate` are the policy's ``forward`` and
  ``evaluate_actions`` for a categorical policy without SB3's and torch's distribution objects
  (the same numbers and random draws, a third of the cost on small batches).

No numpy in the loop but the index permutation (one ``(T * N,)`` array per epoch, the same
numbers SB3 draws); the logged means are one host transfer per update (plus one per minibatch
with ``target_kl``, which needs the KL on the host to decide).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import Tensor

#: Draws each epoch's minibatch order: ``size -> (size,)`` indices into the flattened rollout.
Permutation = Callable[[int], "np.ndarray | Tensor"]


@dataclass
class Rollout:
    """One rollout of ``N`` envs over ``T`` steps, as SB3's ``RolloutBuffer`` holds it.

    Attributes:
        obs: ``(T, N, *obs_shape)`` what the policy saw: ``uint8`` pixels ``(C, H, W)`` (SB3's
            transposed images; ``(H, W, C)`` with :attr:`channels_last`) or ``float32``
            latent stacks.
        actions: ``(T, N)`` int64.
        rewards: ``(T, N)`` float32, with SB3's time-limit bootstrap added
            (``gamma * V(terminal obs)`` on truncated steps).
        episode_starts: ``(T, N)`` float32, 1 where ``obs[t]`` starts an episode.
        values: ``(T, N)`` float32, ``V(obs[t])`` when collected.
        log_probs: ``(T, N)`` float32, ``log pi(actions[t] | obs[t])`` when collected.
        advantages: ``(T, N)`` float32 after :meth:`finish`, else None.
        returns: ``(T, N)`` float32 after :meth:`finish` (advantages + values), else None.
        channels_last: ``obs`` holds pixels as the env gives them, ``(T, N, H, W, C)``; the
            policy gets each minibatch as a ``(B, C, H, W)`` view (channels-last strides: the
            same numbers as SB3's transposed copies, and torch's CPU convolutions run about
            1.6x faster on them).
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    episode_starts: Tensor
    values: Tensor
    log_probs: Tensor
    advantages: Tensor | None = None
    returns: Tensor | None = None
    channels_last: bool = False

    @classmethod
    def empty(
        cls,
        n_steps: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        device: torch.device | str,
        *,
        channels_last: bool = False,
    ) -> Rollout:
        """Storage for ``n_steps`` steps of ``num_envs`` envs on ``device`` (uninitialised);
        ``obs_shape`` is ``(H, W, C)`` with ``channels_last``."""

        def f32() -> Tensor:
            return torch.empty((n_steps, num_envs), dtype=torch.float32, device=device)

        return cls(
            obs=torch.empty((n_steps, num_envs, *obs_shape), dtype=obs_dtype, device=device),
            actions=torch.empty((n_steps, num_envs), dtype=torch.int64, device=device),
            rewards=f32(),
            episode_starts=f32(),
            values=f32(),
            log_probs=f32(),
            channels_last=channels_last,
        )

    @property
    def n_steps(self) -> int:
        """T."""
        return int(self.rewards.shape[0])

    @property
    def num_envs(self) -> int:
        """N."""
        return int(self.rewards.shape[1])

    def finish(
        self, last_values: Tensor, last_dones: Tensor, gamma: float, gae_lambda: float
    ) -> None:
        """Sets :attr:`advantages` and :attr:`returns` (:func:`compute_gae`)."""
        self.advantages, self.returns = compute_gae(
            self.rewards, self.values, self.episode_starts, last_values, last_dones,
            gamma, gae_lambda,
        )  # fmt: skip


def compute_gae(
    rewards: Tensor,
    values: Tensor,
    episode_starts: Tensor,
    last_values: Tensor,
    last_dones: Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[Tensor, Tensor]:
    """GAE(lambda) advantages and TD(lambda) returns, as SB3's
    ``RolloutBuffer.compute_returns_and_advantage`` computes them.

    Args:
        rewards: ``(T, N)`` float32 (time-limit bootstrap included).
        values: ``(T, N)`` float32.
        episode_starts: ``(T, N)`` float32 (or bool), 1 where step ``t`` starts an episode.
        last_values: ``(N,)`` (or ``(N, 1)``) float32, ``V`` of the observation after the
            last step.
        last_dones: ``(N,)`` bool or float, whether the last step ended an episode.
        gamma: discount.
        gae_lambda: GAE's lambda.

    Returns:
        ``(advantages, returns)``, each ``(T, N)`` float32; ``returns = advantages + values``.
    """
    n_steps = rewards.shape[0]
    starts = episode_starts.to(torch.float32)
    last_values = last_values.reshape(-1).to(torch.float32)
    advantages = torch.empty_like(rewards)
    last_gae = torch.zeros_like(last_values)
    for step in reversed(range(n_steps)):
        if step == n_steps - 1:
            next_non_terminal = 1.0 - last_dones.to(torch.float32)
            next_values = last_values
        else:
            next_non_terminal = 1.0 - starts[step + 1]
            next_values = values[step + 1]
        delta = rewards[step] + gamma * next_values * next_non_terminal - values[step]
        last_gae = delta + gamma * gae_lambda * next_non_terminal * last_gae
        advantages[step] = last_gae
    return advantages, advantages + values


@dataclass(frozen=True)
class PPOSettings:
    """What one PPO update needs, SB3 ``PPO``'s names; the schedules already evaluated.

    Attributes:
        n_epochs: passes over the rollout.
        batch_size: minibatch size (divides ``T * N``).
        clip_range: the probability-ratio clip at this update.
        clip_range_vf: the value clip at this update; None: none.
        ent_coef: entropy coefficient.
        vf_coef: value-loss coefficient.
        max_grad_norm: gradient-norm clip.
        target_kl: early stop when the approximate KL exceeds ``1.5 * target_kl``; None: never.
        normalize_advantage: normalise advantages per minibatch (of more than one sample).
    """

    n_epochs: int
    batch_size: int
    clip_range: float
    clip_range_vf: float | None
    ent_coef: float
    vf_coef: float
    max_grad_norm: float
    target_kl: float | None
    normalize_advantage: bool


@dataclass(frozen=True)
class UpdateStats:
    """What ``PPO.train`` logs of one update (``train/*``), as Python numbers.

    Attributes:
        entropy_loss: mean over every minibatch of every epoch.
        policy_gradient_loss: likewise.
        value_loss: likewise.
        clip_fraction: likewise.
        approx_kl: mean over the last epoch's minibatches.
        loss: the last minibatch's total loss.
        epochs: epochs begun (SB3 adds them to ``_n_updates``).
        stopped_early: ``target_kl`` ended the update.
    """

    entropy_loss: float
    policy_gradient_loss: float
    value_loss: float
    clip_fraction: float
    approx_kl: float
    loss: float
    epochs: int
    stopped_early: bool


def _heads(policy: ActorCriticPolicy, obs: Tensor) -> tuple[Tensor, Tensor]:
    """``(values (B, 1), latent_pi (B, L))``: ``ActorCriticPolicy.forward``'s trunk."""
    features = policy.extract_features(obs)
    if policy.share_features_extractor:
        latent_pi, latent_vf = policy.mlp_extractor(features)
    else:
        pi_features, vf_features = features
        latent_pi = policy.mlp_extractor.forward_actor(pi_features)
        latent_vf = policy.mlp_extractor.forward_critic(vf_features)
    return policy.value_net(latent_vf), latent_pi


def _categorical(policy: ActorCriticPolicy, latent_pi: Tensor) -> Tensor:
    """``(B, A)`` normalised log-probabilities, as ``torch.distributions.Categorical(logits)``
    holds them (``logits - logsumexp``)."""
    logits = policy.action_net(latent_pi)
    return logits - logits.logsumexp(dim=-1, keepdim=True)


def is_categorical(policy: ActorCriticPolicy) -> bool:
    """The policy's actions are SB3's ``CategoricalDistribution`` (a ``Discrete`` space)."""
    return isinstance(policy.action_dist, CategoricalDistribution)


def policy_act(policy: ActorCriticPolicy, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``policy(obs)`` (SB3's ``ActorCriticPolicy.forward``, sampling) for a categorical policy,
    without SB3's and torch's distribution objects (a third of the cost on 16 observations):
    the same operations, the same ``torch.multinomial`` draw from torch's global RNG, so the
    same actions, values and log-probabilities, bit for bit.

    Args:
        policy: an SB3 ``ActorCriticPolicy``; over a non-``Discrete`` space (not
            :func:`is_categorical`) this is SB3's own ``policy(obs)``.
        obs: ``(B, *obs_shape)`` what the policy takes.

    Returns:
        ``(actions (B,) int64, values (B, 1) float32, log_probs (B,) float32)``.
    """
    if not is_categorical(policy):
        return policy(obs)
    values, latent_pi = _heads(policy, obs)
    log_p = _categorical(policy, latent_pi)
    actions = torch.multinomial(F.softmax(log_p, dim=-1), 1, True)
    return actions.squeeze(1), values, log_p.gather(-1, actions).squeeze(1)


def policy_evaluate(
    policy: ActorCriticPolicy, obs: Tensor, actions: Tensor
) -> tuple[Tensor, Tensor, Tensor | None]:
    """``policy.evaluate_actions(obs, actions)``: for a categorical policy the same operations
    without the distribution objects (the same numbers and gradients, bit for bit), otherwise
    SB3's own.

    Args:
        policy: an SB3 ``ActorCriticPolicy``.
        obs: ``(B, *obs_shape)``.
        actions: ``(B,)`` actions taken.

    Returns:
        ``(values (B, 1), log_prob (B,), entropy (B,) or None)``.
    """
    if not is_categorical(policy):
        return policy.evaluate_actions(obs, actions)
    values, latent_pi = _heads(policy, obs)
    log_p = _categorical(policy, latent_pi)
    log_prob = log_p.gather(-1, actions.long().reshape(-1, 1)).squeeze(-1)
    p_log_p = log_p.clamp(min=torch.finfo(log_p.dtype).min) * F.softmax(log_p, dim=-1)
    return values, log_prob, -p_log_p.sum(-1)


def _mean(values: list[Tensor]) -> float:
    return float(torch.stack(values).double().mean()) if values else float("nan")


def _minibatch(rollout: Rollout, idx: Tensor) -> tuple[Tensor, ...]:
    """Samples ``idx`` of the flattened rollout (env-major: ``i = env * T + t``, SB3's
    ``swap_and_flatten``): obs, actions, old values, old log-probs, advantages, returns."""
    n_steps = rollout.n_steps
    env, t = idx // n_steps, idx % n_steps
    assert rollout.advantages is not None and rollout.returns is not None
    obs = rollout.obs[t, env]
    return (
        obs.permute(0, 3, 1, 2) if rollout.channels_last else obs,
        rollout.actions[t, env],
        rollout.values[t, env],
        rollout.log_probs[t, env],
        rollout.advantages[t, env],
        rollout.returns[t, env],
    )


class _Terms:
    """The per-minibatch terms ``PPO.train`` logs, kept on the device until the end."""

    def __init__(self) -> None:
        self.pg: list[Tensor] = []
        self.value: list[Tensor] = []
        self.entropy: list[Tensor] = []
        self.clip: list[Tensor] = []
        self.kl: list[Tensor] = []
        self.loss: Tensor | None = None


def _minibatch_loss(
    policy: ActorCriticPolicy, batch: tuple[Tensor, ...], s: PPOSettings, terms: _Terms
) -> Tensor:
    """``PPO.train``'s loss of one minibatch; records its terms (and KL) in ``terms``."""
    obs, actions, old_values, old_log_prob, advantages, returns = batch
    values, log_prob, entropy = policy_evaluate(policy, obs, actions)
    values = values.flatten()
    if s.normalize_advantage and len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = torch.exp(log_prob - old_log_prob)
    policy_loss_1 = advantages * ratio
    policy_loss_2 = advantages * torch.clamp(ratio, 1 - s.clip_range, 1 + s.clip_range)
    policy_loss = -torch.min(policy_loss_1, policy_loss_2).mean()
    terms.pg.append(policy_loss.detach())
    terms.clip.append(torch.mean((torch.abs(ratio - 1) > s.clip_range).float()).detach())
    if s.clip_range_vf is None:
        values_pred = values
    else:
        values_pred = old_values + torch.clamp(
            values - old_values, -s.clip_range_vf, s.clip_range_vf
        )
    value_loss = F.mse_loss(returns, values_pred)
    terms.value.append(value_loss.detach())
    entropy_loss = -torch.mean(-log_prob) if entropy is None else -torch.mean(entropy)
    terms.entropy.append(entropy_loss.detach())
    loss = policy_loss + s.ent_coef * entropy_loss + s.vf_coef * value_loss
    terms.loss = loss.detach()
    with torch.no_grad():
        log_ratio = log_prob - old_log_prob
        terms.kl.append(torch.mean((torch.exp(log_ratio) - 1) - log_ratio))
    return loss


def ppo_update(
    policy: ActorCriticPolicy,
    rollout: Rollout,
    settings: PPOSettings,
    *,
    permutation: Permutation = np.random.permutation,
) -> UpdateStats:
    """``PPO.train``'s epochs over ``rollout`` with ``policy.optimizer`` (the caller sets the
    learning rate and the training mode first, as ``PPO.train`` does).

    Args:
        policy: An SB3 ``ActorCriticPolicy`` (its ``evaluate_actions`` and ``optimizer``).
        rollout: A finished rollout (:meth:`Rollout.finish`) on the policy's device.
        settings: The update's hyperparameters.
        permutation: ``size -> (size,)`` minibatch order of each epoch; the default draws
            from numpy's global RNG, as SB3's ``RolloutBuffer.get`` does.

    Returns:
        The logged terms (:class:`UpdateStats`).

    Raises:
        ValueError: ``batch_size`` does not divide ``T * N`` or the rollout is not finished.
    """
    if rollout.advantages is None or rollout.returns is None:
        raise ValueError("ppo_update: expected a finished rollout (Rollout.finish), got none")
    size = rollout.n_steps * rollout.num_envs
    if size % settings.batch_size:
        raise ValueError(
            f"batch_size {settings.batch_size} does not divide the rollout size {size}"
        )
    device = rollout.rewards.device
    terms = _Terms()
    epochs, stopped = 0, False
    for _ in range(settings.n_epochs):
        terms.kl = []
        order = torch.as_tensor(np.asarray(permutation(size)), device=device)
        for start in range(0, size, settings.batch_size):
            batch = _minibatch(rollout, order[start : start + settings.batch_size])
            loss = _minibatch_loss(policy, batch, settings, terms)
            if settings.target_kl is not None and float(terms.kl[-1]) > 1.5 * settings.target_kl:
                stopped = True
                break
            policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), settings.max_grad_norm)
            policy.optimizer.step()
        epochs += 1
        if stopped:
            break
    return UpdateStats(
        entropy_loss=_mean(terms.entropy),
        policy_gradient_loss=_mean(terms.pg),
        value_loss=_mean(terms.value),
        clip_fraction=_mean(terms.clip),
        approx_kl=_mean(terms.kl),
        loss=float("nan") if terms.loss is None else float(terms.loss),
        epochs=epochs,
        stopped_early=stopped,
    )


def explained_variance(values: Tensor, returns: Tensor) -> float:
    """SB3's ``explained_variance(values, returns)`` on tensors: ``1 - Var[R - V] / Var[R]``
    (population variances), NaN where ``Var[R]`` is 0."""
    y_pred, y_true = values.reshape(-1).double(), returns.reshape(-1).double()
    var_y = torch.var(y_true, correction=0)
    if float(var_y) == 0:
        return float("nan")
    return float(1 - torch.var(y_true - y_pred, correction=0) / var_y)


__all__ = [
    "PPOSettings",
    "Permutation",
    "Rollout",
    "UpdateStats",
    "compute_gae",
    "explained_variance",
    "is_categorical",
    "policy_act",
    "policy_evaluate",
    "ppo_update",
]
