"""The transfer experiment end to end on a tiny budget: stages, content-keyed reuse, seeds,
action spaces, budgets and configs refused before anything is written."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from agents.hyperparams import PPOHyperparams
from experiments.config import ConfigError, to_dict
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
CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


def tiny(root: Path, name: str = "tiny") -> ExperimentConfig:
    return ExperimentConfig(
        name=name,
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
            timesteps=128,
            num_envs=2,
            frame_stack=2,
            ppo=PPOHyperparams(n_steps=32, batch_size=32, n_epochs=1),
        ),
        evaluate=EvalStage(
            env_ids=TARGETS,
            episodes=2,
            num_envs=2,
            env_kwargs={"max_episode_steps": 25},
            video=True,
        ),
    )


def mtimes(*files: Path) -> list[int]:
    return [f.stat().st_mtime_ns for f in files]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[ExperimentConfig, dict]:
    root = tmp_path_factory.mktemp("exp")
    cfg = tiny(root)
    return cfg, run(cfg)


def test_the_run_config_reloads_as_the_config_that_ran(finished) -> None:
    # tiny() starts from the dataclass defaults, not the default experiment: reloading the
    # written file must not merge the default's Breakout env kwargs back in
    cfg, _ = finished
    back = load_experiment(str(Path(cfg.root) / cfg.name / "config.yaml"))
    assert to_dict(back) == to_dict(cfg)
    assert (
        to_dict(default_config())["collect"]["env_kwargs"] != to_dict(cfg)["collect"]["env_kwargs"]
    )


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
        assert prov["budget"]["kind"] == "steps" and prov["budget"]["env_steps"] >= 128
    frozen = json.loads((base / "train" / "frozen__0" / "provenance.json").read_text())
    assert len(frozen["encoder"]["sha256"]) == 64
    assert frozen["pretraining_domains"] == ["reprl/BreakoutStandard-v0"]
    assert not Path(frozen["encoder"]["path"]).is_absolute()
    assert (base / "report" / "report.md").exists()
    gifs = sorted(p.name for p in (base / "eval" / "videos").glob("*.gif"))
    assert "frozen__0__reprl_BreakoutJuggling-v0.gif" in gifs and len(gifs) == 2 * len(TARGETS)
    assert set(summary["stages"]) == {"collect", "pretrain", "probe", "train", "evaluate", "report"}
    assert {s["status"] for s in summary["stages"].values()} == {"ran"}


def test_agents_see_stacked_frames_or_latents(finished) -> None:
    import agents

    cfg, _ = finished
    base = Path(cfg.root) / cfg.name
    pixels = agents.load_agent(base / "train" / "pixels__0" / "agent.zip")
    assert pixels.observation_space.shape[-1] == 2 or pixels.observation_space.shape[0] == 2
    frozen = agents.load_agent(base / "train" / "frozen__0" / "agent.zip")
    assert 6 in frozen.observation_space.shape  # 2 RGB frames, encoded one at a time
    assert agents.agent_info(base / "train" / "frozen__0" / "agent.zip")["action_meanings"] == [
        "NOOP",
        "LEFT",
        "RIGHT",
    ]


def test_a_uniform_random_policy_is_the_reference_row(finished) -> None:
    cfg, _ = finished
    path = Path(cfg.root) / cfg.name / "eval" / "random__0.csv"
    rows = list(csv.DictReader(path.open()))
    assert {r["agent"] for r in rows} == {"random"} and len(rows) == len(TARGETS) * 2 * 2
    assert "random" in (Path(cfg.root) / cfg.name / "report" / "report.md").read_text()


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
    cfg, first = finished
    base = Path(cfg.root) / cfg.name
    files = [
        base / "collect" / "explore.h5",
        base / "pretrain" / "bvd" / "encoder.safetensors",
        base / "train" / "pixels__0" / "agent.zip",
        base / "eval" / "pixels__0.csv",
    ]
    before = mtimes(*files)
    summary = run(cfg)
    assert mtimes(*files) == before
    stages = summary["stages"]
    assert all(stages[s]["status"] == "reused" for s in ("collect", "pretrain", "train"))
    # the summary keeps the time of the run that built each stage, not the reuse's ~0 s
    assert stages["train"]["built_in_seconds"] == first["stages"]["train"]["seconds"]


def test_reuse_is_keyed_on_content_not_paths(tmp_path: Path) -> None:
    """Changing the collect settings rewrites the dataset at the same path: the encoders and
    the agents trained on the old data must not be reused (they were, keyed on paths)."""
    cfg = tiny(tmp_path)
    run(cfg, until="train")
    base = Path(cfg.root) / cfg.name
    dae = base / "pretrain" / "dae" / "encoder.safetensors"
    bvd = base / "pretrain" / "bvd" / "encoder.safetensors"
    frozen = base / "train" / "frozen__0" / "agent.zip"
    pixels = base / "train" / "pixels__0" / "agent.zip"
    before = mtimes(dae, bvd, frozen, pixels)
    cfg.collect.frames = 640
    run(cfg, until="train")
    after = mtimes(dae, bvd, frozen, pixels)
    assert after[0] != before[0] and after[1] != before[1] and after[2] != before[2]
    assert after[3] == before[3]  # pixel PPO never read the dataset


def test_a_retrained_dae_retrains_the_beta_vae_dae(tmp_path: Path) -> None:
    cfg = tiny(tmp_path)
    cfg.agents = [AgentStage(name="frozen", encoder="bvd", mode="frozen")]
    run(cfg, until="pretrain")
    bvd = Path(cfg.root) / cfg.name / "pretrain" / "bvd" / "encoder.safetensors"
    before = mtimes(bvd)
    cfg.encoders[0].steps = 3  # only the DAE's config changes
    run(cfg, until="pretrain")
    assert mtimes(bvd) != before


def test_seeds_give_disjoint_env_streams(tmp_path: Path) -> None:
    """Seed s used to seed env i with s + i: seeds 0 and 1 shared 15 of 16 env streams."""
    cfg = tiny(tmp_path)
    cfg.seeds, cfg.encoders = [0, 1], []
    cfg.agents = [AgentStage(name="pixels", mode="pixels")]
    cfg.train.num_envs = 16
    cfg.train.ppo = PPOHyperparams(n_steps=8, batch_size=64, n_epochs=1)
    cfg.train.budget, cfg.train.timesteps = "steps", 128
    run(cfg, until="train")
    base = Path(cfg.root) / cfg.name / "train"
    s0, s1 = (
        set(json.loads((base / f"pixels__{s}" / "provenance.json").read_text())["env_seeds"])
        for s in (0, 1)
    )
    assert len(s0) == len(s1) == 16 and not s0 & s1
    from envs.rng import spawn_seeds

    assert not (s0 | s1) & set(spawn_seeds(cfg.evaluate.seed, 16, purpose="evaluate"))


def test_evaluate_agent_spreads_episodes_over_envs() -> None:
    class Noop:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
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


def test_cross_game_evaluation_needs_a_named_mapping(tmp_path: Path) -> None:
    """reprl Breakout's actions are (NOOP, LEFT, RIGHT), ALE's (NOOP, FIRE, RIGHT, LEFT):
    evaluating on ALE used to play FIRE where the agent meant LEFT, without a word."""
    cfg = tiny(tmp_path)
    cfg.evaluate.env_ids = ["ALE/Breakout-v5"]
    with pytest.raises(ConfigError, match=r"action_mapping.*by_meaning"):
        run(cfg)
    assert not list(tmp_path.iterdir())
    cfg.evaluate.action_mapping = "by_meaning"
    cfg.validate()


def test_a_mapped_agent_plays_left_as_left_on_atari(monkeypatch) -> None:
    """The agent's LEFT (1 in reprl Breakout) reaches ALE as ALE's LEFT (3), not FIRE (1)."""
    from stable_baselines3.common.vec_env import VecEnvWrapper

    import envs

    sent: list[np.ndarray] = []

    class Record(VecEnvWrapper):
        def reset(self):
            return self.venv.reset()

        def step_async(self, actions):
            sent.append(np.array(actions))
            self.venv.step_async(actions)

        def step_wait(self):
            return self.venv.step_wait()

    make_vec = envs.make_vec
    monkeypatch.setattr(envs, "make_vec", lambda *a, **k: Record(make_vec(*a, **k)))

    class Left:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return np.ones(len(obs), dtype=np.int64), None

    res = evaluate_agent(
        Left(),
        "ALE/Breakout-v5",
        episodes=1,
        num_envs=1,
        deterministic=True,
        seed=0,
        env_kwargs={"max_episode_steps": 20},
        agent_meanings=["NOOP", "LEFT", "RIGHT"],
        action_mapping="by_meaning",
    )
    assert len(res) == 1 and res[0][1] == 20
    meanings = envs.action_meanings("ALE/Breakout-v5")
    played = {meanings[int(a)] for a in np.concatenate(sent)}
    assert played <= {"LEFT", "FIRE"} and "LEFT" in played  # FIRE only to serve


def test_default_config_is_valid_and_small() -> None:
    cfg = default_config()
    cfg.validate()
    assert [a.mode for a in cfg.agents] == ["pixels", "frozen", "frozen"]
    assert cfg.seeds == [0, 1, 2] and cfg.jobs == 2  # 3 seeds in 10 min: two runs at a time
    assert [e.method for e in cfg.encoders] == ["dae", "beta_vae_dae", "st_dim"]
    assert cfg.train.budget == "seconds"  # equal wall-clock: the fair budget on a CPU
    assert cfg.train.env_id == "reprl/BreakoutStandard-v0" and len(cfg.evaluate.env_ids) == 5
    assert cfg.collect.env_ids == [cfg.train.env_id]  # zero-shot: targets never seen
    assert cfg.train.frame_stack == 4 and cfg.train.env_kwargs["min_object_size"] == 2


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["train.ppo.batch_size=100"], "batch_size"),
        (["train.algo=dqn"], r"train.algo: expected one of \['ppo', 'a2c', 'a3c'\], got 'dqn'"),
        (["seeds=[]"], "seeds: expected at least one seed"),
        (["train.timesteps=lots"], "train.timesteps: expected an integer, got 'lots'"),
        (["train.timesteps=-5"], "train.timesteps: expected an integer >= 1, got -5"),
        (["collect.frames=0"], "collect.frames: expected an integer >= 1, got 0"),
        (["train.frame_stack=0"], "train.frame_stack: expected an integer >= 1, got 0"),
        (["train.budget=hours"], r"train.budget: expected one of \['steps', 'seconds'\]"),
        (["evaluate.action_mapping=guess"], "evaluate.action_mapping: expected one of"),
        (["evaluate.env_ids=[reprl/Nope-v0]"], "evaluate.env_ids: expected a known env id"),
        (["model.betta=4"], "unknown key 'model'"),
        (["agents=[{name: x, mode: frozen, encoder: nope}]"], "agents.x.encoder: expected one"),
    ],
)
def test_bad_configs_are_refused_before_anything_is_written(
    tmp_path: Path, overrides, match
) -> None:
    with pytest.raises(ConfigError, match=match):
        run(load_experiment(None, [f"root={tmp_path}", *overrides]))
    assert not list(tmp_path.iterdir())


def test_an_agent_trained_on_atari_has_no_meaning_on_reprl_breakout(tmp_path: Path) -> None:
    cfg = tiny(tmp_path)
    cfg.train.env_id = "ALE/Breakout-v5"
    cfg.evaluate.action_mapping = "by_meaning"
    with pytest.raises(ConfigError, match="FIRE"):
        cfg.validate()


def test_wall_clock_budget(tmp_path: Path) -> None:
    cfg = tiny(tmp_path)
    cfg.encoders, cfg.agents = [], [AgentStage(name="pixels", mode="pixels")]
    cfg.train.budget, cfg.train.seconds = "seconds", 2.0
    run(cfg, until="train")
    prov = json.loads((tmp_path / "tiny" / "train" / "pixels__0" / "provenance.json").read_text())
    assert prov["budget"]["kind"] == "seconds" and prov["budget"]["value"] == 2.0
    assert 2.0 <= prov["budget"]["seconds"] < 10 and prov["budget"]["env_steps"] > 0


def test_experiment_yaml_file(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("name: from_yaml\nseeds: [3]\ntrain:\n  timesteps: 64\n  ppo: {n_steps: 64}\n")
    cfg = load_experiment(str(f), ["evaluate.episodes=4"])
    assert cfg.name == "from_yaml" and cfg.seeds == [3] and cfg.train.timesteps == 64
    default_batch = TrainStage().ppo.batch_size
    assert cfg.train.ppo.n_steps == 64 and cfg.train.ppo.batch_size == default_batch  # merged
    assert cfg.evaluate.episodes == 4 and len(cfg.agents) == 3  # default agents kept


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load_and_validate(path: Path) -> None:
    import yaml

    from experiments.config import load_config
    from representations.pretrain import PretrainConfig

    experiment_keys = {"base", "agents", "encoders", "train", "evaluate", "collect"}
    data = yaml.safe_load(path.read_text())
    if "grid" in data:  # a sweep: every trial's experiment config is built and validated
        from experiments.sweep import load_sweep, plan

        assert plan(load_sweep(str(path), []), str(path)).trials
    elif experiment_keys & set(data):  # an experiment, not a pretrain
        load_experiment(str(path), []).validate()
    else:
        load_config(PretrainConfig, path)


def test_default_experiment_on_a_reduced_budget(tmp_path: Path) -> None:
    """The README's main job, end to end with every stage shrunk (the full one is slow)."""
    summary = run(
        load_experiment(
            None,
            [
                f"root={tmp_path}",
                "seeds=[0]",
                "collect.frames=1024",
                "encoders.0.steps=4",
                "encoders.1.steps=4",
                "encoders.2.steps=4",
                "encoders.2.batch_size=16",
                "train.budget=steps",
                "train.timesteps=2048",
                "evaluate.episodes=2",
                "evaluate.env_kwargs.max_episode_steps=50",
            ],
        )
    )
    report = Path(summary["report"]).read_text()
    assert "darla_frozen" in report and "pixels" in report and "random" in report
    assert "st_dim_frozen" in report


