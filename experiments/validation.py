"""Validation of an experiment config: everything that can be checked before a stage runs.

:func:`validate_experiment` checks cross-references, every numeric range (SB3's included), PPO
batch arithmetic, the device's availability, every encoder built untrained on the CPU and its
input shape against every env it meets, the frame shape of every target, the action spaces
of every evaluation target and the training loop of every agent, so an invalid config writes
nothing. Models and env shapes are
memoised in the process (a sweep validates many trials).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from agents.hyperparams import check_ppo_batch, in_range
from envs.errors import ReprlError
from experiments.config import ConfigError

if TYPE_CHECKING:
    from experiments.experiment import ExperimentConfig


def validate_experiment(cfg: ExperimentConfig) -> None:
    """Checks every field and cross-reference before anything runs.

    Builds what is cheap to build to be sure it builds: every encoder's model, untrained on
    the CPU, encoding one blank frame (``"@other"`` kwargs resolved to encoder ``other``'s
    fresh model), and one env of each reprl env id with its kwargs, for its observation
    shape. Both are memoised in the process (a sweep validates many trials); the default
    config validates in tens of milliseconds.

    Raises:
        ConfigError: naming the field, what it expects and what came.
    """
    _validate_numbers(cfg)
    _validate_scenes(cfg)
    _validate_names(cfg)
    _validate_encoders(cfg)
    _validate_probe(cfg)
    _validate_agents(cfg)
    _validate_algorithms(cfg)
    _validate_envs(cfg)
    _validate_loops(cfg)
    _validate_inputs(cfg, _validate_models(cfg))


def _validate_numbers(cfg: ExperimentConfig) -> None:
    """Counts, seeds, the device and the collect policy's own fields."""
    _positive(
        {
            "collect.frames": cfg.collect.frames,
            "collect.num_envs": cfg.collect.num_envs,
            "collect.repeat": cfg.collect.repeat,
            "train.timesteps": cfg.train.timesteps,
            "train.num_envs": cfg.train.num_envs,
            "train.frame_stack": cfg.train.frame_stack,
            "evaluate.episodes": cfg.evaluate.episodes,
            "evaluate.num_envs": cfg.evaluate.num_envs,
            "jobs": cfg.jobs,
        }
    )
    if not in_range(cfg.train.seconds, "> 0"):
        raise ConfigError(f"train.seconds: expected a finite number > 0, got {cfg.train.seconds}")
    check_device("device", cfg.device)
    _non_negative(
        {
            **{f"seeds[{i}]": s for i, s in enumerate(cfg.seeds)},
            "collect.seed": cfg.collect.seed,
            "evaluate.seed": cfg.evaluate.seed,
            "probe.seed": cfg.probe.seed,
            **{f"encoders.{e.name}.seed": e.seed for e in cfg.encoders},
        }
    )
    if not 0.0 <= cfg.collect.epsilon <= 1.0:
        raise ConfigError(f"collect.epsilon: expected in [0, 1], got {cfg.collect.epsilon}")
    if cfg.collect.policy == "sb3" and not cfg.collect.model_path:
        raise ConfigError("collect.model_path: expected an agent zip for policy sb3, got none")
    if cfg.collect.policy == "sb3" and not cfg.collect.trust_pickle:
        _validate_collect_agent(cfg)


def _validate_names(cfg: ExperimentConfig) -> None:
    """Non-empty lists, distinct seeds, unique encoder and agent names."""
    if not cfg.seeds:
        raise ConfigError("seeds: expected at least one seed, got []")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"seeds: expected distinct seeds, got {cfg.seeds}")
    if not cfg.evaluate.env_ids:
        raise ConfigError("evaluate.env_ids: expected at least one env id, got []")
    if not cfg.evaluate.deterministic:
        raise ConfigError("evaluate.deterministic: expected [true], [false] or both, got []")
    if not cfg.agents and not cfg.encoders:
        raise ConfigError(
            "agents: expected at least one agent, or encoders to pretrain and probe (a "
            "probe-only experiment), got neither"
        )
    if not cfg.agents and not cfg.probe.enabled:
        raise ConfigError(
            "agents: a probe-only experiment (agents: []) needs probe.enabled: true, got false"
        )
    names = [e.name for e in cfg.encoders]
    if len(set(names)) != len(names):
        raise ConfigError(f"encoders: expected unique names, got {names}")
    agent_names = [a.name for a in cfg.agents]
    if len(set(agent_names)) != len(agent_names) or "random" in agent_names:
        raise ConfigError(
            f"agents: expected unique names other than 'random' (the reference row), "
            f"got {agent_names}"
        )


