"""Every access reprl makes to stable-baselines3 internals, in one place.

(:mod:`agents.safe_zip` rebuilds a model as SB3's ``load`` does: ``_init_setup_model=False``,
``_wrap_env``, ``_setup_model``, ``set_parameters``, ``save_util.recursive_setattr``;
:func:`check_internals` checks those too.)

Exporting a fast-path agent as a pixel-space agent (:func:`agents.factory.export_pixel_agent`)
builds an algorithm object without setting it up and copies the trained one's state into it;
that touches names SB3 does not document as public. They are all here, and
:func:`check_internals` verifies them on the installed SB3 (the test suite calls it), so an SB3
release that renames one fails loudly with the name and this module's path, instead of
exporting a subtly wrong agent.

Tested with stable-baselines3 2.9.2 (see :data:`TESTED_VERSIONS`).
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

#: SB3 versions this module was checked against.
TESTED_VERSIONS: tuple[str, ...] = ("2.9.2",)

#: Attributes of a trained model that its pixel-space export must not inherit: the env-side
#: state, the policy and its class and spaces, the logger, and the last observations (latents).
NOT_COPIED: frozenset[str] = frozenset(
    {
        "policy",
        "env",
        "rollout_buffer",
        "_vec_normalize_env",
        "_logger",
        "_custom_logger",
        "policy_class",
        "observation_space",
        "policy_kwargs",
        "_last_obs",
        "_last_original_obs",
        "device",
    }
)

# Private attributes a set-up algorithm must have (those of NOT_COPIED that start with "_",
# and the ones read to build a policy).
_REQUIRED_ATTRS = (
    "_last_obs",
    "_last_original_obs",
    "_vec_normalize_env",
    "_custom_logger",
    "policy_class",
    "lr_schedule",
    "use_sde",
    "rollout_buffer",
)


class SB3InternalsChanged(RuntimeError):
    """The installed stable-baselines3 lacks an internal that reprl's agent export relies on."""


def unbuilt_copy(model: BaseAlgorithm, policy: str | type[BasePolicy]) -> BaseAlgorithm:
    """A model of ``model``'s class and state, with no env, policy or rollout buffer.

    Args:
        model: A set-up SB3 algorithm.
        policy: The policy name or class of the copy (e.g. ``"CnnPolicy"``).

    Returns:
        A model built with ``_init_setup_model=False`` holding every attribute of ``model`` but
        :data:`NOT_COPIED`; its ``_last_obs`` and ``_last_original_obs`` are ``None``. The caller
        sets ``observation_space`` and ``policy_kwargs`` and attaches a policy
        (:func:`build_policy`).
    """
    cls = type(model)
    out = cls(policy, env=None, device=model.device, _init_setup_model=False)
    out.__dict__.update({k: v for k, v in model.__dict__.items() if k not in NOT_COPIED})
    out._last_obs = None
    out._last_original_obs = None
    return out


def build_policy(model: BaseAlgorithm) -> BasePolicy:
    """A fresh policy for ``model`` from its ``policy_class``, spaces, schedule and kwargs."""
    return model.policy_class(
        model.observation_space,
        model.action_space,
        model.lr_schedule,
        use_sde=model.use_sde,
        **model.policy_kwargs,
    )


def actions_from_features(
    policy: BasePolicy, features: torch.Tensor, deterministic: bool
) -> torch.Tensor:
    """The actions an ``ActorCriticPolicy`` takes for already extracted features.

    What ``policy.predict`` does after its features extractor: the actor's MLP, the action
    distribution, its mode (``deterministic``) or a sample (torch's global RNG, as SB3 draws).

    Args:
        policy: An SB3 ``ActorCriticPolicy`` (PPO, A2C).
        features: ``(B, features_dim)`` float32, the features extractor's output.
        deterministic: Greedy or sampled actions.

    Returns:
        ``(B, ...)`` actions, as the distribution gives them (no clipping or unscaling).
    """
    latent_pi = policy.mlp_extractor.forward_actor(features)
    return policy._get_action_dist_from_latent(latent_pi).get_actions(deterministic=deterministic)


