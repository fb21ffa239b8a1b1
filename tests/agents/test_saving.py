"""Safe agent zips: no pickle by default, the opt-in, the allow-list, conversion, space checks.

The independent references: SB3's own ``PPO.load`` / ``A3C.load`` (their predictions must be
the safe loader's), a crafted pickle payload that creates a file (it must never appear unless
the caller opts in), and ``cloudpickle.loads`` / ``pickle.loads`` patched to fail during a safe
load (proving nothing was unpickled).
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.utils import FloatSchedule, LinearSchedule

import envs
from agents import make_agent, save_agent
from agents.a3c import A3C, WorkerEnvs
from agents.exploration import SB3EpsilonPolicy
from agents.safe_zip import (
    SAFE_MEMBER,
    PickleRefused,
    is_safe,
    pickled_entries,
    space_from_json,
    space_to_json,
)
from agents.saving import agent_algo, agent_info, convert_agent, load_agent
from agents.space_check import check_agent_spaces
from envs.errors import ReprlError
from tests.agents.conftest import ENV_ID

PPO_TINY = {"n_steps": 8, "batch_size": 8, "n_epochs": 1, "seed": 0}


class Payload:
    """Unpickles as ``eval(code)``: touches ``mark`` and returns a valid observation space."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        code = (
            f"__import__('pathlib').Path({str(self.mark)!r}).touch() or "
            "__import__('gymnasium').spaces.Box(0, 255, (3, 64, 64), __import__('numpy').uint8)"
        )
        return (eval, (code,))


def rewrite_zip(src: Path, dst: Path, data: Any = None, members: dict | None = None) -> Path:
    """A copy of ``src`` with ``data`` edited in place (``data(d)``) and members replaced."""
    members = dict(members or {})
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            blob = zin.read(name)
            if name == "data" and data is not None:
                d = json.loads(blob)
                data(d)
                blob = json.dumps(d).encode()
            zout.writestr(name, members.pop(name, blob))
        for name, blob in members.items():
            zout.writestr(name, blob)
    return dst


def payload_zip(tmp_path: Path, mark: Path) -> Path:
    """A plain SB3 PPO zip whose pickled observation space, when unpickled, touches ``mark``."""
    env = envs.make_vec(ENV_ID, 2, seed=0)
    PPO("CnnPolicy", env, device="cpu", **PPO_TINY).save(tmp_path / "plain.zip")

    def poison(d: dict) -> None:
        d["observation_space"][":serialized:"] = base64.b64encode(
            pickle.dumps(Payload(mark))
        ).decode()

    return rewrite_zip(tmp_path / "plain.zip", tmp_path / "payload.zip", data=poison)


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch):
    """Fail any unpickling of a zip's ``data`` (SB3 calls ``cloudpickle.loads``)."""

    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unpickled")

    def guard():
        monkeypatch.setattr(cloudpickle, "loads", boom)
        monkeypatch.setattr(pickle, "loads", boom)

    return guard


def _obs(n: int = 4, seed: int = 3) -> np.ndarray:
    env = envs.make_vec(ENV_ID, n, seed=seed)
    obs = env.reset()
    for _ in range(5):
        obs, *_ = env.step(np.random.default_rng(0).integers(0, 3, n))
    return obs


# --- the pickle payload ------------------------------------------------------------------------
def test_a_crafted_pickle_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    mark = tmp_path / "PWNED"
    path = payload_zip(tmp_path, mark)
    with pytest.raises(PickleRefused) as e:
        load_agent(path)
    msg = str(e.value)
    assert "\n" not in msg and "observation_space" in msg
    assert "arbitrary code" in msg and "--trust-pickle" in msg and "trust_pickle=True" in msg
    # reading its metadata, its algorithm and its pickled entries runs nothing either
    assert agent_info(path) == {} and agent_algo(path) == "ppo"
    assert "observation_space" in pickled_entries(path) and not is_safe(path)
    with pytest.raises(PickleRefused):
        convert_agent(path, tmp_path / "out.zip")
    assert not mark.exists()
    assert not (tmp_path / "out.zip").exists()

    # the same zip loads with the opt-in, and then the payload does run: it was a real one
    model = load_agent(path, trust_pickle=True)
    assert mark.exists()
    assert model.observation_space == gym.spaces.Box(0, 255, (3, 64, 64), np.uint8)


