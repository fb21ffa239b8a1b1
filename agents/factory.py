"""Build, save and load SB3 agents over pretrained encoders.

:func:`make_agent` validates everything it can before building anything (algorithm, mode,
encoder checkpoint, encoder input vs env observations, PPO minibatch size), then builds one of:

==========  =====  ==========================================================================
mode        fast   what is built
==========  =====  ==========================================================================
frozen      True   env wrapped in :class:`~agents.latent.EncodeObservations`; ``MlpPolicy``
                   on latents (the fast path: the encoder runs once per env step)
frozen      False  ``CnnPolicy`` with a frozen :class:`~agents.extractor.PretrainedEncoderExtractor`
finetune    any    ``CnnPolicy`` with a trainable pretrained extractor
scratch     any    ``CnnPolicy`` with the encoder's architecture, randomly initialised
pixels      any    SB3's ``CnnPolicy`` (NatureCNN), no encoder: the usual pixel baseline
==========  =====  ==========================================================================

:func:`save_agent` writes an SB3 zip atomically that plain ``PPO.load`` / ``A2C.load`` opens in
a fresh process without the encoder checkpoint: the extractor's kwargs embed the encoder's
header (and no path), the weights are in the zip. A fast-path agent is exported as the
equivalent pixel-space agent (``CnnPolicy``, frozen extractor, the trained MLP's weights and
optimizer state), so ``PPO.load(zip).predict(obs)`` acts as the latent agent did on the env's
(stacked) pixel observations. The zip also holds ``reprl.json``, metadata read without loading
the model by :func:`agent_info` (SB3 ignores the member).

Temporal context: an env stacking ``k`` frames along the channels gives the encoder agents
``k`` latents per observation (the encoder sees single frames, see
:class:`~agents.extractor.PretrainedEncoderExtractor` and
:class:`~agents.latent.EncodeObservations`); pixel agents run NatureCNN on the whole stack.

Algorithm detection in :func:`load_agent`: :func:`save_agent` and :func:`make_agent` record
``{"algo": "ppo", ...}`` as the model attribute ``reprl_info``, which SB3 stores as plain JSON in
the zip's ``data``; for zips written by plain SB3, a ``clip_range`` entry means PPO, its absence
(with ``n_steps``) A2C.
"""

from __future__ import annotations

import inspect
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, is_vecenv_wrapped

from agents.extractor import (
    LatentProjectionExtractor,
    MissingFileError,
    PretrainedEncoderExtractor,
    check_features_dim,
    check_frame_stack,
    check_image_space,
    check_mode,
    extractor_kwargs,
)
from agents.hyperparams import A2CHyperparams, PPOHyperparams, check_ppo_batch
from agents.latent import EncodeObservations, find_encode_wrapper
from agents.sb3_compat import build_policy, unbuilt_copy
from envs.errors import ReprlError
from envs.storage.files import atomic_path, file_sha256, library_version
from representations.base import InputSpec, Representation, _json_plain
from representations.checkpoint import build_from_header, load, make_header, read_header

#: Algorithms :func:`make_agent` and :func:`load_agent` know, by name.
ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C}
#: Typed hyperparameters of each algorithm (:mod:`agents.hyperparams`).
HYPERPARAMS: dict[str, type] = {"ppo": PPOHyperparams, "a2c": A2CHyperparams}
#: Modes of :func:`make_agent`.
MODES: tuple[str, ...] = ("frozen", "finetune", "scratch", "pixels")
#: Model attribute (stored in the zip's ``data`` as JSON) describing how reprl built the agent.
INFO_ATTR = "reprl_info"
#: Version of the ``reprl_info`` record.
INFO_FORMAT = 1
#: Zip member holding :func:`save_agent`'s JSON metadata (SB3's ``load`` ignores it).
INFO_MEMBER = "reprl.json"

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


def _is_monitored(env: VecEnv) -> bool:
    """Whether episode statistics are recorded already (``VecMonitor`` or per-env ``Monitor``)."""
    return is_vecenv_wrapped(env, VecMonitor) or all(env.env_is_wrapped(Monitor))


def _encoder_spec(encoder: str | os.PathLike[str]) -> InputSpec:
    """Read and check a checkpoint's header (the model it describes builds); its input spec."""
    if not Path(encoder).is_file():
        raise MissingFileError(f"encoder checkpoint {encoder} not found")
    return build_from_header(read_header(encoder), where=str(encoder)).input_spec


