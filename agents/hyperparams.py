"""Typed PPO, A2C and A3C hyperparameters, and the PPO minibatch check.

Plain dataclasses with SB3's field names and defaults (stable-baselines3 2.x), so they embed in
an OmegaConf structured config (plain types, ``Literal``, ``Optional``, nested dataclasses,
lists) and turn into SB3 keyword arguments with :meth:`PPOHyperparams.to_sb3_kwargs`::

    hp = PPOHyperparams(n_steps=128, batch_size=256, n_epochs=4)
    check_ppo_batch(hp.n_steps, 16, hp.batch_size)
    model = make_agent("ppo", env, encoder="vae.safetensors", **hp.to_sb3_kwargs())

Learning-rate and clip-range schedules (callables in SB3) are constants here; pass a schedule
to :func:`agents.make_agent` directly when you need one.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from envs.errors import ReprlError

#: Activation functions :class:`PolicyHyperparams` accepts, by name.
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "elu", "leaky_relu")


def in_range(value: Any, spec: str) -> bool:
    """Whether ``value`` lies in the range ``spec`` names.

    Args:
        value: a number (or ``None``).
        spec: ``"> 0"``, ``">= 0"``, ``">= 1"`` (an integer), ``"[0, 1]"``, ``"[0, 1)"``, or
            any of them after ``"none or "`` (``None`` accepted too).

    Returns:
        True for a finite number (an integer for ``">= 1"``) in the range; bools are not
        numbers here.
    """
    if spec.startswith("none or "):
        if value is None:
            return True
        spec = spec[len("none or ") :]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not math.isfinite(value):
        return False
    if spec == ">= 1":
        return isinstance(value, int) and value >= 1
    checks = {
        "> 0": lambda v: v > 0,
        ">= 0": lambda v: v >= 0,
        "[0, 1]": lambda v: 0 <= v <= 1,
        "[0, 1)": lambda v: 0 <= v < 1,
    }
    return checks[spec](value)


def check_ranges(hp: Any, ranges: Mapping[str, str], prefix: str = "") -> None:
    """Refuse a field of ``hp`` outside its range (see :func:`in_range`).

    Args:
        hp: a hyperparameter dataclass.
        ranges: field name -> range spec.
        prefix: put before the field name in the message (a config key such as
            ``"train.ppo."``).

    Raises:
        ReprlError: ``"<prefix><field>: expected <range>, got <value>"`` for the first field out
            of range.
    """
    for name, spec in ranges.items():
        value = getattr(hp, name)
        if not in_range(value, spec):
            what = spec.replace("none or ", "null or ")
            if spec.endswith(">= 1"):
                what = what.replace(">= 1", "an integer >= 1")
            elif spec.endswith("]") or spec.endswith(")"):
                what = what.replace("[", "a value in [")
            else:
                what = what.replace(">", "a finite number >")
            raise ReprlError(f"{prefix}{name}: expected {what}, got {value!r}")


def max_workers() -> int:
    """How many worker processes this machine can start for one A3C: the CPU cores this
    process may use (``os.sched_getaffinity``, else ``os.cpu_count``), one per worker."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_n_workers(n_workers: Any) -> int:
    """``n_workers`` as an int if it is in ``[1, max_workers()]``.

    Raises:
        ReprlError: Naming the valid range and the value given.
    """
    limit = max_workers()
    if (
        isinstance(n_workers, bool)
        or not isinstance(n_workers, numbers.Integral)
        or not 1 <= n_workers <= limit
    ):
        raise ReprlError(
            f"n_workers: expected an integer in [1, {limit}] (one worker process per CPU core "
            f"this process may use), got {n_workers!r}"
        )
    return int(n_workers)


