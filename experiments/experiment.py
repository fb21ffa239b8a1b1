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

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.hyperparams import (
    A2CHyperparams,
    A3CHyperparams,
    PPOHyperparams,
    check_ppo_batch,
    in_range,
)
from envs.errors import ReprlError
from envs.registry import SCHEMA_TARGETS
from experiments.config import ConfigError, build, load_config, read_yaml

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
        """Checks every field and cross-reference before anything runs.

        Builds what is cheap to build to be sure it builds: every encoder's model, untrained on
        the CPU, encoding one blank frame (``"@other"`` kwargs resolved to encoder ``other``'s
        fresh model), and one env of each reprl env id with its kwargs, for its observation
        shape. Both are memoised in the process (a sweep validates many trials); the default
        config validates in tens of milliseconds.

        Raises:
            ConfigError: naming the field, what it expects and what came.
        """
        _positive(
            {
                "collect.frames": self.collect.frames,
                "collect.num_envs": self.collect.num_envs,
                "collect.repeat": self.collect.repeat,
                "train.timesteps": self.train.timesteps,
                "train.num_envs": self.train.num_envs,
                "train.frame_stack": self.train.frame_stack,
                "evaluate.episodes": self.evaluate.episodes,
                "evaluate.num_envs": self.evaluate.num_envs,
            }
        )
        if not in_range(self.train.seconds, "> 0"):
            raise ConfigError(
                f"train.seconds: expected a finite number > 0, got {self.train.seconds}"
            )
        check_device("device", self.device)
        _non_negative(
            {
                **{f"seeds[{i}]": s for i, s in enumerate(self.seeds)},
                "collect.seed": self.collect.seed,
                "evaluate.seed": self.evaluate.seed,
                "probe.seed": self.probe.seed,
                **{f"encoders.{e.name}.seed": e.seed for e in self.encoders},
            }
        )
        if not 0.0 <= self.collect.epsilon <= 1.0:
            raise ConfigError(f"collect.epsilon: expected in [0, 1], got {self.collect.epsilon}")
        if self.collect.policy == "sb3" and not self.collect.model_path:
            raise ConfigError("collect.model_path: expected an agent zip for policy sb3, got none")
        if self.collect.policy == "sb3" and not self.collect.trust_pickle:
            self._validate_collect_agent()
        self._validate_scenes()
        if not self.seeds:
            raise ConfigError("seeds: expected at least one seed, got []")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: expected distinct seeds, got {self.seeds}")
        if not self.evaluate.env_ids:
            raise ConfigError("evaluate.env_ids: expected at least one env id, got []")
        if not self.evaluate.deterministic:
            raise ConfigError("evaluate.deterministic: expected [true], [false] or both, got []")
        if not self.agents:
            raise ConfigError("agents: expected at least one agent, got []")
        names = [e.name for e in self.encoders]
        if len(set(names)) != len(names):
            raise ConfigError(f"encoders: expected unique names, got {names}")
        agent_names = [a.name for a in self.agents]
        if len(set(agent_names)) != len(agent_names) or "random" in agent_names:
            raise ConfigError(
                f"agents: expected unique names other than 'random' (the reference row), "
                f"got {agent_names}"
            )
        for e in self.encoders:
            _positive({f"encoders.{e.name}.batch_size": e.batch_size})
            if not isinstance(e.steps, int) or isinstance(e.steps, bool) or e.steps < 0:
                raise ConfigError(
                    f"encoders.{e.name}.steps: expected an integer >= 0 (0: the randomly "
                    f"initialised baseline), got {e.steps!r}"
                )
            if not in_range(e.lr, "> 0"):
                raise ConfigError(f"encoders.{e.name}.lr: expected a finite number > 0, got {e.lr}")
        self._validate_probe()
        if self.evaluate.baseline is not None and self.evaluate.baseline not in agent_names:
            raise ConfigError(
                f"evaluate.baseline: expected one of the agents {agent_names}, got "
                f"{self.evaluate.baseline!r}"
            )
        for a in self.agents:
            if a.mode == "pixels" and a.encoder is not None:
                raise ConfigError(
                    f"agents.{a.name}.encoder: expected none for mode 'pixels', got {a.encoder!r}"
                )
            if a.mode != "pixels" and a.pixel_extractor != "nature":
                raise ConfigError(
                    f"agents.{a.name}.pixel_extractor: expected 'nature' (unused) for mode "
                    f"{a.mode!r}, got {a.pixel_extractor!r}: the encoder is the extractor"
                )
            if a.mode != "pixels" and a.encoder not in names:
                raise ConfigError(
                    f"agents.{a.name}.encoder: expected one of the encoders {names}, "
                    f"got {a.encoder!r}"
                )
            if a.lstm_hidden_size is not None:
                if self.agent_algo(a) != "a3c":
                    raise ConfigError(
                        f"agents.{a.name}.lstm_hidden_size: only A3C agents have an LSTM core; "
                        f"expected none for algo {self.agent_algo(a)!r}, got {a.lstm_hidden_size}"
                    )
                _lstm_size(f"agents.{a.name}.", a.lstm_hidden_size)
        for i, e in enumerate(self.encoders):
            for k, v in e.model.items():
                if isinstance(v, str) and v.startswith("@") and v[1:] not in names[:i]:
                    raise ConfigError(
                        f"encoders.{e.name}.model.{k}: expected '@' + an earlier encoder, one "
                        f"of {names[:i]}, got {v!r}"
                    )
        used = {self.agent_algo(a) for a in self.agents}
        if "a3c" in used:  # first: n_workers is bounded by this machine's cores, said so
            self._validate_a3c()
        for algo in sorted(used):
            try:
                getattr(self.train, algo).validate(f"train.{algo}.")
            except ReprlError as e:
                raise ConfigError(str(e)) from None
        if "ppo" in used:
            try:
                check_ppo_batch(
                    self.train.ppo.n_steps, self.train.num_envs, self.train.ppo.batch_size
                )
            except ValueError as e:
                raise ConfigError(f"train.ppo: {e}") from None
        self._validate_envs()
        self._validate_inputs(self._validate_models())

    def _validate_a3c(self) -> None:
        """``train.a3c``: workers this machine can start, envs split evenly among them, and
        the optimiser's settings."""
        from agents.a3c import check_n_workers

        h = self.train.a3c
        try:
            check_n_workers(h.n_workers)
        except ValueError as e:
            raise ConfigError(f"train.a3c.{e}") from None
        _positive({"train.a3c.n_steps": h.n_steps, "train.a3c.worker_threads": h.worker_threads})
        if self.train.num_envs % h.n_workers:
            raise ConfigError(
                f"train.num_envs: A3C splits the envs evenly among train.a3c.n_workers = "
                f"{h.n_workers} workers; expected a multiple of {h.n_workers}, got "
                f"{self.train.num_envs}"
            )
        if not h.learning_rate > 0:
            raise ConfigError(f"train.a3c.learning_rate: expected > 0, got {h.learning_rate}")
        if not 0 <= h.gamma <= 1:
            raise ConfigError(f"train.a3c.gamma: expected a value in [0, 1], got {h.gamma}")
        if not 0 <= h.rms_prop_alpha < 1:
            raise ConfigError(
                f"train.a3c.rms_prop_alpha: expected a value in [0, 1), got {h.rms_prop_alpha}"
            )
        if not h.rms_prop_eps > 0:
            raise ConfigError(f"train.a3c.rms_prop_eps: expected > 0, got {h.rms_prop_eps}")
        _lstm_size("train.a3c.", h.lstm_hidden_size)

    def _validate_collect_agent(self) -> None:
        """``collect.model_path`` opens without pickle (checked before anything is written)."""
        from agents.safe_zip import is_safe

        path = str(self.collect.model_path)
        try:
            safe = is_safe(path)
        except ReprlError as e:
            raise ConfigError(f"collect.model_path: {e}") from None
        if not safe:
            raise ConfigError(
                f"collect.model_path: expected an agent zip that opens without pickle, got "
                f"{path}, which only unpickling opens (pickles can run code); set "
                "collect.trust_pickle=true if you trust its source, or convert it once: reprl "
                f"convert-agent {path} SAFE.zip --trust-pickle"
            )

    def agent_algo(self, agent: AgentStage) -> str:
        """The algorithm that trains ``agent``: its own ``algo``, else ``train.algo``."""
        return agent.algo or self.train.algo

    def _validate_scenes(self) -> None:
        """``collect.views_per_scene`` and ``max_pitch``, and encoders that train on scenes."""
        from envs.registry import LAB_IDS
        from representations.registry import available, get_class

        c = self.collect
        k = c.views_per_scene
        if isinstance(k, bool) or not isinstance(k, int) or k == 1 or k < 0:
            raise ConfigError(
                f"collect.views_per_scene: expected 0 (trajectories) or an integer >= 2, got {k!r}"
            )
        if not 0 <= c.max_pitch < 90:
            raise ConfigError(f"collect.max_pitch: expected degrees in [0, 90), got {c.max_pitch}")
        if k:
            if c.frames < k:
                raise ConfigError(
                    f"collect.frames: expected at least views_per_scene = {k} (one scene), got "
                    f"{c.frames}"
                )
            other = [i for i in c.env_ids if i not in LAB_IDS]
            if other:
                raise ConfigError(
                    f"collect.env_ids: scenes (views_per_scene {k}) need envs with a camera, "
                    f"one of {sorted(LAB_IDS)}; got {other}"
                )
        for e in self.encoders:
            if e.method not in available():
                continue  # named by the encoders' own check
            cls = get_class(e.method)
            need = int(getattr(cls, "views_per_scene_min", 2))
            if cls.batch_kind == "scenes" and k < need:
                raise ConfigError(
                    f"encoders.{e.name}: {e.method} trains on scenes of at least {need} views; "
                    f"expected collect.views_per_scene >= {need}, got {k}"
                )
            if cls.batch_kind in ("pairs", "sequences") and k:
                raise ConfigError(
                    f"encoders.{e.name}: {e.method} trains on consecutive frames of episodes; "
                    f"expected collect.views_per_scene 0 (trajectories), got {k} (scenes of "
                    "views from random cameras have no episodes)"
                )

    def _validate_probe(self) -> None:
        """``probe.*``: frame counts and metric names."""
        from representations.metrics import METRICS

        p = self.probe
        if isinstance(p.frames, bool) or not isinstance(p.frames, int) or p.frames < 100:
            raise ConfigError(f"probe.frames: expected an integer >= 100, got {p.frames!r}")
        for name, what in (
            ("segmentation_frames", "segmentation"),
            ("sequence_frames", "CPC"),
            ("rendering_scenes", "GQN rendering"),
        ):
            n = getattr(p, name)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ConfigError(
                    f"probe.{name}: expected an integer >= 0 (0: no {what} scores), got {n!r}"
                )
        if not p.metrics:
            raise ConfigError(
                f"probe.metrics: expected a non-empty list of {list(METRICS)}, got []"
            )
        unknown = [m for m in p.metrics if m not in METRICS]
        if unknown or len(set(p.metrics)) != len(p.metrics):
            raise ConfigError(
                f"probe.metrics: expected distinct names among {list(METRICS)}, got {p.metrics}"
            )

    def _validate_envs(self) -> None:
        """Env ids exist, and every target's actions mean what the agent's mean."""
        import envs
        from envs.actions import check_action_mapping

        known = envs.known_ids()
        where = {
            "train.env_id": [self.train.env_id],
            "evaluate.env_ids": self.evaluate.env_ids,
            "collect.env_ids": self.collect.env_ids,
        }
        for key, ids in where.items():
            for env_id in ids:
                if env_id not in known:
                    raise ConfigError(f"{key}: expected a known env id, got {env_id!r}")
        source = envs.action_meanings(self.train.env_id)
        for target in self.evaluate.env_ids:
            try:
                check_action_mapping(
                    source, envs.action_meanings(target), self.evaluate.action_mapping
                )
            except ValueError as e:
                raise ConfigError(f"evaluate.action_mapping, target {target}: {e}") from None

    def _validate_models(self) -> dict[str, tuple[int, int, int]]:
        """Builds every encoder's model, on the CPU and untrained, and encodes one blank frame.

        A ``"@other"`` kwarg stands for the fresh model of encoder ``other`` (its checkpoint
        does not exist yet); a model is built once per (method, kwargs) in this process.

        Returns:
            encoder name -> its input shape ``(C, H, W)``.

        Raises:
            ConfigError: an unknown method, an unknown kwarg, or a model that does not build
                (a kwarg of the wrong type or out of its range), naming the encoder.
        """
        import json

        from representations.registry import available, check_config

        built: dict[str, Any] = {}
        memos: dict[str, str] = {}
        shapes: dict[str, tuple[int, int, int]] = {}
        for e in self.encoders:
            key = f"encoders.{e.name}"
            if e.method not in available():
                raise ConfigError(f"{key}.method: expected one of {available()}, got {e.method!r}")
            try:
                check_config(e.method, e.model)
            except ReprlError as err:
                raise ConfigError(f"{key}.model: {err}") from None
            refs = {k: v[1:] for k, v in e.model.items() if isinstance(v, str) and v[:1] == "@"}
            kwargs = {**e.model, **{k: built[r] for k, r in refs.items()}}
            spec = {**e.model, **{k: {"@": memos[r]} for k, r in refs.items()}}
            memos[e.name] = json.dumps([e.method, spec], sort_keys=True, default=repr)
            built[e.name] = model = _fresh_model(key, e.method, kwargs, e.model, memos[e.name])
            shapes[e.name] = tuple(int(n) for n in model.input_spec.shape)  # type: ignore[assignment]
        return shapes

    def _validate_inputs(self, shapes: dict[str, tuple[int, int, int]]) -> None:
        """Every env an encoder or agent meets gives observations of the shape it takes.

        Encoders see single RGB frames of the collect envs (pretraining) and of the source and
        target envs (agents on them); every agent, pixel agents too, sees frames of the shape
        it was trained on in every target. Frame stacking and grayscale are the agents' and do
        not enter here.

        Raises:
            ConfigError: an env that does not build with its kwargs, collect envs of
                different frame shapes, or a shape that differs from what its consumer takes,
                naming the envs, the encoder and both shapes.
        """
        collect = {
            env_id: _obs_shape("collect.env_kwargs", env_id, self.collect.env_kwargs)
            for env_id in self.collect.env_ids
        }
        if len(set(collect.values())) > 1:
            raise ConfigError(
                f"collect.env_ids: expected envs of one frame shape (one dataset), got "
                f"{_shapes(collect)}"
            )
        t = self.train
        source = _obs_shape("train.env_kwargs", t.env_id, t.env_kwargs)
        eval_kwargs = {**t.env_kwargs, **self.evaluate.env_kwargs}
        where = "evaluate.env_kwargs (on top of train.env_kwargs)"
        targets = {
            env_id: _obs_shape(where, env_id, eval_kwargs) for env_id in self.evaluate.env_ids
        }
        for e in self.encoders:
            need = _hwc(shapes[e.name])
            met = [("collect.env_ids", collect), ("train.env_id", {t.env_id: source})]
            if any(a.encoder == e.name for a in self.agents):
                met.append(("evaluate.env_ids", targets))
            for key, got in met:
                bad = {k: v for k, v in got.items() if v != need}
                if bad:
                    raise ConfigError(
                        f"{key}: encoder {e.name!r} takes frames (H, W, C) = {need} (its "
                        f"input_spec {shapes[e.name]}), got {_shapes(bad)}; set obs_size in "
                        f"the env kwargs or the encoder's model.input_shape to match"
                    )
        bad = {k: v for k, v in targets.items() if v != source}
        if bad:
            raise ConfigError(
                f"evaluate.env_ids: the agents are trained on {t.env_id} frames (H, W, C) = "
                f"{source}; expected targets of that shape, got {_shapes(bad)} (evaluate."
                f"env_kwargs on top of train.env_kwargs)"
            )

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


