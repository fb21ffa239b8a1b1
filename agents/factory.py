"""Build SB3 agents over pretrained encoders.

:func:`make_agent` validates everything it can before building anything (algorithm, mode,
encoder checkpoint, encoder input vs env observations, frame stack, PPO minibatch size), then
builds one of:

==========  =====  ==========================================================================
mode        fast   what is built
==========  =====  ==========================================================================
frozen      True   env wrapped in :class:`~agents.latent.EncodeObservations`; ``MlpPolicy``
                   on latents (the fast path: the encoder runs once per env step)
frozen      False  ``CnnPolicy`` with a frozen :class:`~agents.extractor.PretrainedEncoderExtractor`
finetune    any    ``CnnPolicy`` with a trainable pretrained extractor
scratch     any    ``CnnPolicy`` with the encoder's architecture, randomly initialised
pixels      any    SB3's ``CnnPolicy`` (NatureCNN, or :class:`~agents.impala.ImpalaCNN` with
                   ``pixel_extractor="impala"``), no encoder: the usual pixel baseline
==========  =====  ==========================================================================

Temporal context: an env stacking ``k`` frames along the channels gives the encoder agents
``k`` latents per observation (the encoder sees single frames, see
:class:`~agents.extractor.PretrainedEncoderExtractor` and
:class:`~agents.latent.EncodeObservations`); pixel agents run their CNN on the whole stack.

Algorithms: SB3's PPO and A2C, and reprl's :class:`~agents.a3c.A3C` (asynchronous worker
processes; ``make_agent("a3c", env, ..., env_fn=WorkerEnvs(...))``: the workers build their
own envs from ``env_fn``), all over the same encoder modes and temporal context.

Saving and loading: :mod:`agents.saving`; a fast-path agent's pixel-space twin:
:mod:`agents.export`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from agents.a3c import A3C
from agents.extractor import (
    EncoderSource,
    LatentProjectionExtractor,
    PretrainedEncoderExtractor,
    check_features_dim,
    check_frame_stack,
    check_image_space,
    check_mode,
    extractor_kwargs,
    open_encoder,
)
from agents.hyperparams import A2CHyperparams, A3CHyperparams, PPOHyperparams, check_ppo_batch
from agents.impala import IMPALA_FEATURES_DIM, ImpalaCNN
from agents.latent import EncodeObservations
from agents.vecenv import is_monitored
from envs.errors import ReprlError
from representations.base import InputSpec
from representations.checkpoint import Checkpoint, build_from_header

#: Algorithms :func:`make_agent` and :func:`load_agent` know, by name.
ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "a3c": A3C}
#: Typed hyperparameters of each algorithm (:mod:`agents.hyperparams`).
HYPERPARAMS: dict[str, type] = {
    "ppo": PPOHyperparams,
    "a2c": A2CHyperparams,
    "a3c": A3CHyperparams,
}
#: Modes of :func:`make_agent`.
MODES: tuple[str, ...] = ("frozen", "finetune", "scratch", "pixels")
#: Features extractors of ``mode="pixels"`` (``pixel_extractor``): SB3's NatureCNN, IMPALA-CNN.
PIXEL_EXTRACTORS: tuple[str, ...] = ("nature", "impala")
#: Model attribute (stored in the zip's ``data`` as JSON) describing how reprl built the agent.
INFO_ATTR = "reprl_info"
#: Version of the ``reprl_info`` record.
INFO_FORMAT = 1

# make_agent arguments that must not come through **sb3_kwargs.
_RESERVED = (
    "self",
    "policy",
    "env",
    "seed",
    "device",
    "verbose",
    "tensorboard_log",
    "_init_setup_model",
)


def _algo_name(model: BaseAlgorithm) -> str:
    for name, cls in ALGOS.items():
        if type(model) is cls:
            return name
    return type(model).__name__.lower()


def _algo_class(algo: str) -> type[BaseAlgorithm]:
    key = algo.lower() if isinstance(algo, str) else algo
    if key not in ALGOS:
        raise ReprlError(f"algo: expected one of {list(ALGOS)}, got {algo!r}")
    return ALGOS[key]


def _check_sb3_kwargs(algo_cls: type[BaseAlgorithm], sb3_kwargs: dict[str, Any]) -> None:
    params = inspect.signature(algo_cls.__init__).parameters
    accepted = [k for k in params if k not in _RESERVED]
    bad = sorted(k for k in sb3_kwargs if k in _RESERVED)
    if bad:
        raise ReprlError(f"make_agent sets {bad} itself; expected none of them in the SB3 kwargs")
    unknown = sorted(k for k in sb3_kwargs if k not in params)
    if unknown:
        raise ReprlError(
            f"{algo_cls.__name__} kwargs: expected names from {', '.join(accepted)}; got the "
            f"unknown {unknown}"
        )


def _sb3_default(algo_cls: type[BaseAlgorithm], sb3_kwargs: dict[str, Any], name: str) -> Any:
    return sb3_kwargs.get(name, inspect.signature(algo_cls.__init__).parameters[name].default)


def _encoder_spec(ckpt: Checkpoint, encoder: EncoderSource) -> InputSpec:
    """Check that a checkpoint's header describes a model that builds; its input spec."""
    return build_from_header(ckpt.header, where=os.fspath(encoder)).input_spec


