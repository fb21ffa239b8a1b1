"""AtariARI's RAM labels of ALE Breakout, Pong and Boxing, checked against independent evidence.

Positions are checked against the screen: the RGB frame (native 210 x 160, no resize) is
searched for the object's colour and its pixel position must sit at a fixed offset from the
label over a few hundred steps (a RAM byte that merely correlates would not). Scores are
checked against the game's reward, Breakout's wall against the reward events, and the labels
against themselves (same seed, same labels; get_factors, the infos and ``ale.getRAM()`` agree).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from envs.atari import (
    ANNOTATED_IDS,
    NATIVE_SIZE,
    RAM_ANNOTATIONS,
    check_annotated,
    label_names,
    make_atari_env,
    ram_labels,
)
from envs.errors import ReprlError
from envs.exploration import collect
from envs.gray import rgb_to_gray

Policy = Callable[[dict[str, int], np.random.Generator], int]


def _random(n: int) -> Policy:
    return lambda labels, rng: int(rng.integers(n))


def _breakout_tracker(labels: dict[str, int], rng: np.random.Generator) -> int:
    """Keeps the paddle under the ball (to reach the upper rows), serving now and then."""
    target = labels["ball_x"] - 2 + int(rng.integers(-6, 7))  # paddle left + 47 = ball + 49 - 8
    if rng.random() < 0.1:
        return 1  # FIRE
    return 2 if labels["player_x"] < target - 2 else 3 if labels["player_x"] > target + 2 else 0


def _pong_tracker(labels: dict[str, int], rng: np.random.Generator) -> int:
    """Moves the paddle towards the ball's height (RIGHT is up, LEFT down), to win points."""
    if rng.random() < 0.2:
        return int(rng.integers(6))
    centre = labels["player_y"] - 6  # the paddle's middle, in ball_y units
    return 3 if labels["ball_y"] > centre + 3 else 2 if labels["ball_y"] < centre - 3 else 0


def rollout(env_id: str, steps: int, policy: Policy, seed: int = 0):
    """One env, sticky actions off, native RGB frames.

    Returns:
        frames ``(T, 210, 160, 3)``, labels name -> ``(T,)`` (those of each frame), rewards
        ``(T,)`` and dones ``(T,)`` (of the action taken on each frame), and the venv.
    """
    venv = envs.make_vec(
        env_id,
        1,
        seed=seed,
        ram_labels=True,
        obs_size=NATIVE_SIZE,
        repeat_action_probability=0.0,
    )
    obs = venv.reset()
    rng = np.random.default_rng(seed)
    frames, labels, rewards, dones = [], [], [], []
    for _ in range(steps):
        now = {k: int(v[0]) for k, v in venv.get_factors().items()}
        frames.append(obs[0])
        labels.append(now)
        obs, r, d, _ = venv.step(np.array([policy(now, rng)]))
        rewards.append(float(r[0]))
        dones.append(bool(d[0]))
    columns = {k: np.array([lab[k] for lab in labels]) for k in labels[0]}
    return np.stack(frames), columns, np.array(rewards), np.array(dones), venv


def boxes(frames: np.ndarray, colour: tuple[int, int, int], rows: tuple[int, int], cols=(0, 160)):
    """Bounding box ``(left, right, top, bottom)`` of ``colour`` in each frame, within the rows
    and columns given; NaN where the colour is absent. Returns a ``(T, 4)`` float array."""
    mask = np.all(frames == np.array(colour, np.uint8), axis=-1)
    mask[:, : rows[0]] = mask[:, rows[1] :] = False
    mask[:, :, : cols[0]] = mask[:, :, cols[1] :] = False
    out = np.full((len(frames), 4), np.nan)
    for t, m in enumerate(mask):
        ys, xs = np.nonzero(m)
        if len(ys):
            out[t] = xs.min(), xs.max(), ys.min(), ys.max()
    return out


