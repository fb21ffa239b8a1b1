"""``probe: {protocol: atariari}``: the probe stage runs the AtariARI probe on fresh episodes
(here a synthetic stand-in for ALE's RAM labels), writes it into each encoder's probe file,
reuses it, and a config with an unknown protocol is refused in one line before anything runs."""

import json
from pathlib import Path

import numpy as np
import pytest

import experiments.stages.probe as probe_stage
from envs.storage.dataset import DatasetWriter
from experiments.config import ConfigError
from experiments.pipeline import load_experiment, run
from tests.experiments.test_pipeline import tiny


def synthetic_episodes(episodes, out: Path, device: str) -> None:
    """8 episodes of 80 frames whose byte label ``ball_x`` is drawn as a bright band."""
    del device
    rng = np.random.default_rng(0)
    n, length = 8, 80
    ball_x = rng.integers(0, 8, n * length)
    score = np.repeat(np.arange(n) % 3, length) + 10  # constant within an episode
    frames = np.zeros((n * length, 64, 64, 3), np.uint8)
    for i, x in enumerate(ball_x):
        frames[i, :, 8 * x : 8 * x + 8] = 255
    frames[:, 0] = rng.integers(0, 256, (n * length, 64, 3))  # no frame repeats another
    with DatasetWriter(
        out,
        (64, 64, 3),
        {"ball_x": (), "score": ()},
        {"env_ids": episodes["env_ids"], "discrete_factors": ["ball_x", "score"]},
    ) as w:
        w.append(
            {
                "frames": frames,
                "actions": np.zeros(n * length, np.int64),
                "rewards": np.zeros(n * length, np.float32),
                "dones": np.zeros(n * length, bool),
                "episode": np.repeat(np.arange(n), length),
                "step": np.tile(np.arange(length), n),
                "domain": np.zeros(n * length, np.int64),
                "factors": {"ball_x": ball_x, "score": score},
            }
        )


def test_the_probe_stage_runs_the_atariari_protocol(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def fake(episodes, out, device):
        calls.append(episodes)
        synthetic_episodes(episodes, out, device)

    monkeypatch.setattr(probe_stage, "_collect_episodes", fake)
    cfg = tiny(tmp_path)
    cfg.evaluate.video = False
    cfg.probe.protocol = "atariari"
    cfg.probe.frames = 640
    cfg.probe.atariari.epochs = 3
    run(cfg)
    assert len(calls) == 1  # one collection for both encoders
    assert calls[0]["frames"] == 640 and calls[0]["policy"] == "random"
    base = Path(cfg.root) / cfg.name
    for name in ("dae", "bvd"):
        data = json.loads((base / "probe" / f"{name}.json").read_text())
        assert data["config"]["protocol"] == "atariari" and "probe" not in data
        a = data["atariari"]
        assert set(a["per_variable"]) == {"ball_x", "score"}
        assert 0.0 <= a["mean_f1"] <= 1.0 and 0.0 <= a["majority"]["mean_f1"] <= 1.0
        assert a["split"]["episodes"] == [5, 1, 2]  # int(0.7 * 8), int(0.8 * 8)
        assert a["settings"]["epochs"] == 3
    assert not list((base / "probe").glob("**/*.h5"))  # the fresh episodes are deleted
    table = (base / "report" / "atariari.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in table[1:]] == ["bvd", "dae", "majority"]
    assert "## AtariARI probe (Anand et al. 2019)" in (base / "report" / "report.md").read_text()
    run(cfg)  # reused: nothing collected again
    assert len(calls) == 1


def test_a_probe_only_experiment_trains_nothing_and_reports_its_encoders(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(probe_stage, "_collect_episodes", synthetic_episodes)
    cfg = tiny(tmp_path)
    cfg.agents = []  # probe-only: the AtariARI configs' shape
    cfg.probe.protocol = "atariari"
    cfg.probe.frames = 640
    cfg.probe.atariari.epochs = 3
    summary = run(cfg)
    assert list(summary["stages"]) == ["collect", "pretrain", "probe", "report"]
    base = Path(cfg.root) / cfg.name
    assert not (base / "train").exists() and not (base / "eval").exists()
    report = (base / "report" / "report.md").read_text()
    assert "no agents" in report and "## AtariARI probe (Anand et al. 2019)" in report
    assert (base / "report" / "atariari.csv").is_file()
    assert not (base / "report" / "results.csv").exists()


def test_an_experiment_without_agents_needs_encoders_and_probes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agents: expected at least one agent, or encoders"):
        load_experiment(None, [f"root={tmp_path}", "agents=[]", "encoders=[]"])
    with pytest.raises(ConfigError, match=r"needs probe\.enabled: true"):
        load_experiment(None, [f"root={tmp_path}", "agents=[]", "probe.enabled=false"])


def test_an_unknown_protocol_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_experiment(None, [f"root={tmp_path}", "probe.protocol=atari"])
    message = str(e.value)
    assert "probe.protocol" in message and "atari" in message and "\n" not in message
    assert not list(tmp_path.iterdir())
    with pytest.raises(ConfigError, match=r"probe\.atariari\.epochs: expected an integer >= 1"):
        load_experiment(
            None, [f"root={tmp_path}", "probe.protocol=atariari", "probe.atariari.epochs=0"]
        )


@pytest.mark.parametrize("name", ["atariari_breakout", "atariari_breakout_full"])
def test_the_atariari_configs_validate(name: str) -> None:
    overrides = ["device=cpu"] if name.endswith("full") else []
    cfg = load_experiment(f"experiments/configs/{name}.yaml", overrides)
    assert cfg.probe.protocol == "atariari"
    assert [e.name for e in cfg.encoders] == [
        "random_init", "vae", "cpc", "st_dim", "supervised", "atc",
        "beta_vae", "dae", "beta_vae_dae",
    ]  # fmt: skip
    assert {e.model["architecture"] for e in cfg.encoders} == {"atariari"}
    assert cfg.agents == []  # probe-only: collect, pretrain, probe, report
    assert cfg.collect.env_kwargs["obs_size"] == [210, 160] and cfg.collect.env_kwargs["ram_labels"]