def env_frame_stack(env: VecEnv) -> int | None:
    """The ``frame_stack`` a VecEnv advertises (``envs.make_vec(..., frame_stack=k)``), or None."""
    try:
        k = getattr(env, "frame_stack", None)
    except Exception:  # VecEnvWrapper.__getattr__ may raise other errors for unknown names
        return None
    return int(k) if isinstance(k, (int, np.integer)) and not isinstance(k, bool) else None


def _check_pixel_extractor(mode: str, pixel_extractor: str) -> None:
    if pixel_extractor not in PIXEL_EXTRACTORS:
        raise ReprlError(
            f"pixel_extractor: expected one of {list(PIXEL_EXTRACTORS)}, got {pixel_extractor!r}"
        )
    if mode != "pixels" and pixel_extractor != "nature":
        raise ReprlError(
            f"pixel_extractor: only mode 'pixels' uses it; expected 'nature' (the default) with "
            f"mode {mode!r}, got {pixel_extractor!r}"
        )


def _check_encoder(mode: str, encoder: EncoderSource | None) -> None:
    if mode == "pixels" and encoder is not None:
        raise ReprlError(f"encoder: mode 'pixels' uses no encoder, got encoder={encoder!r}")
    if mode != "pixels" and encoder is None:
        raise ReprlError(f"encoder: mode {mode!r} needs an encoder checkpoint, got None")


def _check_env_fn(algo: str, algo_cls: type[BaseAlgorithm], env_fn: Callable | None) -> None:
    if issubclass(algo_cls, A3C) and env_fn is None:
        raise ReprlError(
            "env_fn: algo 'a3c' runs worker processes that build their own envs; expected "
            "env_fn(rank, seed) -> VecEnv (agents.a3c.WorkerEnvs(env_id, num_envs, "
            "env_kwargs)), got None"
        )
    if not issubclass(algo_cls, A3C) and env_fn is not None:
        raise ReprlError(f"env_fn: only algo 'a3c' uses it; expected None for {algo!r}")


def _check_arguments(
    algo: str,
    algo_cls: type[BaseAlgorithm],
    env: VecEnv,
    *,
    encoder: EncoderSource | None,
    mode: str,
    pixel_extractor: str,
    env_fn: Callable | None,
) -> None:
    """The checks of :func:`make_agent` that need nothing built or read, in its order."""
    check_mode(mode, MODES)
    _check_pixel_extractor(mode, pixel_extractor)
    if not isinstance(env, VecEnv):
        raise TypeError(
            f"env: expected an SB3 VecEnv (envs.make_vec, DummyVecEnv), got {type(env).__name__}"
        )
    _check_encoder(mode, encoder)
    _check_env_fn(algo, algo_cls, env_fn)