def assert_offset(pixels: np.ndarray, label: np.ndarray, offsets: set[int], share: float = 0.97):
    """The pixel position is ``label + offset`` with an offset in ``offsets`` on at least
    ``share`` of the frames where the object is seen, over a label that really moves."""
    seen = ~np.isnan(pixels)
    assert seen.sum() >= 100, f"object seen in only {seen.sum()} frames"
    assert np.unique(label[seen]).size >= 15, "the label hardly moved: a weak check"
    diff = pixels[seen].astype(np.int64) - label[seen]
    ok = np.isin(diff, list(offsets)).mean()
    assert ok >= share, f"offset in {offsets} on {ok:.1%} of frames; offsets seen: {diff[:40]}"


def bcd(x: np.ndarray) -> np.ndarray:
    """Binary-coded decimal byte -> its value (0x59 -> 59)."""
    return (x >> 4) * 10 + (x & 15)


def steps_within_episodes(dones: np.ndarray) -> np.ndarray:
    """Indices t whose next frame t + 1 is in the same episode."""
    return np.flatnonzero(~dones[:-1])


# -- the tables ------------------------------------------------------------------------------


def test_tables_are_atariari_names_and_addresses() -> None:
    assert ANNOTATED_IDS == ("ALE/Boxing-v5", "ALE/Breakout-v5", "ALE/Pong-v5")
    bitmap = tuple(f"block_bit_map_{i}" for i in range(30))
    assert label_names("ALE/Breakout-v5") == (
        "ball_x",
        "ball_y",
        "player_x",
        "blocks_hit_count",
        "score",
        *bitmap,
    )
    assert RAM_ANNOTATIONS["breakout"]["block_bit_map_29"] == 29
    assert RAM_ANNOTATIONS["pong"] == {
        "player_y": 51,
        "player_x": 46,
        "enemy_y": 50,
        "enemy_x": 45,
        "ball_x": 49,
        "ball_y": 54,
        "enemy_score": 13,
        "player_score": 14,
    }
    assert label_names("boxing") == (
        "player_x",
        "player_y",
        "enemy_x",
        "enemy_y",
        "enemy_score",
        "clock",
        "player_score",
    )
    ram = np.arange(256, dtype=np.uint8)[:128][None].repeat(3, 0)
    got = ram_labels("ALE/Pong-v5", ram)
    assert got["ball_y"].tolist() == [54] * 3 and got["ball_y"].dtype == np.int64


@pytest.mark.parametrize(
    "ask",
    [
        lambda: check_annotated("ALE/SpaceInvaders-v5"),
        lambda: ram_labels("spaceinvaders", np.zeros(128, np.uint8)),
        lambda: label_names("ALE/MontezumaRevenge-v5"),
    ],
)
def test_a_game_without_annotations_is_refused_by_name(ask) -> None:
    with pytest.raises(ReprlError) as e:
        ask()
    msg = str(e.value)
    assert "RAM labels were asked of" in msg and "has no RAM annotations" in msg
    assert "SpaceInvaders" in msg or "spaceinvaders" in msg or "Montezuma" in msg
    assert "ALE/Boxing-v5, ALE/Breakout-v5, ALE/Pong-v5" in msg


def test_labels_need_the_gymnasium_backend_and_a_bool() -> None:
    with pytest.raises(ReprlError, match="ram_labels=True needs the gymnasium backend"):
        envs.make_vec("ALE/Pong-v5", 1, ram_labels=True, backend="ale_vector")
    with pytest.raises(ReprlError, match="ram_labels must be True or False"):
        envs.make_vec("ALE/Pong-v5", 1, ram_labels="yes")
    assert envs.make_vec("ALE/Pong-v5", 1, ram_labels=True).backend == "gymnasium"
    plain = envs.make_vec("ALE/Pong-v5", 1)
    assert plain.backend == "ale_vector" and plain.ram_factors == ()
    plain.reset()
    assert plain.get_factors() == {}
    plain.close()


