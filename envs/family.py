"""An env family as one object: its ids, what each id fixes, and how to build and describe it.

Every family reprl serves (Breakout, the real Atari Breakout, procgen, the lab, Memory Maze) is
one :class:`EnvFamily`, defined in the family's own module and listed once in
:data:`envs.registry.FAMILIES`. :mod:`envs.registry` answers every per-id question
(``make_vec``, ``best_return``, ``action_meanings``, ``level_range``, ``observation_shape``,
gymnasium's ``gym.make``/``gym.make_vec``) by asking the family of the id, with no branch per
family. A new family is a module that builds an :class:`EnvFamily` and one line in
:data:`envs.registry.FAMILIES` (or :func:`envs.registry.register_family` at run time).

Two kinds of family:

- reprl's *batched* envs (``make_batch``): a torch core holding N games on a device
  (:class:`envs.batched.BatchedEnv`); the registry wraps it in the adapters of
  :mod:`envs.adapters` (SB3 ``VecEnv``, gymnasium ``VectorEnv`` and ``Env``). A device-resident
  training loop can step the core itself (:attr:`EnvFamily.batched`,
  :func:`envs.registry.make_batch`).
- envs served by another library (``make_vec``): an SB3 ``VecEnv`` the family builds itself,
  plus its own gymnasium entry points where it has them.

Heavy optional backends (procgen, ale-py, MuJoCo) are imported inside the factories, never by
building or looking up a family: ``import envs`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from envs.batched import BatchedEnv
from envs.errors import ReprlError
from envs.stacking import StackedBatch

Kwargs = dict[str, Any]
"""An env's keyword arguments, as given to :func:`envs.registry.make_vec`."""


