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
from envs.registry import SCHEMA_TARGETS
from experiments.config import ConfigError, build, load_config, read_yaml
from experiments.validation import validate_experiment

MAX_EVAL_EPISODE_STEPS = 1000
"""Episode time limit of every zero-shot evaluation unless a config says otherwise (the
pipeline's and ``reprl evaluate --agent``'s default alike)."""


@dataclass
class CollectStage:
    """Exploration data for pretraining.

    Attributes:
        env_ids: envs to explore, each a domain of the dataset. The default is the source env
            only, so nothing of a target is seen by encoder or policy (zero-shot in the strict
            sense); list target ids here to pretrain on them, and the report says so.
        frames: total frames, >= 1.
        num_envs: parallel envs per id, >= 1.
        policy: ``random``, ``random_repeat`` (random actions held 1..repeat steps) or ``sb3``
            (an agent zip, epsilon-greedy).
        repeat: ``random_repeat``: longest hold of an action, >= 1.
        model_path: ``sb3``: the agent zip.
        epsilon: ``sb3``: probability of a random action, in [0, 1].
        trust_pickle: ``sb3``: open an agent zip that only unpickling can open (a plain SB3
            save, a zip from elsewhere: pickles can run code). reprl's own zips never need it;
            ``reprl convert-agent`` converts a trusted zip once.
        env_kwargs: kwargs of every env (e.g. ``obs_size``, ``min_object_size``).
        seed: seed of the env streams and of the policy.
        views_per_scene: 0 (trajectories of the policy) or K >= 2: a scene dataset instead,
            ``frames // K`` scenes of K views from random cameras with their viewpoints
            (:func:`envs.scenes.collect_scenes`; Lab ids only; GQN needs it, every other
            method trains on its views as frames). The policy fields are then unused.
        max_pitch: scenes: cameras pitch uniformly within +-max_pitch degrees, in [0, 90).
    """

    env_ids: list[str] = field(default_factory=lambda: [SCHEMA_TARGETS[0]])
    frames: int = 20000
    num_envs: int = 64
    policy: Literal["random", "random_repeat", "sb3"] = "random_repeat"
    repeat: int = 4
    model_path: str | None = None
    epsilon: float = 0.1
    trust_pickle: bool = False
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    views_per_scene: int = 0
    max_pitch: float = 0.0


@dataclass
class EncoderStage:
    """One representation to pretrain.

    Attributes:
        name: the encoder's name in this experiment (agents refer to it).
        method: registry name (``beta_vae``, ``beta_vae_dae``, ``dae``, ...).
        model: constructor kwargs; a string value ``"@other"`` stands for the checkpoint of
            encoder ``other`` (e.g. ``dae: "@dae"`` for beta-VAE_DAE); its content is part of
            this encoder's key, so a retrained ``other`` retrains this one.
        steps: optimiser steps, >= 0; 0 keeps the freshly initialised weights: the randomly
            initialised encoder of the same shape every comparison needs.
        batch_size: frames per step, >= 1.
        lr: AdamW learning rate, > 0.
        seed: initialisation and data-order seed.
    """

    name: str = "beta_vae"
    method: str = "beta_vae"
    model: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 64
    lr: float = 5e-4
    seed: int = 0


@dataclass
class ProbeStage:
    """What every pretrained encoder captures, scored before any agent is trained.

    Attributes:
        enabled: score the encoders (only matters when there are encoders).
        frames: frames of the collect dataset to score on, spread evenly over the file
            (:func:`representations.analysis.subsample`), >= 100.
        metrics: any of ``probe`` (linear probes per factor: R^2 continuous, macro-F1
            discrete), ``mig``, ``dci``, ``factor_vae`` (:data:`representations.metrics.METRICS`).
        segmentation_frames: encoders that decompose a frame into masks (a ``decompose``
            method, as MONet has) are also scored with the ARI and foreground ARI of their
            masks against the ground-truth segmentation of this many frames of fresh random
            games of the collect env (the first of ``collect.env_ids``, if it has a
            segmentation); 0 disables them.
        sequence_frames: encoders that learn from sequences (CPC) are also scored with their
            own objective on this many frames of fresh episodes of the collect envs (never
            seen in pretraining): the top-1 accuracy of each prediction step k beside chance;
            0 disables it.
        rendering_scenes: encoders that learn from scenes (GQN) are also scored by rendering
            the last view of this many fresh scenes of the collect envs from their other
            views, beside the baseline that predicts the mean of those views (mean squared
            error per pixel); 0 disables it.
        seed: seed of the held-out-episode split, the metrics' sampling, the segmentation
            games, the fresh episodes and scenes (env streams of purposes of their own).
    """

    enabled: bool = True
    frames: int = 5000
    metrics: list[str] = field(default_factory=lambda: ["probe", "mig", "dci"])
    segmentation_frames: int = 256
    sequence_frames: int = 4096
    rendering_scenes: int = 256
    seed: int = 0


