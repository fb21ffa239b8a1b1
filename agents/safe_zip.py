"""Agent zips that open without unpickling anything: reprl's safe form of an SB3 zip.

An SB3 zip stores every attribute that is not plain JSON (the spaces, the policy class, the
schedules, ``policy_kwargs`` holding classes) as a base64 cloudpickle blob in its ``data``
member, and SB3's ``load`` unpickles them: opening a stranger's zip can run any code.
reprl's safe form is the same SB3 zip (``PPO.load`` still opens it) plus one more member,
:data:`SAFE_MEMBER`: a JSON description of each of those attributes (spaces as their bounds,
classes by qualified name, schedules by kind and numbers). :func:`load_model` never touches a
pickle blob: it rebuilds the attributes from that JSON, resolves every class through an
allow-list (:func:`resolve_class`), builds the model as SB3's ``load`` does and reads the
weights with ``torch.load(weights_only=True)``.

A zip without :data:`SAFE_MEMBER` whose ``data`` holds pickles (any plain SB3 zip, reprl's
agents saved before the safe form, such as the 0.1.0 fixtures) is refused by
:func:`load_model` with :class:`PickleRefused`, unless the caller opts in
(``trust_pickle=True``); :func:`convert_zip` turns such a trusted zip into the safe form once.

>>> from agents.safe_zip import load_model, convert_zip
>>> convert_zip("downloaded.zip", "safe.zip", trust_pickle=True)   # you trust its source
>>> model = load_model(PPO, "safe.zip")                             # no pickle, ever
"""

from __future__ import annotations

import collections
import importlib
import io
import json
import math
import os
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from envs.errors import ReprlError

#: Zip member holding the JSON description of every attribute SB3 pickled.
SAFE_MEMBER = "reprl_model.json"
#: Version of :data:`SAFE_MEMBER`'s record.
SAFE_FORMAT = 1
#: The opt-in named in every refusal.
OPT_IN = "--trust-pickle on the command line, trust_pickle=True in the API"

#: Attributes that may be left out of the safe description (they are rebuilt as SB3 rebuilds
#: them when missing: episode buffers at the next ``learn``, last observations at a reset).
DEFAULTABLE: frozenset[str] = frozenset(
    {
        "_last_obs",
        "_last_original_obs",
        "_last_episode_starts",
        "ep_info_buffer",
        "ep_success_buffer",
        "action_noise",
        "rollout_buffer_class",
    }
)

#: Modules whose classes :func:`resolve_class` may import (by prefix).
ALLOWED_MODULES: tuple[str, ...] = (
    "stable_baselines3.",
    "sb3_contrib.",
    "agents.",
    "torch.nn.",
    "torch.optim.",
)

# Largest array (elements) described inline; bigger ones (a last observation batch) are left
# to their default when they may be.
_MAX_INLINE = 4096
_REGISTERED: dict[str, type] = {}


class PickleRefused(ReprlError):
    """An agent zip that can only be opened by unpickling, and no opt-in was given."""


def _allowed_bases() -> tuple[type, ...]:
    from stable_baselines3.common.buffers import BaseBuffer
    from stable_baselines3.common.policies import BasePolicy
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    return (BasePolicy, BaseFeaturesExtractor, BaseBuffer, torch.nn.Module, torch.optim.Optimizer)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_safe_class(cls: type) -> type:
    """Allow a class of your own (a custom features extractor or policy) in safe zips.

    Classes of stable-baselines3, sb3-contrib, reprl's ``agents``, ``torch.nn`` and
    ``torch.optim`` are allowed already. Register before saving and before loading (usable as
    a class decorator).

    Args:
        cls: A subclass of an SB3 policy, features extractor or buffer, a ``torch.nn.Module``
            or a ``torch.optim.Optimizer``.

    Returns:
        ``cls``.

    Raises:
        ReprlError: ``cls`` is none of those.
    """
    if not (isinstance(cls, type) and issubclass(cls, _allowed_bases())):
        raise ReprlError(
            f"register_safe_class: expected a policy, features extractor, buffer, torch module "
            f"or optimizer class, got {cls!r}"
        )
    _REGISTERED[_qualname(cls)] = cls
    return cls