def check_ppo_batch(n_steps: int, num_envs: int, batch_size: int) -> None:
    """Refuse a PPO minibatch size that does not divide the rollout ``n_steps * num_envs``.

    SB3 only warns about a truncated last minibatch (and asserts on sizes <= 1); a truncated
    minibatch silently trains on fewer samples, so reprl refuses it before anything is built.

    Args:
        n_steps: Steps per env per rollout, >= 1.
        num_envs: Number of parallel envs, >= 1.
        batch_size: Minibatch size, > 1.

    Raises:
        ReprlError: A rollout of at most one sample, ``batch_size <= 1``, or a ``batch_size``
            that does not divide ``n_steps * num_envs`` (the message suggests divisors).
    """
    n_steps, num_envs, batch_size = int(n_steps), int(num_envs), int(batch_size)
    buffer = n_steps * num_envs
    if buffer <= 1:
        raise ReprlError(
            f"n_steps * n_envs: expected > 1, got n_steps={n_steps} * n_envs={num_envs} = {buffer}"
        )
    if batch_size <= 1:
        raise ReprlError(f"batch_size: expected > 1, got {batch_size}")
    if buffer % batch_size:
        divisors = [d for d in range(2, buffer + 1) if buffer % d == 0]
        near = sorted(divisors, key=lambda d: abs(d - batch_size))[:3]
        raise ReprlError(
            f"batch_size {batch_size} does not divide the rollout size n_steps * n_envs = "
            f"{n_steps} * {num_envs} = {buffer} (the last minibatch would be "
            f"{buffer % batch_size} samples); expected a divisor of {buffer}, e.g. {sorted(near)}"
        )


@dataclass
class PolicyHyperparams:
    """The policy network's ``policy_kwargs`` that reprl configs set (``None``: SB3's default)."""

    net_arch_pi: list[int] | None = None
    """Hidden layer sizes of the actor head; ``None``: SB3's default ([64, 64], or [] after
    NatureCNN). Set together with ``net_arch_vf``."""
    net_arch_vf: list[int] | None = None
    """Hidden layer sizes of the critic head; ``None``: SB3's default."""
    activation_fn: Literal["tanh", "relu", "elu", "leaky_relu"] = "tanh"
    """Activation of the heads (SB3's default ``nn.Tanh``)."""
    ortho_init: bool = True
    """Orthogonal initialisation of the policy (pretrained encoders are protected from it)."""
    share_features_extractor: bool = True
    """One features extractor for actor and critic (``False``: one each)."""

    def validate(self, prefix: str = "") -> None:
        """Checks the layer sizes and the activation without building anything.

        Args:
            prefix: put before field names in messages (``"train.ppo.policy."``).

        Raises:
            ReprlError: a layer size that is not an integer >= 1, only one of the two heads
                given, or an unknown activation.
        """
        for name in ("net_arch_pi", "net_arch_vf"):
            sizes = getattr(self, name)
            if sizes is None:
                continue
            bad = [n for n in sizes if isinstance(n, bool) or not isinstance(n, int) or n < 1]
            if bad:
                raise ReprlError(
                    f"{prefix}{name}: expected layer sizes, integers >= 1, got {list(sizes)}"
                )
        try:
            self.to_policy_kwargs()
        except ReprlError as e:  # "policy net_arch: ..." -> "<prefix>net_arch: ..."
            raise ReprlError(f"{prefix}{str(e).removeprefix('policy ')}") from None

    def to_policy_kwargs(self) -> dict[str, Any]:
        """SB3 ``policy_kwargs``: only what differs from SB3's defaults.

        Raises:
            ReprlError: Only one of ``net_arch_pi`` / ``net_arch_vf`` set, or an unknown
                activation.
        """
        from torch import nn

        out: dict[str, Any] = {}
        if (self.net_arch_pi is None) != (self.net_arch_vf is None):
            raise ReprlError(
                "policy net_arch: expected both net_arch_pi and net_arch_vf or neither, got "
                f"net_arch_pi={self.net_arch_pi} net_arch_vf={self.net_arch_vf}"
            )
        if self.net_arch_pi is not None:
            out["net_arch"] = {
                "pi": [int(n) for n in self.net_arch_pi],
                "vf": [int(n) for n in list(self.net_arch_vf or [])],
            }
        acts = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}
        if self.activation_fn not in acts:
            raise ReprlError(
                f"policy activation_fn: expected one of {list(ACTIVATIONS)}, got "
                f"{self.activation_fn!r}"
            )
        if self.activation_fn != "tanh":
            out["activation_fn"] = acts[self.activation_fn]
        if not self.ortho_init:
            out["ortho_init"] = False
        if not self.share_features_extractor:
            out["share_features_extractor"] = False
        return out


