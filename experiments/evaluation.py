"""Zero-shot evaluation: every agent (and a uniform-random reference) on every target.

:func:`evaluate_agent` runs one policy on one target with SB3's ``evaluate_policy`` on env
streams of the ``evaluate`` purpose (disjoint from training), translating actions by meaning
where the config allows it; :func:`stage_evaluate` is the pipeline's evaluate stage, one CSV
(one row per episode) and one JSON (provenance) per run, content-keyed like every stage.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from envs.storage.artefacts import StageDir, stage_key
from envs.storage.files import atomic_path, atomic_write_json, file_sha256, library_version
from experiments.config import to_dict
from experiments.experiment import MAX_EVAL_EPISODE_STEPS, ExperimentConfig


# --- evaluate --------------------------------------------------------------------------------
def relative(path: str | os.PathLike[str], base: Path) -> str:
    """``path`` relative to the experiment directory (reports hold no absolute paths)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).name


class _Predictor:
    """An agent with SB3's ``predict`` signature (a recurrent one's state passed through),
    loaded lazily, so a reused evaluation never loads its agent."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load, self._model = load, None

    def loaded(self) -> Any:
        """The model, loaded on first use."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def predict(self, obs: np.ndarray, state=None, episode_start=None, deterministic=True):
        return self.loaded().predict(
            obs, state=state, episode_start=episode_start, deterministic=deterministic
        )


def evaluate_agent(
    model: Any,
    env_id: str,
    *,
    episodes: int,
    num_envs: int,
    deterministic: bool,
    seed: int,
    device: str = "cpu",
    env_kwargs: dict[str, Any] | None = None,
    agent_meanings: list[str] | None = None,
    action_mapping: str = "none",
) -> list[tuple[float, int]]:
    """Runs ``model`` on ``env_id`` for ``episodes`` episodes (SB3's ``evaluate_policy``).

    Episodes are spread evenly over the envs (env i runs ``(episodes + i) // num_envs``), so
    short episodes are not over-represented; env i is seeded from the ``evaluate`` purpose of
    :func:`envs.rng.spawn_seeds`, so every agent sees the same episodes. A frozen-encoder
    agent runs through :func:`agents.latent_view` (its encoder once per env step, not once per
    stacked frame): the same actions, about ``k`` times less encoding.

    Args:
        model: anything with SB3's ``predict``.
        env_id: the target.
        episodes: episodes to run, >= 1.
        num_envs: parallel envs (at most ``episodes`` are used).
        deterministic: greedy (True) or sampled actions.
        seed: the evaluation seed.
        device: device of batched envs.
        env_kwargs: the target's kwargs (with the agent's ``frame_stack`` and ``grayscale``).
        agent_meanings: the agent's action meanings; None: the target's own.
        action_mapping: ``none`` or ``by_meaning`` (see :mod:`envs.actions`).

    Returns:
        (return, length) per episode.

    Raises:
        ReprlError: before the first step: the agent's observation or action space does not
            fit the target's (:func:`agents.space_check.check_agent_spaces`, for plain SB3
            zips too), or its actions do not mean the target's and no mapping is allowed.
    """
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecMonitor

    import envs
    from agents import latent_view
    from agents.space_check import check_agent_spaces
    from envs.actions import MappedActions
    from envs.rng import spawn_seeds

    n = min(num_envs, episodes)
    kwargs = dict(env_kwargs or {})
    venv = envs.make_vec(
        env_id,
        n,
        seed=spawn_seeds(seed, n, purpose="evaluate"),
        device=device,
        info_factors=False,
        **kwargs,
    )
    try:  # the agent's spaces (and meanings) against the target's, before the first step
        agent = model.loaded() if isinstance(model, _Predictor) else model
        mapped = check_agent_spaces(
            agent,
            venv,
            env_id,
            env_kwargs=kwargs,
            agent_meanings=agent_meanings,
            action_mapping=action_mapping,
        )
        if mapped:
            venv = MappedActions(venv, agent_meanings)
        view = latent_view(agent, venv)
        if view is not None:
            venv, model = view
        venv = VecMonitor(venv)
    except BaseException:
        venv.close()
        raise
    try:
        rewards, lengths = evaluate_policy(
            model,
            venv,
            n_eval_episodes=episodes,
            deterministic=deterministic,
            return_episode_rewards=True,
            warn=False,
        )
    finally:
        venv.close()
    return [(float(r), int(n)) for r, n in zip(rewards, lengths)]


