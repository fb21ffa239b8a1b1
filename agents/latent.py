"""The fast path for a frozen encoder: encode observations once, in a ``VecEnv`` wrapper.

With a frozen encoder, running it inside the policy costs one forward pass per observation
while collecting, and again for every epoch and minibatch of every update; the rollout buffer
also holds full frames. :class:`EncodeObservations` encodes each step's batch once, so the
policy is a small MLP on latents and the rollout buffer holds ``(k * latent_dim,)`` vectors (the
SB3 maintainers' advice for frozen encoders, SB3 issue #409).

The numbers match the extractor path exactly in what is computed: ``uint8 (H, W, C)`` frames
become ``float32 (C, H, W)`` with ``x.float() / 255.0``, as SB3's ``preprocess_obs`` does, then
``Representation.encode``.

Temporal context: on an env that stacks ``k`` frames (``envs.make_vec(..., frame_stack=k)``:
``(N, H, W, C * k)``, oldest first) the wrapper gives ``(N, k * latent_dim)`` latent stacks,
oldest first, the numbers :class:`~agents.extractor.PretrainedEncoderExtractor` computes from
the pixel stack, at about ``1/k`` of its encoding cost: each step encodes only the newest frame
of each observation and shifts it into a per-env ring of latents. Where a stack starts afresh
(``reset`` and every episode end) all ``k`` frames of the new observation are encoded, so the
latents equal the extractor's whatever the env fills a fresh stack with (copies of the first
frame, as reprl's envs do, or zeros, as SB3's ``VecFrameStack`` does). A terminal observation
becomes the ring shifted by the terminal frame's latent: the latent stack of the terminal pixel
stack.
"""

from __future__ import annotations

import copy
import os

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from agents.extractor import PretrainedEncoderExtractor, check_image_space
from agents.recurrent import is_recurrent
from agents.sb3_compat import actions_from_features
from envs.errors import ReprlError
from representations.base import Representation
from representations.checkpoint import Checkpoint, load


