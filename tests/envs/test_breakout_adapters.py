"""The batched Breakout through its SB3, gymnasium-vector and single-env adapters."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import VecEnv

import envs
from envs import breakout as B
from envs.breakout import BreakoutBatch
from envs.errors import ReprlError


@pytest.mark.parametrize("env_id", list(envs.BREAKOUT_IDS))
def test_check_env_passes(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    gym_check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(env.unwrapped, warn=True)
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert set(envs.FACTOR_NAMES) <= set(info)


@pytest.mark.parametrize("env_id", list(envs.BREAKOUT_IDS))
def test_make_vec_gives_an_sb3_vecenv(env_id: str) -> None:
    venv = envs.make_vec(env_id, 4, seed=0)
    assert isinstance(venv, VecEnv) and venv.num_envs == 4
    obs = venv.reset()
    assert obs.shape == (4, 64, 64, 3) and obs.dtype == np.uint8
    assert venv.observation_space.contains(obs[0])
    obs, rew, done, infos = venv.step(np.array([0, 1, 2, 0]))
    assert rew.dtype == np.float32 and done.dtype == bool and len(infos) == 4
    assert set(envs.FACTOR_NAMES) <= set(infos[0])
    assert len(venv.reset_infos) == 4


def test_sb3_autoreset_semantics_on_truncation() -> None:
    venv = envs.make_vec("reprl/BreakoutJuggling-v0", 3, seed=1, max_episode_steps=5)
    venv.reset()
    for _ in range(4):
        _, _, done, _ = venv.step(np.zeros(3, dtype=np.int64))
        assert not done.any()
    _obs, _, done, infos = venv.step(np.zeros(3, dtype=np.int64))
    assert done.all()
    for _i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        term = info["terminal_observation"]
        assert term.shape == (64, 64, 3) and term.dtype == np.uint8
        assert set(envs.FACTOR_NAMES) <= set(info["terminal_factors"])
    # the returned obs is the new episode's first frame, matching the factors beside it
    f = venv.get_factors()
    assert (f["lives"] == -1).all() and f["ball_x"].shape == (3, 3)


def test_sb3_termination_is_not_truncation() -> None:
    venv = envs.make_vec("reprl/BreakoutStandard-v0", 16, seed=2, num_lives=1)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(2000):
        _, rew, done, infos = venv.step(rng.integers(0, 3, 16))
        if done.any():
            i = int(np.flatnonzero(done)[0])
            assert infos[i]["TimeLimit.truncated"] is False
            assert rew[i] == -1.0  # the last life was lost
            assert infos[i]["terminal_factors"]["lives"] == 0
            assert infos[i]["lives"] == 1  # the new episode
            return
    pytest.fail("no episode ended in 2000 random steps with one life")


def run_batch(core: BreakoutBatch, actions: np.ndarray) -> list:
    trace = [core.reset().numpy().copy()]
    for a in actions:
        r = core.step(a)
        factors = {k: v.numpy().copy() for k, v in core.factors().items()}
        arrays = (r.obs, r.reward, r.terminated, r.truncated)
        trace.append((*(a.numpy().copy() for a in arrays), factors))
    return trace


@pytest.mark.parametrize("variant", B.VARIANTS)
def test_batch_equals_independent_single_games(variant: str) -> None:
    n, steps = 4, 400
    rng = np.random.default_rng(7)
    actions = rng.integers(0, 3, (steps, n))
    kw = {"max_episode_steps": 120, "num_lives": 2}  # several episodes, both ways of ending
    batch = run_batch(BreakoutBatch(n, variant, seed=10, **kw), actions)
    ends = 0
    for i in range(n):
        single = run_batch(BreakoutBatch(1, variant, seed=10 + i, **kw), actions[:, i : i + 1])
        np.testing.assert_array_equal(batch[0][i], single[0][0])
        for t in range(1, steps + 1):
            for a, b in zip(batch[t][:4], single[t][:4]):
                np.testing.assert_array_equal(a[i], b[0], err_msg=f"game {i} step {t}")
            for k in batch[t][4]:
                np.testing.assert_array_equal(batch[t][4][k][i], single[t][4][k][0])
            ends += int(single[t][2][0] or single[t][3][0])
    assert ends > n  # the comparison crossed episode boundaries


def test_single_gym_env_follows_game_0_of_a_batch_across_episodes() -> None:
    env = gym.make("reprl/BreakoutMiddleWall-v0", max_episode_steps=50)
    venv = envs.make_vec("reprl/BreakoutMiddleWall-v0", 2, seed=3, max_episode_steps=50)
    obs_v = venv.reset()
    obs_s, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs_v[0], obs_s)
    rng = np.random.default_rng(0)
    for t in range(160):
        a = rng.integers(0, 3, 2)
        obs_v, r_v, d_v, infos = venv.step(a)
        obs_s, r_s, term, trunc, _ = env.step(int(a[0]))
        assert r_v[0] == r_s and d_v[0] == (term or trunc)
        if term or trunc:
            np.testing.assert_array_equal(infos[0]["terminal_observation"], obs_s)
            obs_s, _ = env.reset()
        np.testing.assert_array_equal(obs_v[0], obs_s, err_msg=f"step {t}")


@pytest.mark.parametrize("mode", ["SameStep", gym.vector.AutoresetMode.SAME_STEP])
def test_gymnasium_vector_env_same_step(mode) -> None:
    venv = gym.make_vec(
        "reprl/BreakoutRandomTarget-v0",
        3,
        vectorization_mode="vector_entry_point",
        max_episode_steps=4,
        autoreset_mode=mode,
    )
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    obs, info = venv.reset(seed=0)
    assert obs.shape == (3, 64, 64, 3) and venv.observation_space.contains(obs)
    assert info["target_x"].shape == (3,) and info["_target_x"].all()
    for _ in range(3):
        venv.step(venv.action_space.sample())
    obs, _rew, term, trunc, info = venv.step(np.array([0, 1, 2]))
    assert trunc.all() and not term.any()
    assert info["_final_obs"].all() and info["final_obs"][1].shape == (64, 64, 3)
    assert "target_x" in info["final_info"][2]


@pytest.mark.parametrize("stack", [{}, {"frame_stack": 3, "grayscale": True}])
def test_gymnasium_vector_env_next_step_follows_gymnasium(stack: dict) -> None:
    """NEXT_STEP (the default): game i of the vector env equals a single env driven the way
    gymnasium documents it: after a done, the next step returns the reset observation with
    reward 0 and ignores that action."""
    n, steps, seed = 3, 40, 8
    kw = {"max_episode_steps": 6, "num_lives": 1, **stack}
    venv = gym.make_vec(
        "reprl/BreakoutStandard-v0", n, vectorization_mode="vector_entry_point", **kw
    )
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    singles = [gym.make("reprl/BreakoutStandard-v0", **kw) for _ in range(n)]
    obs, info = venv.reset(seed=seed)
    for i, env in enumerate(singles):
        o, inf = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs[i], o)
        assert info["paddle_x"][i] == inf["paddle_x"]
    actions = np.random.default_rng(0).integers(0, 3, (steps, n))
    needs_reset = np.zeros(n, dtype=bool)
    resets = 0
    for t in range(steps):
        obs, rew, term, trunc, info = venv.step(actions[t])
        for i, env in enumerate(singles):
            if needs_reset[i]:
                o, inf = env.reset()
                r, te, tr = 0.0, False, False
                resets += 1
            else:
                o, r, te, tr, inf = env.step(int(actions[t, i]))
            np.testing.assert_array_equal(obs[i], o, err_msg=f"step {t} env {i}")
            assert (rew[i], term[i], trunc[i]) == (r, te, tr)
            assert info["ball_x"][i].tolist() == list(inf["ball_x"])
            needs_reset[i] = te or tr
    assert resets >= n


def test_gymnasium_vector_wrappers_accept_the_vector_env() -> None:
    kw = {"vectorization_mode": "vector_entry_point", "max_episode_steps": 4}
    raw = gym.make_vec("reprl/BreakoutJuggling-v0", 2, **kw)
    wrapped = gym.wrappers.vector.RecordEpisodeStatistics(
        gym.wrappers.vector.FlattenObservation(
            gym.wrappers.vector.GrayscaleObservation(
                gym.make_vec("reprl/BreakoutJuggling-v0", 2, **kw)
            )
        )
    )
    assert wrapped.single_observation_space.shape == (64 * 64,)
    weights = np.array([0.2125, 0.7154, 0.0721])  # gymnasium's own grayscale formula

    def gray(o: np.ndarray) -> np.ndarray:
        return np.sum(o * weights, axis=-1).astype(np.uint8).reshape(len(o), -1)

    o_raw, _ = raw.reset(seed=3)
    o_wr, _ = wrapped.reset(seed=3)
    np.testing.assert_array_equal(o_wr, gray(o_raw))
    episodes = 0
    for t in range(10):  # boundaries after steps 4 and 9
        a = np.array([t % 3, (t + 1) % 3])
        o_raw, _, _, trunc_raw, _ = raw.step(a)
        o_wr, _, _, trunc_wr, info = wrapped.step(a)
        np.testing.assert_array_equal(o_wr, gray(o_raw), err_msg=f"step {t}")
        np.testing.assert_array_equal(trunc_wr, trunc_raw)
        if "episode" in info:
            assert (info["episode"]["l"][info["_episode"]] == 4).all()
            episodes += int(info["_episode"].sum())
    assert episodes == 4


def test_bad_autoreset_mode_is_refused() -> None:
    with pytest.raises(ReprlError, match="autoreset_mode: expected one of"):
        gym.make_vec(
            "reprl/BreakoutStandard-v0",
            2,
            vectorization_mode="vector_entry_point",
            autoreset_mode=gym.vector.AutoresetMode.DISABLED,
        )


@pytest.mark.parametrize("obs_size", [(64, 64), (84, 84), (117, 94), (32, 48)])
@pytest.mark.parametrize("variant", ["standard", "juggling", "random_target", "offset_paddle"])
def test_rendering_agrees_with_factors(obs_size: tuple[int, int], variant: str) -> None:
    n = 16
    g = BreakoutBatch(n, variant, seed=4, obs_size=obs_size)
    g.reset()
    oh, ow = obs_size
    games = np.arange(n)[:, None]
    ball_rgb = np.array(B.BALL_COLOR, dtype=np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(40):
        frames = g.step(rng.integers(0, 3, n)).obs.numpy()
        f = {k: v.numpy() for k, v in g.factors().items()}
        by, bx = f["ball_y"] * oh // B.HEIGHT, f["ball_x"] * ow // B.WIDTH  # (n, balls)
        assert (frames[games, by, bx] == ball_rgb).all()
        py, px = f["paddle_y"] * oh // B.HEIGHT, f["paddle_x"] * ow // B.WIDTH
        assert (frames[np.arange(n), py, px] == np.array(B.PADDLE_COLOR, dtype=np.uint8)).all()
        # below the bricks/target and outside the paddle's rows, only balls have that colour
        top = int(B.BRICK_Y1 * oh / B.HEIGHT) + 1
        mask = (frames == ball_rgb).all(-1)
        mask[:, :top] = False
        rows = np.arange(oh)[None, :]
        pbox_h = max(1, int(B.PADDLE_H * oh / B.HEIGHT))
        mask &= ~((rows >= py[:, None]) & (rows < py[:, None] + pbox_h))[:, :, None]
        assert (mask.sum((1, 2)) <= g.num_balls).all()


def test_rendering_native_size_is_pixel_exact() -> None:
    g = BreakoutBatch(1, "middle_wall", seed=0, obs_size=(B.HEIGHT, B.WIDTH))
    frame = g.reset()[0]
    wall = torch.tensor(B.WALL_COLOR, dtype=torch.uint8)
    assert torch.equal(frame[60, 2], wall) and not torch.equal(frame[60, 3], wall)
    assert torch.equal(frame[2, 50], wall) and not torch.equal(frame[3, 50], wall)
    assert torch.equal(frame[29, 23], wall) and torch.equal(frame[31, 70], wall)
    assert not torch.equal(frame[32, 40], wall) and not torch.equal(frame[30, 22], wall)
    # brick row 0 at y 5..8, colour of the classic top row
    assert frame[5, 3].tolist() == list(B.BRICK_COLORS[0])
    assert frame[4, 3].tolist() == list(B.BACKGROUND)


def test_same_seed_same_trajectory_different_seeds_differ() -> None:
    actions = np.random.default_rng(0).integers(0, 3, (200, 8))

    def trace(seed: int) -> np.ndarray:
        venv = envs.make_vec("reprl/BreakoutOffsetPaddle-v0", 8, seed=seed)
        frames = [venv.reset()]
        frames += [venv.step(a)[0] for a in actions]
        return np.stack(frames)

    a, b, c = trace(5), trace(5), trace(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_vecenv_seed_method_reseeds_on_reset() -> None:
    venv = envs.make_vec("reprl/BreakoutStandard-v0", 2)
    venv.seed(42)
    first = venv.reset()
    venv.step(np.array([1, 2]))
    venv.seed(42)
    np.testing.assert_array_equal(venv.reset(), first)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"variant": "sideways"}, "unknown Breakout variant 'sideways'; expected one of"),
        ({"num_envs": 0}, "num_envs must be a positive integer, got 0"),
        ({"num_envs": -3}, "num_envs must be a positive integer, got -3"),
        ({"obs_size": (8, 8)}, r"obs_size must be \(height, width\)"),
        ({"wall_location": "top"}, "unknown wall_location 'top'"),
        ({"num_lives": 0}, "num_lives must be >= 1"),
    ],
)
def test_bad_construction_is_refused(kwargs: dict, match: str) -> None:
    kw = {"num_envs": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        BreakoutBatch(**kw)


def test_unknown_env_id_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown env id 'reprl/Pong-v0'; expected one of"):
        envs.make_vec("reprl/Pong-v0", 2)
    with pytest.raises(ValueError, match="fixes"):
        envs.make_vec("reprl/BreakoutStandard-v0", 2, variant="juggling")


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.array([0, 3]), r"expected values in \[0, 3\).*got \[3\] at env indices \[1\]"),
        (np.array([-1, 0]), r"expected values in \[0, 3\).*got \[-1\]"),
        (np.array([0, 1, 2]), r"expected an action batch of shape \(2,\), got \(3,\)"),
        (np.array([[0, 1], [1, 0]]), r"shape \(2,\), got \(2, 2\)"),
        (np.array([0.5, 1.0]), r"expected integers in \[0, 3\)"),
    ],
)
def test_bad_actions_are_refused_before_any_state_changes(actions, match: str) -> None:
    venv = envs.make_vec("reprl/BreakoutStandard-v0", 2, seed=0)
    venv.reset()
    before = venv.get_factors()
    with pytest.raises(ValueError, match=match):
        venv.step(actions)
    after = venv.get_factors()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    venv.step(np.array([1, 2]))  # still usable


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    actions = np.random.default_rng(0).integers(0, 3, (300, 64))
    traces = []
    for device in ("cpu", "cuda"):
        core = BreakoutBatch(64, "random_target", seed=9, device=device)
        frames = [core.reset().cpu()]
        frames += [core.step(torch.as_tensor(a)).obs.cpu() for a in actions]
        traces.append(torch.stack(frames))
    assert torch.equal(*traces)