# -- the ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "n", "best"), [("ALE/Pong-v5", 6, 21.0), ("ALE/Boxing-v5", 18, 100.0)]
)
def test_new_ids_through_make_vec_gym_make_and_the_family(env_id: str, n: int, best: float):
    assert env_id in envs.known_ids()
    assert envs.best_return(env_id) == best
    meanings = envs.action_meanings(env_id)
    assert len(meanings) == n and meanings[:2] == ("NOOP", "FIRE")
    single = gym.make(env_id)
    assert list(single.unwrapped.get_action_meanings()) == list(meanings)
    single.close()
    for backend in ("ale_vector", "gymnasium"):
        venv = envs.make_vec(env_id, 2, seed=0, backend=backend)
        assert venv.reset().shape == (2, 64, 64, 3) and venv.action_space.n == n
        assert venv.env_method("get_action_meanings") == [list(meanings)] * 2
        venv.step(np.full(2, n - 1))
        venv.close()
    assert envs.observation_shape(env_id, obs_size=NATIVE_SIZE, grayscale=True) == (210, 160, 1)
    with pytest.raises(ReprlError, match="invalid mode 9"):
        envs.make_vec(env_id, 1, mode=9)


# -- positions against the screen ------------------------------------------------------------


def test_breakout_positions_follow_the_ball_and_paddle_on_screen() -> None:
    frames, lab, *_ = rollout("ALE/Breakout-v5", 600, _breakout_tracker)
    red = (200, 72, 72)  # ball, paddle and the top row of bricks share it
    ball = boxes(frames, red, (94, 189))  # between the wall (rows 57-92) and the paddle
    assert_offset(ball[:, 0], lab["ball_x"], {-49})
    assert_offset(ball[:, 2], lab["ball_y"], {9})
    paddle = boxes(frames, red, (189, 194))  # (a ball passing these rows may come first)
    assert_offset(paddle[:, 0], lab["player_x"], {-47})


def test_pong_positions_follow_the_ball_and_paddles_on_screen() -> None:
    frames, lab, *_ = rollout("ALE/Pong-v5", 600, _random(6))
    play = (34, 194)  # between the top and bottom walls
    ball = boxes(frames, (236, 236, 236), play)
    assert_offset(ball[:, 0], lab["ball_x"], {-49})
    assert_offset(ball[:, 2], lab["ball_y"], {-15, -14})
    for who, colour, dy, dx in (
        ("player", (92, 186, 92), {-14, -13}, -48),  # the agent: right, green
        ("enemy", (213, 130, 74), {-15}, -48),  # the computer: left, orange
    ):
        box = boxes(frames, colour, play)
        whole = box[:, 3] - box[:, 2] == 15  # 16 px high: not cut by a wall
        assert_offset(np.where(whole, box[:, 2], np.nan), lab[f"{who}_y"], dy)
        # x never changes: a fixed column
        assert np.unique(lab[f"{who}_x"]).size == 1
        seen = ~np.isnan(box[:, 0])
        assert set((box[seen, 0] - lab[f"{who}_x"][seen]).astype(int)) == {dx}


def test_boxing_positions_follow_the_boxers_on_screen() -> None:
    frames, lab, *_ = rollout("ALE/Boxing-v5", 800, _random(18))
    ring = ((36, 178), (28, 132))  # inside the ropes (the black frame border left out)
    for who, colour in (("player", (214, 214, 214)), ("enemy", (0, 0, 0))):
        box = boxes(frames, colour, *ring)
        guard = box[:, 1] - box[:, 0] == 13  # 14 px wide: arms in, no punch reaching out
        assert_offset(np.where(guard, box[:, 0], np.nan), lab[f"{who}_x"], {3, 5})
        assert_offset(box[:, 2], lab[f"{who}_y"], {37, 38, 39}, share=0.95)


# -- scores against rewards ------------------------------------------------------------------


