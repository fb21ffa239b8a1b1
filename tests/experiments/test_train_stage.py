"""The train stage: one code path for every algorithm, each encoder checkpoint read once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from agents.hyperparams import PPOHyperparams
from experiments.pipeline import AgentStage, ExperimentConfig, TrainStage
from experiments.stages.train import stage_train
from representations import Checkpoint, make_representation

MODES = [("frozen", True), ("frozen", False), ("finetune", True), ("scratch", True)]


def _config(root: Path) -> ExperimentConfig:
    """One PPO agent per encoder mode (the fast and the in-policy frozen one), 64 steps each."""
    return ExperimentConfig(
        name="reads",
        root=str(root),
        seeds=[0],
        agents=[
            AgentStage(name=f"{mode}_{fast}", encoder="enc", mode=mode, fast=fast)
            for mode, fast in MODES
        ],
        train=TrainStage(
            timesteps=64,
            num_envs=2,
            frame_stack=2,
            ppo=PPOHyperparams(n_steps=32, batch_size=32, n_epochs=1),
        ),
    )


@pytest.fixture
def encoder(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "enc.safetensors"
    make_representation("dae", latent_dim=4).save(path)
    return path


def _count_reads(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[Path]:
    """Every ``Path.read_bytes`` of ``path`` from now on (how checkpoints are read)."""
    reads: list[Path] = []
    read_bytes = Path.read_bytes

    def counting(self: Path) -> bytes:
        if self.resolve() == path.resolve():
            reads.append(self)
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    return reads


def test_an_open_encoder_is_not_read_again(
    tmp_path: Path, encoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handed the Checkpoint that pretraining opened, training reads the file no more (the
    header checks, the encoding wrapper and the extractors all use it: 13 reads for these four
    agents before); handed a path, it reads it once per agent."""
    cfg = _config(tmp_path)
    opened = Checkpoint(encoder)
    reads = _count_reads(monkeypatch, encoder)
    agents, reused = stage_train(cfg, tmp_path / "opened", {"enc": opened}, None)
    assert reads == [] and len(agents) == len(MODES) and reused == 0
    agents, _ = stage_train(cfg, tmp_path / "path", {"enc": encoder}, None)
    assert len(reads) == len(MODES)
    prov = json.loads(
        (tmp_path / "opened" / "train" / "frozen_False__0" / "provenance.json").read_text()
    )
    assert prov["encoder"]["sha256"] == opened.sha256
    assert "a3c" not in prov and prov["budget"]["env_steps"] == 64


def _loop_config(root: Path, loop: str | None) -> ExperimentConfig:
    """A pixel PPO agent on Breakout with a short time limit (episodes end within the run)."""
    return ExperimentConfig(
        name="loops",
        root=str(root),
        seeds=[0],
        agents=[AgentStage(name="pixels", mode="pixels")],
        train=TrainStage(
            env_kwargs={"max_episode_steps": 20},
            timesteps=128,
            num_envs=2,
            frame_stack=2,
            loop=loop,
            ppo=PPOHyperparams(n_steps=32, batch_size=32, n_epochs=1),
        ),
    )


@pytest.mark.parametrize("loop", [None, "device", "sb3"])
def test_the_train_loop(tmp_path: Path, loop: str | None) -> None:
    """PPO on reprl Breakout trains on the device loop unless ``train.loop: sb3``; both write
    the same metrics rows (cleanrl's keys, an episode every 20 steps per env) and SB3's
    TensorBoard events; only a device run's key and provenance name the loop, so SB3-loop
    runs keep the keys they had before the option existed."""
    from experiments.stages.train import train_key

    cfg = _loop_config(tmp_path, loop)
    resolved = "sb3" if loop == "sb3" else "device"
    assert cfg.agent_loop(cfg.agents[0]) == resolved
    key = train_key(cfg, cfg.agents[0], 0)
    assert key["train"].get("loop") == (None if resolved == "sb3" else "device")
    out, _ = stage_train(cfg, tmp_path / "run", {}, None)
    d = out["pixels__0"].parent
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert [(r["global_step"], r["charts/episodic_length"]) for r in rows] == [
        (40, 20),
        (40, 20),
        (80, 20),
        (80, 20),
        (120, 20),
        (120, 20),
    ]
    assert set(rows[0]) == {"global_step", "charts/episodic_return", "charts/episodic_length"}
    assert list((d / "tb").rglob("events.out.tfevents.*"))
    prov = json.loads((d / "provenance.json").read_text())
    assert prov.get("loop") == (None if resolved == "sb3" else "device")
    assert prov["budget"]["env_steps"] == 128
