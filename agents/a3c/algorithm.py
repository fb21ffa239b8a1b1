"""A3C (Mnih et al. 2016): asynchronous actor-learners on a global actor-critic in shared memory.

:class:`A3C` is SB3's :class:`~stable_baselines3.A2C` with its own :meth:`A3C.learn`: the policy
(built from ``policy_kwargs`` exactly as A2C builds it, so the pretrained extractor modes,
``save``, ``load``, ``predict`` and :func:`agents.save_agent` / :func:`agents.load_agent` work
unchanged) becomes the *global* model; ``n_workers`` processes (``torch.multiprocessing``,
``spawn``) each run their own batched envs and a local copy of it, and apply their gradients
to the global parameters through one :class:`~agents.a3c.optim.SharedRMSprop`, without locks
and without any barrier between workers (:mod:`agents.a3c.worker`). A saved A3C is an A2C
zip plus A3C's settings: ``A2C.load`` opens it too.

The main process only watches: it drains the workers' reports (episodes, losses), keeps
``num_timesteps`` (env steps of all workers), logs per-worker update and env-step counts to
SB3's logger (TensorBoard), calls the callback, checkpoints atomically, and stops the workers
when the budget is spent, the callback says so, a worker fails, or on Ctrl-C. However it ends,
every worker is stopped and joined before :meth:`A3C.learn` returns or raises.

Everything is checked before a process starts: ``n_workers`` (an integer in ``[1, cores]``),
the env factory (picklable, and its envs give the model's observation and action spaces, so an
encoder that does not fit the workers' envs is refused), the model's env (no
``VecNormalize``: workers would not normalise).
"""

from __future__ import annotations

import os
import pickle
import queue as queue_mod
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp
from stable_baselines3 import A2C
from stable_baselines3.common.callbacks import BaseCallback, ConvertCallback, ProgressBarCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import safe_mean
from stable_baselines3.common.vec_env import VecEnv

from agents.a3c.optim import SharedRMSprop
from agents.a3c.worker import WorkerSpec, build_worker_env, worker_main
from agents.hyperparams import check_n_workers
from agents.recurrent import RECURRENT_POLICIES, is_recurrent
from agents.safe_zip import read_zip, write_safe
from envs.errors import ReprlError
from envs.rng import spawn_seeds
from envs.storage.files import atomic_path

#: Seconds the main process waits for workers to stop on their own before terminating them.
STOP_GRACE_S = 10.0
#: The same after a Ctrl-C, when the queue is no longer read (a worker blocked writing a
#: report would wait forever): they are terminated sooner.
INTERRUPT_GRACE_S = 2.0


class _StepsProgressBar(ProgressBarCallback):
    """SB3's progress bar advanced by the env steps of all workers (an A3C calls ``on_step``
    about ten times a second, not once per vector step)."""

    def _on_step(self) -> bool:
        done = self.model.num_timesteps - self.model._num_timesteps_at_start
        self.pbar.update(max(0, done - self.pbar.n))
        return True


class A3CWorkerError(RuntimeError):
    """A worker process failed: its traceback (or how it died) is in the message."""