def test_breakout_score_bytes_and_wall_against_rewards() -> None:
    _, lab, rewards, dones, venv = rollout("ALE/Breakout-v5", 1500, _breakout_tracker)
    t = steps_within_episodes(dones)
    hit = rewards[t] > 0
    assert hit.sum() >= 10 and set(rewards[t][hit]) >= {1.0, 4.0}, "too few bricks to judge"
    # AtariARI's "score" (84) changes exactly on the steps with a reward
    assert np.array_equal(lab["score"][t + 1] != lab["score"][t], hit)
    # AtariARI's "blocks_hit_count" (77) is the score's low byte in BCD (ALE reads 76/77)
    episode_return = np.zeros(len(rewards))
    for i in range(1, len(rewards)):
        episode_return[i] = 0 if dones[i - 1] else episode_return[i - 1] + rewards[i - 1]
    assert np.array_equal(bcd(lab["blocks_hit_count"]), episode_return.astype(int) % 100)
    # the wall: a brick is 2 bits of the bit map; no bit goes without a reward
    bits = sum(
        np.unpackbits(lab[f"block_bit_map_{i}"][:, None].astype(np.uint8), axis=1).sum(1)
        for i in range(30)
    )
    drop = bits[t] - bits[t + 1]
    assert np.all(drop[~hit] == 0) and np.all(np.isin(drop[hit], [0, 2, 4]))
    assert (drop[hit] > 0).mean() > 0.6  # most bricks sit in AtariARI's 30 bytes
    venv.close()


def test_breakout_wall_bytes_lose_two_bits_per_brick_in_the_full_ram() -> None:
    """AtariARI's 30 bytes plus the 6 it leaves out (30-35) hold every brick, 2 bits each."""
    env = make_atari_env("ALE/Breakout-v5", repeat_action_probability=0.0, ram_labels=True)
    _, info = env.reset(seed=0)
    ale = env.unwrapped.ale
    rng = np.random.default_rng(0)
    bits = int(np.unpackbits(ale.getRAM()[:36]).sum())
    rewarded = 0
    for _ in range(1500):
        _, r, term, trunc, info = env.step(_breakout_tracker(info, rng))
        if term or trunc:
            break
        now = int(np.unpackbits(ale.getRAM()[:36]).sum())
        assert (bits - now) in ((0,) if r == 0 else (2, 4)), (r, bits, now)
        rewarded += r > 0
        bits = now
    assert rewarded >= 10
    env.close()


def test_pong_scores_count_the_points() -> None:
    _, lab, rewards, dones, venv = rollout("ALE/Pong-v5", 1500, _pong_tracker)
    t = steps_within_episodes(dones)
    r = rewards[t]
    assert (r > 0).sum() >= 1 and (r < 0).sum() >= 3, "no points to judge"
    assert np.array_equal(lab["player_score"][t + 1] - lab["player_score"][t], (r > 0) * 1)
    assert np.array_equal(lab["enemy_score"][t + 1] - lab["enemy_score"][t], (r < 0) * 1)
    venv.close()


def test_boxing_scores_and_clock() -> None:
    _, lab, rewards, dones, venv = rollout("ALE/Boxing-v5", 1000, _random(18))
    t = steps_within_episodes(dones)
    gained = bcd(lab["player_score"][t + 1]) - bcd(lab["player_score"][t])
    lost = bcd(lab["enemy_score"][t + 1]) - bcd(lab["enemy_score"][t])
    assert (rewards[t] > 0).sum() >= 3 and (rewards[t] < 0).sum() >= 3
    assert np.array_equal(gained - lost, rewards[t].astype(int))
    assert np.all(gained >= 0) and np.all(lost >= 0)
    # the clock: seconds of the countdown (BCD), one tick down at a time, wrapping 0 -> 59
    seconds = bcd(lab["clock"])
    tick = (seconds[t] - seconds[t + 1]) % 60
    assert set(tick) == {0, 1} and seconds.max() <= 59
    venv.close()


# -- determinism and the three ways to read the labels --------------------------------------


@pytest.mark.parametrize("env_id", ANNOTATED_IDS)
def test_same_seed_same_labels(env_id: str) -> None:
    def run(seed: int) -> list[dict[str, np.ndarray]]:
        venv = envs.make_vec(env_id, 2, seed=seed, ram_labels=True)  # sticky actions on
        venv.reset()
        actions = np.random.default_rng(5).integers(0, venv.action_space.n, (150, 2))
        out = []
        for a in actions:
            out.append(venv.get_factors())
            venv.step(a)
        venv.close()
        return out

    a, b, c = run(3), run(3), run(4)
    assert all(x.keys() == y.keys() for x, y in zip(a, b))
    assert all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)
    assert any(not np.array_equal(x[k], y[k]) for x, y in zip(a, c) for k in x)