@pytest.mark.slow
def test_default_experiment_end_to_end(tmp_path: Path) -> None:
    """The README's main job (about 10 minutes on 2 CPU cores)."""
    summary = run(load_experiment(None, [f"root={tmp_path}"]))
    report = Path(summary["report"]).read_text()
    assert "darla_frozen" in report and "pixels" in report
    assert summary["seconds"] < 15 * 60


def test_evaluate_agent_runs_on_the_real_atari_game() -> None:
    class Noop:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return np.zeros(len(obs), dtype=np.int64), None

    res = evaluate_agent(
        Noop(),
        "ALE/Breakout-v5",
        episodes=2,
        num_envs=2,
        deterministic=True,
        seed=0,
        env_kwargs={"max_episode_steps": 20},
    )
    assert len(res) == 2 and all(length == 20 for _, length in res)


def test_a_changed_evaluation_reruns_only_the_evaluation(tmp_path: Path) -> None:
    cfg = tiny(tmp_path)
    cfg.encoders, cfg.agents = [], [AgentStage(name="pixels", mode="pixels")]
    cfg.evaluate.video = False
    run(cfg, until="evaluate")
    base = tmp_path / "tiny"
    pix = base / "train" / "pixels__0" / "agent.zip"
    before = mtimes(pix)
    cfg.evaluate.episodes = 1
    summary = run(cfg, until="evaluate")
    assert mtimes(pix) == before and summary["stages"]["train"]["status"] == "reused"
    assert summary["stages"]["evaluate"]["status"] == "ran"
    rows = list(csv.DictReader((base / "eval" / "pixels__0.csv").open()))
    assert len(rows) == len(TARGETS) * 2 * 1
    assert len(list(csv.DictReader((base / "eval" / "random__0.csv").open()))) == len(rows)