@dataclass(frozen=True, eq=False)
class EnvFamily:
    """The spec of one env family (see the module docstring).

    Every callable gets the id and the env's kwargs *resolved*: the caller's kwargs merged with
    the ones the id fixes (:meth:`resolve`), without ``frame_stack``, ``grayscale`` and
    ``info_factors`` (the registry handles those, except that ``make_batch`` receives
    ``frame_stack`` and ``grayscale`` to stack on the core's device).

    Attributes:
        name: a short name for messages (``"breakout"``).
        ids: every gymnasium id of the family -> the kwargs it fixes (``{}``: none, the generic
            id of the family).
        instead: what to use instead when a caller's kwargs conflict with an id's fixed ones
            (``"reprl/Breakout-v0 with variant=..."``): one hint for all ids or one per id.
        action_meanings: the name of each action index, what the env's
            ``get_action_meanings()`` answers (the same for every id and kwargs).
        best_return: ``(env_id, kwargs) -> float``, the best attainable return of an episode
            (a constant float for all ids); it raises a ReprlError where none is defined.
        make_batch: reprl's batched envs: ``(env_id, num_envs, *, seed, device, frame_stack,
            grayscale, **kwargs) -> BatchedEnv``, the torch core (stacked on request).
        make_vec: other envs: ``(env_id, num_envs, *, seed, device, **kwargs) -> VecEnv``, an
            SB3 ``VecEnv`` of single RGB frames (the registry stacks them).
        obs_shape: ``(env_id, kwargs) -> (H, W, C)``, one RGB frame's shape, worked out without
            building an emulator or MuJoCo (and validating the kwargs where it can); None for a
            batched family: a core of one env is built (milliseconds) and asked.
        entry_point: ``(**kwargs) -> gym.Env`` for ``gym.make`` (resolved kwargs, with
            ``render_mode``...); batched families get :class:`envs.adapters.TorchSingleEnv`
            when None. None for the others: reprl does not register the ids (ALE does).
        vector_entry_point: ``(num_envs, **kwargs) -> gym.vector.VectorEnv`` for
            ``gym.make_vec(..., vectorization_mode="vector_entry_point")``; as ``entry_point``
            (batched: :class:`envs.adapters.TorchVectorEnv`).
        level_range: ``(env_id, kwargs) -> dict``, the levels a procedurally generated env
            draws from (:meth:`envs.procgen.ProcgenLevels.to_dict`); None: no levels.
        has_segmentation: the frames come with a ground-truth instance segmentation (the core's
            ``render_segmentation``, ``num_segments``); batched families only.
        background_ids: the segmentation ids that are no object (what foreground ARI leaves
            out).
        has_camera: the core can render views from arbitrary cameras (the lab: GQN scenes,
            :mod:`envs.scenes`).

    Raises:
        ReprlError: no ids, both or neither of ``make_batch`` and ``make_vec``, a segmentation
            on a family that is not batched.
    """

    name: str
    ids: dict[str, Kwargs]
    instead: str | Mapping[str, str]
    action_meanings: tuple[str, ...]
    best_return: Callable[[str, Kwargs], float] | float
    make_batch: Callable[..., BatchedEnv] | None = None
    make_vec: Callable[..., Any] | None = None
    obs_shape: Callable[[str, Kwargs], tuple[int, int, int]] | None = None
    entry_point: Callable[..., Any] | None = None
    vector_entry_point: Callable[..., Any] | None = None
    level_range: Callable[[str, Kwargs], dict[str, Any]] | None = None
    has_segmentation: bool = False
    background_ids: tuple[int, ...] = field(default=())
    has_camera: bool = False

    def __post_init__(self) -> None:
        if not self.ids:
            raise ReprlError(f"env family {self.name!r}: expected at least one id, got none")
        if (self.make_batch is None) == (self.make_vec is None):
            raise ReprlError(
                f"env family {self.name!r}: expected exactly one of make_batch (a reprl batched "
                "env) and make_vec (an SB3 VecEnv)"
            )
        if (self.has_segmentation or self.has_camera) and not self.batched:
            raise ReprlError(
                f"env family {self.name!r}: segmentation and cameras come from a batched core; "
                "expected make_batch"
            )
        if self.obs_shape is None and not self.batched:
            raise ReprlError(f"env family {self.name!r}: expected obs_shape (it has no core)")

    @property
    def batched(self) -> bool:
        """True for reprl's batched torch envs (a ``make_batch`` core on a device)."""
        return self.make_batch is not None

    def instead_for(self, env_id: str) -> str:
        """The hint of the conflicting-kwargs error of ``env_id``."""
        return self.instead if isinstance(self.instead, str) else self.instead[env_id]

    def resolve(self, env_id: str, kwargs: Mapping[str, Any]) -> Kwargs:
        """``kwargs`` with the ones ``env_id`` fixes.

        Raises:
            ReprlError: a kwarg conflicting with a fixed one; it names the id to use instead.
        """
        fixed = self.ids[env_id]
        clash = {k: kwargs[k] for k in fixed if k in kwargs and kwargs[k] != fixed[k]}
        if clash:
            raise ReprlError(
                f"{env_id} fixes {fixed}; got conflicting {clash} (use {self.instead_for(env_id)})"
            )
        return {**kwargs, **fixed}

    def observation_shape(self, env_id: str, kwargs: Kwargs) -> tuple[int, int, int]:
        """One RGB frame's ``(H, W, C)`` for resolved ``kwargs`` (see ``obs_shape``)."""
        if self.obs_shape is not None:
            return self.obs_shape(env_id, kwargs)
        assert self.make_batch is not None
        core = self.make_batch(env_id, 1, seed=0, **kwargs)
        return tuple(int(n) for n in core.single_obs_shape)  # type: ignore[return-value]

    def episode_bound(self, env_id: str, kwargs: Kwargs) -> float:
        """The best return for resolved ``kwargs`` (see ``best_return``)."""
        if callable(self.best_return):
            return float(self.best_return(env_id, kwargs))
        return float(self.best_return)


def stacked(core: Any, frame_stack: int, grayscale: bool) -> Any:
    """``core`` itself, or a :class:`envs.stacking.StackedBatch` over it when frames are
    stacked or gray (for batch factories whose core draws RGB only)."""
    if frame_stack == 1 and not grayscale:
        return core
    return StackedBatch(core, frame_stack, grayscale)