@pytest.mark.parametrize("env_id", ANNOTATED_IDS)
def test_get_factors_infos_and_ram_agree(env_id: str) -> None:
    venv = envs.make_vec(
        env_id, 2, seed=1, ram_labels=True, max_episode_steps=6, repeat_action_probability=0.0
    )
    names = label_names(env_id)
    assert venv.ram_factors == names and venv.get_attr("ram_labels") == [True, True]
    venv.reset()
    first = venv.get_factors()
    assert list(first) == list(names)
    for i in range(2):
        assert {k: venv.reset_infos[i][k] for k in names} == {k: int(first[k][i]) for k in names}
    single = make_atari_env(env_id, repeat_action_probability=0.0, ram_labels=True)
    single.reset(seed=1)
    for step in range(6):
        _, _, dones, infos = venv.step(np.zeros(2, np.int64))
        _, _, _, _, info = single.step(0)
        now = venv.get_factors()
        ram = np.stack([e.unwrapped.ale.getRAM() for e in venv.envs])
        direct = ram_labels(env_id, ram)
        for k in names:
            assert now[k].dtype == np.int64 and 0 <= now[k].min() <= now[k].max() <= 255
            assert np.array_equal(now[k], direct[k])
            assert [inf[k] for inf in infos] == now[k].tolist()  # the infos: the new frames
        if step < 5:
            assert not dones.any()
    assert dones.all()  # truncated after 6 steps: the last frame's labels are terminal_factors
    assert infos[0]["terminal_factors"] == {k: info[k] for k in names}
    single.close()
    venv.close()


# -- AtariARI's frames and the dataset -------------------------------------------------------


def test_native_grayscale_frames_are_the_luma_of_the_rgb_screen() -> None:
    kw = {"seed": 2, "obs_size": NATIVE_SIZE, "repeat_action_probability": 0.0}
    gray = envs.make_vec("ALE/Pong-v5", 2, grayscale=True, **kw)
    rgb = envs.make_vec("ALE/Pong-v5", 2, **kw)
    assert gray.observation_space.shape == (210, 160, 1)
    g, c = gray.reset(), rgb.reset()
    for a in np.random.default_rng(0).integers(0, 6, (20, 2)):
        g, c = gray.step(a)[0], rgb.step(a)[0]
    assert g.shape == (2, 210, 160, 1) and g.dtype == np.uint8 and c.shape == (2, 210, 160, 3)
    assert np.array_equal(g, rgb_to_gray(torch.from_numpy(c)).numpy())
    gray.close()
    rgb.close()


def test_collect_records_the_ram_labels_as_discrete_ram_bytes(tmp_path) -> None:
    kw = {"ram_labels": True, "obs_size": NATIVE_SIZE, "grayscale": True}
    ds = collect("ALE/Pong-v5", 96, tmp_path / "pong.h5", num_envs=2, env_kwargs=kw, progress=False)
    names = label_names("ALE/Pong-v5")
    assert ds.info.frame_shape == (210, 160, 1) and len(ds) == 96
    assert ds.info.factor_names == names
    assert set(names) <= set(ds.info.discrete_factors)
    assert ds.info.attrs["ram_factors"] == list(names)
    f = ds.file
    ball_y = f["factors/ball_y"][:]
    assert ball_y.dtype == np.int64 and 0 <= ball_y.min() and ball_y.max() <= 255
    assert np.unique(ball_y).size > 5
    frames = f["frames"][:]
    assert frames.dtype == np.uint8 and frames.shape == (96, 210, 160, 1)
    ds.close()


@pytest.mark.parametrize("env_id", ["ALE/Pong-v5", "ALE/Boxing-v5"])
def test_single_labelled_env_passes_checkers(env_id: str) -> None:
    from gymnasium.utils.env_checker import check_env as gymnasium_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make_atari_env(env_id, ram_labels=True, obs_size=NATIVE_SIZE, render_mode="rgb_array")
    assert env.observation_space.shape == (210, 160, 3)
    with pytest.warns(UserWarning, match="different from the unwrapped"):
        gymnasium_check_env(env)
    sb3_check_env(env)
    _, info = env.reset(seed=0)
    assert set(label_names(env_id)) <= set(info)
    env.close()