def test_a_frozen_encoder_agent_is_evaluated_as_sb3_would(tmp_path: Path) -> None:
    """evaluate_agent runs a frozen-encoder agent through its latent view (encoder once per
    step): the episodes, returns and lengths are those of SB3's evaluate_policy on the plain
    pixel-space agent and env."""
    import torch
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecMonitor

    import agents
    import envs
    import representations as R
    from envs.rng import spawn_seeds

    torch.manual_seed(0)
    enc = tmp_path / "vae.safetensors"
    R.make_representation("beta_vae", latent_dim=8, channels=(4, 4, 8, 8), hidden_dim=16).save(enc)
    env = envs.make_vec("reprl/BreakoutStandard-v0", 4, seed=0, frame_stack=4)
    model = agents.make_agent("ppo", env, encoder=enc, mode="frozen", n_steps=16, batch_size=32)
    model.learn(64)
    agents.save_agent(model, tmp_path / "agent.zip")
    loaded = agents.load_agent(tmp_path / "agent.zip")
    kwargs = {"frame_stack": 4, "max_episode_steps": 60}
    ours = evaluate_agent(
        loaded,
        "reprl/BreakoutStandard-v0",
        episodes=6,
        num_envs=3,
        deterministic=True,
        seed=0,
        env_kwargs=kwargs,
    )
    venv = envs.make_vec(
        "reprl/BreakoutStandard-v0", 3, seed=spawn_seeds(0, 3, purpose="evaluate"), **kwargs
    )
    rewards, lengths = evaluate_policy(
        loaded, VecMonitor(venv), n_eval_episodes=6, return_episode_rewards=True, warn=False
    )
    assert ours == [(float(r), int(n)) for r, n in zip(rewards, lengths)]


