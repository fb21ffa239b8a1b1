"""A3C in the experiment: config validation, per-agent algo, a killed run resumed from its
checkpoint, and the trained zip evaluated like any other agent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import experiments.stages.train as train_stage
from agents import A3C, load_agent
from agents.a3c import max_workers
from experiments.config import ConfigError, to_dict
from experiments.experiment import TrainStage
from experiments.pipeline import (
    AgentStage,
    EvalStage,
    ExperimentConfig,
    load_experiment,
    run,
)

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"
SOURCE = "reprl/BreakoutStandard-v0"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["train.algo=dqn"], r"train.algo: expected one of \['ppo', 'a2c', 'a3c'\], got 'dqn'"),
        (
            ["train.algo=a3c", "train.a3c.n_workers=0"],
            r"train.a3c.n_workers: expected an integer in \[1, \d+\] .*got 0",
        ),
        (
            ["train.algo=a3c", f"train.a3c.n_workers={max_workers() + 1}"],
            rf"train.a3c.n_workers: .*got {max_workers() + 1}",
        ),
        (
            ["train.algo=a3c", "train.num_envs=15", "train.a3c.n_workers=1", "train.a3c.n_steps=0"],
            r"train.a3c.n_steps: expected an integer >= 1, got 0",
        ),
        (
            ["agents.0.algo=a3c", "agents.1.algo=a3c", "agents.2.algo=a3c", "train.num_envs=15"],
            r"train.num_envs: A3C splits the envs evenly among train.a3c.n_workers = 2 workers; "
            r"expected a multiple of 2, got 15",
        ),
        (["agents.0.algo=a4c"], r"agents\[0\].algo: expected one of \['ppo', 'a2c', 'a3c'\]"),
        (
            ["train.algo=a3c", "train.a3c.rms_prop_alpha=1.0"],
            r"rms_prop_alpha: expected .*\[0, 1\)",
        ),
        (
            ["train.algo=a3c", "train.a3c.lstm_hidden_size=-1"],
            r"train.a3c.lstm_hidden_size: expected an integer >= 0 \(0: no LSTM core\), got -1",
        ),
        (
            ["agents.0.lstm_hidden_size=16"],
            r"agents.\w+.lstm_hidden_size: only A3C agents have an LSTM core; expected none for "
            r"algo 'ppo', got 16",
        ),
        (
            ["agents.0.algo=a3c", "agents.0.lstm_hidden_size=-4"],
            r"agents.\w+.lstm_hidden_size: expected an integer >= 0",
        ),
    ],
)
def test_bad_a3c_configs_are_refused(tmp_path: Path, overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run(load_experiment(None, [f"root={tmp_path}", *overrides]))
    assert not list(tmp_path.iterdir())


def test_a3c_is_checked_only_where_an_agent_uses_it() -> None:
    cfg = load_experiment(None, ["train.a3c.n_workers=0"])  # every agent is PPO
    assert {cfg.agent_algo(a) for a in cfg.agents} == {"ppo"}
    cfg = load_experiment(None, ["train.algo=a3c"])
    assert {cfg.agent_algo(a) for a in cfg.agents} == {"a3c"}
    assert cfg.sb3_kwargs()["n_workers"] == cfg.train.a3c.n_workers


def test_the_a3c_config_adds_a3c_rows_to_the_default_experiment() -> None:
    cfg = load_experiment(str(CONFIGS / "a3c.yaml"))
    algos = {a.name: cfg.agent_algo(a) for a in cfg.agents}
    assert "a3c" in algos.values() and "ppo" in algos.values()
    default = load_experiment(None)
    assert [a.name for a in default.agents] == [n for n, al in algos.items() if al == "ppo"]
    assert cfg.train.num_envs % cfg.train.a3c.n_workers == 0


def test_runs_of_other_algos_keep_their_keys() -> None:
    """Neither the new per-agent ``algo`` (when unset) nor ``train.a3c`` enters the key of a PPO
    run: finished runs of older configs are reused, not retrained."""
    cfg = load_experiment(None)
    key = train_stage.train_key(cfg, cfg.agents[0], 0)
    assert "algo" not in key["agent"] and "a3c" not in key["train"]
    assert set(key["train"]) == set(to_dict(TrainStage())) - {"a3c"}
    cfg.agents[0].algo = "a3c"
    key = train_stage.train_key(cfg, cfg.agents[0], 0)
    assert key["agent"]["algo"] == "a3c" and "a3c" in key["train"]
    # the LSTM core (added later) enters only the keys of the runs that have one
    assert "lstm_hidden_size" not in key["agent"] and "lstm_hidden_size" not in key["train"]["a3c"]
    cfg.agents[0].lstm_hidden_size = 256
    assert train_stage.train_key(cfg, cfg.agents[0], 0)["agent"]["lstm_hidden_size"] == 256
    assert cfg.agent_sb3_kwargs(cfg.agents[0])["lstm_hidden_size"] == 256
    cfg.agents[0].lstm_hidden_size = None
    cfg.train.a3c.lstm_hidden_size = 64
    assert train_stage.train_key(cfg, cfg.agents[0], 0)["train"]["a3c"]["lstm_hidden_size"] == 64


class _KilledAfterCheckpoint(train_stage.EpisodeLog):
    """Stands for a kill: Ctrl-C once a checkpoint was written after 300 env steps."""

    since: float | None = None

    def _on_step(self) -> bool:
        ckpt = self.path.parent / train_stage.A3C_CHECKPOINT
        if self.since is None and self.num_timesteps >= 300:
            self.since = time.time()
        if self.since is not None and ckpt.exists() and ckpt.stat().st_mtime > self.since:
            raise KeyboardInterrupt
        return super()._on_step()


def _pixel_a3c_run(tmp_path: Path, name: str, timesteps: int, frame_stack: int) -> ExperimentConfig:
    """One pixel A3C (2 workers x 2 envs, seed 0), evaluated greedily on 2 short episodes."""
    cfg = ExperimentConfig(
        name=name,
        root=str(tmp_path),
        seeds=[0],
        agents=[AgentStage(name="pixels_a3c", mode="pixels", algo="a3c")],
        train=TrainStage(timesteps=timesteps, num_envs=4, frame_stack=frame_stack),
        evaluate=EvalStage(
            env_ids=[SOURCE],
            episodes=2,
            num_envs=2,
            deterministic=[True],
            env_kwargs={"max_episode_steps": 25},
        ),
    )
    cfg.train.a3c.n_workers = 2
    return cfg


def test_a_killed_a3c_run_resumes_and_its_agent_evaluates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    cfg = _pixel_a3c_run(tmp_path, "a3c", timesteps=3000, frame_stack=2)
    d = tmp_path / "a3c" / "train" / "pixels_a3c__0"
    ckpt = d / train_stage.A3C_CHECKPOINT
    with monkeypatch.context() as m:
        m.setattr(train_stage, "EpisodeLog", _KilledAfterCheckpoint)
        m.setattr(train_stage, "A3C_CHECKPOINT_EVERY", 0.3)
        with pytest.raises(KeyboardInterrupt):
            run(cfg, until="train")
    assert ckpt.exists() and not (d / "agent.zip").exists()
    assert json.loads((d / "stage.json").read_text())["finished"] is False
    saved = load_agent(ckpt)
    assert 300 <= saved.num_timesteps < 3000 and all(u > 0 for u in saved.a3c_stats["updates"])

    summary = run(cfg, until="evaluate")  # the same key: resumes from the checkpoint
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["a3c"]["resumed"] is True and prov["a3c"]["n_workers"] == 2
    assert prov["a3c"]["envs_per_worker"] == 2
    assert prov["budget"]["env_steps"] >= 3000
    assert sum(prov["a3c"]["env_steps_per_worker"]) == prov["budget"]["env_steps"]
    assert all(
        now > then
        for now, then in zip(prov["a3c"]["updates_per_worker"], saved.a3c_stats["updates"])
    )
    assert not ckpt.exists() and json.loads((d / "stage.json").read_text())["finished"] is True
    model = load_agent(d / "agent.zip")
    assert type(model) is A3C
    assert summary["stages"]["evaluate"]["status"] == "ran"

    # `reprl evaluate --agent` loads and runs it like any other agent zip
    from experiments.cli import main

    out = tmp_path / "eval.json"
    argv = ["evaluate", "--agent", str(d / "agent.zip"), "--env", SOURCE, "--episodes", "2"]
    assert main([*argv, "--num-envs", "2", "--max-episode-steps", "25", "--out", str(out)]) == 0
    assert json.loads(out.read_text())[SOURCE]["episodes"] == 2
    capsys.readouterr()


class _StateSpy:
    """An agent's ``predict`` that records the states it is handed."""

    def __init__(self, model: A3C) -> None:
        self.model, self.states = model, []

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        self.states.append(state)
        return self.model.predict(
            obs, state=state, episode_start=episode_start, deterministic=deterministic
        )


def test_an_lstm_a3c_trains_in_a_run_and_evaluates_with_its_state(tmp_path: Path) -> None:
    from experiments.evaluation import evaluate_agent

    cfg = _pixel_a3c_run(tmp_path, "lstm", timesteps=1000, frame_stack=1)
    cfg.train.a3c.lstm_hidden_size = 16
    summary = run(cfg, until="evaluate")
    assert summary["stages"]["evaluate"]["status"] == "ran"
    model = load_agent(tmp_path / "lstm" / "train" / "pixels_a3c__0" / "agent.zip")
    assert type(model) is A3C and model.recurrent and model.lstm_hidden_size == 16

    spy = _StateSpy(model)
    episodes = evaluate_agent(
        spy,
        SOURCE,
        episodes=2,
        num_envs=2,
        deterministic=True,
        seed=0,
        env_kwargs={"frame_stack": 1, "grayscale": True, "max_episode_steps": 25},
    )
    assert [length for _, length in episodes] == [25, 25]
    assert spy.states[0] is None and all(s is not None for s in spy.states[1:])