def resolve_class(name: str, where: str = "class") -> type:
    """The class a safe zip names, from the allow-list (nothing else is imported).

    Args:
        name: ``"module.QualName"``, as :func:`describe` wrote it.
        where: What the class is for, for the message.

    Returns:
        The class.

    Raises:
        ReprlError: A module outside :data:`ALLOWED_MODULES` (and not registered with
            :func:`register_safe_class`), a missing name, or not an allowed kind of class.
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    if not isinstance(name, str) or not name.startswith(ALLOWED_MODULES):
        raise ReprlError(
            f"{where}: expected a class of {', '.join(p.rstrip('.') for p in ALLOWED_MODULES)} "
            f"(or one registered with agents.safe_zip.register_safe_class), got {name!r}"
        )
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
        module_name = ".".join(parts[:i])
        if not module_name.startswith(ALLOWED_MODULES) and module_name + "." not in ALLOWED_MODULES:
            break
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        if isinstance(obj, type) and issubclass(obj, _allowed_bases()):
            return obj
        break
    raise ReprlError(f"{where}: expected an allowed policy/module/optimizer class, got {name!r}")


# --- JSON descriptions -------------------------------------------------------------------------
def _number(x: float) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else repr(x)  # 'inf', '-inf', 'nan'


def _array(a: np.ndarray) -> Any:
    """A Box bound: one number if uniform, else the nested list (non-finite as strings)."""
    a = np.asarray(a)
    flat = a.reshape(-1)
    floating = np.issubdtype(a.dtype, np.floating)
    if flat.size and (np.all(flat == flat[0]) or (floating and np.all(np.isnan(flat)))):
        v = flat[0]
        return int(v) if np.issubdtype(a.dtype, np.integer) else _number(v)
    if np.issubdtype(a.dtype, np.integer):
        return a.tolist()
    return np.vectorize(_number, otypes=[object])(a).tolist()


def _unarray(v: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        return np.broadcast_to(np.array(v, dtype=dtype), shape).copy()
    a = np.array(v, dtype=object)
    a = np.vectorize(float, otypes=[np.float64])(a) if a.size else a.astype(np.float64)
    return np.broadcast_to(a.astype(dtype), shape).copy()


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """A JSON description of a gymnasium space (Box, Discrete, MultiDiscrete, MultiBinary,
    Dict, Tuple).

    Raises:
        ReprlError: Another kind of space.
    """
    s = gym.spaces
    if isinstance(space, s.Box):
        return {
            "space": "Box",
            "shape": [int(x) for x in space.shape],
            "dtype": str(space.dtype),
            "low": _array(space.low),
            "high": _array(space.high),
        }
    if isinstance(space, s.Discrete):
        return {"space": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, s.MultiDiscrete):
        return {
            "space": "MultiDiscrete",
            "nvec": np.asarray(space.nvec).tolist(),
            "start": np.asarray(space.start).tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, s.MultiBinary):
        return {"space": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, s.Dict):
        return {"space": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    if isinstance(space, s.Tuple):
        return {"space": "Tuple", "spaces": [space_to_json(v) for v in space.spaces]}
    raise ReprlError(
        f"safe agent zip: expected a Box, Discrete, MultiDiscrete, MultiBinary, Dict or Tuple "
        f"space, got {space!r}"
    )


def space_from_json(d: dict[str, Any]) -> gym.Space:
    """The space :func:`space_to_json` described.

    Raises:
        ReprlError: Not such a description.
    """
    s = gym.spaces
    try:
        kind = d["space"]
        if kind == "Box":
            shape, dtype = tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"])
            low, high = _unarray(d["low"], shape, dtype), _unarray(d["high"], shape, dtype)
            return s.Box(low, high, shape, dtype)
        if kind == "Discrete":
            return s.Discrete(int(d["n"]), start=int(d["start"]))
        if kind == "MultiDiscrete":
            return s.MultiDiscrete(
                np.asarray(d["nvec"]), dtype=np.dtype(d["dtype"]), start=np.asarray(d["start"])
            )
        if kind == "MultiBinary":
            return s.MultiBinary(d["n"])
        if kind == "Dict":
            return s.Dict({k: space_from_json(v) for k, v in d["spaces"].items()})
        if kind == "Tuple":
            return s.Tuple([space_from_json(v) for v in d["spaces"]])
    except ReprlError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ReprlError(f"safe agent zip: expected a space description, got {d!r} ({e})") from None
    raise ReprlError(f"safe agent zip: expected a known space kind, got {d.get('space')!r}")


def _schedule_to_json(fn: Any, progress: float) -> dict[str, Any]:
    from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

    inner = fn.value_schedule if isinstance(fn, FloatSchedule) else fn
    if isinstance(inner, ConstantSchedule):
        return {"schedule": "constant", "value": _number(inner.val)}
    if isinstance(inner, LinearSchedule):
        return {
            "schedule": "linear",
            "start": _number(inner.start),
            "end": _number(inner.end),
            "end_fraction": _number(inner.end_fraction),
        }
    # a function of its own (a lambda, a closure): its value where training stopped
    return {"schedule": "constant", "value": _number(fn(progress)), "approximates": repr(fn)}


def _schedule_from_json(d: dict[str, Any]) -> Callable[[float], float]:
    from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

    if d["schedule"] == "constant":
        return FloatSchedule(ConstantSchedule(float(d["value"])))
    if d["schedule"] == "linear":
        return FloatSchedule(
            LinearSchedule(float(d["start"]), float(d["end"]), float(d["end_fraction"]))
        )
    raise ReprlError(f"safe agent zip: expected a constant or linear schedule, got {d!r}")


def _is_schedule(value: Any) -> bool:
    from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

    return isinstance(value, (FloatSchedule, ConstantSchedule, LinearSchedule))


def value_to_json(value: Any, where: str, *, progress: float = 1.0) -> Any:
    """A JSON description of an attribute SB3 would pickle.

    Plain JSON stays as it is; classes (allow-listed), spaces, SB3 schedules, small arrays,
    numpy scalars, tuples, deques and ``torch.device`` are tagged ``{":safe:": kind, ...}``.

    Args:
        value: The attribute's value.
        where: Its name, for the message.
        progress: The model's remaining progress (the value of a schedule SB3 cannot name).

    Raises:
        ReprlError: Something with no safe description (the message names ``where``).
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {":safe:": "float", "value": repr(value)}
    if isinstance(value, np.generic):
        return value_to_json(value.item(), where)
    if isinstance(value, type):
        return _class_to_json(value, where)
    if isinstance(value, gym.Space):
        return {":safe:": "space", "space": space_to_json(value)}
    if _is_schedule(value) or (callable(value) and where.endswith(("schedule", "rate", "range"))):
        return {":safe:": "schedule", **_schedule_to_json(value, progress)}
    if isinstance(value, torch.device):
        return {":safe:": "device", "value": str(value)}
    if isinstance(value, np.ndarray):
        return _ndarray_to_json(value, where)
    return _container_to_json(value, where)