def test_a_config_with_base_none_starts_from_the_dataclass_defaults(tmp_path: Path) -> None:
    """CoinRun's config inherits none of the Breakout default's env kwargs or agents."""
    cfg = load_experiment(str(CONFIGS / "coinrun.yaml"))
    assert cfg.train.env_kwargs == {} and cfg.collect.env_kwargs == {}
    assert cfg.train.env_id == "reprl/CoinRunTrain-v0"
    assert cfg.evaluate.env_ids == ["reprl/CoinRunTrain-v0", "reprl/CoinRunTest-v0"]
    assert [a.name for a in cfg.agents] == ["impala", "beta_vae_frozen", "beta_vae_finetune"]
    assert cfg.agents[0].pixel_extractor == "impala"
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: breakout\n")
    with pytest.raises(ConfigError, match=r"base: expected one of \('default', 'none'\)"):
        load_experiment(str(bad))


def test_the_report_baseline_must_be_an_agent() -> None:
    with pytest.raises(ConfigError, match=r"evaluate.baseline: expected one of the agents"):
        load_experiment(overrides=["evaluate.baseline=impala"])
    assert load_experiment(overrides=["evaluate.baseline=darla_frozen"]).evaluate.baseline


def test_impala_is_only_for_pixel_agents() -> None:
    with pytest.raises(ConfigError, match=r"agents.darla_frozen.pixel_extractor: expected 'nat"):
        load_experiment(overrides=["agents.1.pixel_extractor=impala"])


