"""The fast path for a frozen encoder: encode observations once, in a ``VecEnv`` wrapper.

With a frozen encoder, running it inside the policy costs one forward pass per observation
while collecting, and again for every epoch and minibatch of every update; the rollout buffer
also holds full frames. :class:`EncodeObservations` encodes each step's batch once, so the
policy is a small MLP on latents and the rollout buffer holds ``(latent_dim,)`` vectors (the
SB3 maintainers' advice for frozen encoders, SB3 issue #409).

The numbers match the extractor path exactly in what is computed: ``uint8 (H, W, C)`` frames
become ``float32 (C, H, W)`` with ``x.float() / 255.0``, as SB3's ``preprocess_obs`` does, then
``Representation.encode``.
"""

from __future__ import annotations

import copy
import os

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from agents.extractor import check_image_space
from representations.base import Representation
from representations.checkpoint import load


class EncodeObservations(VecEnvWrapper):
    """Replaces a ``VecEnv``'s image observations by the latents of a frozen encoder.

    Each step encodes the batch of observations, together with any
    ``infos[i]["terminal_observation"]`` (so SB3's bootstrapping at truncation sees latents),
    in one batched forward pass under ``torch.inference_mode``.

    Args:
        venv: A ``VecEnv`` of ``uint8`` images in ``[0, 255]``, ``(H, W, C)`` or ``(C, H, W)``,
            matching the encoder's input shape and channels.
        encoder: A representation (copied, so the caller's module is left as it is) or the path
            of a checkpoint.
        device: Where the encoder runs; latents come out as numpy either way.

    Attributes:
        encoder: The frozen encoder (eval mode, no gradients).
        checkpoint: The checkpoint path if ``encoder`` was one, else ``None``.
        latent_dim: Size of the latents.
        pixel_space: The wrapped env's observation space.

    Raises:
        TypeError: ``encoder`` is neither a Representation nor a path.
        ValueError: The env's observations are not ``uint8`` images of the encoder's shape and
            channels, or the encoder does not take ``float32`` in ``[0, 1]``.
        CheckpointError: ``encoder`` is a path to something other than an encoder checkpoint.
    """

    def __init__(
        self,
        venv: VecEnv,
        encoder: Representation | str | os.PathLike[str],
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        if isinstance(encoder, (str, os.PathLike)):
            self.checkpoint: str | None = str(encoder)
            model = load(encoder, device=self.device)
        elif isinstance(encoder, Representation):
            self.checkpoint = None
            model = copy.deepcopy(encoder).to(self.device)
        else:
            raise TypeError(
                "encoder: expected a Representation or a checkpoint path, got "
                f"{type(encoder).__name__}"
            )
        self._layout = check_image_space(venv.observation_space, model.input_spec)
        self.encoder = model.eval().requires_grad_(False)
        self.latent_dim = model.latent_dim
        self.pixel_space = venv.observation_space
        space = gym.spaces.Box(-np.inf, np.inf, (self.latent_dim,), np.float32)
        super().__init__(venv, observation_space=space)

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """Latents of a batch of frames.

        Args:
            obs: ``(B, H, W, C)`` (or ``(B, C, H, W)`` for a channels-first env) uint8 in
                ``[0, 255]``.

        Returns:
            ``(B, latent_dim)`` float32.

        Raises:
            ValueError: If ``obs`` is not uint8 or does not match the encoder's input.
        """
        obs = np.asarray(obs)
        if obs.dtype != np.uint8:
            raise ValueError(f"observation dtype: expected uint8, got {obs.dtype}")
        if not obs.flags.writeable:
            obs = obs.copy()
        with torch.inference_mode():
            x = torch.from_numpy(obs).to(self.device)
            if self._layout == "hwc":
                x = x.permute(0, 3, 1, 2)
            z = self.encoder.encode(x.float() / 255.0)
            return z.cpu().numpy()

    def reset(self) -> VecEnvObs:
        """Reset the wrapped env; returns ``(N, latent_dim)`` float32 latents."""
        obs = self.venv.reset()
        self.reset_infos = getattr(self.venv, "reset_infos", self.reset_infos)
        return self.encode(obs)

    def step_wait(self) -> VecEnvStepReturn:
        """Step the wrapped env; observations and terminal observations become latents."""
        obs, rewards, dones, infos = self.venv.step_wait()
        done = [i for i, info in enumerate(infos) if "terminal_observation" in info]
        if not done:
            return self.encode(obs), rewards, dones, infos
        frames = np.concatenate([obs, np.stack([infos[i]["terminal_observation"] for i in done])])
        z = self.encode(frames)
        n = len(obs)
        infos = list(infos)
        for j, i in enumerate(done):
            infos[i] = {**infos[i], "terminal_observation": z[n + j]}
        return z[:n], rewards, dones, infos


def find_encode_wrapper(venv: VecEnv | None) -> EncodeObservations | None:
    """The outermost :class:`EncodeObservations` in a chain of ``VecEnvWrapper``s, or ``None``."""
    while venv is not None:
        if isinstance(venv, EncodeObservations):
            return venv
        venv = getattr(venv, "venv", None) if isinstance(venv, VecEnvWrapper) else None
    return None
