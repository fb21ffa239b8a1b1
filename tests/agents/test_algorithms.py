"""agents.algorithms: PPO, A2C and A3C behind one interface (envs, budget, resume, provenance)."""

from __future__ import annotations

from pathlib import Path

import pytest

import envs
from agents import A3C, A3CAlgorithm, Algorithm, Budget, WorkerEnvs, get_algorithm, make_agent
from agents.algorithms import UNBOUNDED_STEPS
from agents.extractor import MissingFileError
from agents.factory import ALGOS
from envs.errors import ReprlError

ENV_ID = "reprl/BreakoutStandard-v0"
PPO_TINY = {"n_steps": 16, "batch_size": 16, "n_epochs": 1}


def _env(n: int = 2):
    return envs.make_vec(ENV_ID, n, seed=0)


def test_budget_is_steps_or_seconds() -> None:
    steps, seconds = Budget("steps", 300), Budget("seconds", 2.5)
    assert (steps.steps, steps.seconds, steps.spent) == (300, None, False)
    assert (seconds.steps, seconds.seconds) == (UNBOUNDED_STEPS, 2.5)
    assert Budget("steps", -4).spent and Budget("seconds", 0.0).spent
    with pytest.raises(ReprlError, match=r"budget kind: expected one of \['steps', 'seconds'\]"):
        Budget("episodes", 3)


def test_every_algo_has_an_algorithm() -> None:
    assert set(ALGOS) == {"ppo", "a2c", "a3c"}
    for name in ALGOS:
        algorithm = get_algorithm(name)
        assert algorithm.name == name and algorithm.model_class is ALGOS[name]
    assert type(get_algorithm("ppo")) is Algorithm and not get_algorithm("a2c").resumable
    assert isinstance(get_algorithm("a3c"), A3CAlgorithm) and get_algorithm("a3c").resumable
    with pytest.raises(ReprlError, match=r"algo: expected one of \['ppo', 'a2c', 'a3c'\], got"):
        get_algorithm("dqn")
    with pytest.raises(ReprlError, match="checkpoint_every: expected seconds > 0, got 0"):
        get_algorithm("a3c", checkpoint_every=0)


def test_main_process_envs_and_agent_kwargs() -> None:
    ppo = get_algorithm("ppo", PPO_TINY)
    assert ppo.main_envs(8) == 8 and ppo.agent_kwargs(ENV_ID, 8, {}, "cpu") == {}
    assert ppo.provenance(None, 8, False) == {}
    a3c = get_algorithm("a3c", {"n_workers": 4})
    assert a3c.n_workers == 4 and a3c.main_envs(8) == 2
    assert get_algorithm("a3c").n_workers == 2  # A3C's default
    env_fn = a3c.agent_kwargs(ENV_ID, 2, {"frame_stack": 2}, "cpu")["env_fn"]
    assert isinstance(env_fn, WorkerEnvs) and env_fn.num_envs == 2
    assert env_fn.env_kwargs == {"info_factors": False, "frame_stack": 2}


def test_a_synchronous_algorithm_trains_its_budget_and_cannot_resume(tmp_path: Path) -> None:
    ppo = get_algorithm("ppo", PPO_TINY)
    model = make_agent("ppo", _env(), mode="pixels", seed=0, **PPO_TINY)
    took = ppo.learn(model, Budget("steps", 32), checkpoint=tmp_path / "ckpt.zip")
    assert model.num_timesteps == 32 and took > 0
    assert not (tmp_path / "ckpt.zip").exists()  # it writes no checkpoint
    ppo.learn(model, Budget("steps", 0))
    assert model.num_timesteps == 32  # a spent budget trains nothing
    with pytest.raises(ReprlError, match="algo 'ppo' cannot resume a run"):
        ppo.resume(model, tmp_path / "ckpt.zip", Budget("steps", 32))


def _a3c(algorithm: A3CAlgorithm) -> A3C:
    kwargs = algorithm.agent_kwargs(ENV_ID, 1, {}, "cpu")
    return make_agent("a3c", _env(1), mode="pixels", seed=0, **kwargs, **algorithm.sb3_kwargs)


def test_a3c_resumes_what_is_left_of_its_budget(tmp_path: Path) -> None:
    algorithm = get_algorithm("a3c", {"n_workers": 1, "n_steps": 5})
    first = _a3c(algorithm)
    first.num_timesteps, first.a3c_seconds = 40, 3.0
    first.a3c_stats = {"updates": [8], "env_steps": [40]}
    ckpt = first.save_checkpoint(tmp_path / "ckpt.zip")

    model = _a3c(algorithm)
    assert algorithm.resume(model, ckpt, Budget("steps", 100)) == Budget("steps", 60)
    assert model.num_timesteps == 40
    assert algorithm.resume(model, ckpt, Budget("seconds", 10.0)) == Budget("seconds", 7.0)
    assert algorithm.resume(model, ckpt, Budget("seconds", 2.0)).spent
    # nothing left: no worker starts, the seconds are those of the earlier sessions
    assert algorithm.learn(model, Budget("seconds", 0.0), resumed=True) == 3.0
    assert algorithm.provenance(model, 1, True) == {
        "a3c": {
            "n_workers": 1,
            "envs_per_worker": 1,
            "updates_per_worker": [8],
            "env_steps_per_worker": [40],
            "resumed": True,
        }
    }
    with pytest.raises(MissingFileError, match=r"A3C checkpoint .* not found"):
        algorithm.resume(model, tmp_path / "none.zip", Budget("steps", 100))