def env_frame_stack(env: VecEnv) -> int | None:
    """The ``frame_stack`` a VecEnv advertises (``envs.make_vec(..., frame_stack=k)``), or None."""
    try:
        k = getattr(env, "frame_stack", None)
    except Exception:  # VecEnvWrapper.__getattr__ may raise other errors for unknown names
        return None
    return int(k) if isinstance(k, (int, np.integer)) and not isinstance(k, bool) else None


def make_agent(
    algo: str,
    env: VecEnv,
    *,
    encoder: str | os.PathLike[str] | None = None,
    mode: str = "frozen",
    fast: bool = True,
    features_dim: int | None = None,
    frame_stack: int | None = None,
    hyperparams: PPOHyperparams | A2CHyperparams | None = None,
    seed: int | None = None,
    device: str = "cpu",
    verbose: int = 0,
    tensorboard_log: str | None = None,
    monitor: bool = True,
    **sb3_kwargs: Any,
) -> BaseAlgorithm:
    """An SB3 agent seeing ``env`` through a pretrained encoder (or pixels).

    Args:
        algo: ``"ppo"`` or ``"a2c"``.
        env: SB3 ``VecEnv`` of ``uint8`` images in ``[0, 255]``, ``(H, W, C * k)`` (e.g.
            ``envs.make_vec(env_id, n, frame_stack=k)``) or ``(C * k, H, W)``: ``k >= 1``
            frames stacked along the channels, oldest first.
        encoder: Representation checkpoint path; required for every mode but ``"pixels"``.
            The encoder sees single frames; the policy sees the ``k`` latents concatenated.
        mode: ``"frozen"``, ``"finetune"``, ``"scratch"`` or ``"pixels"`` (NatureCNN baseline
            on the whole stack).
        fast: With ``mode="frozen"``: encode in a ``VecEnv`` wrapper and train an MLP on latents
            (``True``) or run the frozen encoder inside the policy (``False``). Ignored otherwise.
        features_dim: Encoder modes: size of a ``Linear + ReLU`` projection of the stacked
            latents (``None``: the latents are the features). ``"pixels"``: NatureCNN's output.
        frame_stack: ``k``. ``None``: the env's ``frame_stack`` attribute if it has one, else
            inferred from the channels (a multiple of the encoder's). Pass it for grayscale
            encoders, whose channel count cannot tell 3 frames from 1 RGB frame.
        hyperparams: Typed hyperparameters of ``algo`` (:mod:`agents.hyperparams`); explicit
            ``sb3_kwargs`` override them.
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
        ReprlError: Unknown algo or mode (listing the valid ones); encoder missing for an
            encoder mode or given for ``"pixels"``; env observations that do not match the
            encoder's input (shape, channels, frame stack, dtype/range); unknown or reserved
            SB3 kwargs; hyperparameters of another algorithm; a PPO ``batch_size`` that does
            not divide ``n_steps * n_envs``; ``policy_kwargs`` that clash with the mode.
        TypeError: ``env`` is not a ``VecEnv``.
        CheckpointError: ``encoder`` is not a representation checkpoint.
        MissingFileError: ``encoder`` does not exist.
    """
    algo_cls = _algo_class(algo)
    check_mode(mode, MODES)
    if not isinstance(env, VecEnv):
        raise TypeError(
            f"env: expected an SB3 VecEnv (envs.make_vec, DummyVecEnv), got {type(env).__name__}"
        )
    if mode == "pixels" and encoder is not None:
        raise ReprlError(f"encoder: mode 'pixels' uses no encoder, got encoder={encoder!r}")
    if mode != "pixels" and encoder is None:
        raise ReprlError(f"encoder: mode {mode!r} needs an encoder checkpoint, got None")
    features_dim = check_features_dim(features_dim)
    frame_stack = check_frame_stack(frame_stack)
    if frame_stack is None:
        frame_stack = env_frame_stack(env)
    if hyperparams is not None:
        expected = HYPERPARAMS[_algo_name_of(algo_cls)]
        if not isinstance(hyperparams, expected):
            raise ReprlError(
                f"hyperparams: expected {expected.__name__} for algo {algo!r}, got "
                f"{type(hyperparams).__name__}"
            )
        sb3_kwargs = {**hyperparams.to_sb3_kwargs(), **sb3_kwargs}
    _check_sb3_kwargs(algo_cls, sb3_kwargs)
    policy_kwargs = dict(sb3_kwargs.pop("policy_kwargs", None) or {})
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
    if issubclass(algo_cls, PPO):
        check_ppo_batch(
            _sb3_default(algo_cls, sb3_kwargs, "n_steps"),
            env.num_envs,
            _sb3_default(algo_cls, sb3_kwargs, "batch_size"),
        )
    if mode == "pixels":
        space = env.observation_space
        if not is_image_space(space):
            raise ReprlError(
                "observation space: mode 'pixels' (NatureCNN) expects uint8 images "
                f"Box(0, 255, (H, W, C), uint8), got {space}"
            )
        channels = int(min(space.shape))
        if frame_stack is not None and channels % frame_stack:
            raise ReprlError(
                f"frame_stack: expected a divisor of the observation's {channels} channels, "
                f"got {frame_stack}"
            )
    else:
        frame_stack = check_image_space(
            env.observation_space, _encoder_spec(encoder), frame_stack=frame_stack
        ).frame_stack

    if monitor and not _is_monitored(env):
        env = VecMonitor(env)
    fast = bool(fast) and mode == "frozen"
    if fast:
        env = EncodeObservations(env, encoder, device=device, frame_stack=frame_stack)
        policy = "MlpPolicy"
        if features_dim is not None:
            policy_kwargs.update(
                features_extractor_class=LatentProjectionExtractor,
                features_extractor_kwargs={"features_dim": features_dim},
            )
    elif mode == "pixels":
        policy = "CnnPolicy"
        if features_dim is not None:
            policy_kwargs["features_extractor_kwargs"] = {"features_dim": features_dim}
    else:
        policy = "CnnPolicy"
        policy_kwargs.update(
            features_extractor_class=PretrainedEncoderExtractor,
            features_extractor_kwargs=extractor_kwargs(encoder, mode, features_dim, frame_stack),
        )
    model = algo_cls(
        policy,
        env,
        seed=seed,
        device=device,
        verbose=verbose,
        tensorboard_log=tensorboard_log,
        policy_kwargs=policy_kwargs,
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
    return model


def _algo_name_of(algo_cls: type[BaseAlgorithm]) -> str:
    return next(name for name, cls in ALGOS.items() if cls is algo_cls)


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
    header = _json_plain(make_header(encoder, encoder.provenance), "encoder header")
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
    export = unbuilt_copy(model, "CnnPolicy")
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


def _info(model: BaseAlgorithm) -> dict[str, Any]:
    info = dict(getattr(model, INFO_ATTR, None) or {})
    info.setdefault("format", INFO_FORMAT)
    info["algo"] = _algo_name(model)
    return info


def _zip_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path if path.suffix else path.with_name(path.name + ".zip")


def _pixel_target(model: BaseAlgorithm) -> BaseAlgorithm:
    """What :func:`save_agent` writes: ``model``, or its pixel-space export (fast path)."""
    wrapper = find_encode_wrapper(model.get_env())
    if wrapper is not None:
        vec_norm = model.get_vec_normalize_env()
        if vec_norm is not None and vec_norm.norm_obs:
            raise ReprlError(
                "save_agent: cannot export a fast-path agent trained on VecNormalize-d latents "
                "(norm_obs=True): the pixel policy would skip the normalisation; expected "
                "norm_obs=False"
            )
        return export_pixel_agent(
            model, wrapper.encoder, wrapper.pixel_space, frame_stack=wrapper.frame_stack
        )
    info = _info(model)
    if not info.get("fast"):
        return model
    ckpt = info.get("encoder")
    if not (ckpt and Path(ckpt).is_file()):
        raise ReprlError(
            "save_agent: a fast-path agent needs its EncodeObservations env (or its encoder "
            f"checkpoint, recorded as {ckpt!r}) to export the pixel policy; attach it with "
            "model.set_env(EncodeObservations(env, encoder))"
        )
    encoder = load(ckpt)
    c, h, w = encoder.input_spec.shape
    k = int(info.get("frame_stack") or 1)
    space = gym.spaces.Box(0, 255, (h, w, c * k), np.uint8)
    return export_pixel_agent(model, encoder, space, frame_stack=k)


def _metadata(target: BaseAlgorithm, source: BaseAlgorithm, info: dict[str, Any]) -> dict:
    """The JSON record of :data:`INFO_MEMBER`: the caller's ``info`` and a ``"reprl"`` entry."""
    if "reprl" in info:
        raise ReprlError("save_agent info: the key 'reprl' is reserved; expected other keys")
    record = _info(target)
    encoder = None
    ext = getattr(target.policy, "features_extractor", None)
    if isinstance(ext, PretrainedEncoderExtractor):
        header = ext.encoder_header
        encoder = {
            k: header.get(k)
            for k in ("method", "latent_dim", "input_spec", "library_version", "provenance")
        }
        ckpt = _info(source).get("encoder")
        encoder["sha256"] = file_sha256(ckpt) if ckpt and Path(ckpt).is_file() else None
        if record.get("frame_stack") is None:
            record["frame_stack"] = ext.frame_stack
    if "frame_stack" in info and record.get("frame_stack") not in (None, info["frame_stack"]):
        raise ReprlError(
            f"save_agent info: frame_stack {info['frame_stack']!r} disagrees with the agent's: "
            f"expected {record['frame_stack']}"
        )
    auto = {
        "format": INFO_FORMAT,
        "library_version": library_version(),
        "algo": record["algo"],
        "mode": record.get("mode"),
        "trained_on_latents": bool(record.get("fast") or record.get("exported")),
        "frame_stack": record.get("frame_stack"),
        "observation_shape": [int(s) for s in target.observation_space.shape],
        "encoder": encoder,
    }
    return {**info, "reprl": auto}


def save_agent(
    model: BaseAlgorithm, path: str | os.PathLike[str], *, info: dict[str, Any] | None = None
) -> Path:
    """Save an agent as a self-contained SB3 zip, atomically, with JSON metadata.

    The zip is written under a temporary name in the same directory and renamed, so a kill
    never leaves a half-written file at ``path``. Extractor kwargs are stored with
    ``checkpoint=None`` and the encoder's header, so loading never reads the encoder file.

    A fast-path agent (trained on :class:`EncodeObservations`) is saved as its pixel-space
    export (:func:`export_pixel_agent`): its policy takes the stacked pixel observations the
    env gave, so plain SB3 acts as the latent agent did::

        env = envs.make_vec(env_id, n, frame_stack=k)     # the k the agent was trained with
        model = PPO.load("agent.zip")
        actions, _ = model.predict(env.reset(), deterministic=True)

    ``info`` (with what reprl adds under ``"reprl"``: algo, mode, frame stack, observation
    shape, encoder provenance) is stored as the zip member :data:`INFO_MEMBER`; SB3 ignores it,
    :func:`agent_info` reads it.

    Args:
        model: An SB3 agent (typically from :func:`make_agent`).
        path: Destination; ``.zip`` is appended when it has no suffix (as SB3 does).
        info: JSON-plain metadata, e.g. ``{"env_id": ..., "env_kwargs": ..., "frame_stack": 4,
            "grayscale": False, "action_meanings": [...]}``.

    Returns:
        The path written.

    Raises:
        ReprlError: ``info`` is not a JSON-plain dict, uses the key ``"reprl"`` or names a
            ``frame_stack`` other than the agent's; a fast-path agent whose
            :class:`EncodeObservations` env is gone (e.g. loaded without env) and whose encoder
            checkpoint cannot be found, or whose latents are normalised by
            ``VecNormalize(norm_obs=True)``.
    """
    if info is None:
        info = {}
    if not isinstance(info, dict):
        raise ReprlError(f"save_agent info: expected a dict, got {type(info).__name__}")
    try:
        info = _json_plain(info, "info")
    except TypeError as e:
        raise ReprlError(f"save_agent info: expected JSON-plain values, got {e}") from None
    path = _zip_path(path)
    target = _pixel_target(model)
    metadata = _metadata(target, model, info)

    saved_kwargs = target.policy_kwargs
    saved_info = getattr(target, INFO_ATTR, None)
    pk = dict(saved_kwargs)
    if pk.get("features_extractor_class") is PretrainedEncoderExtractor:
        ext = target.policy.features_extractor
        pk["features_extractor_kwargs"] = {
            **pk.get("features_extractor_kwargs", {}),
            "checkpoint": None,
            "encoder_header": ext.encoder_header,
            "frame_stack": ext.frame_stack,
        }
    try:
        target.policy_kwargs = pk
        setattr(target, INFO_ATTR, _info(target))
        with atomic_path(path, durable=True) as tmp:
            with open(tmp, "xb") as f:
                target.save(f)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(INFO_MEMBER, json.dumps(metadata, indent=2, sort_keys=True))
    finally:
        target.policy_kwargs = saved_kwargs
        setattr(target, INFO_ATTR, saved_info)
    return path


def _not_a_zip(path: str | os.PathLike[str], why: object) -> ReprlError:
    return ReprlError(f"expected an SB3 agent zip, got {path} ({why})")


def _read_members(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The zip's ``data`` JSON and its :data:`INFO_MEMBER` JSON (``{}`` when absent)."""
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"agent zip {path} not found")
    try:
        with zipfile.ZipFile(p) as archive:
            names = set(archive.namelist())
            if "data" not in names:
                raise _not_a_zip(path, f"a zip without SB3's 'data' member: {sorted(names)[:5]}")
            data = json.loads(archive.read("data"))
            meta = json.loads(archive.read(INFO_MEMBER)) if INFO_MEMBER in names else {}
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, EOFError) as e:
        raise _not_a_zip(path, e) from None
    except (OSError, zipfile.LargeZipFile) as e:  # a truncated member reads short
        raise _not_a_zip(path, e) from None
    if not isinstance(data, dict) or not isinstance(meta, dict):
        raise _not_a_zip(path, "its 'data' or reprl.json is not a JSON object")
    return data, meta


