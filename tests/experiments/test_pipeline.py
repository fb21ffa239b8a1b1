"""The transfer experiment end to end on a tiny budget: stages, artefacts, reuse, bad configs."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from experiments.config import ConfigError
from experiments.pipeline import (
    AgentStage,
    CollectStage,
    EncoderStage,
    EvalStage,
    ExperimentConfig,
    TrainStage,
    default_config,
    evaluate_agent,
    load_experiment,
    run,
)

TARGETS = ["reprl/BreakoutStandard-v0", "reprl/BreakoutJuggling-v0"]


def tiny(root: Path) -> ExperimentConfig:
    return ExperimentConfig(
        name="tiny",
        root=str(root),
        seeds=[0],
        collect=CollectStage(frames=512, num_envs=4),
        encoders=[
            EncoderStage(name="dae", method="dae", steps=2, batch_size=8, model={"latent_dim": 8}),
            EncoderStage(
                name="bvd",
                method="beta_vae_dae",
                steps=2,
                batch_size=8,
                model={"dae": "@dae", "latent_dim": 4},
            ),
        ],
        agents=[
            AgentStage(name="pixels", mode="pixels"),
            AgentStage(name="frozen", encoder="bvd", mode="frozen"),
        ],
        train=TrainStage(
            timesteps=128, num_envs=2, sb3={"n_steps": 32, "batch_size": 32, "n_epochs": 1}
        ),
        evaluate=EvalStage(
            env_ids=TARGETS, episodes=2, num_envs=2, env_kwargs={"max_episode_steps": 25}
        ),
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[ExperimentConfig, dict]:
    root = tmp_path_factory.mktemp("exp")
    cfg = tiny(root)
    return cfg, run(cfg)


def test_every_stage_leaves_its_artefact(finished) -> None:
    cfg, summary = finished
    base = Path(cfg.root) / cfg.name
    assert (base / "collect" / "explore.h5").exists()
    assert (base / "pretrain" / "bvd" / "encoder.safetensors").exists()
    for run_name in ("pixels__0", "frozen__0"):
        d = base / "train" / run_name
        assert (d / "agent.zip").exists() and (d / "config.yaml").exists()
        prov = json.loads((d / "provenance.json").read_text())
        assert prov["seed"] == 0 and prov["env_steps_per_s"] > 0
    frozen_prov = json.loads((base / "train" / "frozen__0" / "provenance.json").read_text())
    assert len(frozen_prov["encoder"]["sha256"]) == 64
    assert (base / "report" / "report.md").exists()
    assert set(summary["seconds"]) >= {"collect", "pretrain", "train", "evaluate", "report"}


def test_a_uniform_random_policy_is_the_reference_row(finished) -> None:
    cfg, _ = finished
    path = Path(cfg.root) / cfg.name / "eval" / "random__0.csv"
    rows = list(csv.DictReader(path.open()))
    assert {r["agent"] for r in rows} == {"random"} and len(rows) == len(TARGETS) * 2 * 2
    assert "| random |" in (Path(cfg.root) / cfg.name / "report" / "report.md").read_text()


def test_evaluation_csv_has_one_row_per_episode(finished) -> None:
    cfg, _ = finished
    path = Path(cfg.root) / cfg.name / "eval" / "frozen__0.csv"
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(TARGETS) * 2 * 2  # targets x {greedy, sampled} x episodes
    assert {r["env_id"] for r in rows} == set(TARGETS)
    assert {r["deterministic"] for r in rows} == {"true", "false"}
    # juggling never ends early: every episode hits the 25-step time limit, returns <= 0
    jug = [r for r in rows if "Juggling" in r["env_id"]]
    assert all(int(r["length"]) == 25 and float(r["return"]) <= 0 for r in jug)


def test_second_run_reuses_every_stage(finished) -> None:
    cfg, _ = finished
    base = Path(cfg.root) / cfg.name
    files = [
        base / "collect" / "explore.h5",
        base / "pretrain" / "bvd" / "encoder.safetensors",
        base / "train" / "pixels__0" / "agent.zip",
        base / "eval" / "pixels__0.csv",
    ]
    before = [f.stat().st_mtime_ns for f in files]
    run(cfg)
    assert [f.stat().st_mtime_ns for f in files] == before


def test_a_changed_config_retrains_only_what_changed(finished) -> None:
    cfg, _ = finished
    base = Path(cfg.root) / cfg.name
    enc = base / "pretrain" / "bvd" / "encoder.safetensors"
    pix = base / "train" / "pixels__0" / "agent.zip"
    before = enc.stat().st_mtime_ns, pix.stat().st_mtime_ns
    cfg.evaluate.episodes = 1
    run(cfg, until="evaluate")
    assert (enc.stat().st_mtime_ns, pix.stat().st_mtime_ns) == before
    rows = list(csv.DictReader((base / "eval" / "pixels__0.csv").open()))
    assert len(rows) == len(TARGETS) * 2 * 1
    assert len(list(csv.DictReader((base / "eval" / "random__0.csv").open()))) == len(rows)


def test_evaluate_agent_spreads_episodes_over_envs() -> None:
    class Noop:
        def predict(self, obs, deterministic=True):
            return np.zeros(len(obs), dtype=np.int64), None

    res = evaluate_agent(
        Noop(),
        "reprl/BreakoutStandard-v0",
        episodes=5,
        num_envs=3,
        deterministic=True,
        seed=0,
        env_kwargs={"max_episode_steps": 10},
    )
    assert len(res) == 5 and all(length == 10 for _, length in res)


def test_default_config_is_valid_and_small() -> None:
    cfg = default_config()
    cfg.validate()
    assert [a.mode for a in cfg.agents] == ["pixels", "frozen"] and cfg.seeds == [0, 1]
    assert cfg.train.env_id == "reprl/BreakoutStandard-v0" and len(cfg.evaluate.env_ids) == 5


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["train.sb3.batch_size=100"], "batch_size 100 does not divide the rollout"),
        (["train.algo=dqn"], "train.algo: expected 'ppo' or 'a2c', got 'dqn'"),
        (["seeds=[]"], "seeds: expected at least one seed"),
        (["train.timesteps=lots"], "train.timesteps: expected an integer"),
    ],
)
def test_bad_configs_are_refused_before_anything_runs(tmp_path: Path, overrides, match) -> None:
    with pytest.raises(ConfigError, match=match):
        run(load_experiment(None, [f"root={tmp_path}", *overrides]))
    assert not list(tmp_path.iterdir())


def test_agent_referring_to_a_missing_encoder(tmp_path: Path) -> None:
    cfg = tiny(tmp_path)
    cfg.agents.append(AgentStage(name="x", encoder="nope", mode="finetune"))
    with pytest.raises(ConfigError, match=r"agents.x.encoder: expected one of the encoders"):
        run(cfg)


def test_experiment_yaml_file(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("name: from_yaml\nseeds: [3]\ntrain:\n  timesteps: 64\n  sb3: {n_steps: 64}\n")
    cfg = load_experiment(str(f), ["evaluate.episodes=4"])
    assert cfg.name == "from_yaml" and cfg.seeds == [3] and cfg.train.timesteps == 64
    assert cfg.train.sb3["n_steps"] == 64 and cfg.train.sb3["batch_size"] == 256  # merged
    assert cfg.evaluate.episodes == 4 and len(cfg.agents) == 2  # default agents kept


CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load_and_validate(path: Path) -> None:
    from experiments.config import load_config
    from representations.pretrain import PretrainConfig

    if path.name.startswith("darla_breakout"):
        load_experiment(str(path), []).validate()
    else:
        load_config(PretrainConfig, path)


@pytest.mark.slow
def test_default_experiment_end_to_end(tmp_path: Path) -> None:
    """The README's main job (about 15 minutes on 2 CPU cores)."""
    summary = run(load_experiment(None, [f"root={tmp_path}"]))
    report = Path(summary["report"]).read_text()
    assert "darla_frozen" in report and "pixels" in report
    assert summary["seconds"]["total"] < 20 * 60


def test_evaluate_agent_runs_on_the_real_atari_game() -> None:
    class Noop:
        def predict(self, obs, deterministic=True):
            return np.zeros(len(obs), dtype=np.int64), None

    res = evaluate_agent(Noop(), "ALE/Breakout-v5", episodes=2, num_envs=2, deterministic=True,
                         seed=0, env_kwargs={"max_episode_steps": 20})  # fmt: skip
    assert len(res) == 2 and all(length == 20 for _, length in res)