def check_lstm_hidden_size(value: Any) -> int:
    """``lstm_hidden_size`` as an int if it is >= 0 (0: no LSTM core).

    Raises:
        ReprlError: Naming the valid range and the value given.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ReprlError(
            f"lstm_hidden_size: expected an integer >= 0 (0: no LSTM core), got {value!r}"
        )
    return int(value)


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ReprlError(f"{name}: expected an integer >= 1, got {value!r}")


def _check_picklable(name: str, value: Any, hint: str) -> None:
    try:
        pickle.dumps(value)
    except Exception as e:
        raise ReprlError(
            f"{name}: expected a picklable object (workers are spawned processes: {hint}), "
            f"got {value!r} ({type(e).__name__}: {e})"
        ) from None


def _snapshot(value: Any) -> Any:
    """``value`` with every tensor (in dicts, lists, tuples) replaced by a private copy."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value)
    return value


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class A3C(A2C):
    """Asynchronous advantage actor-critic over SB3's actor-critic policies.

    Same constructor as :class:`~stable_baselines3.A2C` (n-step returns: ``gae_lambda=1``; a
    shared RMSProp), plus:

    Args:
        policy: ``"MlpPolicy"``, ``"CnnPolicy"`` or a policy class (as A2C).
        env: The main process's ``VecEnv``: it fixes the spaces and is what ``save_agent``
            sees (a fast-path agent's ``EncodeObservations``); the workers never step it.
        learning_rate: RMSProp step size, or an SB3 schedule of the remaining progress.
        n_steps: Steps per env of a worker between its updates (the paper's ``t_max``).
        gamma: Discount, in [0, 1].
        ent_coef: Entropy bonus coefficient (the paper's ``beta``).
        vf_coef: Value loss coefficient.
        max_grad_norm: Each worker's gradient-norm clip, before the shared update.
        rms_prop_alpha: RMSProp's decay of the shared squared-gradient average, in [0, 1).
        rms_prop_eps: RMSProp's epsilon, > 0.
        n_workers: Worker processes, in ``[1, max_workers()]``.
        worker_threads: Torch threads per worker, >= 1.
        lstm_hidden_size: 0: a feedforward actor-critic (stack frames or latents for
            context). ``> 0``: an LSTM core of that many units between the features and the
            heads, as in the paper's A3C LSTM (256 there): one LSTM for both heads, trained by
            both losses (:class:`agents.recurrent.SharedLstmPolicy` and its CNN form, which
            ``"MlpPolicy"``/``"CnnPolicy"`` become; ``policy_kwargs`` may set
            ``n_lstm_layers``). Pass sb3-contrib's ``RecurrentActorCriticPolicy`` as
            ``policy`` for its separate critic LSTM instead. Workers carry the LSTM state
            across rollouts and back-propagate through each rollout's ``n_steps`` (truncated
            BPTT, the paper's ``t_max``); ``predict`` takes and returns the state as
            sb3-contrib's ``RecurrentPPO`` does.
        env_fn: ``env_fn(rank, seed) -> VecEnv``: each worker's envs (pixels, as ``env``
            before reprl's wrappers). Picklable (:class:`~agents.a3c.worker.WorkerEnvs`, a
            module-level function, ``functools.partial``). Needed by :meth:`learn`, not by
            ``predict``; never saved.
        stats_window_size: Episodes averaged in ``rollout/ep_rew_mean``.
        tensorboard_log: SB3 TensorBoard directory.
        policy_kwargs: As A2C (``optimizer_class`` is A3C's: refused).
        verbose: SB3 verbosity.
        seed: Seed of the model, and of the workers' seeds (``spawn_seeds(seed, n_workers)``).
        device: Torch device of the global and local models (and of the workers' policies).

    Attributes:
        a3c_stats: After :meth:`learn`: ``{"updates": [...], "env_steps": [...]}`` per worker,
            over every ``learn`` call (a resumed run continues them).
        a3c_seconds: Wall-clock seconds spent in :meth:`learn`, over every call.
        a3c_workers: While :meth:`learn` runs: the worker processes (``[]`` otherwise).

    Raises:
        ReprlError: ``n_workers``, ``n_steps``, ``worker_threads`` or ``lstm_hidden_size``
            out of range, an ``optimizer_class`` in ``policy_kwargs``, a policy class that
            does not match ``lstm_hidden_size``.
    """

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 7e-4,
        n_steps: int = 5,
        gamma: float = 0.99,
        ent_coef: float = 0.01,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        rms_prop_alpha: float = 0.99,
        rms_prop_eps: float = 1e-5,
        n_workers: int = 2,
        worker_threads: int = 1,
        lstm_hidden_size: int = 0,
        env_fn: Callable[[int, int | None], VecEnv] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if _init_setup_model:  # a real construction, not SB3's load or an export's shell
            check_n_workers(n_workers)
            _check_positive("n_steps", n_steps)
            _check_positive("worker_threads", worker_threads)
            if not 0.0 <= rms_prop_alpha < 1.0:
                raise ReprlError(
                    f"rms_prop_alpha: expected a value in [0, 1), got {rms_prop_alpha}"
                )
            if not rms_prop_eps > 0:
                raise ReprlError(f"rms_prop_eps: expected > 0, got {rms_prop_eps}")
            check_lstm_hidden_size(lstm_hidden_size)
        policy_kwargs = dict(policy_kwargs or {})
        if "lstm_hidden_size" in policy_kwargs:
            raise ReprlError(
                "policy_kwargs: expected no lstm_hidden_size (A3C's own lstm_hidden_size "
                f"sets the LSTM core), got {policy_kwargs['lstm_hidden_size']!r}"
            )
        self.lstm_hidden_size = int(lstm_hidden_size)
        if _init_setup_model:
            policy = self._policy_for_core(policy)
            if self.lstm_hidden_size:
                policy_kwargs["lstm_hidden_size"] = self.lstm_hidden_size
        if "optimizer_class" in policy_kwargs or "optimizer_kwargs" in policy_kwargs:
            raise ReprlError(
                "policy_kwargs: A3C's optimiser is the shared RMSProp; expected no "
                "optimizer_class / optimizer_kwargs, got "
                f"{sorted(k for k in policy_kwargs if k.startswith('optimizer'))}"
            )
        policy_kwargs["optimizer_class"] = torch.optim.RMSprop
        policy_kwargs["optimizer_kwargs"] = {
            "alpha": rms_prop_alpha,
            "eps": rms_prop_eps,
            "weight_decay": 0.0,
        }
        self.rms_prop_alpha = rms_prop_alpha
        self.rms_prop_eps = rms_prop_eps
        self.n_workers = int(n_workers)
        self.worker_threads = int(worker_threads)
        self.env_fn = env_fn
        self.a3c_stats: dict[str, list[int]] = {"updates": [], "env_steps": []}
        self.a3c_seconds = 0.0
        self.a3c_workers: list[Any] = []
        self._a3c_learn_calls = 0
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=1.0,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            rms_prop_eps=rms_prop_eps,
            use_rms_prop=False,  # set above, with alpha
            normalize_advantage=False,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )

    def _policy_for_core(
        self, policy: str | type[ActorCriticPolicy]
    ) -> str | type[ActorCriticPolicy]:
        """``policy`` for this core: a recurrent class for a name when ``lstm_hidden_size``
        is set; a class given must agree with ``lstm_hidden_size``."""
        if isinstance(policy, str):
            if self.lstm_hidden_size and policy in RECURRENT_POLICIES:
                return RECURRENT_POLICIES[policy]
            return policy
        if is_recurrent(policy) != bool(self.lstm_hidden_size):
            raise ReprlError(
                f"policy: lstm_hidden_size {self.lstm_hidden_size} expects "
                f"{'a recurrent' if self.lstm_hidden_size else 'a feedforward'} policy class, "
                f"got {policy.__name__}"
            )
        return policy

    @property
    def recurrent(self) -> bool:
        """Whether the policy has an LSTM core (its ``predict`` takes and returns a state)."""
        return is_recurrent(self.policy)

    def _excluded_save_params(self) -> list[str]:
        """SB3's, plus the env factory and the running workers (never saved)."""
        return [*super()._excluded_save_params(), "env_fn", "a3c_workers"]

    # ------------------------------------------------------------------ checks

    def _encode_settings(self) -> tuple[torch.nn.Module | None, str, int | None]:
        """The fast path's encoder, its device and frame stack (the workers rebuild the
        model's ``EncodeObservations``), or ``(None, "cpu", None)``."""
        from agents.latent import find_encode_wrapper

        wrapper = find_encode_wrapper(self.env)
        if wrapper is None:
            return None, "cpu", None
        return wrapper.encoder, str(wrapper.device), wrapper.frame_stack

    def check_worker_envs(self) -> None:
        """Check, in this process, everything the workers will need, before any starts.

        Builds worker 0's env from ``env_fn`` (wrapped as the workers wrap it) and compares
        its spaces with the model's; checks ``n_workers``, ``n_steps``, ``worker_threads``,
        that ``env_fn`` and the learning-rate schedule pickle, and that the model's env is
        not normalised by ``VecNormalize`` (workers would not normalise).

        Raises:
            ReprlError: Naming what was expected and what came.
        """
        check_n_workers(self.n_workers)
        _check_positive("n_steps", self.n_steps)
        _check_positive("worker_threads", self.worker_threads)
        if self.env_fn is None:
            raise ReprlError(
                "env_fn: A3C's workers build their own envs; expected env_fn(rank, seed) -> "
                "VecEnv (e.g. agents.a3c.WorkerEnvs(env_id, num_envs, env_kwargs)), got None"
            )
        if not callable(self.env_fn):
            raise ReprlError(f"env_fn: expected a callable, got {type(self.env_fn).__name__}")
        hint = "use agents.a3c.WorkerEnvs, a module-level function or functools.partial"
        _check_picklable("env_fn", self.env_fn, hint)
        _check_picklable("learning_rate", self.lr_schedule, "a float or an SB3 schedule object")
        if self.get_vec_normalize_env() is not None:
            raise ReprlError(
                "env: A3C's workers rebuild the env from env_fn and would not normalise it; "
                "expected no VecNormalize on the model's env, got one"
            )
        encoder, device, k = self._encode_settings()
        try:
            probe = build_worker_env(
                self.env_fn, 0, None, encoder=encoder, encode_device=device, frame_stack=k
            )
        except ReprlError as e:
            raise ReprlError(f"env_fn (the workers' envs): {e}") from None
        try:
            for what, ours, theirs in (
                ("observation", self.observation_space, probe.observation_space),
                ("action", self.action_space, probe.action_space),
            ):
                if ours != theirs:
                    raise ReprlError(
                        f"env_fn {what} space: expected the model's {ours} (its env and "
                        f"encoder), got {theirs} from env_fn(0, seed) as the workers see it"
                    )
        finally:
            probe.close()

    # ------------------------------------------------------------------ checkpoints

    def get_parameters(self) -> dict[str, dict]:
        """SB3's state dicts (policy, optimiser), as private copies of the tensors.

        While workers run, the shared tensors change under any reader: a checkpoint written
        straight from them could hold bytes other than those its zip CRC was computed on.
        Copies give a consistent file (of a snapshot that may mix two workers' updates, as
        any read of a Hogwild model does).
        """
        return _snapshot(super().get_parameters())

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Save the model (weights, shared optimiser state, counters) atomically: a kill
        leaves the previous checkpoint at ``path`` whole. ``.zip`` is added if missing."""
        path = Path(path)
        if not path.suffix:
            path = path.with_name(path.name + ".zip")
        with atomic_path(path, durable=True) as tmp:
            with open(tmp, "xb+") as f:
                write_safe(self, f)  # opens without pickle (agents.safe_zip)
        return path

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Continue from a checkpoint of :meth:`save_checkpoint` (or any save of this agent).

        Loads the weights, the optimiser's statistics, ``num_timesteps``, the episode count and
        the per-worker counters into this model (built as the checkpointed one was, with its
        env and ``env_fn``); then ``learn(n, reset_num_timesteps=False)`` trains ``n`` more
        steps.

        Raises:
            ReprlError: The checkpoint's spaces differ from this model's.
            MissingFileError: No such file.
        """
        from agents.extractor import MissingFileError

        if not Path(path).is_file():
            raise MissingFileError(f"A3C checkpoint {path} not found")
        data, params, _ = read_zip(path, device=self.device)
        for key in ("observation_space", "action_space"):
            if data.get(key) != getattr(self, key):
                raise ReprlError(
                    f"{path}: checkpoint {key}: expected this model's {getattr(self, key)}, "
                    f"got {data.get(key)}"
                )
        self.set_parameters(params, exact_match=True, device=self.device)
        self.num_timesteps = int(data.get("num_timesteps", 0))
        self._episode_num = int(data.get("_episode_num", 0))
        self._n_updates = int(data.get("_n_updates", 0))
        self.a3c_stats = {k: list(v) for k, v in (data.get("a3c_stats") or {}).items()}
        self.a3c_seconds = float(data.get("a3c_seconds", 0.0))
        self._a3c_learn_calls = int(data.get("_a3c_learn_calls", 0))

    # ------------------------------------------------------------------ learning

    def _shared_optimizer(self) -> SharedRMSprop:
        """The policy's optimiser as a :class:`SharedRMSprop` in shared memory (its state
        carried over: a loaded or resumed model keeps its statistics)."""
        current = self.policy.optimizer
        if isinstance(current, SharedRMSprop):
            opt = current
        else:
            opt = SharedRMSprop(
                self.policy.parameters(),
                lr=float(self.lr_schedule(1.0)),
                alpha=self.rms_prop_alpha,
                eps=self.rms_prop_eps,
            )
            if current is not None and current.state:
                opt.load_state_dict(current.state_dict())
            for group in opt.param_groups:
                group["alpha"], group["eps"] = self.rms_prop_alpha, self.rms_prop_eps
            self.policy.optimizer = opt
        return opt.share_memory()

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: float = 10.0,
        tb_log_name: str = "A3C",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: float = 60.0,
    ) -> A3C:
        """Train with ``n_workers`` asynchronous actor-learners for ``total_timesteps`` env
        steps (all workers together; each stops at its first rollout after the budget).

        The callback's ``on_step`` runs in this process about ten times a second with
        ``locals()["infos"]`` holding the episodes finished since the last call (``{"episode":
        {"r", "l"}}`` each, as ``VecMonitor`` gives them) and ``num_timesteps`` the env steps
        of all workers; returning False stops the workers.

        Args:
            total_timesteps: Env steps over all workers, >= 1.
            callback: SB3 callback(s).
            log_interval: Seconds between dumps of SB3's logger (``rollout/ep_rew_mean``,
                ``train/*``, ``a3c/updates_worker_<i>``, ``a3c/env_steps_worker_<i>``, ...).
            tb_log_name: TensorBoard run name.
            reset_num_timesteps: Start counting from 0 (False: continue, e.g. after
                :meth:`load_checkpoint`).
            progress_bar: A progress bar of the env steps (SB3's, advanced by
                ``num_timesteps``).
            checkpoint: Where to save checkpoints (atomically), or None.
            checkpoint_every: Seconds between checkpoints (and one at the end), > 0.

        Returns:
            ``self``.

        Raises:
            ReprlError: Bad settings (see :meth:`check_worker_envs`), before any worker starts.
            A3CWorkerError: A worker failed (its traceback in the message) or died; every other
                worker has been stopped.
            KeyboardInterrupt: Ctrl-C; every worker has been stopped, the last checkpoint
                is left as it was.
        """
        _check_positive("total_timesteps", total_timesteps)
        if not checkpoint_every > 0:
            raise ReprlError(f"checkpoint_every: expected seconds > 0, got {checkpoint_every}")
        self.check_worker_envs()
        if progress_bar:  # SB3's bar counts on_step calls; this one follows num_timesteps
            given = (
                callback if isinstance(callback, list) else [] if callback is None else [callback]
            )
            callback = [
                *(c if isinstance(c, BaseCallback) else ConvertCallback(c) for c in given),
                _StepsProgressBar(),
            ]
        # as SB3 names it (callbacks read locals()["total_timesteps"]): the step count to end at
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar=False
        )
        budget = total_timesteps - self.num_timesteps
        steps_before = self.num_timesteps
        n = self.n_workers
        if reset_num_timesteps:
            self.a3c_seconds = 0.0
        if reset_num_timesteps or len(self.a3c_stats.get("updates", [])) != n:
            self.a3c_stats = {"updates": [0] * n, "env_steps": [0] * n}
        prior = {k: list(v) for k, v in self.a3c_stats.items()}

        self.policy.share_memory()
        opt = self._shared_optimizer()
        ctx = mp.get_context("spawn")
        updates = ctx.RawArray("q", n)
        env_steps = ctx.RawArray("q", n)
        stop = ctx.RawValue("b", 0)
        reports = ctx.Queue()
        if self.seed is None:
            seeds: list[int | None] = [None] * n
        else:
            purpose = f"a3c_worker/{self._a3c_learn_calls}"
            seeds = list(spawn_seeds(int(self.seed), n, purpose=purpose))
        self._a3c_learn_calls += 1
        encoder, encode_device, k = self._encode_settings()
        procs = []
        for rank in range(n):
            spec = WorkerSpec(
                rank=rank,
                seed=seeds[rank],
                env_fn=self.env_fn,
                policy=self.policy,
                optimizer=opt,
                lr_schedule=self.lr_schedule,
                budget=budget,
                steps_before=steps_before,
                total_timesteps=total_timesteps,
                n_steps=self.n_steps,
                gamma=self.gamma,
                ent_coef=float(self.ent_coef),
                vf_coef=self.vf_coef,
                max_grad_norm=self.max_grad_norm,
                threads=self.worker_threads,
                updates=updates,
                env_steps=env_steps,
                stop=stop,
                queue=reports,
                parent_pid=os.getpid(),
                encoder=encoder,
                encode_device=encode_device,
                frame_stack=k,
            )
            procs.append(
                ctx.Process(
                    target=worker_main, args=(spec,), name=f"a3c-worker-{rank}", daemon=True
                )
            )

        def counters() -> None:
            self.a3c_stats = {
                "updates": [p + int(u) for p, u in zip(prior["updates"], updates)],
                "env_steps": [p + int(s) for p, s in zip(prior["env_steps"], env_steps)],
            }
            self.num_timesteps = steps_before + int(sum(env_steps))
            self._n_updates = int(sum(self.a3c_stats["updates"]))

        started = time.perf_counter()
        seconds_before = self.a3c_seconds
        callback.on_training_start(locals(), globals())
        # each worker's latest losses; the last row carries them even when the run ends
        # before the first log_interval has passed (a fast machine)
        stats: dict[int, dict[str, float]] = {}
        try:
            self.a3c_workers = procs
            for p in procs:
                p.start()
            self._watch(
                procs, reports, stop, callback, counters, log_interval, checkpoint,
                checkpoint_every, started, seconds_before, stats,
            )  # fmt: skip
        finally:
            stop.value = 1
            # a Ctrl-C may have cut a report in half: reading on could block on a bogus length
            interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt)
            self._stop_workers(procs, reports, drain=not interrupted)
            self.a3c_workers = []
            counters()
            self.a3c_seconds = seconds_before + time.perf_counter() - started
        callback.on_training_end()
        self._dump(started, stats)
        if checkpoint is not None:
            self.save_checkpoint(checkpoint)
        return self

    def _watch(
        self,
        procs: list[Any],
        reports: Any,
        stop: Any,
        callback: BaseCallback,
        counters: Callable[[], None],
        log_interval: float,
        checkpoint: str | os.PathLike[str] | None,
        checkpoint_every: float,
        started: float,
        seconds_before: float,
        stats: dict[int, dict[str, float]],
    ) -> None:
        """The main process's loop: reports in, callback, logs, checkpoints, failures out;
        ``stats`` (filled in place) keeps each worker's latest losses."""
        last_log = last_ckpt = time.perf_counter()
        while True:
            infos = self._drain(reports, stats, timeout=0.1)
            counters()
            callback.update_locals({"infos": infos})
            if not callback.on_step():
                stop.value = 1
            for rank, p in enumerate(procs):
                if p.exitcode not in (None, 0):
                    self._drain(reports, stats, timeout=1.0)  # its traceback may still be coming
                    raise A3CWorkerError(
                        f"A3C worker {rank} (pid {p.pid}) {_describe_exit(p.exitcode)} without "
                        "reporting an error; the other workers were stopped"
                    )
            if all(p.exitcode == 0 for p in procs):
                infos = self._drain(reports, stats, timeout=0.0)
                counters()
                if infos:
                    callback.update_locals({"infos": infos})
                    callback.on_step()
                return
            now = time.perf_counter()
            if now - last_log >= log_interval:
                self._dump(started, stats)
                last_log = now
            if checkpoint is not None and now - last_ckpt >= checkpoint_every:
                self.a3c_seconds = seconds_before + now - started
                self.save_checkpoint(checkpoint)
                last_ckpt = now

    def _drain(
        self, reports: Any, stats: dict[int, dict[str, float]], timeout: float
    ) -> list[dict[str, Any]]:
        """Read every queued report; episodes into ``ep_info_buffer`` (returned as infos),
        losses into ``stats`` per worker. Raises :class:`A3CWorkerError` on an error report."""
        infos: list[dict[str, Any]] = []
        block = timeout > 0
        while True:
            try:
                msg = reports.get(timeout=timeout) if block else reports.get_nowait()
            except queue_mod.Empty:
                return infos
            block = False
            kind, rank = msg[0], msg[1]
            if kind == "error":
                raise A3CWorkerError(f"A3C worker {rank} failed:\n{msg[2].rstrip()}")
            _, _, episodes, worker_stats = msg
            for r, length in episodes:
                ep = {"r": r, "l": length}
                self.ep_info_buffer.extend([ep])
                infos.append({"episode": ep})
            self._episode_num += len(episodes)
            if worker_stats:
                stats[rank] = worker_stats

    def _stop_workers(self, procs: list[Any], reports: Any, drain: bool = True) -> None:
        """Join every started worker (they were asked to stop); terminate, then kill, those
        that do not stop within :data:`STOP_GRACE_S` (:data:`INTERRUPT_GRACE_S` without
        ``drain``). Reports still queued are discarded.

        Args:
            procs: the worker processes.
            reports: their report queue.
            drain: keep reading the queue meanwhile, so workers blocked writing a report can
                finish; ``False`` after a Ctrl-C, which may have interrupted a read mid-message
                (the queue's stream is then out of step: never read it again).
        """
        deadline = time.monotonic() + (STOP_GRACE_S if drain else INTERRUPT_GRACE_S)
        alive = [p for p in procs if p.pid is not None]
        while alive and time.monotonic() < deadline:
            if drain:
                try:  # keep the pipe flowing: a worker exits only once its reports are written
                    while True:
                        reports.get(timeout=0.05)
                except queue_mod.Empty:
                    pass
                except Exception:  # a broken stream: stop reading, terminate below
                    drain = False
            else:
                time.sleep(0.05)
            alive = [p for p in alive if p.is_alive()]
        for p in alive:
            p.terminate()
        for p in alive:
            p.join(2.0)
            if p.is_alive():
                p.kill()
                p.join()
        for p in procs:
            if p.pid is not None:
                p.join()
                p.close()
        reports.cancel_join_thread()
        reports.close()

    def _dump(self, started: float, log_stats: dict[int, dict[str, float]]) -> None:
        """Record and dump SB3's logger: episodes, speed, per-worker counters, losses."""
        elapsed = max(time.perf_counter() - started, 1e-9)
        done = self.num_timesteps - self._num_timesteps_at_start
        if self.ep_info_buffer:
            self.logger.record(
                "rollout/ep_rew_mean", safe_mean([e["r"] for e in self.ep_info_buffer])
            )
            self.logger.record(
                "rollout/ep_len_mean", safe_mean([e["l"] for e in self.ep_info_buffer])
            )
        self.logger.record("time/fps", int(done / elapsed))
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for i, (u, s) in enumerate(zip(self.a3c_stats["updates"], self.a3c_stats["env_steps"])):
            self.logger.record(f"a3c/updates_worker_{i}", u)
            self.logger.record(f"a3c/env_steps_worker_{i}", s)
        if log_stats:
            for key in ("policy_loss", "value_loss", "entropy_loss", "grad_norm", "learning_rate"):
                values = [s[key] for s in log_stats.values() if key in s]
                if values:
                    self.logger.record(f"train/{key}", float(np.mean(values)))
        self.logger.dump(step=self.num_timesteps)
