"""make_agent / save_agent / load_agent: validation, self-contained zips, export, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.vec_env import VecMonitor

import agents.factory
import envs
import representations as R
from agents import (
    EncodeObservations,
    LatentProjectionExtractor,
    PretrainedEncoderExtractor,
    agent_algo,
    load_agent,
    make_agent,
    save_agent,
)
from representations import CheckpointError
from tests.agents.conftest import TINY

PPO_TINY = {"n_steps": 16, "batch_size": 16, "n_epochs": 2}
ENV_ID = "reprl/BreakoutStandard-v0"


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """(6, 64, 64, 3) uint8 Breakout frames from the middle of episodes."""
    env = envs.make_vec(ENV_ID, 6, seed=1)
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(30):
        obs, *_ = env.step(rng.integers(0, env.action_space.n, 6))
    return obs


def _env(n: int = 2, **kwargs):
    return envs.make_vec(ENV_ID, n, seed=0, **kwargs)


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def _probs(model, obs) -> torch.Tensor:
    obs_t, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        return model.policy.get_distribution(obs_t).distribution.probs


# ---------------------------------------------------------------- validation


def _l_ckpt(tmp_path: Path) -> Path:
    path = tmp_path / "gray.safetensors"
    R.make_representation("beta_vae", input_shape=(1, 64, 64), **TINY).save(path)
    return path


def _junk(tmp_path: Path) -> Path:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00" * 64)
    return path


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c, t: make_agent("dqn", _env(), encoder=c), ValueError,
         r"algo: expected one of \['ppo', 'a2c'\], got 'dqn'"),
        (lambda c, t: make_agent("ppo", _env(), encoder=c, mode="frozn"), ValueError,
         r"mode: expected one of \['frozen', 'finetune', 'scratch', 'pixels'\], got 'frozn'"),
        (lambda c, t: make_agent("ppo", _env(), mode="finetune"), ValueError,
         r"mode 'finetune' needs an encoder checkpoint, got None"),
        (lambda c, t: make_agent("ppo", _env(), encoder=c, mode="pixels"), ValueError,
         r"mode 'pixels' uses no encoder, got encoder="),
        (lambda c, t: make_agent("ppo", _env(), encoder=_junk(t)), CheckpointError,
         r"not a reprl checkpoint"),
        (lambda c, t: make_agent("ppo", _env(), encoder=t / "nope.safetensors"),
         FileNotFoundError, r"nope.safetensors not found"),
        (lambda c, t: make_agent("ppo", _env(obs_size=(32, 32)), encoder=c), ValueError,
         r"shape: the encoder expects \(C, H, W\) = \(3, 64, 64\).*got \(32, 32, 3\)"),
        (lambda c, t: make_agent("ppo", _env(), encoder=_l_ckpt(t)), ValueError,
         r"channels: the encoder expects C=1 \(L\).*got C=3"),
        (lambda c, t: make_agent("ppo", _env(), encoder=c, n_steps=16, batch_size=24),
         ValueError, r"batch_size 24 does not divide.*n_steps \* n_envs = 16 \* 2 = 32"),
        (lambda c, t: make_agent("ppo", _env(1), mode="pixels", n_steps=1, batch_size=2),
         ValueError, r"n_steps \* n_envs: expected > 1, got n_steps=1 \* n_envs=1 = 1"),
        (lambda c, t: make_agent("ppo", object(), encoder=c), TypeError,
         r"env: expected an SB3 VecEnv"),
        (lambda c, t: make_agent("a2c", _env(), encoder=c, batch_size=16), TypeError,
         r"unknown A2C kwargs \['batch_size'\]"),
        (lambda c, t: make_agent("ppo", _env(), encoder=c, policy_kwargs={
            "features_extractor_class": NatureCNN}), ValueError,
         r"sets the features extractor itself"),
        (lambda c, t: make_agent("ppo", _env(), encoder=c, features_dim=-3), ValueError,
         r"features_dim: expected a positive int or None, got -3"),
    ],
)  # fmt: skip
def test_make_agent_validates_before_building(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call, error, match
) -> None:
    def built(*args, **kwargs):
        raise AssertionError("make_agent started building before validating")

    monkeypatch.setattr(agents.factory, "VecMonitor", built)
    monkeypatch.setattr(agents.factory, "EncodeObservations", built)
    with pytest.raises(error, match=match):
        call(ckpt, tmp_path)


def test_make_agent_builds_each_mode(ckpt: Path) -> None:
    fast = make_agent("ppo", _env(), encoder=ckpt, features_dim=6, **PPO_TINY)
    assert isinstance(fast.get_env(), EncodeObservations)
    assert isinstance(fast.get_env().venv, VecMonitor)
    assert isinstance(fast.policy.features_extractor, LatentProjectionExtractor)
    assert fast.observation_space.shape == (8,)
    assert fast.reprl_info["fast"] and fast.reprl_info["algo"] == "ppo"
    slow = make_agent("a2c", _env(), encoder=ckpt, fast=False, monitor=False)
    assert isinstance(slow.policy.features_extractor, PretrainedEncoderExtractor)
    assert slow.observation_space.shape == (3, 64, 64)
    assert not isinstance(slow.get_env().venv, VecMonitor)
    pixels = make_agent("ppo", _env(), mode="pixels", features_dim=32, **PPO_TINY)
    assert isinstance(pixels.policy.features_extractor, NatureCNN)
    assert pixels.policy.features_dim == 32
    assert pixels.reprl_info == {**pixels.reprl_info, "mode": "pixels", "encoder": None}


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_extractor_agent_roundtrip_without_checkpoint(
    ckpt: Path, tmp_path: Path, frames: np.ndarray, mode: str
) -> None:
    model = make_agent("ppo", _env(), encoder=ckpt, mode=mode, fast=False, seed=0, **PPO_TINY)
    model.learn(32)
    before = model.predict(frames, deterministic=True)[0]
    probs = _probs(model, frames)
    params = _params(model)
    kwargs_before = json.dumps(model.policy_kwargs["features_extractor_kwargs"])
    path = save_agent(model, tmp_path / "agent")
    assert path == tmp_path / "agent.zip" and path.is_file()
    assert json.dumps(model.policy_kwargs["features_extractor_kwargs"]) == kwargs_before
    assert sorted(os.listdir(tmp_path)) == ["agent.zip", "vae.safetensors"]  # no temp files
    pretrained = R.load(ckpt).state_dict()
    ckpt.unlink()

    loaded = PPO.load(path)
    kw = loaded.policy_kwargs["features_extractor_kwargs"]
    assert kw["checkpoint"] is None and kw["encoder_header"]["method"] == "beta_vae"
    loaded_params = _params(loaded)
    assert loaded_params.keys() == params.keys()
    assert all(torch.equal(params[k], loaded_params[k]) for k in params)
    enc = loaded.policy.features_extractor.encoder
    if mode == "frozen":
        assert all(torch.equal(enc.state_dict()[k], v) for k, v in pretrained.items())
        assert not any(p.requires_grad for p in enc.parameters())
    np.testing.assert_array_equal(loaded.predict(frames, deterministic=True)[0], before)
    torch.testing.assert_close(_probs(loaded, frames), probs, atol=1e-6, rtol=0)
    again = load_agent(path, env=_env())
    assert isinstance(again, PPO) and isinstance(again.get_env().venv, VecMonitor)
    again.learn(32)  # training resumes on the pixel env


def test_plain_sb3_save_rebuilds_from_the_embedded_header(
    ckpt: Path, tmp_path: Path, frames: np.ndarray
) -> None:
    model = make_agent("ppo", _env(), encoder=ckpt, fast=False, seed=0, **PPO_TINY)
    model.save(tmp_path / "plain.zip")  # keeps the checkpoint path in the kwargs
    before = model.predict(frames, deterministic=True)[0]
    pretrained = R.load(ckpt).state_dict()
    ckpt.unlink()
    loaded = PPO.load(tmp_path / "plain.zip")
    assert loaded.policy_kwargs["features_extractor_kwargs"]["checkpoint"] == str(ckpt)
    enc = loaded.policy.features_extractor.encoder.state_dict()
    assert all(torch.equal(enc[k], v) for k, v in pretrained.items())
    np.testing.assert_array_equal(loaded.predict(frames, deterministic=True)[0], before)


@pytest.mark.parametrize(
    ("algo", "features_dim", "policy_kwargs"),
    [("ppo", None, {"net_arch": {"pi": [32], "vf": [16, 16]}}),
     ("a2c", 6, {"share_features_extractor": False})],
)  # fmt: skip
def test_fast_agent_exports_an_equivalent_pixel_policy(
    ckpt: Path,
    tmp_path: Path,
    frames: np.ndarray,
    algo: str,
    features_dim: int | None,
    policy_kwargs: dict,
) -> None:
    sb3 = {"ppo": PPO_TINY, "a2c": {"n_steps": 8}}[algo]
    model = make_agent(algo, _env(), encoder=ckpt, features_dim=features_dim, seed=0,
                       policy_kwargs=policy_kwargs, **sb3)  # fmt: skip
    model.learn(32)
    latents = model.get_env().encode(frames)
    actions = model.predict(latents, deterministic=True)[0]
    probs = _probs(model, latents)
    rng = torch.get_rng_state()
    kwargs_before, info_before = dict(model.policy_kwargs), dict(model.reprl_info)
    path = save_agent(model, tmp_path / "fast.zip")
    assert torch.equal(torch.get_rng_state(), rng)  # exporting drew no global random numbers
    assert model.policy_kwargs == kwargs_before and model.reprl_info == info_before
    ckpt.unlink()

    loaded = {"ppo": PPO, "a2c": A2C}[algo].load(path)
    assert loaded.observation_space.shape == (3, 64, 64)
    assert loaded.reprl_info["exported"] and not loaded.reprl_info["fast"]
    assert loaded.n_steps == model.n_steps and loaded.num_timesteps == model.num_timesteps
    np.testing.assert_array_equal(loaded.predict(frames, deterministic=True)[0], actions)
    torch.testing.assert_close(_probs(loaded, frames), probs, atol=1e-6, rtol=0)
    obs_t, _ = loaded.policy.obs_to_tensor(frames)
    with torch.no_grad():
        values = model.policy.predict_values(torch.from_numpy(latents))
        torch.testing.assert_close(loaded.policy.predict_values(obs_t), values, atol=1e-6, rtol=0)
    assert loaded.policy.net_arch == model.policy.net_arch
    # the optimizer state of the trained MLP came along
    name = "mlp_extractor.policy_net.0.weight"
    src = dict(model.policy.named_parameters())[name]
    dst = dict(loaded.policy.named_parameters())[name]
    assert model.policy.optimizer.state[src]
    for key in model.policy.optimizer.state[src]:
        torch.testing.assert_close(loaded.policy.optimizer.state[dst][key],
                                   model.policy.optimizer.state[src][key])  # fmt: skip
    enc = loaded.policy.features_extractor.encoder
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    loaded.set_env(_env())
    loaded.learn(16)  # the export trains as a frozen-extractor agent


def test_fast_agent_without_its_env_exports_from_the_recorded_checkpoint(
    ckpt: Path, tmp_path: Path, frames: np.ndarray
) -> None:
    model = make_agent("ppo", _env(), encoder=ckpt, seed=0, **PPO_TINY)
    actions = model.predict(model.get_env().encode(frames), deterministic=True)[0]
    model.env = None
    loaded = load_agent(save_agent(model, tmp_path / "a.zip"))
    np.testing.assert_array_equal(loaded.predict(frames, deterministic=True)[0], actions)
    ckpt.unlink()
    with pytest.raises(ValueError, match="needs its EncodeObservations env"):
        save_agent(model, tmp_path / "b.zip")


def test_fresh_process_loads_with_plain_sb3(ckpt: Path, tmp_path: Path, frames: np.ndarray) -> None:
    ext = make_agent("ppo", _env(), encoder=ckpt, mode="finetune", seed=1, **PPO_TINY)
    fast = make_agent("a2c", _env(), encoder=ckpt, seed=1, n_steps=8)
    ext.learn(32)
    fast.learn(32)
    expected = {
        "ext": ext.predict(frames, deterministic=True)[0].tolist(),
        "fast": fast.predict(fast.get_env().encode(frames), deterministic=True)[0].tolist(),
    }
    save_agent(ext, tmp_path / "ext.zip")
    save_agent(fast, tmp_path / "fast.zip")
    np.save(tmp_path / "frames.npy", frames)
    ckpt.unlink()
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        from stable_baselines3 import A2C, PPO
        frames = np.load("frames.npy")
        out = {name: cls.load(name + ".zip").predict(frames, deterministic=True)[0].tolist()
               for name, cls in (("ext", PPO), ("fast", A2C))}
        print(json.dumps(out))
    """)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == expected


