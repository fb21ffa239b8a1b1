"""make_agent / save_agent / load_agent: validation, self-contained zips, export, determinism."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.vec_env import VecMonitor, VecTransposeImage

import agents.extractor
import agents.factory
import envs
import representations as R
from agents import (
    EncodeObservations,
    ImpalaCNN,
    LatentProjectionExtractor,
    MissingFileError,
    PPOHyperparams,
    PretrainedEncoderExtractor,
    agent_algo,
    agent_info,
    load_agent,
    make_agent,
    save_agent,
)
from envs.errors import ReprlError
from representations import CheckpointError
from tests.agents.conftest import TINY, random_stacks, stacked_env

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


_CASES = [
    (
        lambda c, t: make_agent("dqn", _env(), encoder=c),
        r"algo: expected one of \['ppo', 'a2c', 'a3c'\], got 'dqn'",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), encoder=c, mode="frozn"),
        r"mode: expected one of \['frozen', 'finetune', 'scratch', 'pixels'\], got 'frozn'",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), mode="finetune"),
        r"mode 'finetune' needs an encoder checkpoint, got None",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), encoder=c, mode="pixels"),
        r"mode 'pixels' uses no encoder, got encoder=",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), encoder=t / "nope.safetensors"),
        r"nope.safetensors not found",
    ),
    (
        lambda c, t: make_agent("ppo", _env(obs_size=(32, 32)), encoder=c),
        r"shape: the encoder expects \(C, H, W\) = \(3, 64, 64\).*got \(32, 32, 3\)",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), encoder=_l_ckpt(t), frame_stack=1),
        r"channels: the encoder expects C=1 \(L\) x frame_stack 1 = 1 channels.*got C=3",
    ),
    (
        lambda c, t: make_agent("ppo", stacked_env(2, 4, gray=True), encoder=c),
        r"channels: the encoder expects C=3 \(RGB\) per frame.*got C=4",
    ),
    (
        lambda c, t: make_agent("ppo", stacked_env(2, 2), encoder=c, frame_stack=3),
        r"C=3 \(RGB\) x frame_stack 3 = 9 channels.*got C=6",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), encoder=c, frame_stack=0),
        r"frame_stack: expected an integer >= 1 or None, got 0",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), mode="pixels", frame_stack=2),
        r"frame_stack: expected a divisor of the observation's 3 channels, got 2",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), encoder=c, n_steps=16, batch_size=24),
        r"batch_size 24 does not divide.*n_steps \* n_envs = 16 \* 2 = 32",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), encoder=c, hyperparams=PPOHyperparams(n_steps=20)),
        r"batch_size 64 does not divide.*= 20 \* 2 = 40",
    ),
    (
        lambda c, t: make_agent("ppo", _env(1), mode="pixels", n_steps=1, batch_size=2),
        r"n_steps \* n_envs: expected > 1, got n_steps=1 \* n_envs=1 = 1",
    ),
    (
        lambda c, t: make_agent("a2c", _env(), encoder=c, batch_size=16),
        r"A2C kwargs: expected names from .*got the unknown \['batch_size'\]",
    ),
    (
        lambda c, t: make_agent("a2c", _env(), encoder=c, hyperparams=PPOHyperparams()),
        r"hyperparams: expected A2CHyperparams for algo 'a2c', got PPOHyperparams",
    ),
    (
        lambda c, t: make_agent(
            "ppo", _env(), encoder=c, policy_kwargs={"features_extractor_class": NatureCNN}
        ),
        r"sets the features extractor itself",
    ),
    (
        lambda c, t: make_agent("ppo", _env(), encoder=c, features_dim=-3),
        r"features_dim: expected a positive int or None, got -3",
    ),
]


@pytest.mark.parametrize(("call", "match"), _CASES)
def test_make_agent_validates_before_building(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call, match
) -> None:
    def built(*args, **kwargs):
        raise AssertionError("make_agent started building before validating")

    monkeypatch.setattr(agents.factory, "VecMonitor", built)
    monkeypatch.setattr(agents.factory, "EncodeObservations", built)
    with pytest.raises(ReprlError, match=match):
        call(ckpt, tmp_path)


def test_make_agent_refuses_a_junk_checkpoint(ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a reprl checkpoint"):
        make_agent("ppo", _env(), encoder=_junk(tmp_path))


def test_make_agent_refuses_a_non_vecenv(ckpt: Path) -> None:
    with pytest.raises(TypeError, match="env: expected an SB3 VecEnv"):
        make_agent("ppo", object(), encoder=ckpt)


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
    [
        ("ppo", None, {"net_arch": {"pi": [32], "vf": [16, 16]}}),
        ("a2c", 6, {"share_features_extractor": False}),
    ],
)
def test_fast_agent_exports_an_equivalent_pixel_policy(
    ckpt: Path,
    tmp_path: Path,
    frames: np.ndarray,
    algo: str,
    features_dim: int | None,
    policy_kwargs: dict,
) -> None:
    sb3 = {"ppo": PPO_TINY, "a2c": {"n_steps": 8}}[algo]
    model = make_agent(
        algo,
        _env(),
        encoder=ckpt,
        features_dim=features_dim,
        seed=0,
        policy_kwargs=policy_kwargs,
        **sb3,
    )
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
        torch.testing.assert_close(
            loaded.policy.optimizer.state[dst][key], model.policy.optimizer.state[src][key]
        )
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
    stacked = make_agent("ppo", stacked_env(2, 3), encoder=ckpt, seed=1, **PPO_TINY)
    stacks = random_stacks(6, 3)
    for model in (ext, fast, stacked):
        model.learn(32)
    latents = {"fast": fast.get_env().encode(frames), "stacked": stacked.get_env().encode(stacks)}
    expected = {
        "ext": ext.predict(frames, deterministic=True)[0].tolist(),
        "fast": fast.predict(latents["fast"], deterministic=True)[0].tolist(),
        "stacked": stacked.predict(latents["stacked"], deterministic=True)[0].tolist(),
    }
    save_agent(ext, tmp_path / "ext.zip")
    save_agent(fast, tmp_path / "fast.zip")
    save_agent(stacked, tmp_path / "stacked.zip")
    np.save(tmp_path / "frames.npy", frames)
    np.save(tmp_path / "stacks.npy", stacks)
    ckpt.unlink()
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        from stable_baselines3 import A2C, PPO
        frames, stacks = np.load("frames.npy"), np.load("stacks.npy")
        runs = (("ext", PPO, frames), ("fast", A2C, frames), ("stacked", PPO, stacks))
        out = {name: cls.load(name + ".zip").predict(obs, deterministic=True)[0].tolist()
               for name, cls, obs in runs}
        print(json.dumps(out))
    """)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    res = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
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
    assert isinstance(load_agent(tmp_path / "plain_ppo.zip", trust_pickle=True), PPO)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ReprlError, match=r"expected an SB3 agent zip, got .*bad\.zip"):
        load_agent(tmp_path / "bad.zip")
    with pytest.raises(MissingFileError, match=r"missing\.zip not found"):
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