def test_coinrun_end_to_end_train_levels_and_unseen_levels(tmp_path: Path) -> None:
    """The CoinRun config on a tiny budget: IMPALA pixels and a frozen encoder, trained on the
    200 train levels, evaluated there and on the full level distribution."""
    import agents
    from agents.impala import ImpalaCNN

    cfg = load_experiment(
        str(CONFIGS / "coinrun.yaml"),
        [
            f"root={tmp_path}",
            "seeds=[0]",
            "collect.frames=256",
            "collect.num_envs=8",
            "encoders.0.steps=2",
            "encoders.0.batch_size=8",
            "train.budget=steps",
            "train.timesteps=32",
            "train.num_envs=2",
            "train.ppo.n_steps=16",
            "train.ppo.batch_size=32",
            "evaluate.episodes=2",
            "evaluate.num_envs=2",
        ],
    )
    summary = run(cfg)
    model = agents.load_agent(summary["agents"]["impala__0"])
    assert isinstance(model.policy.features_extractor, ImpalaCNN)
    rows = list(csv.DictReader((tmp_path / "coinrun" / "eval" / "impala__0.csv").open()))
    assert {r["env_id"] for r in rows} == {"reprl/CoinRunTrain-v0", "reprl/CoinRunTest-v0"}
    assert all(float(r["return"]) in (0.0, 10.0) for r in rows)
    md = (tmp_path / "coinrun" / "report" / "report.md").read_text()
    assert "`reprl/CoinRunTrain-v0` (source)" in md and "`reprl/CoinRunTest-v0`" in md
    assert "- Baseline: `impala`" in md and "P(agent > `impala`)" in md
    assert (
        "- Levels: `reprl/CoinRunTrain-v0`: train, level seeds [0, 200); "
        "`reprl/CoinRunTest-v0`: test, level seeds [0, 2147483647)"
    ) in md


