"""The experiment config: one typed description of a whole transfer experiment.

:class:`ExperimentConfig` holds a block per stage (collect, encoders, agents, train,
evaluate); :func:`default_config` is the embedded default that ``reprl run`` runs with no
config file; :func:`load_experiment` layers a YAML file and ``key=value`` overrides on it.
:meth:`ExperimentConfig.validate` checks everything that can be checked before a stage runs
(cross-references, every numeric range, SB3's included, PPO batch arithmetic, the device's
availability, every encoder built untrained on the CPU and its input shape against every env
it meets, the frame shape of every target, action spaces of every evaluation target), so an
invalid config writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agents.hyperparams import (
    A2CHyperparams,
    A3CHyperparams,
    PPOHyperparams,
)
from envs.errors import ReprlError
from envs.registry import SCHEMA_TARGETS
from experiments.blocks import (
    MAX_EVAL_EPISODE_STEPS,
    AgentStage,
    CollectStage,
    EncoderStage,
    EvalStage,
    ProbeStage,
)
from experiments.config import ConfigError, build, load_config, read_yaml
from experiments.validation import validate_experiment


@dataclass
class TrainStage:
    """How every agent is trained.

    Attributes:
        algo: ``ppo``, ``a2c`` or ``a3c`` (asynchronous worker processes,
            :class:`agents.a3c.A3C`), for every agent that does not name its own.
        env_id: the source env.
        env_kwargs: kwargs of the source env (and, unless evaluate.env_kwargs overrides
            them, of the targets: ``min_object_size`` and the like must match).
        budget: ``steps`` (every agent gets ``timesteps`` env steps) or ``seconds`` (every
            agent gets ``seconds`` of wall-clock training: frozen encoders then take more
            steps).
        timesteps: env steps per agent and seed with budget ``steps``, >= 1.
        seconds: wall-clock seconds per agent and seed with budget ``seconds``, > 0.
        num_envs: parallel envs, >= 1; A3C splits them evenly among its workers (a
            multiple of ``a3c.n_workers``).
        frame_stack: frames (pixels) or latents (encoders) the policy sees, >= 1; the encoder
            itself always sees single frames.
        loop: the training loop: ``device`` (PPO's rollouts and updates on the env's device,
            :class:`agents.device_ppo.DevicePPO`; reprl's Breakout and lab envs only) or
            ``sb3`` (SB3's numpy loop); none: ``device`` where it can train the agent (PPO on
            a reprl Breakout or lab env), else ``sb3`` (procgen, ALE, Memory Maze, A2C, A3C).
        ppo: PPO's hyperparameters (SB3 names). The default (minibatch 128, 10 epochs, lr
            1e-3: 160 gradient steps per 2048-sample rollout of 16 envs) is calibrated on an
            agent given Breakout's true state (``experiments.bench.bench_ppo_oracle``): in
            300k env steps 2 of 3 seeds reach a scripted ball tracker's return, where the
            previous minibatch 256, 4 epochs, lr 5e-4 (32 gradient steps) left all 3 near a
            random policy's.
        a2c: A2C's hyperparameters (SB3 names).
        a3c: A3C's hyperparameters (:class:`agents.hyperparams.A3CHyperparams`).
    """

    algo: Literal["ppo", "a2c", "a3c"] = "ppo"
    env_id: str = SCHEMA_TARGETS[0]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    budget: Literal["steps", "seconds"] = "steps"
    timesteps: int = 200_000
    seconds: float = 300.0
    num_envs: int = 16
    frame_stack: int = 4
    loop: Literal["device", "sb3"] | None = None
    ppo: PPOHyperparams = field(
        default_factory=lambda: PPOHyperparams(
            n_steps=128, batch_size=128, n_epochs=10, learning_rate=1e-3, ent_coef=0.01
        )
    )
    a2c: A2CHyperparams = field(default_factory=A2CHyperparams)
    a3c: A3CHyperparams = field(default_factory=A3CHyperparams)


@dataclass
class ExperimentConfig:
    """A whole transfer experiment.

    Attributes:
        name: experiment name: its directory under ``root`` (rename a run with name=...).
        root: where experiments live.
        seeds: training seeds; every agent is trained once per seed.
        device: torch device for pretraining, agents and batched envs (cpu, cuda, ...).
        jobs: training and evaluation runs (agent x seed), and encoder probes, at once, >= 1:
            worker processes,
            this process's torch threads (the machine's physical cores; a sweep trial's
            ``resources.cpu``, which also caps ``jobs``) shared out among them
            (:mod:`experiments.parallel`); with a ``seconds`` budget every run then gets its
            share of the cores for its seconds. A3C runs (worker processes of their own) run
            one at a time.
        collect: the exploration data.
        encoders: representations to pretrain, in order (later ones may use earlier ones).
        probe: scoring the pretrained encoders against the dataset's ground-truth factors.
        agents: agent variants.
        train: training of every agent.
        evaluate: zero-shot evaluation.
    """

    name: str = "darla_breakout"
    root: str = "runs"
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    device: str = "cpu"
    jobs: int = 1
    collect: CollectStage = field(default_factory=CollectStage)
    encoders: list[EncoderStage] = field(default_factory=list)
    probe: ProbeStage = field(default_factory=ProbeStage)
    agents: list[AgentStage] = field(default_factory=list)
    train: TrainStage = field(default_factory=TrainStage)
    evaluate: EvalStage = field(default_factory=EvalStage)

    def validate(self) -> None:
        """Checks every field and cross-reference before anything runs
        (:func:`experiments.validation.validate_experiment`).

        Raises:
            ConfigError: naming the field, what it expects and what came.
        """
        validate_experiment(self)

    def agent_algo(self, agent: AgentStage) -> str:
        """The algorithm that trains ``agent``: its own ``algo``, else ``train.algo``."""
        return agent.algo or self.train.algo

    def agent_loop(self, agent: AgentStage) -> str:
        """The loop that trains ``agent``: ``train.loop``, else ``device`` where the device loop
        can train it (:func:`agents.device_ppo.resolve_loop`), else ``sb3``.

        Raises:
            ConfigError: ``train.loop: device`` where the device loop cannot train the agent.
        """
        from agents.device_ppo import resolve_loop

        try:
            return resolve_loop(
                self.train.loop, self.train.env_id, self.agent_algo(agent), key="train.loop"
            )
        except ReprlError as e:
            raise ConfigError(f"{e} (agent {agent.name!r})") from None

    def agent_env_kwargs(self, agent: AgentStage) -> dict[str, Any]:
        """What an agent's envs need besides the env's own kwargs: the temporal context and
        the colour of its observations: grayscale for pixel agents that ask for it, and for
        encoder agents whose encoder was trained on grayscale frames (``collect.env_kwargs``
        ``grayscale``, as AtariARI's encoders)."""
        collected_gray = bool(self.collect.env_kwargs.get("grayscale", False))
        return {
            "frame_stack": self.train.frame_stack,
            "grayscale": agent.grayscale if agent.mode == "pixels" else collected_gray,
        }

    def sb3_kwargs(self, algo: str | None = None) -> dict[str, Any]:
        """An algorithm's hyperparameters as SB3 keyword arguments (``algo`` None:
        ``train.algo``'s)."""
        block = getattr(self.train, algo or self.train.algo)
        return block.to_sb3_kwargs()

    def agent_sb3_kwargs(self, agent: AgentStage) -> dict[str, Any]:
        """The hyperparameters that train ``agent``: its algorithm's, with its own LSTM core
        where it names one."""
        out = self.sb3_kwargs(self.agent_algo(agent))
        if agent.lstm_hidden_size is not None:
            out["lstm_hidden_size"] = agent.lstm_hidden_size
        return out


def default_config() -> ExperimentConfig:
    """The embedded default: does a learned representation help on Breakout? About 10 minutes
    on 2 CPU cores.

    Three encoders pretrained on source frames only (random exploration of Standard Breakout):
    DARLA's denoising autoencoder and its beta-VAE_DAE, and ST-DIM (contrastive, the family
    that finds small objects). Three agents trained on Standard Breakout with equal wall-clock
    budgets (3 seeds, two runs at once: each run gets half the machine's cores for its 40
    seconds): pixel PPO (grayscale x 4) and PPO on each frozen encoder (latents x 4), zero-shot
    on the four Schema-Networks variants beside a uniform-random reference (greedy actions).
    Objects are drawn at least 2 x 2 pixels so the ball is visible at 64 x 64.
    """
    visible = {"min_object_size": 2}
    return ExperimentConfig(
        seeds=[0, 1, 2],
        jobs=2,
        collect=CollectStage(env_kwargs=dict(visible)),
        encoders=[
            EncoderStage(name="dae", method="dae", steps=1000, model={"bottleneck_norm": True}),
            EncoderStage(
                name="beta_vae_dae",
                method="beta_vae_dae",
                steps=1500,
                model={
                    "dae": "@dae",
                    "beta": 1.0,
                    "latent_dim": 32,
                    "normalize_features": True,
                    "dae_layer": 2,
                    # without it the posterior means collapsed on one CPU (variance 2e-7 to
                    # 5e-4 over the data, 0 / 32 active; 32 / 32 on another): see README
                    "hidden_norm": True,
                },
            ),
            EncoderStage(name="st_dim", method="st_dim", steps=1500, model={"latent_dim": 32}),
        ],
        agents=[
            AgentStage(name="pixels", mode="pixels"),
            AgentStage(name="darla_frozen", encoder="beta_vae_dae", mode="frozen"),
            AgentStage(name="st_dim_frozen", encoder="st_dim", mode="frozen"),
        ],
        train=TrainStage(
            env_kwargs={"max_episode_steps": 2000, **visible},
            budget="seconds",
            seconds=40.0,
            frame_stack=4,
        ),
        evaluate=EvalStage(deterministic=[True]),  # greedy only: the run stays within 10 min
    )


BASES = ("default", "none")
"""What a YAML experiment builds on (its top-level ``base:`` key)."""


def load_experiment(path: str | None = None, overrides: list[str] | tuple = ()) -> ExperimentConfig:
    """The default config, or a YAML file on top of it, plus dotted overrides; validated.

    Mappings merge key by key; lists (``encoders``, ``agents``, ``seeds``) replace. A YAML file
    with ``base: none`` builds on the dataclass defaults instead of the embedded DARLA-on-
    Breakout experiment (so none of its Breakout env kwargs, encoders or agents carry over:
    another game's config starts clean); ``base: default`` is the default.

    Raises:
        ConfigError: naming the first invalid key.
    """
    if path is None:
        return load_config(ExperimentConfig, None, overrides, base=default_config())
    data = read_yaml(path)
    base = data.pop("base", "default")
    if base not in BASES:
        raise ConfigError(f"{path}: base: expected one of {BASES}, got {base!r}")
    layers = [default_config()] if base == "default" else []
    where = f"{path} + overrides" if overrides else str(path)
    return build(ExperimentConfig, *layers, data, overrides=overrides, where=where)


__all__ = [
    "BASES",
    "MAX_EVAL_EPISODE_STEPS",
    "AgentStage",
    "CollectStage",
    "EncoderStage",
    "EvalStage",
    "ExperimentConfig",
    "ProbeStage",
    "TrainStage",
    "default_config",
    "load_experiment",
]