# ---------------------------------------------------------------- metadata


def test_agent_info_round_trips_without_loading_the_model(ckpt: Path, tmp_path: Path) -> None:
    model = make_agent("ppo", stacked_env(2, 3), encoder=ckpt, seed=0, **PPO_TINY)
    info = {
        "env_id": "reprl/BreakoutStandard-v0",
        "env_kwargs": {"variant": "standard", "obs_size": (64, 64)},
        "action_meanings": ["NOOP", "LEFT", "RIGHT"],
        "frame_stack": 3,
        "grayscale": False,
    }
    path = save_agent(model, tmp_path / "a.zip", info=info)
    got = agent_info(path)
    auto = got.pop("reprl")
    assert got == {**info, "env_kwargs": {"variant": "standard", "obs_size": [64, 64]}}
    assert auto["algo"] == "ppo" and auto["mode"] == "frozen" and auto["frame_stack"] == 3
    assert auto["trained_on_latents"] and auto["observation_shape"] == [9, 64, 64]
    assert auto["encoder"]["method"] == "beta_vae" and auto["encoder"]["latent_dim"] == 8
    assert auto["encoder"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert json.loads(json.dumps(auto)) == auto
    with zipfile.ZipFile(path) as z:  # SB3's own members are untouched, reprl.json is extra
        assert {"data", "policy.pth", "reprl.json"} <= set(z.namelist())
    assert PPO.load(path).observation_space.shape == (9, 64, 64)  # SB3 ignores the member
    pixels = make_agent("ppo", _env(), mode="pixels", **PPO_TINY)
    plain = agent_info(save_agent(pixels, tmp_path / "p.zip"))
    assert plain["reprl"]["encoder"] is None and plain["reprl"]["mode"] == "pixels"
    assert set(plain) == {"reprl"}


def test_agent_info_of_zips_without_metadata_and_of_non_zips(tmp_path: Path) -> None:
    legacy = Path(__file__).parents[1] / "fixtures" / "legacy" / "ppo_frozen_beta_vae_v0.1.0.zip"
    assert agent_info(legacy) == {}
    pixels = make_agent("ppo", _env(), mode="pixels", **PPO_TINY)
    pixels.save(tmp_path / "sb3.zip")
    assert agent_info(tmp_path / "sb3.zip") == {}
    (tmp_path / "text.zip").write_text("hello")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(legacy.read_bytes()[:5000])
    for bad in (tmp_path / "text.zip", truncated):
        for read in (agent_info, load_agent, agent_algo):
            with pytest.raises(ReprlError, match=rf"expected an SB3 agent zip, got {bad}"):
                read(bad)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "not an agent")
    with pytest.raises(ReprlError, match=r"expected an SB3 agent zip.*without SB3's 'data'"):
        agent_info(tmp_path / "other.zip")
    with pytest.raises(MissingFileError, match="not found"):
        agent_info(tmp_path / "nope.zip")