def _lstm_size(prefix: str, value: Any) -> None:
    """``agents.a3c.check_lstm_hidden_size`` with the config key's ``prefix``."""
    from agents.a3c import check_lstm_hidden_size

    try:
        check_lstm_hidden_size(value)
    except ValueError as e:
        raise ConfigError(f"{prefix}{e}") from None


def _positive(values: dict[str, int]) -> None:
    for key, v in values.items():
        if v < 1:
            raise ConfigError(f"{key}: expected an integer >= 1, got {v}")


def _non_negative(values: dict[str, int]) -> None:
    for key, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"{key}: expected an integer >= 0, got {v!r}")


_DEVICE_HERE = contextvars.ContextVar("reprl_device_here", default=True)


@contextlib.contextmanager
def devices_checked_where_they_run() -> Iterator[None]:
    """Within the block, :func:`check_device` checks a device's name, not that this machine
    has it: for configs that run elsewhere (a sweep's trials on the GPU nodes Ray gives them,
    which validate their config again before they start)."""
    token = _DEVICE_HERE.set(False)
    try:
        yield
    finally:
        _DEVICE_HERE.reset(token)


def check_device(key: str, device: Any) -> None:
    """:func:`envs.devices.check_device` as a config check: that this machine has the device
    too, unless within :func:`devices_checked_where_they_run`.

    Raises:
        ConfigError: ``"<key>: expected ..., got ..."`` naming what is missing.
    """
    from envs.devices import check_device as check

    try:
        check(device, key, here=_DEVICE_HERE.get())
    except ReprlError as e:
        raise ConfigError(str(e)) from None