# --- the safe form -----------------------------------------------------------------------------
def test_save_agent_zips_load_without_pickle_as_sb3_loads_them(ckpt: Path, tmp_path: Path) -> None:
    """Frozen-encoder (fast path, exported) and pixel agents: the safe loader gives what SB3's
    own PPO.load gives, with every unpickling patched to fail."""
    obs = _obs()
    for name, model in (
        ("frozen", make_agent("ppo", envs.make_vec(ENV_ID, 2, seed=0), encoder=ckpt, **PPO_TINY)),
        ("pixels", make_agent("ppo", envs.make_vec(ENV_ID, 2, seed=0), mode="pixels", **PPO_TINY)),
    ):
        model.learn(16)
        path = save_agent(model, tmp_path / f"{name}.zip", info={"env_id": ENV_ID})
        theirs = PPO.load(path, device="cpu")  # SB3 unpickles its own copies
        assert is_safe(path) and pickled_entries(path)  # SB3's copies are still there
        with pytest.MonkeyPatch.context() as m:
            m.setattr(cloudpickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
            ours = load_agent(path)
        assert type(ours) is PPO and type(ours.policy) is type(theirs.policy)
        assert ours.observation_space == theirs.observation_space
        assert ours.action_space == theirs.action_space
        assert ours.policy_kwargs.keys() == theirs.policy_kwargs.keys()
        assert ours.lr_schedule(0.3) == theirs.lr_schedule(0.3)
        assert ours.clip_range(0.3) == theirs.clip_range(0.3)
        for k, v in theirs.policy.state_dict().items():
            assert torch.equal(ours.policy.state_dict()[k], v), k
        np.testing.assert_array_equal(
            ours.predict(obs, deterministic=True)[0], theirs.predict(obs, deterministic=True)[0]
        )
        with torch.no_grad():
            t = theirs.policy.obs_to_tensor(obs)[0]
            np.testing.assert_allclose(
                ours.policy.predict_values(t).numpy(), theirs.policy.predict_values(t).numpy()
            )


def test_a_linear_schedule_and_a_lambda_survive_as_json(tmp_path: Path) -> None:
    env = envs.make_vec(ENV_ID, 2, seed=0)
    lin = FloatSchedule(LinearSchedule(1e-3, 1e-4, 0.5))
    model = PPO("CnnPolicy", env, learning_rate=lin, clip_range=lambda p: 0.1 * p, **PPO_TINY)
    model._current_progress_remaining = 0.5
    from agents.safe_zip import write_safe

    write_safe(model, tmp_path / "s.zip")
    loaded = load_agent(tmp_path / "s.zip")
    for p in (1.0, 0.75, 0.2):
        assert loaded.lr_schedule(p) == pytest.approx(lin(p))
    assert loaded.clip_range(0.9) == pytest.approx(0.05)  # the lambda's value where it stopped
    record = json.loads(zipfile.ZipFile(tmp_path / "s.zip").read(SAFE_MEMBER))
    assert "approximates" in record["attributes"]["clip_range"]


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
        gym.spaces.Box(np.array([0.0, -1.5]), np.array([1.0, np.inf]), (2,), np.float64),
        gym.spaces.Box(0, 255, (64, 64, 3), np.uint8),
        gym.spaces.Discrete(5, start=-2),
        gym.spaces.MultiDiscrete([3, 4]),
        gym.spaces.MultiBinary(6),
        gym.spaces.Dict({"a": gym.spaces.Discrete(2), "b": gym.spaces.Box(0, 1, (2,))}),
        gym.spaces.Tuple([gym.spaces.Discrete(2), gym.spaces.MultiBinary(3)]),
    ],
)
def test_spaces_round_trip_through_json(space: gym.Space) -> None:
    text = json.dumps(space_to_json(space), allow_nan=False)  # strict JSON
    assert space_from_json(json.loads(text)) == space


