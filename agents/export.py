"""A fast-path (latent) agent's pixel-space twin, for plain ``PPO.load(zip).predict(obs)``.

A fast-path agent's policy is an MLP on the latents :class:`~agents.latent.EncodeObservations`
makes. :func:`export_pixel_agent` builds the equivalent ``CnnPolicy`` agent: a frozen
:class:`~agents.extractor.PretrainedEncoderExtractor` holding the encoder (its header embedded,
no checkpoint path), then the trained MLP's weights and optimizer state. Its policy takes the
env's (stacked) ``uint8`` observations and acts as the latent agent did. The SB3 internals this
needs are behind :mod:`agents.sb3_compat`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import FlattenExtractor

from agents.extractor import (
    LatentProjectionExtractor,
    PretrainedEncoderExtractor,
    check_image_space,
)
from agents.factory import INFO_ATTR, _info
from agents.recurrent import pixel_policy_class
from agents.sb3_compat import build_policy, unbuilt_copy
from envs.errors import ReprlError
from envs.storage.files import json_plain
from representations.base import Representation
from representations.checkpoint import make_header


def _pixel_space(space: gym.spaces.Box) -> gym.spaces.Box:
    """The channels-first image space SB3 gives a policy for env observations in ``space``."""
    shape = tuple(space.shape)
    if np.argmin(shape) != 0:  # channels-last, as SB3's VecTransposeImage decides
        shape = (shape[2], shape[0], shape[1])
    return gym.spaces.Box(0, 255, shape, np.uint8)


def _transfer_optimizer(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Copy the optimizer state of ``src``'s parameters to the same-named ones of ``dst``."""
    src_opt, dst_opt = src.optimizer, dst.optimizer  # type: ignore[union-attr]
    src_sd = src_opt.state_dict()
    if len(src_sd["param_groups"]) != 1 or len(dst_opt.param_groups) != 1:
        return
    src_index = {name: i for i, (name, _) in enumerate(src.named_parameters())}
    dst_names = [name for name, _ in dst.named_parameters()]
    state = {
        j: src_sd["state"][src_index[name]]
        for j, name in enumerate(dst_names)
        if name in src_index and src_index[name] in src_sd["state"]
    }
    group = {k: v for k, v in src_sd["param_groups"][0].items() if k != "params"}
    group["params"] = list(range(len(dst_names)))
    dst_opt.load_state_dict({"state": state, "param_groups": [group]})


def export_pixel_agent(
    model: BaseAlgorithm,
    encoder: Representation,
    pixel_space: gym.spaces.Box,
    frame_stack: int | None = None,
) -> BaseAlgorithm:
    """The pixel-space equivalent of a fast-path (latent) agent.

    The export is a ``CnnPolicy`` model of the same algorithm and hyperparameters whose features
    extractor is a frozen :class:`PretrainedEncoderExtractor` holding ``encoder``
    (header embedded, no checkpoint path) and whose ``mlp_extractor``, ``action_net``,
    ``value_net`` (and projection) carry the latent policy's weights and optimizer state. No
    rollout buffer is allocated and the global RNG state is left as it was.

    Args:
        model: An agent trained on ``encoder``'s (stacked) latents (``MlpPolicy``), e.g.
            through :class:`EncodeObservations`.
        encoder: The frozen encoder that made the latents.
        pixel_space: The env's observation space, ``(H, W, C * k)`` or ``(C * k, H, W)`` uint8.
        frame_stack: ``k``; ``None``: inferred from ``pixel_space``'s channels.

    Returns:
        A model without env, ready for ``save``; ``predict`` takes ``uint8`` observations of
        ``pixel_space`` (``k`` stacked frames, as ``envs.make_vec(..., frame_stack=k)``).

    Raises:
        ReprlError: If the latent policy uses a features extractor that has no pixel-space
            counterpart, or ``pixel_space`` does not fit the encoder and the policy's input.
    """
    pk = dict(model.policy_kwargs)
    fe_class = pk.get("features_extractor_class", FlattenExtractor)
    if fe_class is LatentProjectionExtractor:
        features_dim = int(pk["features_extractor_kwargs"]["features_dim"])
    elif fe_class is FlattenExtractor:
        features_dim = None
    else:
        raise ReprlError(
            f"cannot export a latent agent with features extractor {fe_class.__name__}; "
            f"expected FlattenExtractor or LatentProjectionExtractor"
        )
    k = check_image_space(pixel_space, encoder.input_spec, frame_stack=frame_stack).frame_stack
    latent_size = int(np.prod(model.observation_space.shape))
    if latent_size != k * encoder.latent_dim:
        raise ReprlError(
            f"export: the policy takes {latent_size} latents, expected frame_stack {k} x "
            f"latent_dim {encoder.latent_dim} = {k * encoder.latent_dim}"
        )
    header = json_plain(make_header(encoder, encoder.provenance), "encoder header")
    pk.update(
        features_extractor_class=PretrainedEncoderExtractor,
        features_extractor_kwargs={
            "checkpoint": None,
            "mode": "frozen",
            "features_dim": features_dim,
            "encoder_header": header,
            "frame_stack": k,
        },
        net_arch=model.policy.net_arch,
        normalize_images=True,
    )
    export = unbuilt_copy(model, pixel_policy_class(model.policy))
    export.observation_space = _pixel_space(pixel_space)
    export.policy_kwargs = pk
    with torch.random.fork_rng(devices=[]):  # building the policy draws random init weights
        policy = build_policy(export)
    state = {name: v.detach().cpu() for name, v in encoder.state_dict().items()}
    extractors = (
        policy.features_extractor,
        policy.pi_features_extractor,
        policy.vf_features_extractor,
    )
    for ext in {id(e): e for e in extractors}.values():
        ext.encoder.load_state_dict(state)
    missing, unexpected = policy.load_state_dict(model.policy.state_dict(), strict=False)
    stray = [name for name in missing if ".encoder." not in name]
    if unexpected or stray:
        raise RuntimeError(
            f"latent and pixel policies disagree: unexpected {unexpected}, missing {stray}"
        )
    export.policy = policy.to(export.device)
    _transfer_optimizer(model.policy, export.policy)
    setattr(export, INFO_ATTR, {**_info(model), "fast": False, "exported": True, "frame_stack": k})
    return export