def test_save_agent_refuses_bad_info(ckpt: Path, tmp_path: Path) -> None:
    model = make_agent("ppo", stacked_env(2, 2), encoder=ckpt, fast=False, **PPO_TINY)
    bad = [
        ({"x": object()}, r"info: expected JSON-plain values.*object is not JSON-plain"),
        ({"reprl": 1}, r"the key 'reprl' is reserved"),
        ({"frame_stack": 4}, r"frame_stack 4 disagrees with the agent's: expected 2"),
        ([1, 2], r"info: expected a dict, got list"),
    ]
    for info, match in bad:
        with pytest.raises(ReprlError, match=match):
            save_agent(model, tmp_path / "a.zip", info=info)
    assert not any(tmp_path.glob("*.zip"))


# ---------------------------------------------------------------- temporal context


def test_stacked_fast_agent_exports_a_pixel_agent_on_the_stack(ckpt: Path, tmp_path: Path) -> None:
    """PPO.load(zip).predict(stacked pixels) acts as the live latent agent."""
    k = 3
    model = make_agent("ppo", stacked_env(2, k), encoder=ckpt, features_dim=6, seed=0, **PPO_TINY)
    wrapper = model.get_env()
    assert isinstance(wrapper, EncodeObservations) and wrapper.frame_stack == k
    assert model.observation_space.shape == (k * TINY["latent_dim"],)
    assert model.reprl_info["frame_stack"] == k
    model.learn(32)
    stacks = random_stacks(8, k)
    latents = wrapper.encode(stacks)
    actions = model.predict(latents, deterministic=True)[0]
    probs = _probs(model, latents)
    path = save_agent(model, tmp_path / "fast.zip")
    ckpt.unlink()
    loaded = PPO.load(path)
    assert loaded.observation_space.shape == (3 * k, 64, 64)
    ext = loaded.policy.features_extractor
    assert ext.frame_stack == k and ext.projection[0].in_features == k * TINY["latent_dim"]
    np.testing.assert_array_equal(loaded.predict(stacks, deterministic=True)[0], actions)
    torch.testing.assert_close(_probs(loaded, stacks), probs, atol=1e-6, rtol=0)
    # and on a live stream, step by step: the same actions as the fast agent
    env = stacked_env(2, k, seed=5, max_episode_steps=6)
    wrapped = EncodeObservations(stacked_env(2, k, seed=5, max_episode_steps=6), wrapper.encoder)
    obs, zobs = env.reset(), wrapped.reset()
    for _ in range(10):
        a = loaded.predict(obs, deterministic=True)[0]
        np.testing.assert_array_equal(a, model.predict(zobs, deterministic=True)[0])
        obs, *_ = env.step(a)
        zobs, *_ = wrapped.step(a)


def test_stacked_extractor_agent_saves_and_loads(ckpt: Path, tmp_path: Path) -> None:
    model = make_agent("a2c", stacked_env(2, 2), encoder=ckpt, mode="finetune", seed=0, n_steps=4)
    kw = model.policy_kwargs["features_extractor_kwargs"]
    assert kw["frame_stack"] == 2 and json.loads(json.dumps(kw)) == kw
    model.learn(16)
    stacks = random_stacks(4, 2)
    actions = model.predict(stacks, deterministic=True)[0]
    path = save_agent(model, tmp_path / "ext.zip")
    ckpt.unlink()
    loaded = load_agent(path)
    assert loaded.policy.features_extractor.frame_stack == 2
    np.testing.assert_array_equal(loaded.predict(stacks, deterministic=True)[0], actions)


