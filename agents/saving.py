"""Save and load agents as self-contained SB3 zips, with metadata read without loading.

:func:`save_agent` writes an SB3 zip atomically that plain ``PPO.load`` / ``A2C.load`` opens in
a fresh process without the encoder checkpoint: the extractor's kwargs embed the encoder's
header (and no path), the weights are in the zip. A fast-path agent is saved as its
pixel-space export (:func:`agents.export.export_pixel_agent`), so ``PPO.load(zip).predict(obs)``
acts as the latent agent did on the env's (stacked) pixel observations. The zip also holds
``reprl.json`` (:data:`INFO_MEMBER`): metadata that :func:`agent_info` reads without loading the
model; SB3's ``load`` reads only ``data``, ``*.pth`` and its version file, so it ignores it.

Safe by default: :func:`save_agent` writes the safe form of :mod:`agents.safe_zip` (the SB3
zip plus a JSON description of everything SB3 pickles), and :func:`load_agent` opens it with no
pickle at all. A zip that only unpickling can open (a plain SB3 zip, an older reprl zip
without the safe record) is refused (:class:`~agents.safe_zip.PickleRefused`) unless
``trust_pickle=True``; :func:`convert_agent` rewrites such a trusted zip in the safe form once.

Algorithm detection in :func:`load_agent`: :func:`save_agent` and :func:`~agents.make_agent`
record ``{"algo": "ppo", ...}`` as the model attribute ``reprl_info``, which SB3 stores as plain
JSON in the zip's ``data``; for zips written by plain SB3, a ``clip_range`` entry means PPO, an
``n_workers`` entry A3C (:class:`agents.a3c.A3C` saved with its own ``save``), and ``n_steps``
without either A2C.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from agents.export import export_pixel_agent
from agents.extractor import MissingFileError, PretrainedEncoderExtractor
from agents.factory import ALGOS, INFO_ATTR, INFO_FORMAT, _info
from agents.latent import find_encode_wrapper
from agents.safe_zip import convert_zip, load_model, write_safe
from agents.vecenv import is_monitored
from envs.errors import ReprlError
from envs.storage.files import atomic_path, file_sha256, json_plain, library_version
from representations.checkpoint import load

#: Zip member holding :func:`save_agent`'s JSON metadata (SB3's ``load`` ignores it).
INFO_MEMBER = "reprl.json"


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
    never leaves a half-written file at ``path``. It is in the safe form
    (:func:`agents.safe_zip.write_safe`): :func:`load_agent` opens it without pickle, SB3's
    ``load`` as any SB3 zip. Extractor kwargs are stored with
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
        ReprlError: An attribute with no safe (JSON) description (a custom class not
            registered with :func:`agents.safe_zip.register_safe_class`); ``info`` is not a
            JSON-plain dict, uses the key ``"reprl"`` or names a
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
        info = json_plain(info, "info")
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
                write_safe(target, f)
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
    other SB3 zips, ``clip_range`` in ``data`` means PPO, ``n_workers`` A3C, ``n_steps``
    without them A2C.

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
    if "n_workers" in data and "n_steps" in data:
        return "a3c"
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
    trust_pickle: bool = False,
) -> BaseAlgorithm:
    """Load an SB3 zip written by :func:`save_agent` (or by plain SB3, PPO or A2C, or an A3C).

    Nothing is unpickled unless ``trust_pickle``: a zip of :func:`save_agent` is rebuilt from
    JSON and weights-only tensors (:func:`agents.safe_zip.load_model`); a zip that only
    unpickling can open is refused, in one line naming the risk and the opt-in.

    An A3C loads as :class:`agents.a3c.A3C`: it predicts without its workers; to train it
    further, give it an ``env_fn`` (``model.env_fn = ...``) or rebuild it with
    :func:`agents.make_agent` and :meth:`~agents.a3c.A3C.load_checkpoint`.

    Args:
        path: The zip (``.zip`` is tried when ``path`` has no suffix and does not exist).
        env: Optional ``VecEnv`` of ``uint8`` observations to continue training or evaluate on
            (also for exported fast-path agents: their policy takes the stacked pixels).
        device: Torch device.
        monitor: Wrap ``env`` in a ``VecMonitor`` unless it is (as :func:`make_agent` does).
        trust_pickle: Let SB3 unpickle a zip that is not in the safe form (plain SB3 zips,
            older reprl zips without the safe record): only for zips from a source you trust.

    Returns:
        The model, with ``reprl_info`` when reprl saved it.

    Raises:
        PickleRefused: A zip that needs unpickling, without ``trust_pickle`` (a
            :class:`ReprlError`; nothing of it was unpickled).
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
    if env is not None and monitor and isinstance(env, VecEnv) and not is_monitored(env):
        env = VecMonitor(env)
    return load_model(cls, p, env=env, device=device, trust_pickle=trust_pickle)


def convert_agent(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, trust_pickle: bool = False
) -> Path:
    """Rewrite an agent zip in the safe form, so it opens without pickle from then on.

    ``src`` is loaded once (unpickled, hence ``trust_pickle``: only a zip you trust) and saved
    to ``dst`` as :func:`save_agent` saves (the SB3 zip plus the safe record); its reprl
    metadata (:data:`INFO_MEMBER`) is kept. A zip already in the safe form converts without
    the opt-in.

    Args:
        src: An SB3 agent zip (PPO, A2C, A3C).
        dst: The safe zip to write (atomically); ``.zip`` is appended when it has no suffix.
        trust_pickle: Must be True for a zip that needs unpickling.

    Returns:
        The path written.

    Raises:
        PickleRefused: ``src`` needs unpickling and ``trust_pickle`` is False.
        MissingFileError: No such file.
        ReprlError: Not an SB3 agent zip, or the output is the input.
    """
    p = Path(src)
    if not p.is_file():
        raise MissingFileError(f"agent zip {src} not found")
    cls = ALGOS[agent_algo(p)]
    return convert_zip(p, _zip_path(dst), algo_class=cls, trust_pickle=trust_pickle)