def _validate_encoders(cfg: ExperimentConfig) -> None:
    """Each encoder's optimisation settings and its ``"@other"`` references."""
    names = [e.name for e in cfg.encoders]
    for e in cfg.encoders:
        _positive({f"encoders.{e.name}.batch_size": e.batch_size})
        if not isinstance(e.steps, int) or isinstance(e.steps, bool) or e.steps < 0:
            raise ConfigError(
                f"encoders.{e.name}.steps: expected an integer >= 0 (0: the randomly "
                f"initialised baseline), got {e.steps!r}"
            )
        if not in_range(e.lr, "> 0"):
            raise ConfigError(f"encoders.{e.name}.lr: expected a finite number > 0, got {e.lr}")
        for key in ("weight_decay", "grad_clip"):
            if not in_range(getattr(e, key), ">= 0"):
                raise ConfigError(
                    f"encoders.{e.name}.{key}: expected a finite number >= 0, got "
                    f"{getattr(e, key)!r}"
                )
    for i, e in enumerate(cfg.encoders):
        for k, v in e.model.items():
            if isinstance(v, str) and v.startswith("@") and v[1:] not in names[:i]:
                raise ConfigError(
                    f"encoders.{e.name}.model.{k}: expected '@' + an earlier encoder, one "
                    f"of {names[:i]}, got {v!r}"
                )


def _validate_agents(cfg: ExperimentConfig) -> None:
    """The report's baseline, and each agent's mode, encoder and LSTM core."""
    from agents.algorithms import ALGORITHMS

    names = [e.name for e in cfg.encoders]
    agent_names = [a.name for a in cfg.agents]
    if cfg.evaluate.baseline is not None and cfg.evaluate.baseline not in agent_names:
        raise ConfigError(
            f"evaluate.baseline: expected one of the agents {agent_names}, got "
            f"{cfg.evaluate.baseline!r}"
        )
    for a in cfg.agents:
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
                f"agents.{a.name}.encoder: expected one of the encoders {names}, got {a.encoder!r}"
            )
        if a.lstm_hidden_size is not None:
            if not ALGORITHMS[cfg.agent_algo(a)].lstm_core:
                raise ConfigError(
                    f"agents.{a.name}.lstm_hidden_size: only A3C agents have an LSTM core; "
                    f"expected none for algo {cfg.agent_algo(a)!r}, got {a.lstm_hidden_size}"
                )
            _lstm_size(f"agents.{a.name}.", a.lstm_hidden_size)


def _validate_algorithms(cfg: ExperimentConfig) -> None:
    """Every algorithm an agent uses: its hyperparameters (and A3C's workers, PPO's batch)."""
    used = {cfg.agent_algo(a) for a in cfg.agents}
    if "a3c" in used:  # first: n_workers is bounded by this machine's cores, said so
        _validate_a3c(cfg)
    for algo in sorted(used):
        try:
            getattr(cfg.train, algo).validate(f"train.{algo}.")
        except ReprlError as e:
            raise ConfigError(str(e)) from None
    if "ppo" in used:
        try:
            check_ppo_batch(cfg.train.ppo.n_steps, cfg.train.num_envs, cfg.train.ppo.batch_size)
        except ValueError as e:
            raise ConfigError(f"train.ppo: {e}") from None


