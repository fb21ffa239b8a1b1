"""How each algorithm trains, behind one interface: what a training loop asks of PPO, A2C or A3C.

A caller that trains agents of several algorithms (the experiment's train stage) asks an
:class:`Algorithm` instead of branching on its name:

- :meth:`Algorithm.main_envs`: how many envs the main process builds (an A3C's workers build
  their own, so its main process holds one worker's share, for the spaces);
- :meth:`Algorithm.agent_kwargs`: what :func:`agents.make_agent` needs besides the usual (an
  A3C's ``env_fn``, each worker's envs);
- :attr:`Algorithm.resumable` and :meth:`Algorithm.resume`: whether an unfinished run can go on
  from its checkpoint, and the budget left once it is loaded;
- :meth:`Algorithm.learn`: train for a :class:`Budget` of env steps or seconds, saving to the
  checkpoint where the algorithm writes one; the seconds the run took;
- :meth:`Algorithm.provenance`: the algorithm's own entries of a run's provenance record;
- :attr:`Algorithm.loop`: ``"sb3"`` (SB3's ``learn``) or ``"device"`` (PPO on a reprl batched
  env's device, :class:`agents.device_ppo.DevicePPO`; :func:`agents.device_ppo.resolve_loop`
  says which an env and algorithm get by default).

>>> algorithm = get_algorithm("a3c", {"n_workers": 2})
>>> algorithm.main_envs(8), algorithm.resumable
(4, True)
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback

from agents.a3c import A3C, WorkerEnvs
from agents.device_ppo import LOOPS, DevicePPO, check_device_loop
from agents.factory import ALGOS
from envs.errors import ReprlError

#: The kinds of :class:`Budget`.
BUDGET_KINDS: tuple[str, ...] = ("steps", "seconds")
#: SB3's ``total_timesteps`` for a run on a wall-clock budget (the callback ends it).
UNBOUNDED_STEPS = 10**12


@dataclass(frozen=True)
class Budget:
    """How long a run trains: ``value`` env steps (all envs together) or wall-clock seconds.

    Raises:
        ReprlError: ``kind`` is neither ``"steps"`` nor ``"seconds"``.
    """

    kind: Literal["steps", "seconds"]
    value: float

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise ReprlError(
                f"budget kind: expected one of {list(BUDGET_KINDS)}, got {self.kind!r}"
            )

    @property
    def steps(self) -> int:
        """SB3's ``total_timesteps``: the steps of a step budget, else :data:`UNBOUNDED_STEPS`."""
        return int(self.value) if self.kind == "steps" else UNBOUNDED_STEPS

    @property
    def seconds(self) -> float | None:
        """The seconds of a wall-clock budget, else None."""
        return float(self.value) if self.kind == "seconds" else None

    @property
    def spent(self) -> bool:
        """Whether nothing is left to train."""
        return self.value <= 0