def _class_to_json(value: type, where: str) -> dict[str, Any]:
    """An allow-listed, importable class by its qualified name (:func:`value_to_json`)."""
    if not issubclass(value, _allowed_bases()):
        raise ReprlError(f"{where}: expected an allowed class, got {value!r}")
    name = _qualname(value)
    if name not in _REGISTERED and resolve_class(name, where) is not value:
        raise ReprlError(f"{where}: expected an importable class, got {value!r}")
    return {":safe:": "class", "name": name}


def _ndarray_to_json(value: np.ndarray, where: str) -> dict[str, Any]:
    """A small array of numbers, inline (:func:`value_to_json`)."""
    if value.size > _MAX_INLINE or value.dtype == object:
        raise ReprlError(f"{where}: an array of {value.size} elements is not described")
    return {":safe:": "ndarray", "dtype": str(value.dtype), "value": value.tolist()}


def _container_to_json(value: Any, where: str) -> Any:
    """A deque, tuple, list or string-keyed dict, item by item (:func:`value_to_json`); the
    refusal of anything else."""
    if isinstance(value, collections.deque):
        items = [value_to_json(v, f"{where}[]") for v in value]
        return {":safe:": "deque", "maxlen": value.maxlen, "items": items}
    if isinstance(value, tuple):
        return {":safe:": "tuple", "items": [value_to_json(v, f"{where}[]") for v in value]}
    if isinstance(value, list):
        return [value_to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ReprlError(f"{where}: expected string keys, got {list(value)}")
        return {k: value_to_json(v, f"{where}.{k}") for k, v in value.items()}
    raise ReprlError(
        f"{where}: no safe (JSON) description of a {type(value).__name__}; expected JSON "
        "values, allowed classes, spaces, SB3 schedules or small arrays"
    )


def value_from_json(value: Any, where: str) -> Any:
    """The attribute :func:`value_to_json` described (classes through :func:`resolve_class`)."""
    if isinstance(value, list):
        return [value_from_json(v, where) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(":safe:")
    if kind is None:
        return {k: value_from_json(v, f"{where}.{k}") for k, v in value.items()}
    try:
        if kind == "class":
            return resolve_class(value["name"], where)
        if kind == "space":
            return space_from_json(value["space"])
        if kind == "schedule":
            return _schedule_from_json(value)
        if kind == "float":
            return float(value["value"])
        if kind == "device":
            return torch.device(value["value"])
        if kind == "ndarray":
            return np.array(value["value"], dtype=np.dtype(value["dtype"]))
        if kind == "deque":
            items = [value_from_json(v, where) for v in value["items"]]
            return collections.deque(items, maxlen=value["maxlen"])
        if kind == "tuple":
            return tuple(value_from_json(v, where) for v in value["items"])
    except ReprlError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ReprlError(f"safe agent zip {where}: expected a {kind} description ({e})") from None
    raise ReprlError(f"safe agent zip {where}: unknown kind {kind!r}")


# --- reading and writing zips ------------------------------------------------------------------
def _serialized(entry: Any) -> bool:
    return isinstance(entry, dict) and ":serialized:" in entry


def read_data(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The zip's raw ``data`` JSON (pickle blobs left as they are) and its
    :data:`SAFE_MEMBER` record (None when absent). Nothing is unpickled.

    Raises:
        ReprlError: Not a zip with a JSON ``data`` member.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "data" not in names:
                raise ReprlError(f"expected an SB3 agent zip, got {path} (no 'data' member)")
            data = json.loads(archive.read("data"))
            safe = json.loads(archive.read(SAFE_MEMBER)) if SAFE_MEMBER in names else None
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, EOFError, OSError) as e:
        raise ReprlError(f"expected an SB3 agent zip, got {path} ({e})") from None
    if not isinstance(data, dict) or not (safe is None or isinstance(safe, dict)):
        raise ReprlError(f"expected an SB3 agent zip, got {path} (data is not a JSON object)")
    return data, safe


def pickled_entries(path: str | os.PathLike[str]) -> list[str]:
    """The names of the ``data`` entries stored as pickles (what SB3's ``load`` unpickles)."""
    data, _ = read_data(path)
    return sorted(k for k, v in data.items() if _serialized(v))


def is_safe(path: str | os.PathLike[str]) -> bool:
    """Whether the zip opens without pickle (it has a :data:`SAFE_MEMBER` record)."""
    return read_data(path)[1] is not None


def refusal(path: str | os.PathLike[str], keys: list[str]) -> PickleRefused:
    """The one-line refusal of a zip that only pickle can open."""
    first = ("observation_space", "action_space", "policy_class", "policy_kwargs")
    keys = [k for k in first if k in keys] + [k for k in keys if k not in first]
    shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
    return PickleRefused(
        f"{path}: refusing to unpickle an agent zip: its {shown} are stored as pickles, which "
        f"can run arbitrary code when loaded; expected reprl's safe form. If you trust its "
        f"source, opt in ({OPT_IN}), or convert it once: reprl convert-agent {path} SAFE.zip "
        "--trust-pickle"
    )


def _safe_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The model attributes of a safe zip: plain JSON entries as they are, pickled ones from
    :data:`SAFE_MEMBER` (or left out where :data:`DEFAULTABLE`)."""
    data, safe = read_data(path)
    if safe is None:
        raise refusal(path, sorted(k for k, v in data.items() if _serialized(v)))
    if safe.get("format") != SAFE_FORMAT or not isinstance(safe.get("attributes"), dict):
        raise ReprlError(
            f"{path}: {SAFE_MEMBER}: expected format {SAFE_FORMAT} with 'attributes', got "
            f"format {safe.get('format')!r}"
        )
    described = safe["attributes"]
    out: dict[str, Any] = {}
    for key, entry in data.items():
        if key in described:
            out[key] = value_from_json(described[key], key)
        elif not _serialized(entry):
            out[key] = entry
        elif key not in DEFAULTABLE:
            raise ReprlError(
                f"{path}: {SAFE_MEMBER}: expected a description of {key!r} (stored only as a "
                "pickle)"
            )
    return out


def _read_weights(path: str | os.PathLike[str], device: str | torch.device) -> tuple[dict, Any]:
    """``*.pth`` members through ``torch.load(weights_only=True)``: (state dicts, variables)."""
    params: dict[str, Any] = {}
    variables = None
    name = "?"
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.endswith(".pth"):
                    continue
                with archive.open(name) as f:
                    obj = torch.load(io.BytesIO(f.read()), map_location=device, weights_only=True)
                if name in ("pytorch_variables.pth", "tensors.pth"):
                    variables = obj
                else:
                    params[name[: -len(".pth")]] = obj
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
        raise ReprlError(f"{path}: expected torch weights in the agent zip ({e})") from None
    except pickle.UnpicklingError as e:  # weights-only loading takes only tensors, containers
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        why = f"it names {m[1]}" if m else " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split())
        raise ReprlError(
            f"{path}: {name}: refusing torch weights that are not plain tensors "
            f"(torch.load weights_only=True: {why[:160]}); expected state dicts of tensors"
        ) from None
    if "policy" not in params:
        raise ReprlError(f"{path}: expected policy.pth in the agent zip, got {sorted(params)}")
    return params, variables


def read_zip(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    *,
    trust_pickle: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """``(data, params, pytorch_variables)`` of an agent zip, as SB3's ``load_from_zip_file``
    gives them, without pickle for a safe zip (a drop-in for checkpoint readers such as
    :meth:`agents.a3c.A3C.load_checkpoint`).

    Raises:
        PickleRefused: A zip that needs unpickling, without ``trust_pickle``.
        ReprlError: As :func:`load_model`.
    """
    _, safe = read_data(path)
    if safe is None:
        keys = pickled_entries(path)
        if keys and not trust_pickle:
            raise refusal(path, keys)
        from stable_baselines3.common.save_util import load_from_zip_file

        return load_from_zip_file(path, device=device)
    params, variables = _read_weights(path, device)
    return _safe_data(path), params, variables


def load_model(
    cls: type[BaseAlgorithm],
    path: str | os.PathLike[str],
    env: Any = None,
    device: str | torch.device = "auto",
    *,
    trust_pickle: bool = False,
) -> BaseAlgorithm:
    """Load an agent zip as ``cls``, without pickle unless ``trust_pickle``.

    A safe zip (with :data:`SAFE_MEMBER`) is rebuilt as SB3's ``load`` rebuilds it (spaces
    checked against ``env``, ``_setup_model``, exact state dicts), from JSON and weights-only
    tensors; its pickle blobs are never read, even with ``trust_pickle``. Any other zip is
    handed to ``cls.load`` (SB3's unpickling) only when ``trust_pickle`` is True.

    Args:
        cls: The algorithm class (PPO, A2C, :class:`agents.a3c.A3C`, ...).
        path: The zip.
        env: Optional env (SB3's ``load`` argument).
        device: Torch device.
        trust_pickle: Open zips that need unpickling (only for zips from a source you trust).

    Returns:
        The model.

    Raises:
        PickleRefused: A zip that needs unpickling, without ``trust_pickle`` (nothing of it
            was unpickled).
        ReprlError: A malformed safe record, a class outside the allow-list, weights that are
            not plain tensors.
    """
    _, safe = read_data(path)
    if safe is None:
        keys = pickled_entries(path)
        if keys and not trust_pickle:
            raise refusal(path, keys)
        return cls.load(path, env=env, device=device)
    from stable_baselines3.common.save_util import recursive_setattr
    from stable_baselines3.common.utils import check_for_correct_spaces, get_device

    device = get_device(device)
    data = _safe_data(path)
    params, variables = _read_weights(path, device)
    algo = safe.get("algo_class")
    if algo is not None and algo != _qualname(cls):
        saved = resolve_algo(algo)
        if not (issubclass(cls, saved) or issubclass(saved, cls)):
            raise ReprlError(f"{path}: expected a {cls.__name__} agent, got a zip of {algo}")
    for key in ("policy_class", "observation_space", "action_space"):
        if key not in data:
            raise ReprlError(f"{path}: {SAFE_MEMBER}: expected {key!r}, got none")
    data.get("policy_kwargs", {}).pop("device", None)
    if env is not None:
        env = cls._wrap_env(env, data.get("verbose", 0))
        check_for_correct_spaces(env, data["observation_space"], data["action_space"])
        data["_last_obs"] = None
        data["n_envs"] = env.num_envs
    model = cls(policy=data["policy_class"], env=env, device=device, _init_setup_model=False)
    model.__dict__.update(data)
    model._setup_model()
    model.set_parameters(params, exact_match=True, device=device)
    for name, value in (variables or {}).items():
        if value is not None:
            recursive_setattr(model, f"{name}.data", value.data)
    if model.use_sde:
        model.policy.reset_noise()
    return model


def resolve_algo(name: str) -> type:
    """An algorithm class by qualified name (SB3's, sb3-contrib's or reprl's)."""
    if not isinstance(name, str) or not name.startswith(ALLOWED_MODULES[:3]):
        raise ReprlError(f"algorithm: expected an SB3, sb3-contrib or reprl class, got {name!r}")
    module, _, attr = name.rpartition(".")
    obj = getattr(importlib.import_module(module), attr, None)
    if not (isinstance(obj, type) and issubclass(obj, BaseAlgorithm)):
        raise ReprlError(f"algorithm: expected an SB3 algorithm class, got {name!r}")
    return obj


def describe(model: BaseAlgorithm, data: dict[str, Any]) -> dict[str, Any]:
    """The :data:`SAFE_MEMBER` record of ``model``: a JSON description of every ``data``
    entry SB3 pickled.

    Args:
        model: The model just saved.
        data: The ``data`` JSON its ``save`` wrote.

    Raises:
        ReprlError: An attribute that has no safe description and cannot be defaulted.
    """
    progress = float(getattr(model, "_current_progress_remaining", 1.0))
    attributes: dict[str, Any] = {}
    for key, entry in data.items():
        if not _serialized(entry):
            continue
        value = getattr(model, key, None)
        try:
            attributes[key] = value_to_json(value, key, progress=progress)
        except ReprlError:
            if key not in DEFAULTABLE:
                raise
    return {"format": SAFE_FORMAT, "algo_class": _qualname(type(model)), "attributes": attributes}


def write_safe(model: BaseAlgorithm, file: str | os.PathLike[str] | IO[bytes]) -> None:
    """``model.save(file)`` plus :data:`SAFE_MEMBER`: an SB3 zip that also opens without pickle.

    Args:
        model: An SB3 algorithm.
        file: A path, or a binary file opened for writing and reading (``"xb+"``/``"wb+"``)
            or a fresh path; the caller makes it atomic.

    Raises:
        ReprlError: An attribute that has no safe description (:func:`describe`).
    """
    buf = io.BytesIO()
    model.save(buf)
    buf.seek(0)
    with zipfile.ZipFile(buf) as archive:
        data = json.loads(archive.read("data"))
    record = describe(model, data)
    with zipfile.ZipFile(buf, "a") as archive:
        archive.writestr(SAFE_MEMBER, json.dumps(record, indent=1, sort_keys=True))
    payload = buf.getvalue()
    if isinstance(file, (str, os.PathLike)):
        Path(file).write_bytes(payload)
    else:
        file.write(payload)


def convert_zip(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    algo_class: type[BaseAlgorithm],
    trust_pickle: bool = False,
) -> Path:
    """Rewrite a trusted SB3 zip in the safe form (unpickles ``src`` once, with the opt-in).

    Every member of ``src`` that SB3 does not write itself (reprl's ``reprl.json``) is kept.

    Args:
        src: The zip to convert (its pickles run: only one you trust).
        dst: Where the safe zip goes (written atomically; must differ from ``src``).
        trust_pickle: Must be True for a zip that needs unpickling.
        algo_class: The algorithm class to load ``src`` as.

    Returns:
        ``dst``.

    Raises:
        PickleRefused: ``src`` needs unpickling and ``trust_pickle`` is False.
    """
    from envs.storage.files import atomic_path

    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ReprlError(f"convert: expected an output other than the input, got {dst} twice")
    model = load_model(algo_class, src, device="cpu", trust_pickle=trust_pickle)
    with zipfile.ZipFile(src) as archive:
        own = {"data", SAFE_MEMBER, "_stable_baselines3_version", "system_info.txt"}
        extra = {
            n: archive.read(n)
            for n in archive.namelist()
            if n not in own and not n.endswith(".pth")
        }
    with atomic_path(dst, durable=True) as tmp:
        with open(tmp, "xb") as f:
            write_safe(model, f)
        if extra:
            with zipfile.ZipFile(tmp, "a") as archive:
                for name, blob in extra.items():
                    archive.writestr(name, blob)
    return dst