@dataclass
class AgentStage:
    """One agent variant to train on the source env.

    Attributes:
        name: the agent's name in tables and run directories.
        encoder: name of an encoder of this experiment; none for mode ``pixels``.
        mode: ``frozen``, ``finetune``, ``scratch`` (the encoder's architecture, fresh
            weights) or ``pixels`` (SB3's NatureCNN baseline).
        fast: frozen encoders: encode once per env step in a VecEnv wrapper (same numbers,
            several times faster).
        grayscale: pixel agents see grayscale frames (the Atari convention); encoder agents
            always see what their encoder was trained on (RGB).
        pixel_extractor: mode ``pixels`` only: ``nature`` (SB3's NatureCNN) or ``impala``
            (the IMPALA-CNN of the Procgen paper, :class:`agents.impala.ImpalaCNN`).
        algo: this agent's algorithm, ``ppo``, ``a2c`` or ``a3c``; none: ``train.algo``
            (so one experiment can hold a PPO and an A3C row on the same encoder).
        lstm_hidden_size: A3C agents only: this agent's LSTM core (0: feedforward); none:
            ``train.a3c.lstm_hidden_size`` (so a feedforward and an LSTM A3C can share a run).
    """

    name: str = "pixels"
    encoder: str | None = None
    mode: Literal["frozen", "finetune", "scratch", "pixels"] = "pixels"
    fast: bool = True
    grayscale: bool = True
    pixel_extractor: Literal["nature", "impala"] = "nature"
    algo: Literal["ppo", "a2c", "a3c"] | None = None
    lstm_hidden_size: int | None = None


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
        ppo: PPO's hyperparameters (SB3 names).
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
    ppo: PPOHyperparams = field(
        default_factory=lambda: PPOHyperparams(
            n_steps=128, batch_size=256, n_epochs=4, learning_rate=5e-4, ent_coef=0.01
        )
    )
    a2c: A2CHyperparams = field(default_factory=A2CHyperparams)
    a3c: A3CHyperparams = field(default_factory=A3CHyperparams)


@dataclass
class EvalStage:
    """Zero-shot evaluation.

    Attributes:
        env_ids: target envs (the source among them gives the reference column).
        env_kwargs: kwargs of every target env, on top of train.env_kwargs (a time limit).
        episodes: episodes per agent, seed, target and mode, >= 1.
        num_envs: parallel envs per evaluation, >= 1.
        deterministic: evaluation modes: true (greedy) and/or false (sampled actions).
        seed: seed of the evaluation env streams (a purpose of its own: never a training
            stream); every agent and the random reference see the same episodes.
        random_baseline: also evaluate a uniform-random policy over each target's own actions,
            the reference row ``random`` and the minimum of normalised scores.
        action_mapping: ``none`` (agent and target must have the same action meanings) or
            ``by_meaning`` (actions translated by name, FIRE pressed to serve where the
            target needs it, e.g. reprl Breakout agents on ``ALE/Breakout-v5``).
        video: also record a GIF of the first greedy episode per agent and target.
        baseline: the agent every other one is compared with in the report (paired
            differences, P(improvement)); none: ``pixels`` if there is such an agent.
    """

    env_ids: list[str] = field(default_factory=lambda: list(SCHEMA_TARGETS))
    env_kwargs: dict[str, Any] = field(
        default_factory=lambda: {"max_episode_steps": MAX_EVAL_EPISODE_STEPS}
    )
    episodes: int = 16
    num_envs: int = 16
    deterministic: list[bool] = field(default_factory=lambda: [True, False])
    seed: int = 10_000
    random_baseline: bool = True
    action_mapping: Literal["none", "by_meaning"] = "none"
    video: bool = False
    baseline: str | None = None


@dataclass
class ExperimentConfig:
    """A whole transfer experiment.

    Attributes:
        name: experiment name: its directory under ``root`` (rename a run with name=...).
        root: where experiments live.
        seeds: training seeds; every agent is trained once per seed.
        device: torch device for pretraining, agents and batched envs (cpu, cuda, ...).
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

    def agent_env_kwargs(self, agent: AgentStage) -> dict[str, Any]:
        """What an agent's envs need besides the env's own kwargs: the temporal context and
        the colour of its observations (grayscale only for pixel agents that ask for it)."""
        return {
            "frame_stack": self.train.frame_stack,
            "grayscale": agent.mode == "pixels" and agent.grayscale,
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
    budgets (2 seeds): pixel PPO (grayscale x 4) and PPO on each frozen encoder (latents x 4),
    zero-shot on the four Schema-Networks variants beside a uniform-random reference (greedy
    actions). Objects are drawn at least 2 x 2 pixels so the ball is visible at 64 x 64.
    """
    visible = {"min_object_size": 2}
    return ExperimentConfig(
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