class Algorithm:
    """A synchronous SB3 algorithm (PPO, A2C): one process, no checkpoint, no resume.

    Args:
        name: The algorithm's name in :data:`agents.factory.ALGOS`.
        sb3_kwargs: The hyperparameters the agent will be built with (an A3C reads its
            ``n_workers``); None: the defaults.
        checkpoint_every: Seconds between the checkpoints of an algorithm that writes them.
        loop: ``"sb3"``: SB3's ``learn``; ``"device"``: PPO's rollouts and updates on the
            env's device (:class:`agents.device_ppo.DevicePPO`; PPO on a reprl batched env).

    Raises:
        ReprlError: An unknown name (listing the known ones), ``checkpoint_every`` not > 0, an
            unknown loop, or ``"device"`` for an algorithm other than PPO.
    """

    resumable: ClassVar[bool] = False
    """Whether an unfinished run continues from its checkpoint (:meth:`resume`)."""

    lstm_core: ClassVar[bool] = False
    """Whether its agents may have an LSTM core (``lstm_hidden_size``)."""

    own_processes: ClassVar[bool] = False
    """Whether a run starts worker processes of its own (it then runs alone, never beside
    other runs: an experiment's ``jobs``)."""

    def __init__(
        self,
        name: str,
        sb3_kwargs: Mapping[str, Any] | None = None,
        *,
        checkpoint_every: float = 60.0,
        loop: str = "sb3",
    ) -> None:
        if name not in ALGOS:
            raise ReprlError(f"algo: expected one of {list(ALGOS)}, got {name!r}")
        if not checkpoint_every > 0:
            raise ReprlError(f"checkpoint_every: expected seconds > 0, got {checkpoint_every}")
        if loop not in LOOPS:
            raise ReprlError(f"loop: expected one of {list(LOOPS)}, got {loop!r}")
        if loop == "device" and name != "ppo":
            raise ReprlError(f"loop: 'device' trains PPO only; expected 'sb3' for algo {name!r}")
        self.name = name
        self.sb3_kwargs = dict(sb3_kwargs or {})
        self.checkpoint_every = float(checkpoint_every)
        self.loop = loop

    def __repr__(self) -> str:
        extra = ", loop='device'" if self.loop == "device" else ""
        return f"{type(self).__name__}({self.name!r}{extra})"

    def check(self, model: BaseAlgorithm) -> None:
        """Refuse a model this algorithm's loop cannot train, before any step (the device
        loop's checks, :func:`agents.device_ppo.check_device_loop`; nothing for SB3's).

        Raises:
            ReprlError: naming what the device loop needs.
        """
        if self.loop == "device":
            check_device_loop(model)

    @property
    def model_class(self) -> type[BaseAlgorithm]:
        """The class of the models it trains."""
        return ALGOS[self.name]

    def main_envs(self, num_envs: int) -> int:
        """How many of a run's ``num_envs`` envs the main process builds (all of them)."""
        return num_envs

    def agent_kwargs(
        self, env_id: str, num_envs: int, env_kwargs: Mapping[str, Any], device: str
    ) -> dict[str, Any]:
        """What :func:`agents.make_agent` needs besides the env and the encoder (nothing).

        Args:
            env_id: The gymnasium id of the training env.
            num_envs: Envs per process (:meth:`main_envs`).
            env_kwargs: The env's kwargs.
            device: The device of the envs.
        """
        return {}

    def resume(
        self, model: BaseAlgorithm, checkpoint: str | os.PathLike[str], budget: Budget
    ) -> Budget:
        """Load a run's checkpoint into ``model``; the part of ``budget`` left to train.

        Raises:
            ReprlError: The algorithm cannot resume (:attr:`resumable` is False).
        """
        raise ReprlError(f"algo {self.name!r} cannot resume a run; expected a new run")

    def learn(
        self,
        model: BaseAlgorithm,
        budget: Budget,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        callback: MaybeCallback = None,
        resumed: bool = False,
        tb_log_name: str | None = None,
    ) -> float:
        """Train ``model`` for ``budget`` (nothing if it is spent).

        A seconds budget is ended by the ``callback`` (its ``_on_step`` returns False once the
        time is up), as SB3 ends any run early. With :attr:`loop` ``"device"`` the run is
        :meth:`agents.device_ppo.DevicePPO.learn` (the same arguments and callbacks).

        Args:
            model: Built by :func:`agents.make_agent` for this algorithm.
            budget: What is left to train (:meth:`resume` for a resumed run).
            checkpoint: Where a resumable algorithm saves its checkpoints; ignored by the
                others, which write none.
            callback: SB3 callback(s).
            resumed: ``model`` was loaded from a checkpoint: its step count goes on.
            tb_log_name: SB3's TensorBoard run name (None: SB3's default).

        Returns:
            The wall-clock seconds the run took (for a resumed run, all its sessions).
        """
        start = time.perf_counter()
        if not budget.spent:
            learn = DevicePPO(model).learn if self.loop == "device" else model.learn
            learn(budget.steps, callback=callback, **_log_name(tb_log_name))
        return time.perf_counter() - start

    def provenance(self, model: BaseAlgorithm, num_envs: int, resumed: bool) -> dict[str, Any]:
        """The algorithm's own entries of a run's provenance record: ``{"loop": "device"}``
        for the device loop, else none.

        Args:
            model: The trained model.
            num_envs: Envs per process (:meth:`main_envs`).
            resumed: Whether the run was resumed.
        """
        return {"loop": "device"} if self.loop == "device" else {}


