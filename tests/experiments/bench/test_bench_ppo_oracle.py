"""bench_ppo_oracle: the oracle sees the game's true state, and its settings parse."""

import numpy as np
import pytest
import torch

import envs
from envs.breakout.geometry import HEIGHT, WIDTH
from experiments.bench.bench_ppo_oracle import ENV_ID, ENV_KWARGS, TrueState, _settings, train


def test_true_state_is_the_factors_over_the_court() -> None:
    venv = TrueState(envs.make_vec(ENV_ID, 4, seed=3, info_factors=False, **ENV_KWARGS))
    obs = venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(300):
        f = venv.venv.get_factors()
        want = np.stack(
            [f["paddle_x"] / WIDTH, f["ball_x"][:, 0] / WIDTH, f["ball_y"][:, 0] / HEIGHT], -1
        )
        np.testing.assert_allclose(obs, want, rtol=1e-6)
        assert obs.dtype == np.float32 and venv.observation_space.contains(obs[0])
        obs, _, done, infos = venv.step(rng.integers(0, 3, 4))
        for i in np.flatnonzero(done):  # the ended episode's last state, not the new one's
            last = infos[i]["terminal_factors"]
            assert infos[i]["terminal_observation"][0] == pytest.approx(last["paddle_x"] / WIDTH)


def test_settings_parse_and_refuse_unknown_keys() -> None:
    assert _settings("calibrated")["n_epochs"] == 10
    s = _settings("num_envs=64,batch_size=128,learning_rate=0.001")
    assert (s["num_envs"], s["batch_size"], s["learning_rate"], s["n_epochs"]) == (64, 128, 1e-3, 4)
    with pytest.raises(SystemExit, match="unknown PPO key 'bogus'"):
        _settings("bogus=1")


def test_a_short_oracle_run_reports_its_steps() -> None:
    threads = torch.get_num_threads()
    try:  # train() runs on one torch thread, as in its worker process
        out = train(("n_steps=32,batch_size=128", "oracle", 0, 1024, None))
    finally:
        torch.set_num_threads(threads)
    assert out["steps"] == 1024 and out["num_envs"] == 16 and len(out["return_by_quarter"]) == 4