def _evaluate_one(
    cfg: ExperimentConfig,
    d: Path,
    run: str,
    model_for: Callable[[str], Any],
    meta: dict[str, Any],
    inputs: dict[str, Path | None],
    agent_kwargs: dict[str, Any],
    meanings: list[str] | None,
) -> tuple[Path, bool]:
    """Evaluates ``model`` on every target and mode into ``d/<run>.csv`` (+ ``.json``)."""
    ev = cfg.evaluate
    csv_path, meta_path = d / f"{run}.csv", d / f"{run}.json"
    key = stage_key({"evaluate": to_dict(ev), "env": agent_kwargs, "run": run}, inputs)
    stage = StageDir(d, key, [csv_path.name, meta_path.name], name=run)
    if stage.done():
        return csv_path, True
    stage.begin(resume=False)
    agent_name, seed = run.rsplit("__", 1)
    rows = []
    jobs = [(e, det) for e in ev.env_ids for det in ev.deterministic]
    for env_id, det in tqdm(jobs, desc=f"evaluate {run}", mininterval=1.0):
        res = evaluate_agent(
            model_for(env_id),
            env_id,
            episodes=ev.episodes,
            num_envs=ev.num_envs,
            deterministic=det,
            seed=ev.seed,
            device=cfg.device,
            env_kwargs={**agent_kwargs, **ev.env_kwargs},
            agent_meanings=meanings,
            action_mapping=ev.action_mapping,
        )
        mode = str(det).lower()
        rows += [(agent_name, seed, env_id, i, r, n, mode) for i, (r, n) in enumerate(res)]
    if ev.video and meanings is not None:  # agents, not the random reference
        from experiments.video import record_gif

        for env_id in ev.env_ids:
            slug = env_id.replace("/", "_")
            record_gif(
                model_for(env_id),
                env_id,
                d / "videos" / f"{run}__{slug}.gif",
                seed=ev.seed,
                max_frames=MAX_EVAL_EPISODE_STEPS,
                env_kwargs={**agent_kwargs, **ev.env_kwargs},
                deterministic=True,
                device=cfg.device,
                agent_meanings=meanings,
                action_mapping=ev.action_mapping,
            )
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["agent", "seed", "env_id", "episode", "return", "length", "deterministic"])
        w.writerows(rows)
    atomic_write_json(meta_path, {**meta, "reprl_version": library_version()})
    stage.finish()
    return csv_path, False


def stage_evaluate(
    cfg: ExperimentConfig, base: Path, zips: dict[str, Path]
) -> tuple[list[Path], int]:
    """Zero-shot returns of every agent (and, if configured, of a uniform-random policy per
    seed, the reference row) on every target; one CSV (+ JSON provenance) each.

    Returns:
        the CSV paths, and how many were reused.
    """
    import agents
    import envs
    from envs.exploration import RandomPolicy

    ev = cfg.evaluate
    d = base / "eval"
    d.mkdir(parents=True, exist_ok=True)
    written, reused = [], 0
    by_name = {a.name: a for a in cfg.agents}
    meanings = list(envs.action_meanings(cfg.train.env_id, **cfg.train.env_kwargs))
    for run, zip_path in zips.items():
        agent = by_name[run.rsplit("__", 1)[0]]
        train_prov = json.loads((zip_path.parent / "provenance.json").read_text())
        ref = {
            "name": agent.name,
            "path": relative(zip_path, base),
            "sha256": file_sha256(zip_path),
        }
        meta = {"config": {"evaluate": to_dict(ev)}, "agent": ref, "train": train_prov}
        model = _Predictor(lambda p=zip_path: agents.load_agent(p, device=cfg.device))
        kwargs = {**cfg.train.env_kwargs, **cfg.agent_env_kwargs(agent)}
        path, was = _evaluate_one(
            cfg, d, run, lambda _env_id, m=model: m, meta, {"agent": zip_path}, kwargs, meanings
        )
        written.append(path)
        reused += was
    if ev.random_baseline:
        for seed in cfg.seeds:
            meta = {
                "config": {"evaluate": to_dict(ev)},
                "agent": {"name": "random", "policy": "uniform random over each target's actions"},
                "train": {"pretraining_domains": None, "budget": None},
            }

            def reference(env_id: str, seed: int = seed) -> _Predictor:
                n_actions = len(envs.action_meanings(env_id, **cfg.train.env_kwargs))
                n_envs, s = min(ev.num_envs, ev.episodes), keyed_seed(seed, env_id)
                return _Predictor(lambda: RandomPolicy(n_actions, n_envs, seed=s))

            path, was = _evaluate_one(
                cfg, d, f"random__{seed}", reference, meta, {}, dict(cfg.train.env_kwargs), None
            )
            written.append(path)
            reused += was
    return written, reused


def keyed_seed(seed: int, key: str) -> int:
    """A 32-bit seed of its own for (seed, key), independent of Python's hash salt."""
    digest = np.frombuffer(key.encode(), dtype=np.uint8).astype(np.uint32)
    return int(np.random.SeedSequence([seed, *digest.tolist()]).generate_state(1)[0])