class A3CAlgorithm(Algorithm):
    """:class:`~agents.a3c.A3C`: ``n_workers`` processes that build their own envs,
    checkpointed every ``checkpoint_every`` seconds and resumable from the checkpoint."""

    resumable: ClassVar[bool] = True
    lstm_core: ClassVar[bool] = True
    own_processes: ClassVar[bool] = True

    @property
    def n_workers(self) -> int:
        """Worker processes (the ``n_workers`` of the SB3 kwargs, else A3C's default)."""
        default = inspect.signature(A3C.__init__).parameters["n_workers"].default
        return int(self.sb3_kwargs.get("n_workers", default))

    def main_envs(self, num_envs: int) -> int:
        """One worker's share of ``num_envs``: the main process only needs the spaces."""
        return num_envs // self.n_workers

    def agent_kwargs(
        self, env_id: str, num_envs: int, env_kwargs: Mapping[str, Any], device: str
    ) -> dict[str, Any]:
        """``env_fn``: each worker's ``num_envs`` envs (:class:`agents.a3c.WorkerEnvs`),
        without factor dicts."""
        kwargs = {"info_factors": False, **env_kwargs}
        return {"env_fn": WorkerEnvs(env_id, num_envs, kwargs, device=device)}

    def resume(
        self, model: BaseAlgorithm, checkpoint: str | os.PathLike[str], budget: Budget
    ) -> Budget:
        """Load the checkpoint (:meth:`agents.a3c.A3C.load_checkpoint`); what is left of the
        steps, or of the seconds over every earlier session.

        Raises:
            MissingFileError: No checkpoint at ``checkpoint``.
            ReprlError: The checkpoint's spaces differ from the model's.
        """
        model.load_checkpoint(checkpoint)
        if budget.kind == "steps":
            return Budget("steps", budget.value - model.num_timesteps)
        return Budget("seconds", max(0.0, budget.value - model.a3c_seconds))

    def learn(
        self,
        model: BaseAlgorithm,
        budget: Budget,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        callback: MaybeCallback = None,
        resumed: bool = False,
        tb_log_name: str | None = None,
    ) -> float:
        """As :meth:`Algorithm.learn`, checkpointing to ``checkpoint`` (when given) every
        ``checkpoint_every`` seconds and at the end; the seconds are the model's
        ``a3c_seconds`` (every session of a resumed run)."""
        if not budget.spent:
            kwargs: dict[str, Any] = {"reset_num_timesteps": False} if resumed else {}
            model.learn(
                budget.steps,
                callback=callback,
                checkpoint=checkpoint,
                checkpoint_every=self.checkpoint_every,
                **_log_name(tb_log_name),
                **kwargs,
            )
        return float(model.a3c_seconds)

    def provenance(self, model: BaseAlgorithm, num_envs: int, resumed: bool) -> dict[str, Any]:
        """``{"a3c": {n_workers, envs_per_worker, updates_per_worker, env_steps_per_worker,
        resumed}}``."""
        return {
            "a3c": {
                "n_workers": model.n_workers,
                "envs_per_worker": num_envs,
                "updates_per_worker": model.a3c_stats["updates"],
                "env_steps_per_worker": model.a3c_stats["env_steps"],
                "resumed": resumed,
            }
        }


def _log_name(tb_log_name: str | None) -> dict[str, str]:
    return {} if tb_log_name is None else {"tb_log_name": tb_log_name}


#: The :class:`Algorithm` class of each algorithm name.
ALGORITHMS: dict[str, type[Algorithm]] = {"ppo": Algorithm, "a2c": Algorithm, "a3c": A3CAlgorithm}


def get_algorithm(
    name: str,
    sb3_kwargs: Mapping[str, Any] | None = None,
    *,
    checkpoint_every: float = 60.0,
    loop: str = "sb3",
) -> Algorithm:
    """The :class:`Algorithm` of ``name`` (``"ppo"``, ``"a2c"`` or ``"a3c"``).

    Args:
        name: The algorithm's name.
        sb3_kwargs: The hyperparameters its agents are built with (A3C: ``n_workers``).
        checkpoint_every: Seconds between the checkpoints of a resumable algorithm.
        loop: ``"sb3"`` or ``"device"`` (PPO only: :class:`agents.device_ppo.DevicePPO`).

    Raises:
        ReprlError: An unknown name, listing the known ones; a loop the algorithm lacks.
    """
    if name not in ALGORITHMS:
        raise ReprlError(f"algo: expected one of {list(ALGORITHMS)}, got {name!r}")
    return ALGORITHMS[name](name, sb3_kwargs, checkpoint_every=checkpoint_every, loop=loop)


__all__ = [
    "ALGORITHMS",
    "BUDGET_KINDS",
    "UNBOUNDED_STEPS",
    "A3CAlgorithm",
    "Algorithm",
    "Budget",
    "get_algorithm",
]