def test_pixel_agent_runs_natures_cnn_on_grayscale_stacks(tmp_path: Path) -> None:
    model = make_agent("ppo", stacked_env(2, 4, gray=True), mode="pixels", seed=0, **PPO_TINY)
    assert model.observation_space.shape == (4, 64, 64)
    cnn = model.policy.features_extractor
    assert isinstance(cnn, NatureCNN) and cnn.cnn[0].in_channels == 4
    before = _params(model)
    model.learn(32)
    assert any(not torch.equal(before[k], v) for k, v in _params(model).items())
    stacks = random_stacks(4, 4, gray=True)
    assert stacks.shape == (4, 64, 64, 4)
    actions = model.predict(stacks, deterministic=True)[0]
    loaded = PPO.load(save_agent(model, tmp_path / "pix.zip"))
    np.testing.assert_array_equal(loaded.predict(stacks, deterministic=True)[0], actions)


def test_make_vec_frame_stack_feeds_every_kind_of_agent(ckpt: Path) -> None:
    env = envs.make_vec(ENV_ID, 2, seed=0, frame_stack=2)
    assert env.observation_space.shape == (64, 64, 6)
    for mode, fast in (("frozen", True), ("frozen", False), ("pixels", True)):
        model = make_agent(
            "ppo", env, encoder=None if mode == "pixels" else ckpt, mode=mode, fast=fast, **PPO_TINY
        )
        model.learn(32)
        assert model.num_timesteps == 32
        k = model.reprl_info["frame_stack"]
        assert k == (None if mode == "pixels" else 2)


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


# ---------------------------------------------------------------- IMPALA-CNN pixel agents

_PIXEL_EXTRACTOR_CASES = [
    (
        lambda c: make_agent("ppo", _env(), mode="pixels", pixel_extractor="resnet"),
        r"pixel_extractor: expected one of \['nature', 'impala'\], got 'resnet'",
    ),
    (
        lambda c: make_agent("ppo", _env(), encoder=c, mode="frozen", pixel_extractor="impala"),
        r"pixel_extractor: only mode 'pixels' uses it; expected 'nature' .*mode 'frozen', got "
        r"'impala'",
    ),
    (
        lambda c: make_agent(
            "ppo",
            _env(),
            mode="pixels",
            pixel_extractor="impala",
            policy_kwargs={"features_extractor_class": NatureCNN},
        ),
        r"pixel_extractor 'impala' sets the features extractor itself",
    ),
    (
        lambda c: make_agent("ppo", _env(), mode="pixels", pixel_extractor="impala", batch_size=24),
        r"batch_size 24 does not divide",
    ),
]


@pytest.mark.parametrize(("call", "match"), _PIXEL_EXTRACTOR_CASES)
def test_pixel_extractor_is_validated_before_building(
    ckpt: Path, monkeypatch: pytest.MonkeyPatch, call, match
) -> None:
    def built(*args, **kwargs):
        raise AssertionError("make_agent started building before validating")

    monkeypatch.setattr(agents.factory, "VecMonitor", built)
    monkeypatch.setattr(agents.factory, "EncodeObservations", built)
    monkeypatch.setattr(agents.factory, "ImpalaCNN", built)
    with pytest.raises(ReprlError, match=match):
        call(ckpt)


def test_pixel_extractor_picks_the_cnn() -> None:
    nature = make_agent("ppo", _env(), mode="pixels", pixel_extractor="nature", **PPO_TINY)
    assert type(nature.policy.features_extractor) is NatureCNN
    impala = make_agent("ppo", _env(), mode="pixels", pixel_extractor="impala", **PPO_TINY)
    assert isinstance(impala.policy.features_extractor, ImpalaCNN)
    assert impala.policy.features_dim == 256
    assert impala.policy_kwargs["features_extractor_kwargs"] == {"features_dim": 256}
    small = make_agent(
        "ppo", _env(), mode="pixels", pixel_extractor="impala", features_dim=32, **PPO_TINY
    )
    assert small.policy.features_dim == 32