def test_a3c_feedforward_and_lstm_agents_load_safely_as_a3c_load_does(tmp_path: Path) -> None:
    obs = _obs(2)
    for lstm in (0, 16):
        model = make_agent(
            "a3c",
            envs.make_vec(ENV_ID, 2, seed=0),
            mode="pixels",
            env_fn=WorkerEnvs(ENV_ID, 2, {}),
            n_workers=1,
            lstm_hidden_size=lstm,
            seed=0,
        )
        path = save_agent(model, tmp_path / f"a3c_{lstm}.zip")
        theirs = A3C.load(path, device="cpu")
        with pytest.MonkeyPatch.context() as m:
            m.setattr(cloudpickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
            ours = load_agent(path)
        assert type(ours) is A3C and ours.lstm_hidden_size == lstm
        assert type(ours.policy) is type(theirs.policy) and ours.recurrent == bool(lstm)
        assert type(ours.policy.optimizer) is type(theirs.policy.optimizer)
        state_o = state_t = None
        starts = np.ones(2, bool)
        for _ in range(3):  # the LSTM state is carried as sb3-contrib carries it
            a_o, state_o = ours.predict(obs, state_o, starts, deterministic=True)
            a_t, state_t = theirs.predict(obs, state_t, starts, deterministic=True)
            np.testing.assert_array_equal(a_o, a_t)
            starts = np.zeros(2, bool)
        if lstm:
            np.testing.assert_allclose(state_o[0], state_t[0], rtol=1e-6)


def test_weights_and_classes_are_checked_not_trusted(tmp_path: Path) -> None:
    mark = tmp_path / "PWNED"
    model = make_agent("ppo", envs.make_vec(ENV_ID, 2, seed=0), mode="pixels", **PPO_TINY)
    path = save_agent(model, tmp_path / "a.zip")
    buf = io.BytesIO()
    torch.save({"w": Payload(mark)}, buf)
    bad_pth = rewrite_zip(path, tmp_path / "pth.zip", members={"policy.pth": buf.getvalue()})
    with pytest.raises(ReprlError, match=r"policy\.pth: refusing torch weights .*eval"):
        load_agent(bad_pth)
    with pytest.raises(ReprlError, match=r"policy\.pth: refusing torch weights"):
        load_agent(bad_pth, trust_pickle=True)  # the opt-in is for SB3 pickles, not weights
    assert not mark.exists()

    record = json.loads(zipfile.ZipFile(path).read(SAFE_MEMBER))
    for name in ("os.system", "builtins.eval", "subprocess.Popen", "torch.load"):
        record["attributes"]["policy_class"] = {":safe:": "class", "name": name}
        bad = rewrite_zip(path, tmp_path / "cls.zip", members={SAFE_MEMBER: json.dumps(record)})
        with pytest.raises(ReprlError, match=rf"policy_class: expected .*got '{name}'"):
            load_agent(bad)


def test_convert_agent_makes_a_trusted_zip_safe(tmp_path: Path, no_unpickling) -> None:
    env = envs.make_vec(ENV_ID, 2, seed=0)
    plain = PPO("CnnPolicy", env, device="cpu", **PPO_TINY)
    plain.learn(16)
    plain.save(tmp_path / "plain.zip")
    with pytest.raises(PickleRefused, match="reprl convert-agent"):
        load_agent(tmp_path / "plain.zip")
    out = convert_agent(tmp_path / "plain.zip", tmp_path / "safe", trust_pickle=True)
    assert out == tmp_path / "safe.zip" and is_safe(out)
    obs = _obs()
    want = PPO.load(tmp_path / "plain.zip", device="cpu").predict(obs, deterministic=True)[0]
    no_unpickling()
    got = load_agent(out).predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(got, want)
    again = convert_agent(out, tmp_path / "again.zip")  # safe already: no opt-in needed
    np.testing.assert_array_equal(load_agent(again).predict(obs, deterministic=True)[0], want)


# --- spaces before the first step --------------------------------------------------------------
def test_plain_agents_meet_only_targets_of_their_spaces(tmp_path: Path) -> None:
    model = PPO("CnnPolicy", envs.make_vec(ENV_ID, 1, seed=0), device="cpu", **PPO_TINY)
    ale = envs.make_vec("ALE/Breakout-v5", 1, seed=0)
    try:
        with pytest.raises(ReprlError, match=r"agent acts in Discrete\(3\), the target ALE/"):
            check_agent_spaces(model, ale, "ALE/Breakout-v5")
        with pytest.raises(ReprlError, match="records no action meanings"):
            check_agent_spaces(model, ale, "ALE/Breakout-v5", action_mapping="by_meaning")
        meanings = list(envs.action_meanings(ENV_ID))
        assert check_agent_spaces(
            model, ale, "ALE/Breakout-v5", agent_meanings=meanings, action_mapping="by_meaning"
        )
        with pytest.raises(ReprlError, match="records 2"):
            check_agent_spaces(model, ale, "ALE/Breakout-v5", agent_meanings=meanings[:2])
    finally:
        ale.close()
    stacked = envs.make_vec(ENV_ID, 1, seed=0, frame_stack=4)
    with pytest.raises(ReprlError, match=r"takes \(3, 64, 64\) uint8, .* gives \(64, 64, 12\)"):
        check_agent_spaces(model, stacked, ENV_ID)
    assert check_agent_spaces(model, envs.make_vec(ENV_ID, 1, seed=0), ENV_ID) is False


def test_exploration_refuses_before_the_first_step() -> None:
    model = PPO("CnnPolicy", envs.make_vec(ENV_ID, 2, seed=0), device="cpu", **PPO_TINY)
    with pytest.raises(ReprlError, match=r"agent acts in Discrete\(3\), the env in Discrete\(15"):
        SB3EpsilonPolicy(model, 15)
    policy = SB3EpsilonPolicy(model, 3)
    with pytest.raises(ReprlError, match=r"takes \(3, 64, 64\) uint8, .* gives \(32, 32, 3\)"):
        policy(np.zeros((2, 32, 32, 3), np.uint8), np.ones(2, bool))
    # the same agent on observations of its own env: it acts
    obs = _obs(2)
    actions = policy(obs, np.ones(2, bool))
    assert actions.shape == (2,) and set(actions.tolist()) <= {0, 1, 2}


def test_read_zip_gives_what_sb3_reads_without_pickle(tmp_path: Path) -> None:
    from stable_baselines3.common.save_util import load_from_zip_file

    from agents.safe_zip import read_zip

    model = make_agent("ppo", envs.make_vec(ENV_ID, 2, seed=0), mode="pixels", **PPO_TINY)
    path = save_agent(model, tmp_path / "a.zip")
    theirs, their_params, _ = load_from_zip_file(path, device="cpu")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cloudpickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
        data, params, _ = read_zip(path)
    assert set(data) == set(theirs) and data["policy_class"] is theirs["policy_class"]
    for key in ("observation_space", "action_space", "num_timesteps", "policy_kwargs"):
        assert data[key] == theirs[key], key
    for k, v in their_params["policy"].items():
        assert torch.equal(params["policy"][k], v), k
    model.save(tmp_path / "plain.zip")
    with pytest.raises(PickleRefused):
        read_zip(tmp_path / "plain.zip")
    assert read_zip(tmp_path / "plain.zip", trust_pickle=True)[0]["n_steps"] == 8