def _with_hyperparams(
    algo: str,
    algo_cls: type[BaseAlgorithm],
    hyperparams: PPOHyperparams | A2CHyperparams | A3CHyperparams | None,
    sb3_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """``sb3_kwargs`` over the typed ``hyperparams`` (which must be ``algo``'s)."""
    if hyperparams is None:
        return sb3_kwargs
    expected = HYPERPARAMS[_algo_name_of(algo_cls)]
    if not isinstance(hyperparams, expected):
        raise ReprlError(
            f"hyperparams: expected {expected.__name__} for algo {algo!r}, got "
            f"{type(hyperparams).__name__}"
        )
    return {**hyperparams.to_sb3_kwargs(), **sb3_kwargs}


def _check_policy_kwargs(
    policy_kwargs: dict[str, Any], mode: str, features_dim: int | None, pixel_extractor: str
) -> None:
    """Refuse ``policy_kwargs`` that clash with what the mode sets itself."""
    if mode != "pixels":
        clash = sorted(
            k
            for k in ("features_extractor_class", "features_extractor_kwargs")
            if k in policy_kwargs
        )
        if clash:
            raise ReprlError(
                f"policy_kwargs {clash}: mode {mode!r} sets the features extractor itself; "
                "pass features_dim to make_agent instead"
            )
        if policy_kwargs.get("normalize_images", True) is not True:
            raise ReprlError(
                "policy_kwargs normalize_images: expected True (encoders take [0, 1] images), "
                f"got {policy_kwargs['normalize_images']!r}"
            )
    elif features_dim is not None and "features_extractor_kwargs" in policy_kwargs:
        raise ReprlError(
            "features_dim and policy_kwargs['features_extractor_kwargs'] both given; pass one"
        )
    elif pixel_extractor != "nature" and "features_extractor_class" in policy_kwargs:
        raise ReprlError(
            f"policy_kwargs ['features_extractor_class']: pixel_extractor {pixel_extractor!r} "
            "sets the features extractor itself; expected no features_extractor_class"
        )


def _check_pixel_space(space: Any, pixel_extractor: str, frame_stack: int | None) -> None:
    """Refuse an observation space a pixel CNN cannot take (or not split in ``frame_stack``)."""
    if not is_image_space(space):
        cnn = "NatureCNN" if pixel_extractor == "nature" else "ImpalaCNN"
        raise ReprlError(
            f"observation space: mode 'pixels' ({cnn}) expects uint8 images "
            f"Box(0, 255, (H, W, C), uint8), got {space}"
        )
    channels = int(min(space.shape))
    if frame_stack is not None and channels % frame_stack:
        raise ReprlError(
            f"frame_stack: expected a divisor of the observation's {channels} channels, "
            f"got {frame_stack}"
        )


def _pixel_policy_kwargs(
    policy_kwargs: dict[str, Any], features_dim: int | None, pixel_extractor: str
) -> None:
    """Set the CNN of a pixel agent in ``policy_kwargs``."""
    if pixel_extractor == "impala":
        policy_kwargs["features_extractor_class"] = ImpalaCNN
        policy_kwargs.setdefault("features_extractor_kwargs", {"features_dim": IMPALA_FEATURES_DIM})
    if features_dim is not None:
        policy_kwargs["features_extractor_kwargs"] = {"features_dim": features_dim}


def _policy(
    env: VecEnv,
    ckpt: Checkpoint | None,
    policy_kwargs: dict[str, Any],
    *,
    mode: str,
    fast: bool,
    features_dim: int | None,
    pixel_extractor: str,
    frame_stack: int | None,
    device: str,
) -> tuple[str, VecEnv]:
    """The SB3 policy name and the env the model trains on; sets the features extractor of
    the mode in ``policy_kwargs`` (see the table of the module docstring)."""
    if fast:
        env = EncodeObservations(env, ckpt, device=device, frame_stack=frame_stack)
        if features_dim is not None:
            policy_kwargs.update(
                features_extractor_class=LatentProjectionExtractor,
                features_extractor_kwargs={"features_dim": features_dim},
            )
        return "MlpPolicy", env
    if mode == "pixels":
        _pixel_policy_kwargs(policy_kwargs, features_dim, pixel_extractor)
        return "CnnPolicy", env
    policy_kwargs.update(
        features_extractor_class=PretrainedEncoderExtractor,
        features_extractor_kwargs=extractor_kwargs(ckpt, mode, features_dim, frame_stack),
    )
    return "CnnPolicy", env


def _build(
    algo_cls: type[BaseAlgorithm],
    policy: str,
    env: VecEnv,
    policy_kwargs: dict[str, Any],
    ckpt: Checkpoint | None,
    **kwargs: Any,
) -> BaseAlgorithm:
    """``algo_cls(policy, env, policy_kwargs=..., **kwargs)``, a pretrained extractor built from
    the checkpoint already read: it is in the extractor's kwargs only while the policy is built,
    so the model's (JSON-plain, saved) kwargs keep the checkpoint's path."""
    fe_kwargs = policy_kwargs.get("features_extractor_kwargs")
    swap = (
        ckpt is not None
        and policy_kwargs.get("features_extractor_class") is PretrainedEncoderExtractor
    )
    if swap:
        path, fe_kwargs["checkpoint"] = fe_kwargs["checkpoint"], ckpt
    try:
        return algo_cls(policy, env, policy_kwargs=policy_kwargs, **kwargs)
    finally:
        if swap:
            fe_kwargs["checkpoint"] = path


def make_agent(
    algo: str,
    env: VecEnv,
    *,
    encoder: EncoderSource | None = None,
    mode: str = "frozen",
    fast: bool = True,
    features_dim: int | None = None,
    pixel_extractor: str = "nature",
    frame_stack: int | None = None,
    hyperparams: PPOHyperparams | A2CHyperparams | A3CHyperparams | None = None,
    env_fn: Callable[[int, int | None], VecEnv] | None = None,
    seed: int | None = None,
    device: str = "cpu",
    verbose: int = 0,
    tensorboard_log: str | None = None,
    monitor: bool = True,
    **sb3_kwargs: Any,
) -> BaseAlgorithm:
    """An SB3 agent seeing ``env`` through a pretrained encoder (or pixels).

    Args:
        algo: ``"ppo"``, ``"a2c"`` or ``"a3c"`` (:class:`~agents.a3c.A3C`).
        env: SB3 ``VecEnv`` of ``uint8`` images in ``[0, 255]``, ``(H, W, C * k)`` (e.g.
            ``envs.make_vec(env_id, n, frame_stack=k)``) or ``(C * k, H, W)``: ``k >= 1``
            frames stacked along the channels, oldest first.
        encoder: Representation checkpoint: its path, or a
            :class:`~representations.checkpoint.Checkpoint` already read (then not read again:
            the checks, the encoding wrapper and the extractor all use it); required for every
            mode but ``"pixels"``. The encoder sees single frames; the policy sees the ``k``
            latents concatenated.
        mode: ``"frozen"``, ``"finetune"``, ``"scratch"`` or ``"pixels"`` (a CNN baseline on
            the whole stack, see ``pixel_extractor``).
        fast: With ``mode="frozen"``: encode in a ``VecEnv`` wrapper and train an MLP on latents
            (``True``) or run the frozen encoder inside the policy (``False``). Ignored otherwise.
        features_dim: Encoder modes: size of a ``Linear + ReLU`` projection of the stacked
            latents (``None``: the latents are the features). ``"pixels"``: the CNN's output
            (``None``: NatureCNN's 512, IMPALA-CNN's 256).
        pixel_extractor: ``mode="pixels"`` only: ``"nature"`` (SB3's NatureCNN) or
            ``"impala"`` (:class:`~agents.impala.ImpalaCNN`, the Procgen paper's network; pair
            it with :data:`agents.hyperparams.PROCGEN_PPO`).
        frame_stack: ``k``. ``None``: the env's ``frame_stack`` attribute if it has one, else
            inferred from the channels (a multiple of the encoder's). Pass it for grayscale
            encoders, whose channel count cannot tell 3 frames from 1 RGB frame.
        hyperparams: Typed hyperparameters of ``algo`` (:mod:`agents.hyperparams`); explicit
            ``sb3_kwargs`` override them.
        env_fn: ``algo="a3c"`` only, and required there: ``env_fn(rank, seed) -> VecEnv``,
            each worker's envs, the same kind as ``env`` (e.g.
            :class:`agents.a3c.WorkerEnvs`); picklable. Its envs are built once here (worker
            0's) and checked against the model's spaces, so a mismatch fails before any worker
            process starts.
        seed: Seed of SB3's RNGs and of the env.
        device: Torch device of the policy (and of the wrapper's encoder).
        verbose: SB3 verbosity.
        tensorboard_log: SB3 TensorBoard directory.
        monitor: Wrap ``env`` in a ``VecMonitor`` (episode returns in the logs) unless it or its
            envs are monitored already.
        **sb3_kwargs: Passed to the algorithm (``n_steps``, ``batch_size``, ``policy_kwargs``,
            ...). ``policy_kwargs`` are merged with the ones the mode needs.

    Returns:
        The model; ``model.reprl_info`` records algo, mode, fast, frame_stack and encoder.

    Raises:
        ReprlError: Unknown algo, mode or pixel extractor (listing the valid ones); encoder
            missing for an encoder mode or given for ``"pixels"``; ``pixel_extractor`` other
            than ``"nature"`` with another mode; env observations that do not match the
            encoder's input (shape, channels, frame stack, dtype/range); unknown or reserved
            SB3 kwargs; hyperparameters of another algorithm; a PPO ``batch_size`` that does
            not divide ``n_steps * n_envs``; ``policy_kwargs`` that clash with the mode;
            A3C: no ``env_fn`` (or one for another algo), ``n_workers`` outside ``[1,
            cores]``, ``env_fn`` envs whose spaces differ from the model's.
        TypeError: ``env`` is not a ``VecEnv``.
        CheckpointError: ``encoder`` is not a representation checkpoint.
        MissingFileError: ``encoder`` does not exist.
    """
    algo_cls = _algo_class(algo)
    _check_arguments(
        algo,
        algo_cls,
        env,
        encoder=encoder,
        mode=mode,
        pixel_extractor=pixel_extractor,
        env_fn=env_fn,
    )
    features_dim = check_features_dim(features_dim)
    frame_stack = check_frame_stack(frame_stack)
    if frame_stack is None:
        frame_stack = env_frame_stack(env)
    sb3_kwargs = _with_hyperparams(algo, algo_cls, hyperparams, sb3_kwargs)
    _check_sb3_kwargs(algo_cls, sb3_kwargs)
    policy_kwargs = dict(sb3_kwargs.pop("policy_kwargs", None) or {})
    _check_policy_kwargs(policy_kwargs, mode, features_dim, pixel_extractor)
    if issubclass(algo_cls, PPO):
        check_ppo_batch(
            _sb3_default(algo_cls, sb3_kwargs, "n_steps"),
            env.num_envs,
            _sb3_default(algo_cls, sb3_kwargs, "batch_size"),
        )
    ckpt = None
    if mode == "pixels":
        _check_pixel_space(env.observation_space, pixel_extractor, frame_stack)
    else:
        ckpt = open_encoder(encoder)  # the one read of the file (none if already open)
        spec = _encoder_spec(ckpt, encoder)
        frame_stack = check_image_space(
            env.observation_space, spec, frame_stack=frame_stack
        ).frame_stack

    if monitor and not is_monitored(env):
        env = VecMonitor(env)
    fast = bool(fast) and mode == "frozen"
    policy, env = _policy(
        env,
        ckpt,
        policy_kwargs,
        mode=mode,
        fast=fast,
        features_dim=features_dim,
        pixel_extractor=pixel_extractor,
        frame_stack=frame_stack,
        device=device,
    )
    model = _build(
        algo_cls,
        policy,
        env,
        policy_kwargs,
        ckpt,
        seed=seed,
        device=device,
        verbose=verbose,
        tensorboard_log=tensorboard_log,
        **({"env_fn": env_fn} if env_fn is not None else {}),
        **sb3_kwargs,
    )
    setattr(
        model,
        INFO_ATTR,
        {
            "format": INFO_FORMAT,
            "algo": _algo_name(model),
            "mode": mode,
            "fast": fast,
            "frame_stack": frame_stack,
            "encoder": None if encoder is None else os.path.abspath(encoder),
            "exported": False,
        },
    )
    if isinstance(model, A3C):
        model.check_worker_envs()
    return model


def _algo_name_of(algo_cls: type[BaseAlgorithm]) -> str:
    return next(name for name, cls in ALGOS.items() if cls is algo_cls)


def _info(model: BaseAlgorithm) -> dict[str, Any]:
    info = dict(getattr(model, INFO_ATTR, None) or {})
    info.setdefault("format", INFO_FORMAT)
    info["algo"] = _algo_name(model)
    return info


_MOVED = {
    "save_agent": "agents.saving",
    "load_agent": "agents.saving",
    "agent_info": "agents.saving",
    "agent_algo": "agents.saving",
    "export_pixel_agent": "agents.export",
}


def __getattr__(name: str) -> Any:
    """Names that moved out of this module stay importable from it (PEP 562)."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'agents.factory' has no attribute {name!r}")