PPO_RANGES: dict[str, str] = {
    "learning_rate": "> 0",
    "n_steps": ">= 1",
    "batch_size": ">= 1",
    "n_epochs": ">= 1",
    "gamma": "[0, 1]",
    "gae_lambda": "[0, 1]",
    "clip_range": "> 0",
    "clip_range_vf": "none or > 0",
    "ent_coef": ">= 0",
    "vf_coef": ">= 0",
    "max_grad_norm": "> 0",
    "target_kl": "none or > 0",
    "stats_window_size": ">= 1",
}
"""The range of every numeric :class:`PPOHyperparams` field (:func:`in_range`'s specs): what
SB3 needs to train at all (a learning rate > 0, at least one epoch, a clip range > 0, a
discount in [0, 1]) and what makes the objective the one its name says (no negative entropy
bonus or value weight)."""

A2C_RANGES: dict[str, str] = {
    "learning_rate": "> 0",
    "n_steps": ">= 1",
    "gamma": "[0, 1]",
    "gae_lambda": "[0, 1]",
    "ent_coef": ">= 0",
    "vf_coef": ">= 0",
    "max_grad_norm": "> 0",
    "rms_prop_eps": "> 0",
    "stats_window_size": ">= 1",
}
"""The range of every numeric :class:`A2CHyperparams` field."""

A3C_RANGES: dict[str, str] = {
    "n_workers": ">= 1",
    "learning_rate": "> 0",
    "n_steps": ">= 1",
    "gamma": "[0, 1]",
    "ent_coef": ">= 0",
    "vf_coef": ">= 0",
    "max_grad_norm": "> 0",
    "rms_prop_alpha": "[0, 1)",
    "rms_prop_eps": "> 0",
    "worker_threads": ">= 1",
    "stats_window_size": ">= 1",
}
"""The range of every numeric :class:`A3CHyperparams` field (``n_workers`` is also bounded by
the machine's cores, ``agents.a3c.check_n_workers``; ``lstm_hidden_size`` is >= 0)."""


def _validate(hp: Any, ranges: Mapping[str, str], prefix: str) -> None:
    check_ranges(hp, ranges, prefix)
    hp.policy.validate(f"{prefix}policy.")


def _sb3_kwargs(hp: Any) -> dict[str, Any]:
    out = {f.name: getattr(hp, f.name) for f in dataclasses.fields(hp) if f.name != "policy"}
    policy_kwargs = hp.policy.to_policy_kwargs()
    if policy_kwargs:
        out["policy_kwargs"] = policy_kwargs
    return out