def _values(model, obs: np.ndarray) -> torch.Tensor:
    obs_t, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        return model.policy.predict_values(obs_t)


def test_impala_pixel_agent_learns_saves_and_loads(tmp_path: Path) -> None:
    env = envs.make_vec(ENV_ID, 2, seed=0, frame_stack=4, grayscale=True)
    model = make_agent(
        "ppo", env, mode="pixels", pixel_extractor="impala", n_steps=16, batch_size=32, seed=0
    )
    assert model.observation_space.shape == (4, 64, 64)
    assert model.policy.features_extractor.stacks[0].conv.in_channels == 4
    before = _params(model)
    model.learn(32)
    assert model.num_timesteps == 32
    changed = [k for k, v in _params(model).items() if not torch.equal(before[k], v)]
    assert any(k.startswith("features_extractor.stacks.0.") for k in changed)
    stacks = random_stacks(6, 4, gray=True)
    actions = model.predict(stacks, deterministic=True)[0]
    values = _values(model, stacks)

    path = save_agent(model, tmp_path / "impala.zip", info={"env_id": ENV_ID})
    assert agent_info(path)["reprl"]["mode"] == "pixels"
    for loaded in (load_agent(path), PPO.load(path)):
        assert isinstance(loaded.policy.features_extractor, ImpalaCNN)
        np.testing.assert_array_equal(loaded.predict(stacks, deterministic=True)[0], actions)
        assert torch.equal(_values(loaded, stacks), values)
        loaded_params = _params(loaded)
        assert all(torch.equal(loaded_params[k], v) for k, v in _params(model).items())


# ---------------------------------------------------------------- an encoder read once


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


@pytest.mark.parametrize(
    ("mode", "fast", "reads_of_a_path"),
    [("frozen", True, 1), ("frozen", False, 1), ("finetune", False, 1), ("scratch", False, 1)],
)
def test_an_open_checkpoint_is_not_read_again(
    ckpt: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    fast: bool,
    reads_of_a_path: int,
) -> None:
    """make_agent given a Checkpoint reads no file and builds the agent a path builds."""
    opened = R.Checkpoint(ckpt)
    reads = _count_reads(monkeypatch, ckpt)
    from_path = make_agent("ppo", _env(), encoder=ckpt, mode=mode, fast=fast, seed=3, **PPO_TINY)
    assert len(reads) == reads_of_a_path  # was 2 (fast) to 4 (in the policy) reads
    reads.clear()
    model = make_agent("ppo", _env(), encoder=opened, mode=mode, fast=fast, seed=3, **PPO_TINY)
    assert reads == []
    assert model.reprl_info == from_path.reprl_info
    assert model.reprl_info["encoder"] == os.path.abspath(ckpt)
    kwargs = model.policy_kwargs.get("features_extractor_kwargs") or {}
    assert kwargs == (from_path.policy_kwargs.get("features_extractor_kwargs") or {})
    assert model.policy.features_extractor_kwargs == from_path.policy.features_extractor_kwargs
    if not fast:  # the zip's kwargs stay JSON-plain: the path, not the object
        assert kwargs["checkpoint"] == os.path.abspath(ckpt)
    p0, p1 = _params(from_path), _params(model)
    assert all(torch.equal(p0[k], p1[k]) for k in p0)
    a, b = save_agent(from_path, tmp_path / "a.zip"), save_agent(model, tmp_path / "b.zip")
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        assert za.namelist() == zb.namelist()
        assert all(za.read(n) == zb.read(n) for n in za.namelist())


def test_the_extractor_takes_an_open_checkpoint(ckpt: Path) -> None:
    opened = R.Checkpoint(ckpt)
    kwargs = agents.extractor.extractor_kwargs(opened, "frozen")
    assert kwargs == agents.extractor.extractor_kwargs(ckpt, "frozen")
    ckpt.unlink()  # read already: the file is not needed again
    space = VecTransposeImage(_env()).observation_space
    extractor = PretrainedEncoderExtractor(space, checkpoint=opened, mode="frozen")
    pretrained = opened.load().state_dict()
    assert all(torch.equal(extractor.encoder.state_dict()[k], v) for k, v in pretrained.items())
    assert extractor.encoder_header == kwargs["encoder_header"]
    with pytest.raises(MissingFileError, match=r"encoder checkpoint .* not found"):
        agents.extractor.extractor_kwargs(ckpt, "frozen")