_MODELS: dict[str, Any] = {}
_SHAPES: dict[str, tuple[int, int, int]] = {}
_MODELS_KEPT = 16
"""Fresh models memoised by validation at most (the oldest goes first): a sweep's trials
share a few encoder configs, and a long random search must not hold every one it drew."""


def _fresh_model(
    key: str, method: str, kwargs: dict[str, Any], given: dict[str, Any], memo: str
) -> Any:
    """``make_representation(method, **kwargs)`` on the CPU, after encoding one blank frame;
    memoised by ``memo`` (sweeps validate many trials with the same encoders).

    Raises:
        ConfigError: ``"<key>.model: ..."`` with the constructor's (or the forward pass's)
            error.
    """
    import torch

    from representations.registry import make_representation

    if memo in _MODELS:
        return _MODELS[memo]
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's random state is kept
            model = make_representation(method, **kwargs)
        model.eval()
        with torch.no_grad():
            model.encode(torch.zeros(1, *model.input_spec.shape))
    except Exception as e:  # any failure here is a failure of this config
        why = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"{key}.model: {method} does not build with {given}: {why}") from None
    while len(_MODELS) >= _MODELS_KEPT:
        del _MODELS[next(iter(_MODELS))]
    _MODELS[memo] = model
    return model


def _obs_shape(key: str, env_id: str, env_kwargs: dict[str, Any]) -> tuple[int, int, int]:
    """The single-frame RGB observation shape ``(H, W, C)`` of ``env_id`` with ``env_kwargs``.

    reprl's batched envs (Breakout, the lab) are built with one env (milliseconds), which also
    checks their kwargs; procgen gives 64 x 64, ALE and Memory Maze ``obs_size`` (64 x 64 by
    default), read from the kwargs without starting an emulator or MuJoCo. Memoised.

    Raises:
        ConfigError: the env refuses its kwargs.
    """
    import json

    import envs
    from envs.registry import BREAKOUT_IDS, LAB_IDS, PROCGEN_IDS

    memo = json.dumps([env_id, env_kwargs], sort_keys=True, default=repr)
    if memo in _SHAPES:
        return _SHAPES[memo]
    if env_id in BREAKOUT_IDS or env_id in LAB_IDS:
        try:
            venv = envs.make_vec(env_id, 1, seed=0, info_factors=False, **env_kwargs)
        except (ReprlError, TypeError, ValueError) as e:
            why = " ".join(str(e).split())
            raise ConfigError(f"{key}: {env_id} does not build with {env_kwargs}: {why}") from None
        shape = tuple(int(n) for n in venv.observation_space.shape)
        venv.close()
    elif env_id in PROCGEN_IDS:
        shape = (64, 64, 3)
    else:
        size = env_kwargs.get("obs_size", (64, 64))
        try:
            shape = (int(size[0]), int(size[1]), 3)
        except (TypeError, ValueError, IndexError):
            raise ConfigError(f"{key}: obs_size: expected (height, width), got {size!r}") from None
    _SHAPES[memo] = shape  # type: ignore[assignment]
    return shape  # type: ignore[return-value]


def _hwc(chw: tuple[int, int, int]) -> tuple[int, int, int]:
    return (chw[1], chw[2], chw[0])


def _shapes(by_env: dict[str, tuple[int, int, int]]) -> str:
    return ", ".join(f"{env_id} {shape}" for env_id, shape in by_env.items())


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