@dataclass
class PPOHyperparams:
    """PPO's hyperparameters, SB3's names and defaults (``stable_baselines3.PPO``)."""

    learning_rate: float = 3e-4
    """Adam step size (constant)."""
    n_steps: int = 2048
    """Steps per env per rollout; the rollout holds ``n_steps * num_envs`` samples."""
    batch_size: int = 64
    """Minibatch size; must divide ``n_steps * num_envs`` (:func:`check_ppo_batch`)."""
    n_epochs: int = 10
    """Passes over each rollout."""
    gamma: float = 0.99
    """Discount factor, in [0, 1]."""
    gae_lambda: float = 0.95
    """GAE bias/variance trade-off, in [0, 1]."""
    clip_range: float = 0.2
    """PPO's clipping of the probability ratio (constant)."""
    clip_range_vf: float | None = None
    """Clipping of the value function update; ``None``: no clipping."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    target_kl: float | None = None
    """Stop an update's epochs early when the approximate KL exceeds this; ``None``: never."""
    stats_window_size: int = 100
    """Episodes averaged in the logged rollout statistics."""
    policy: PolicyHyperparams = field(default_factory=PolicyHyperparams)
    """Policy network settings (``policy_kwargs``)."""

    def validate(self, prefix: str = "") -> None:
        """Checks every numeric field's range (:data:`PPO_RANGES`) and the policy's settings.

        Args:
            prefix: put before field names in messages (a config key such as ``"train.ppo."``).

        Raises:
            ReprlError: ``"<prefix><field>: expected <range>, got <value>"``.
        """
        _validate(self, PPO_RANGES, prefix)

    def check_run(self, prefix: str, num_envs: int, num_envs_key: str = "num_envs") -> None:
        """What these settings need of a run with ``num_envs`` envs: minibatches that divide
        the rollout (:func:`check_ppo_batch`).

        Args:
            prefix: put before messages (``"train.ppo."``).
            num_envs: the run's parallel envs, >= 1.
            num_envs_key: the config key of ``num_envs`` (named in messages about it).

        Raises:
            ReprlError: ``"<prefix without its dot>: batch_size ... does not divide ..."``.
        """
        try:
            check_ppo_batch(self.n_steps, num_envs, self.batch_size)
        except ReprlError as e:
            raise ReprlError(f"{prefix.rstrip('.')}: {e}") from None

    def to_sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``stable_baselines3.PPO`` (and :func:`agents.make_agent`)."""
        return _sb3_kwargs(self)


@dataclass
class A2CHyperparams:
    """A2C's hyperparameters, SB3's names and defaults (``stable_baselines3.A2C``)."""

    learning_rate: float = 7e-4
    """Optimizer step size (constant)."""
    n_steps: int = 5
    """Steps per env per update."""
    gamma: float = 0.99
    """Discount factor, in [0, 1]."""
    gae_lambda: float = 1.0
    """GAE bias/variance trade-off, in [0, 1]; 1.0 is the classic A2C return."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    rms_prop_eps: float = 1e-5
    """RMSprop epsilon (with ``use_rms_prop``)."""
    use_rms_prop: bool = True
    """RMSprop (``True``, as in the A3C paper) or Adam (``False``)."""
    normalize_advantage: bool = False
    """Normalise advantages per update."""
    stats_window_size: int = 100
    """Episodes averaged in the logged rollout statistics."""
    policy: PolicyHyperparams = field(default_factory=PolicyHyperparams)
    """Policy network settings (``policy_kwargs``)."""

    def validate(self, prefix: str = "") -> None:
        """Checks every numeric field's range (:data:`A2C_RANGES`) and the policy's settings.

        Args:
            prefix: put before field names in messages (a config key such as ``"train.a2c."``).

        Raises:
            ReprlError: ``"<prefix><field>: expected <range>, got <value>"``.
        """
        _validate(self, A2C_RANGES, prefix)

    def check_run(self, prefix: str, num_envs: int, num_envs_key: str = "num_envs") -> None:
        """What these settings need of a run with ``num_envs`` envs: nothing (any count)."""

    def to_sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``stable_baselines3.A2C`` (and :func:`agents.make_agent`)."""
        return _sb3_kwargs(self)


@dataclass
class A3CHyperparams:
    """A3C's hyperparameters (:class:`agents.a3c.A3C`; SB3 A2C's names where they exist).

    Defaults follow SB3's A2C except ``ent_coef`` (0.01, the A3C paper's entropy weight) and
    two worker processes (a 2-core machine).
    """

    n_workers: int = 2
    """Actor-learner processes, in [1, CPU cores]; each runs its own batched envs."""
    learning_rate: float = 7e-4
    """Shared RMSProp step size (constant)."""
    n_steps: int = 5
    """Steps per env of a worker between its updates (the paper's t_max)."""
    gamma: float = 0.99
    """Discount factor, in [0, 1]."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm, per worker update."""
    rms_prop_alpha: float = 0.99
    """Decay of the shared RMSProp's squared-gradient average, in [0, 1)."""
    rms_prop_eps: float = 1e-5
    """RMSProp epsilon, > 0."""
    worker_threads: int = 1
    """Torch threads per worker, >= 1."""
    lstm_hidden_size: int = 0
    """0: a feedforward actor-critic; > 0: an LSTM core of that many units (the paper's A3C
    LSTM has 256), trained by truncated back-propagation through each ``n_steps`` rollout."""
    stats_window_size: int = 100
    """Episodes averaged in the logged rollout statistics."""
    policy: PolicyHyperparams = field(default_factory=PolicyHyperparams)
    """Policy network settings (``policy_kwargs``)."""

    def validate(self, prefix: str = "") -> None:
        """Checks ``n_workers`` against this machine's cores (:func:`check_n_workers`), then
        every numeric field's range (:data:`A3C_RANGES`) and the policy's settings.

        Args:
            prefix: put before field names in messages (a config key such as ``"train.a3c."``).

        Raises:
            ReprlError: ``"<prefix><field>: expected <range>, got <value>"``.
        """
        try:
            check_n_workers(self.n_workers)
        except ReprlError as e:
            raise ReprlError(f"{prefix}{e}") from None
        _validate(self, A3C_RANGES, prefix)
        size = self.lstm_hidden_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ReprlError(
                f"{prefix}lstm_hidden_size: expected an integer >= 0 (0: no LSTM core), got "
                f"{size!r}"
            )

    def check_run(self, prefix: str, num_envs: int, num_envs_key: str = "num_envs") -> None:
        """What these settings need of a run with ``num_envs`` envs: as many for each worker.

        Args:
            prefix: put before field names in messages (``"train.a3c."``).
            num_envs: the run's parallel envs, >= 1.
            num_envs_key: the config key of ``num_envs`` (named in the message).

        Raises:
            ReprlError: ``num_envs`` is not a multiple of ``n_workers``.
        """
        if num_envs % self.n_workers:
            raise ReprlError(
                f"{num_envs_key}: A3C splits the envs evenly among {prefix}n_workers = "
                f"{self.n_workers} workers; expected a multiple of {self.n_workers}, got "
                f"{num_envs}"
            )

    def to_sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`agents.a3c.A3C` (and :func:`agents.make_agent`)."""
        return _sb3_kwargs(self)


PROCGEN_PPO: PPOHyperparams = PPOHyperparams(
    learning_rate=5e-4,
    n_steps=256,
    batch_size=256 * 64 // 8,
    n_epochs=3,
    gamma=0.999,
    gae_lambda=0.95,
    clip_range=0.2,
    ent_coef=0.01,
    vf_coef=0.25,
    max_grad_norm=0.5,
)
"""openai/train-procgen's PPO settings (Cobbe et al. 2020, "Leveraging Procedural Generation to
Benchmark Reinforcement Learning", ``train_procgen/train.py``), as far as SB3 expresses them.

Assumes ``num_envs=64``, as train-procgen trains: ``nminibatches=8`` over a rollout of
``256 * 64`` samples is ``batch_size = 2048`` here; with ``N`` envs use ``32 * N`` to keep 8
minibatches (:func:`check_ppo_batch` refuses a size that does not divide the rollout). Pair it
with :class:`agents.impala.ImpalaCNN` (``make_agent(..., mode="pixels",
pixel_extractor="impala")``). Not expressed here, and not identical in SB3:

- baselines' ppo2 halves the value loss (``0.5 * mean(max(...))``) and SB3 does not (plain
  MSE): train-procgen's ``vf_coef=0.5`` is ``vf_coef=0.25`` here, the same weight; ppo2 also
  clips the value loss (``clip_vf=True``, by ``cliprange``), which SB3's ``clip_range_vf``
  does differently (only the clipped term), so it is left off;
- train-procgen normalises rewards by a running return variance (``VecNormalize(ob=False)``:
  SB3's ``VecNormalize(norm_obs=False, norm_reward=True)`` on the env);
- 25M env steps (``easy``), 200 training levels for generalisation: env settings.

Adam's epsilon ``1e-5`` is SB3's default for PPO's policy already. Copy before changing a
field (``dataclasses.replace(PROCGEN_PPO, n_steps=...)``): the instance is shared.
"""
