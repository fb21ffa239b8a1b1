"""A method's configuration as one dataclass, written once.

A method declares its constructor's keyword arguments as the fields of a frozen dataclass
(a :class:`MethodConfig`, whose ``__post_init__`` checks and normalises them) and decorates an
``__init__(self, cfg)`` with :func:`configured`:

>>> @dataclass(frozen=True)
... class DAEConfig(MethodConfig):
...     latent_dim: int = 100
>>> class DAE(Representation):
...     @configured(DAEConfig)
...     def __init__(self, cfg: DAEConfig) -> None:
...         super().__init__(input_spec=..., latent_dim=cfg.latent_dim, config=cfg.to_dict())

The decorated constructor takes the fields as arguments (``DAE(latent_dim=4)``, and
``DAE(**header["config"])`` of any checkpoint), and its signature lists them, so
:func:`representations.registry.check_config` names unknown keys as before. The checkpoint
header's config is :meth:`MethodConfig.to_dict`: the fields in their order, JSON-plain.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

C = TypeVar("C", bound="MethodConfig")

OMIT_DEFAULT = "omit_default"
"""Field metadata key: :meth:`MethodConfig.to_dict` leaves the field out while it is default."""


def _plain(value: Any) -> Any:
    """Tuples (normalised sequences) as lists, recursively; other values unchanged."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """Base of a method's configuration dataclass (module doc).

    Subclasses are frozen dataclasses; their ``__post_init__`` checks the values (raising
    :class:`envs.errors.ReprlError`) and stores the normalised ones with :meth:`_set`.
    """

    def _set(self, name: str, value: Any) -> None:
        """Stores a normalised value in ``__post_init__`` (the dataclass is frozen)."""
        object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The fields in declaration order, JSON-plain (tuples as lists): a checkpoint's
        ``config``, from which ``Method(**config)`` builds the same architecture.

        A field added after checkpoints were first written carries ``metadata={OMIT_DEFAULT:
        True}`` and is left out while it holds its default (the behaviour from before it), so
        the headers, and the content keys made of them, of every earlier configuration stay
        the same; ``Method(**config)`` then takes the default again."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if not (f.metadata.get(OMIT_DEFAULT) and getattr(self, f.name) == f.default)
        }


def configured(
    config_cls: type[C],
) -> Callable[[Callable[[Any, C], None]], Callable[..., None]]:
    """Decorator of ``__init__(self, cfg: config_cls)``: the constructor then takes the
    config's fields as arguments (positional in field order, or by keyword) and builds
    ``config_cls(*args, **kwargs)`` for it; its signature lists the fields with their defaults.

    Raises (from the decorated constructor):
        TypeError: An argument that is no field of the config.
        ReprlError: A value the config's checks refuse.
    """

    def wrap(init: Callable[[Any, C], None]) -> Callable[..., None]:
        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, config_cls(*args, **kwargs))

        params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        hints: dict[str, Any] = {}  # a subclass's own and its bases' field annotations
        for klass in reversed(config_cls.__mro__):
            hints.update(inspect.get_annotations(klass))
        for f in dataclasses.fields(config_cls):
            default = (
                f.default
                if f.default is not dataclasses.MISSING
                else inspect.Parameter.empty
                if f.default_factory is dataclasses.MISSING
                else f.default_factory()
            )
            params.append(
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=default,
                    annotation=hints.get(f.name, inspect.Parameter.empty),
                )
            )
        del __init__.__wrapped__  # the signature is the config's, not ``(self, cfg)``
        __init__.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        return __init__

    return wrap