def test_load_agent_detects_the_algorithm(ckpt: Path, tmp_path: Path) -> None:
    a2c = make_agent("a2c", _env(), encoder=ckpt, fast=False, n_steps=4)
    ppo = make_agent("ppo", _env(), mode="pixels", **PPO_TINY)
    assert agent_algo(save_agent(a2c, tmp_path / "a2c.zip")) == "a2c"
    assert isinstance(load_agent(tmp_path / "a2c"), A2C)  # ".zip" is tried, as SB3 does
    del ppo.reprl_info
    ppo.save(tmp_path / "plain_ppo.zip")
    del a2c.reprl_info
    a2c.save(tmp_path / "plain_a2c.zip")
    assert agent_algo(tmp_path / "plain_ppo.zip") == "ppo"
    assert agent_algo(tmp_path / "plain_a2c.zip") == "a2c"
    assert isinstance(load_agent(tmp_path / "plain_ppo.zip"), PPO)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an SB3 agent zip"):
        load_agent(tmp_path / "bad.zip")
    with pytest.raises(FileNotFoundError, match=r"missing\.zip not found"):
        load_agent(tmp_path / "missing.zip")


def test_save_is_atomic(ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = make_agent("ppo", _env(), encoder=ckpt, fast=False, **PPO_TINY)
    path = save_agent(model, tmp_path / "agent.zip")
    good = path.read_bytes()

    def killed(f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_agent(model, path)
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["agent.zip", "vae.safetensors"]


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize(("mode", "fast"), [("frozen", True), ("finetune", False)])
def test_same_seed_same_training(ckpt: Path, mode: str, fast: bool) -> None:
    runs = []
    for _ in range(2):
        model = make_agent("ppo", _env(), encoder=ckpt, mode=mode, fast=fast, seed=7, **PPO_TINY)
        model.learn(48)
        runs.append((_params(model), model.rollout_buffer.rewards.copy()))
    (p0, r0), (p1, r1) = runs
    assert all(torch.equal(p0[k], p1[k]) for k in p0)
    np.testing.assert_array_equal(r0, r1)