def _validate_a3c(cfg: ExperimentConfig) -> None:
    """``train.a3c``: workers this machine can start, envs split evenly among them, and
    the optimiser's settings."""
    from agents.a3c import check_n_workers

    h = cfg.train.a3c
    try:
        check_n_workers(h.n_workers)
    except ValueError as e:
        raise ConfigError(f"train.a3c.{e}") from None
    _positive({"train.a3c.n_steps": h.n_steps, "train.a3c.worker_threads": h.worker_threads})
    if cfg.train.num_envs % h.n_workers:
        raise ConfigError(
            f"train.num_envs: A3C splits the envs evenly among train.a3c.n_workers = "
            f"{h.n_workers} workers; expected a multiple of {h.n_workers}, got "
            f"{cfg.train.num_envs}"
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


def _validate_collect_agent(cfg: ExperimentConfig) -> None:
    """``collect.model_path`` opens without pickle (checked before anything is written)."""
    from agents.safe_zip import is_safe

    path = str(cfg.collect.model_path)
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


def _validate_scenes(cfg: ExperimentConfig) -> None:
    """``collect.views_per_scene`` and ``max_pitch``, and encoders that train on scenes."""
    import envs
    from representations.registry import available, get_class

    c = cfg.collect
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
        cameras = sorted(i for i in envs.known_ids() if envs.family(i).has_camera)
        other = [i for i in c.env_ids if i not in cameras]
        if other:
            raise ConfigError(
                f"collect.env_ids: scenes (views_per_scene {k}) need envs with a camera, "
                f"one of {cameras}; got {other}"
            )
    for e in cfg.encoders:
        if e.method not in available():
            continue  # named by the encoders' own check
        cls = get_class(e.method)
        problem = cls.batch_kind.collect_problem(cls, k)  # scenes or episodes, as it trains
        if problem is not None:
            raise ConfigError(f"encoders.{e.name}: {problem}")


def _validate_probe(cfg: ExperimentConfig) -> None:
    """``probe.*``: frame counts and metric names."""
    from representations.metrics import METRICS

    p = cfg.probe
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
    if p.protocol not in ("reprl", "atariari"):  # a Python-built config skips the loader's check
        raise ConfigError(f"probe.protocol: expected 'reprl' or 'atariari', got {p.protocol!r}")
    if p.protocol == "atariari":
        _validate_atariari(p.atariari)
    if not p.metrics:
        raise ConfigError(f"probe.metrics: expected a non-empty list of {list(METRICS)}, got []")
    unknown = [m for m in p.metrics if m not in METRICS]
    if unknown or len(set(p.metrics)) != len(p.metrics):
        raise ConfigError(
            f"probe.metrics: expected distinct names among {list(METRICS)}, got {p.metrics}"
        )


def _validate_atariari(a: Any) -> None:
    """``probe.atariari.*``: the AtariARI probe's counts and rates."""
    for name, low in (("epochs", 1), ("patience", 1), ("batch_size", 1), ("min_episode_length", 0)):
        n = getattr(a, name)
        if isinstance(n, bool) or not isinstance(n, int) or n < low:
            raise ConfigError(f"probe.atariari.{name}: expected an integer >= {low}, got {n!r}")
    if not in_range(a.lr, "> 0"):
        raise ConfigError(f"probe.atariari.lr: expected a finite number > 0, got {a.lr!r}")
    if not in_range(a.entropy_threshold, ">= 0"):
        raise ConfigError(
            f"probe.atariari.entropy_threshold: expected a finite number >= 0 (nats), got "
            f"{a.entropy_threshold!r}"
        )


def _validate_envs(cfg: ExperimentConfig) -> None:
    """Env ids exist, and every target's actions mean what the agent's mean."""
    import envs
    from envs.actions import check_action_mapping

    known = envs.known_ids()
    where = {
        "train.env_id": [cfg.train.env_id],
        "evaluate.env_ids": cfg.evaluate.env_ids,
        "collect.env_ids": cfg.collect.env_ids,
    }
    for key, ids in where.items():
        for env_id in ids:
            if env_id not in known:
                raise ConfigError(f"{key}: expected a known env id, got {env_id!r}")
    source = envs.action_meanings(cfg.train.env_id)
    for target in cfg.evaluate.env_ids:
        try:
            check_action_mapping(source, envs.action_meanings(target), cfg.evaluate.action_mapping)
        except ValueError as e:
            raise ConfigError(f"evaluate.action_mapping, target {target}: {e}") from None


def _validate_loops(cfg: ExperimentConfig) -> None:
    """``train.loop``: ``device`` only where the device loop can train every agent (PPO on a
    reprl Breakout or lab env, :func:`agents.device_ppo.resolve_loop`).

    The rollout's minibatch split is :func:`_validate_algorithms`' PPO batch check, and the
    env, the policy and a frozen encoder all run on the one ``device``, so those two refusals
    of the device loop cannot arise from a config (:class:`agents.device_ppo.DevicePPO` makes
    them for models built otherwise)."""
    for a in cfg.agents:
        cfg.agent_loop(a)


def _validate_models(cfg: ExperimentConfig) -> dict[str, tuple[int, int, int]]:
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
    for e in cfg.encoders:
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


def _validate_inputs(cfg, shapes: dict[str, tuple[int, int, int]]) -> None:
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
        env_id: _obs_shape("collect.env_kwargs", env_id, cfg.collect.env_kwargs)
        for env_id in cfg.collect.env_ids
    }
    if len(set(collect.values())) > 1:
        raise ConfigError(
            f"collect.env_ids: expected envs of one frame shape (one dataset), got "
            f"{_shapes(collect)}"
        )
    if not cfg.agents:  # a probe-only experiment: its encoders see the collect envs alone
        for e in cfg.encoders:
            _check_frames(e.name, shapes[e.name], [("collect.env_ids", collect)])
        return
    t = cfg.train
    source = _obs_shape("train.env_kwargs", t.env_id, t.env_kwargs)
    eval_kwargs = {**t.env_kwargs, **cfg.evaluate.env_kwargs}
    where = "evaluate.env_kwargs (on top of train.env_kwargs)"
    targets = {env_id: _obs_shape(where, env_id, eval_kwargs) for env_id in cfg.evaluate.env_ids}
    for e in cfg.encoders:
        met = [("collect.env_ids", collect), ("train.env_id", {t.env_id: source})]
        if any(a.encoder == e.name for a in cfg.agents):
            met.append(("evaluate.env_ids", targets))
        _check_frames(e.name, shapes[e.name], met)
    bad = {k: v for k, v in targets.items() if v != source}
    if bad:
        raise ConfigError(
            f"evaluate.env_ids: the agents are trained on {t.env_id} frames (H, W, C) = "
            f"{source}; expected targets of that shape, got {_shapes(bad)} (evaluate."
            f"env_kwargs on top of train.env_kwargs)"
        )


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
    """The single-frame RGB observation shape ``(H, W, C)`` of ``env_id`` with ``env_kwargs``
    (:func:`envs.registry.observation_shape`: no emulator or MuJoCo is started), memoised.

    Raises:
        ConfigError: the env refuses its kwargs.
    """
    import json

    from envs.registry import observation_shape

    memo = json.dumps([env_id, env_kwargs], sort_keys=True, default=repr)
    if memo not in _SHAPES:
        try:
            _SHAPES[memo] = observation_shape(env_id, **env_kwargs)
        except (ReprlError, TypeError, ValueError, IndexError) as e:
            why = " ".join(str(e).split())
            raise ConfigError(f"{key}: {env_id} does not build with {env_kwargs}: {why}") from None
    return _SHAPES[memo]


def _check_frames(
    name: str, input_spec: tuple[int, int, int], met: list[tuple[str, dict[str, tuple]]]
) -> None:
    """Every env an encoder meets (``(config key, {env id: (H, W, C)})``) gives the frames its
    ``input_spec`` takes; otherwise a ConfigError naming the key, the envs and both shapes."""
    need = _hwc(input_spec)
    for key, got in met:
        bad = {k: v for k, v in got.items() if v != need}
        if bad:
            raise ConfigError(
                f"{key}: encoder {name!r} takes frames (H, W, C) = {need} (its "
                f"input_spec {input_spec}), got {_shapes(bad)}; set obs_size in "
                f"the env kwargs or the encoder's model.input_shape to match"
            )


def _hwc(chw: tuple[int, int, int]) -> tuple[int, int, int]:
    return (chw[1], chw[2], chw[0])


def _shapes(by_env: dict[str, tuple[int, int, int]]) -> str:
    return ", ".join(f"{env_id} {shape}" for env_id, shape in by_env.items())
