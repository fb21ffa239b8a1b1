"""The blocks of an experiment config that need nothing heavy: collect, encoders, probe, agents
and evaluation (:class:`experiments.experiment.ExperimentConfig` holds them, with training).

Their defaults are the single source of the matching command-line options (``reprl collect``'s
defaults are :class:`CollectStage`'s), so this module imports no torch or SB3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from envs.registry import SCHEMA_TARGETS

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
        weight_decay: AdamW weight decay, >= 0.
        grad_clip: max gradient norm, 0 to disable.
        seed: initialisation and data-order seed.

    Every field that :class:`representations.pretrain.PretrainConfig` also has is passed to
    it under the same name (:func:`experiments.stages.pretrain.stage_pretrain`).
    """

    name: str = "beta_vae"
    method: str = "beta_vae"
    model: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    seed: int = 0


@dataclass
class AtariARIProbe:
    """The AtariARI probe's training (``probe.protocol: atariari``); the defaults are the
    paper's (their ``get_argparser`` and ``ProbeTrainer``,
    :mod:`representations.metrics.atariari`).

    Attributes:
        epochs: most epochs of each variable's probe, >= 1 (100).
        patience: epochs without a rise of the validation accuracy before it stops, >= 1 (15).
        batch_size: frames per step, >= 1 (64).
        lr: Adam's initial learning rate, > 0 (3e-4).
        entropy_threshold: variables whose label entropy (nats) is below it are dropped,
            >= 0 (0.6).
        min_episode_length: episodes of at most this many frames are left out, >= 0 (64).
    """

    epochs: int = 100
    patience: int = 15
    batch_size: int = 64
    lr: float = 3e-4
    entropy_threshold: float = 0.6
    min_episode_length: int = 64


@dataclass
class ProbeStage:
    """What every pretrained encoder captures, scored before any agent is trained.

    Attributes:
        enabled: score the encoders (only matters when there are encoders).
        protocol: ``reprl`` (the metrics below on the collect dataset) or ``atariari`` (the
            AtariARI benchmark, Anand et al. 2019: per discrete factor, e.g. a RAM byte of an
            ALE game, a linear 256-way classifier on the frozen features of ``frames`` fresh
            random-agent frames of the collect envs, episodes split 70/10/20, weighted F1;
            settings in ``atariari``; ``metrics`` and the method's own scores are then not
            computed).
        frames: ``reprl``: frames of the collect dataset to score on, spread evenly over the
            file (:func:`representations.analysis.subsample`); ``atariari``: fresh frames
            collected for the probe (the paper's 50k), >= 100.
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
        atariari: the AtariARI probe's training (:class:`AtariARIProbe`).
    """

    enabled: bool = True
    protocol: Literal["reprl", "atariari"] = "reprl"
    frames: int = 5000
    metrics: list[str] = field(default_factory=lambda: ["probe", "mig", "dci"])
    segmentation_frames: int = 256
    sequence_frames: int = 4096
    rendering_scenes: int = 256
    seed: int = 0
    atariari: AtariARIProbe = field(default_factory=AtariARIProbe)


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