class EncodeObservations(VecEnvWrapper):
    """Replaces a ``VecEnv``'s (stacked) image observations by latents of a frozen encoder.

    Each step encodes, in one batched forward pass under ``torch.inference_mode``, the newest
    frame of every observation, all frames of observations that start an episode, and the
    newest frame of any ``infos[i]["terminal_observation"]`` (so SB3's bootstrapping at
    truncation sees latents).

    Args:
        venv: A ``VecEnv`` of ``uint8`` images in ``[0, 255]``, ``(H, W, C * k)`` or
            ``(C * k, H, W)``: ``k >= 1`` frames of the encoder's input shape, oldest first.
        encoder: A representation (copied, so the caller's module is left as it is), the path
            of a checkpoint or a :class:`~representations.checkpoint.Checkpoint` already read.
        device: Where the encoder runs; latents come out as numpy either way.
        frame_stack: ``k``; ``None`` infers it from the channel count.

    Attributes:
        encoder: The frozen encoder (eval mode, no gradients).
        checkpoint: The checkpoint path if ``encoder`` was one, else ``None``.
        latent_dim: Size of one frame's latent.
        frame_stack: ``k``; observations are ``(k * latent_dim,)`` float32.
        pixel_space: The wrapped env's observation space.

    Raises:
        TypeError: ``encoder`` is neither a Representation nor a path.
        ReprlError: The env's observations are not ``uint8`` images of the encoder's height and
            width with ``k`` times its channels, or the encoder does not take ``float32`` in
            ``[0, 1]``.
        CheckpointError: ``encoder`` is a path to something other than an encoder checkpoint.
    """

    def __init__(
        self,
        venv: VecEnv,
        encoder: Representation | str | os.PathLike[str] | Checkpoint,
        device: str | torch.device = "cpu",
        frame_stack: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        if isinstance(encoder, (str, os.PathLike)):  # a Checkpoint is one: not read again
            self.checkpoint: str | None = os.fspath(encoder)
            model = load(encoder, device=self.device)
        elif isinstance(encoder, Representation):
            self.checkpoint = None
            model = copy.deepcopy(encoder).to(self.device)
        else:
            raise TypeError(
                "encoder: expected a Representation or a checkpoint path, got "
                f"{type(encoder).__name__}"
            )
        self._layout, self.frame_stack = check_image_space(
            venv.observation_space, model.input_spec, frame_stack=frame_stack
        )
        self.encoder = model.eval().requires_grad_(False)
        self.latent_dim = model.latent_dim
        self._channels = model.input_spec.shape[0]
        self.pixel_space = venv.observation_space
        space = gym.spaces.Box(-np.inf, np.inf, (self.frame_stack * self.latent_dim,), np.float32)
        super().__init__(venv, observation_space=space)
        self._latents = np.zeros((self.num_envs, self.frame_stack * self.latent_dim), np.float32)

    # ------------------------------------------------------------------ encoding

    def _frames(self, obs: np.ndarray) -> np.ndarray:
        """``(B, ..., C * k)`` stacks -> ``(B * k, H, W, C)`` or ``(B * k, C, H, W)`` frames."""
        b, c, k = len(obs), self._channels, self.frame_stack
        if k == 1:
            return obs
        if self._layout == "hwc":
            h, w = obs.shape[1:3]
            return obs.reshape(b, h, w, k, c).transpose(0, 3, 1, 2, 4).reshape(b * k, h, w, c)
        return obs.reshape(b * k, c, *obs.shape[2:])

    def _newest(self, obs: np.ndarray) -> np.ndarray:
        """The newest frame of each stack: the last ``C`` channels."""
        if self.frame_stack == 1:
            return obs
        return obs[..., -self._channels :] if self._layout == "hwc" else obs[:, -self._channels :]

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """Latents of single frames.

        Args:
            frames: ``(B, H, W, C)`` (or ``(B, C, H, W)`` for a channels-first env) uint8 in
                ``[0, 255]``; strided views are fine.

        Returns:
            ``(B, latent_dim)`` float32.

        Raises:
            ReprlError: If ``frames`` is not uint8.
        """
        frames = np.asarray(frames)
        if frames.dtype != np.uint8:
            raise ReprlError(f"observation dtype: expected uint8, got {frames.dtype}")
        if not frames.flags.writeable:
            frames = frames.copy()
        with torch.inference_mode():
            x = torch.from_numpy(frames).to(self.device)
            if self._layout == "hwc":
                x = x.permute(0, 3, 1, 2)
            z = self.encoder.encode(x.float().div_(255.0))
            return z.cpu().numpy()

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """Latent stacks of a batch of observations, statelessly (every frame is encoded).

        Args:
            obs: ``(B, H, W, C * k)`` (or ``(B, C * k, H, W)``) uint8 in ``[0, 255]``, as the
                wrapped env gives them.

        Returns:
            ``(B, k * latent_dim)`` float32, oldest frame's latent first: what the policy of a
            fast-path agent takes for these observations.

        Raises:
            ReprlError: If ``obs`` is not uint8.
        """
        obs = np.asarray(obs)
        z = self.encode_frames(self._frames(obs))
        return z.reshape(len(obs), self.frame_stack * self.latent_dim)

    # ------------------------------------------------------------------ VecEnv

    def reset(self) -> VecEnvObs:
        """Reset the wrapped env; returns ``(N, k * latent_dim)`` float32 latent stacks."""
        obs = self.venv.reset()
        self.reset_infos = getattr(self.venv, "reset_infos", self.reset_infos)
        self._latents = self.encode(obs)
        return self._latents

    def step_wait(self) -> VecEnvStepReturn:
        """Step the wrapped env; observations and terminal observations become latent stacks."""
        obs, rewards, dones, infos = self.venv.step_wait()
        k, d, n = self.frame_stack, self.latent_dim, len(obs)
        fresh = np.flatnonzero(dones) if k > 1 else np.empty(0, np.int64)
        terminal = [i for i, info in enumerate(infos) if "terminal_observation" in info]
        parts = [self._newest(obs)]
        if len(fresh):
            parts.append(self._frames(obs[fresh]))
        if terminal:
            parts.append(
                self._newest(np.stack([infos[i]["terminal_observation"] for i in terminal]))
            )
        frames = parts[0] if len(parts) == 1 else np.concatenate(parts)
        z = self.encode_frames(frames)
        latents = np.empty_like(self._latents)  # new each step: SB3 keeps the previous one
        if k > 1:
            latents[:, :-d] = self._latents[:, d:]
        latents[:, -d:] = z[:n]
        if len(fresh):
            latents[fresh] = z[n : n + len(fresh) * k].reshape(len(fresh), k * d)
        if terminal:
            infos = list(infos)
            zt = z[n + len(fresh) * k :]
            for j, i in enumerate(terminal):
                stack = np.concatenate([self._latents[i, d:], zt[j]]) if k > 1 else zt[j]
                infos[i] = {**infos[i], "terminal_observation": stack}
        self._latents = latents
        return latents, rewards, dones, infos


def find_encode_wrapper(venv: VecEnv | None) -> EncodeObservations | None:
    """The outermost :class:`EncodeObservations` in a chain of ``VecEnvWrapper``s, or ``None``."""
    while venv is not None:
        if isinstance(venv, EncodeObservations):
            return venv
        venv = getattr(venv, "venv", None) if isinstance(venv, VecEnvWrapper) else None
    return None


class LatentPolicy:
    """A frozen-encoder agent's policy, fed the latent stacks of :class:`EncodeObservations`.

    ``predict`` takes what ``EncodeObservations(venv, extractor.encoder, frame_stack=k)`` gives
    for the pixel observations the agent's ``predict`` takes, and returns the same actions: the
    extractor's encoder runs once per env step in the wrapper instead of ``k`` times per step in
    the policy. SB3's ``predict`` signature, so ``evaluate_policy`` takes it.

    Args:
        policy: The agent's ``ActorCriticPolicy`` with a frozen, shared
            :class:`~agents.extractor.PretrainedEncoderExtractor` (see :func:`latent_view`).
    """

    def __init__(self, policy: BasePolicy) -> None:
        self.policy = policy
        self._extractor: PretrainedEncoderExtractor = policy.features_extractor

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """Actions for ``(B, k * latent_dim)`` float32 latent stacks; ``(B,)`` int64 actions."""
        z = torch.as_tensor(np.asarray(observation, np.float32), device=self.policy.device)
        with torch.no_grad():
            features = z if self._extractor.projection is None else self._extractor.projection(z)
            actions = actions_from_features(self.policy, features, deterministic)
        return actions.cpu().numpy().reshape(len(z)), None


def latent_view(
    model: BaseAlgorithm, venv: VecEnv
) -> tuple[EncodeObservations, LatentPolicy] | None:
    """The fast way to run a pixel-space frozen-encoder agent on ``venv``.

    For an agent whose policy holds a frozen, shared :class:`PretrainedEncoderExtractor` and
    acts in a ``Discrete`` space (an exported fast-path agent, or an extractor-path one):
    ``venv`` wrapped in :class:`EncodeObservations` with the extractor's encoder and frame stack,
    and a :class:`LatentPolicy` taking its observations. The pair acts as ``model.predict`` on
    ``venv``'s observations does (the same numbers, computed once per frame instead of once per
    frame and stack position).

    Args:
        model: A loaded SB3 agent.
        venv: The env it acts in: ``uint8`` (stacked) frames.

    Returns:
        ``(wrapped venv, policy)``, or ``None`` for any other agent (pixels, fine-tuned or
        scratch encoders, separate actor and critic extractors, non-discrete actions, an LSTM
        core).
    """
    policy = getattr(model, "policy", None)
    extractor = getattr(policy, "features_extractor", None)
    if (
        not isinstance(extractor, PretrainedEncoderExtractor)
        or extractor.mode != "frozen"
        or not getattr(policy, "share_features_extractor", False)
        or not isinstance(model.action_space, gym.spaces.Discrete)
        or is_recurrent(policy)
    ):
        return None
    wrapped = EncodeObservations(
        venv, extractor.encoder, device=policy.device, frame_stack=extractor.frame_stack
    )
    return wrapped, LatentPolicy(policy)
