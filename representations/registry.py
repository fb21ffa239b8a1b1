"""Name -> class registry of representations.

Methods register themselves with the :func:`register` decorator when their module is imported;
``import representations`` imports every built-in method.

Example:
    >>> from representations import make_representation
    >>> vae = make_representation("beta_vae", latent_dim=10, beta=4.0)
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

from envs.errors import ReprlError
from representations.base import Representation

_REGISTRY: dict[str, type[Representation]] = {}

R = TypeVar("R", bound=type[Representation])


def register(cls: R) -> R:
    """Class decorator adding a :class:`Representation` subclass under ``cls.name``.

    Raises:
        TypeError: If ``cls`` is not a Representation subclass or has no ``name``.
        ValueError: If another class already holds the name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Representation)):
        raise TypeError(f"register expects a Representation subclass, got {cls!r}")
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__qualname__} must define a non-empty class attribute `name`")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"representation name {name!r} already registered by "
            f"{existing.__module__}.{existing.__qualname__}"
        )
    _REGISTRY[name] = cls
    return cls


def available() -> list[str]:
    """Sorted names of all registered representations."""
    return sorted(_REGISTRY)


def get_class(name: str) -> type[Representation]:
    """The class registered under ``name``.

    Raises:
        ReprlError: For an unknown name, listing the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ReprlError(
            f"unknown representation {name!r}; known: {', '.join(available()) or '(none)'}"
        ) from None


def check_config(name: str, cfg: Mapping[str, Any]) -> type[Representation]:
    """The class registered under ``name``, after checking ``cfg``'s keys against it.

    Nothing is built; values are checked by the constructor.

    Args:
        name: Registry name.
        cfg: Constructor keyword arguments.

    Returns:
        The registered class.

    Raises:
        ReprlError: For an unknown name (listing the known ones) or unknown config keys
            (listing the accepted ones).
    """
    cls = get_class(name)
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted = [k for k, p in params.items() if k != "self" and p.kind is not p.VAR_POSITIONAL]
        unknown = sorted(set(cfg) - set(accepted))
        if unknown:
            raise ReprlError(
                f"{name}: unknown config keys {unknown}; accepted: {', '.join(accepted)}"
            )
    return cls


def make_representation(name: str, **cfg: Any) -> Representation:
    """Build a fresh (untrained) representation.

    Args:
        name: Registry name, e.g. ``"beta_vae"``, ``"beta_vae_dae"``, ``"dae"``.
        **cfg: Constructor keyword arguments; none gives the 64x64 RGB default.

    Returns:
        The model, in training mode, on the CPU.

    Raises:
        ReprlError: For an unknown name (listing the known ones) or an invalid config.
    """
    return check_config(name, cfg)(**cfg)