def test_encoders_comparison_end_to_end(tmp_path: Path) -> None:
    """encoders.yaml on a tiny budget: every method (random init, beta-VAE, beta-VAE_DAE, MONet,
    CPC, supervised, ST-DIM, ATC) pretrains, is probed and drives a frozen agent; one report has
    them all."""
    cfg = load_experiment(
        str(CONFIGS / "encoders.yaml"),
        [
            f"root={tmp_path}",
            "seeds=[0]",
            "collect.frames=384",
            "collect.num_envs=8",
            *[f"encoders.{i}.steps=2" for i in range(1, 9)],
            *[f"encoders.{i}.batch_size=4" for i in range(9)],
            "probe.frames=200",
            "probe.segmentation_frames=8",
            "train.timesteps=32",
            "train.num_envs=2",
            "train.ppo.n_steps=16",
            "train.ppo.batch_size=32",
            "evaluate.episodes=1",
            "evaluate.num_envs=1",
            "evaluate.deterministic=[true]",
            "evaluate.env_ids=[reprl/BreakoutStandard-v0]",
            "train.env_kwargs.max_episode_steps=50",
            "evaluate.env_kwargs.max_episode_steps=50",
        ],
    )
    summary = run(cfg)
    base = tmp_path / "encoders_breakout"
    names = ["random_init", "beta_vae", "dae", "beta_vae_dae", "monet", "cpc", "supervised"]
    names += ["st_dim", "atc"]
    assert set(summary["encoders"]) == set(names)
    for name in names:
        probe = json.loads((base / "probe" / f"{name}.json").read_text())
        assert "paddle_x" in probe["probe"]["per_factor"]
    assert -1 <= json.loads((base / "probe" / "monet.json").read_text())["segmentation"]["ari"] <= 1
    md = (base / "report" / "report.md").read_text()
    for name in names:
        assert f"| {name} |" in md
    agents = ("monet_frozen", "cpc_frozen", "supervised_frozen", "random_init_frozen")
    for agent in (*agents, "st_dim_frozen", "atc_frozen"):
        assert (base / "eval" / f"{agent}__0.csv").exists()


def test_encoder_fields_shared_with_pretrain_config_reach_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every EncoderStage field PretrainConfig also has (weight_decay, grad_clip, ...) is passed
    to it unchanged: the experiment config does not mirror the pretraining config by hand."""
    from dataclasses import fields

    import representations.pretrain as P
    from experiments.stages.pretrain import stage_pretrain

    seen: list[P.PretrainConfig] = []
    monkeypatch.setattr(P, "pretrain", lambda pc: seen.append(pc) or Path(pc.out))
    cfg = tiny(tmp_path)
    cfg.encoders[0].weight_decay, cfg.encoders[0].grad_clip = 0.01, 1.5
    stage_pretrain(cfg, tmp_path, tmp_path / "data.h5")
    e, pc = cfg.encoders[0], seen[0]
    shared = {f.name for f in fields(P.PretrainConfig)} & {f.name for f in fields(e)}
    assert {"weight_decay", "grad_clip", "lr", "steps", "batch_size", "seed"} <= shared
    assert all(getattr(pc, k) == getattr(e, k) for k in shared - {"model"})