def agent_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata :func:`save_agent` stored in an agent zip, without loading the model.

    Args:
        path: An SB3 agent zip.

    Returns:
        The ``info`` given to :func:`save_agent`, plus ``"reprl"``: ``{"format",
        "library_version", "algo", "mode", "trained_on_latents", "frame_stack",
        "observation_shape", "encoder"}``. ``{}`` for a zip written without it (by plain SB3
        or by reprl before 0.2).

    Raises:
        ReprlError: Not an SB3 agent zip (``"expected an SB3 agent zip, got ..."``).
        MissingFileError: No such file.
    """
    return _read_members(path)[1]


def agent_algo(path: str | os.PathLike[str]) -> str:
    """The algorithm name (a key of :data:`ALGOS`) of an SB3 zip.

    Reads ``reprl_info["algo"]`` from the zip's ``data`` (written by :func:`save_agent`); for
    other SB3 zips, ``clip_range`` in ``data`` means PPO, ``n_steps`` without it A2C.

    Raises:
        ReprlError: Not an SB3 zip, or an algorithm that cannot be told.
        MissingFileError: No such file.
    """
    data, _ = _read_members(path)
    info = data.get(INFO_ATTR)
    if isinstance(info, dict) and isinstance(info.get("algo"), str):
        algo = info["algo"]
        if algo not in ALGOS:
            raise ReprlError(f"{path}: agent algo: expected one of {list(ALGOS)}, got {algo!r}")
        return algo
    if "clip_range" in data:
        return "ppo"
    if "n_steps" in data:
        return "a2c"
    raise ReprlError(
        f"{path}: cannot tell the algorithm: expected a {INFO_ATTR!r} record or PPO/A2C "
        f"fields, found {sorted(data)}"
    )


def load_agent(
    path: str | os.PathLike[str],
    env: VecEnv | None = None,
    device: str = "cpu",
    *,
    monitor: bool = True,
) -> BaseAlgorithm:
    """Load an SB3 zip written by :func:`save_agent` (or by plain SB3, PPO or A2C).

    Args:
        path: The zip (``.zip`` is tried when ``path`` has no suffix and does not exist).
        env: Optional ``VecEnv`` of ``uint8`` observations to continue training or evaluate on
            (also for exported fast-path agents: their policy takes the stacked pixels).
        device: Torch device.
        monitor: Wrap ``env`` in a ``VecMonitor`` unless it is (as :func:`make_agent` does).

    Returns:
        The model, with ``reprl_info`` when reprl saved it.

    Raises:
        MissingFileError: No such file.
        ReprlError: Not an SB3 agent zip (``"expected an SB3 agent zip, got ..."``) of a known
            algorithm.
        ValueError: Env spaces that do not match (SB3's check).
    """
    p = Path(path)
    if not p.exists() and not p.suffix:
        p = _zip_path(p)
    if not p.is_file():
        raise MissingFileError(f"agent zip {path} not found")
    cls = ALGOS[agent_algo(p)]
    if env is not None and monitor and isinstance(env, VecEnv) and not _is_monitored(env):
        env = VecMonitor(env)
    return cls.load(p, env=env, device=device)