def _changed(what: str) -> SB3InternalsChanged:
    """The error of :func:`check_internals` for one missing internal."""
    return SB3InternalsChanged(
        f"stable-baselines3 {stable_baselines3.__version__}: expected {what} (reprl's "
        f"agent export relies on it, see agents/sb3_compat.py; tested with "
        f"{', '.join(TESTED_VERSIONS)})"
    )


class _ConstEnv(gym.Env):
    """The constant env :func:`check_internals` trains its tiny agents on."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None):
        return np.zeros(2, np.float32), {}

    def step(self, action: Any):
        return np.zeros(2, np.float32), 0.0, False, False, {}


def _check_class(cls: type[BaseAlgorithm]) -> None:
    """The class-level internals of ``cls`` that :mod:`agents.safe_zip` and the export use."""
    if "_init_setup_model" not in inspect.signature(cls.__init__).parameters:
        raise _changed(f"{cls.__name__}.__init__ to take _init_setup_model")
    for name in ("_wrap_env", "_setup_model", "set_parameters"):  # agents.safe_zip's load
        if not callable(getattr(cls, name, None)):
            raise _changed(f"{cls.__name__}.{name}")


def _check_rebuild(cls: type[BaseAlgorithm], model: BaseAlgorithm) -> None:
    """:func:`unbuilt_copy` and :func:`build_policy` rebuild ``model``'s policy."""
    copy = unbuilt_copy(model, "MlpPolicy")
    copy.observation_space = model.observation_space
    copy.policy_kwargs = model.policy_kwargs
    policy = build_policy(copy)
    if not isinstance(policy, BasePolicy):
        raise _changed(f"{cls.__name__}.policy_class to build a BasePolicy")
    if set(policy.state_dict()) != set(model.policy.state_dict()):
        raise _changed(f"{cls.__name__}.policy_class to rebuild the same parameters")
    if getattr(policy, "optimizer", None) is None:
        raise _changed(f"{cls.__name__}'s policy to have an 'optimizer'")


def _check_actions(cls: type[BaseAlgorithm], model: BaseAlgorithm) -> None:
    """:func:`actions_from_features` gives the policy's own greedy actions."""
    obs = torch.zeros((3, 2))
    with torch.no_grad():
        try:
            ours = actions_from_features(model.policy, model.policy.extract_features(obs), True)
        except AttributeError as e:
            raise _changed(f"{cls.__name__}'s policy to have {e.name!r}") from None
        theirs = model.policy._predict(obs, deterministic=True)
    if not torch.equal(ours, theirs):
        raise _changed(f"actions_from_features to give {cls.__name__}'s policy's own actions")


def _check_instance(cls: type[BaseAlgorithm], kwargs: dict[str, Any]) -> None:
    """The instance-level internals of a tiny ``cls`` agent, before and after ``learn``."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    model = cls("MlpPolicy", DummyVecEnv([_ConstEnv]), device="cpu", **kwargs)
    for name in _REQUIRED_ATTRS:
        if name not in model.__dict__:
            raise _changed(f"{cls.__name__} instances to have the attribute {name!r}")
    model.learn(4)
    if model._last_obs is None:
        raise _changed(f"{cls.__name__}.learn to keep the last observation in '_last_obs'")
    _check_rebuild(cls, model)
    _check_actions(cls, model)


def check_internals() -> None:
    """Verify the SB3 internals this module uses on the installed version.

    Builds a tiny PPO and A2C on a constant env, checks the private attributes and the
    ``_init_setup_model`` argument, and round-trips :func:`unbuilt_copy` / :func:`build_policy`.

    Raises:
        SB3InternalsChanged: Naming the missing internal, the installed SB3 version and the
            versions this module was tested with.
    """
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common import save_util

    if not callable(getattr(save_util, "recursive_setattr", None)):  # agents.safe_zip
        raise _changed("stable_baselines3.common.save_util.recursive_setattr")
    for cls, kw in ((PPO, {"n_steps": 4, "batch_size": 4}), (A2C, {"n_steps": 4})):
        _check_class(cls)
        _check_instance(cls, kw)
