"""The lab worlds as environments: adapters, seeds, batching, movement, rewards, refusals."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import VecEnv

import envs
from envs.errors import ReprlError
from envs.lab import FACTOR_NAMES, LabBatch
from envs.lab.lab import AGENT_RADIUS

FORWARD, BACKWARD, STRAFE_LEFT, STRAFE_RIGHT, TURN_LEFT, TURN_RIGHT = range(6)
FAST = {"num_layouts": 4}  # navigate: few mazes, quick to build

PILLAR = """\
*********
*       *
*       *
*     * *
*       *
*       *
*********"""


def kwargs_of(env_id: str) -> dict:
    return FAST if "Navigate" in env_id else {}


@pytest.mark.parametrize("env_id", list(envs.LAB_IDS))
def test_check_env_passes(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array", **kwargs_of(env_id))
    gym_check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(env.unwrapped, warn=True)
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert set(FACTOR_NAMES) <= set(info)
    assert env.unwrapped.get_action_meanings() == list(envs.action_meanings(env_id))


@pytest.mark.parametrize("env_id", ["reprl/LabCollect-v0", "reprl/LabNavigateTest-v0"])
def test_make_vec_gives_an_sb3_vecenv_with_factors(env_id: str) -> None:
    venv = envs.make_vec(env_id, 3, seed=0, **kwargs_of(env_id))
    assert isinstance(venv, VecEnv) and venv.num_envs == 3
    obs = venv.reset()
    assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8
    obs, rew, done, infos = venv.step(np.array([0, 4, 5]))
    assert rew.dtype == np.float32 and done.dtype == bool and len(infos) == 3
    assert set(FACTOR_NAMES) <= set(infos[0])
    f = venv.get_factors()
    assert all(v.dtype == np.int64 for v in f.values())
    j = 6 if "Collect" in env_id else 1
    assert f["obj_x"].shape == (3, j) and f["agent_x"].shape == (3,)


def test_registry_answers_per_id() -> None:
    assert set(envs.LAB_IDS) <= set(envs.known_ids())
    assert envs.best_return("reprl/LabCollect-v0") == 3.0
    assert envs.best_return("reprl/LabCollectTest-v0", num_good=5) == 5.0
    assert envs.best_return("reprl/LabNavigate-v0") == 1.0
    assert envs.action_meanings("reprl/LabNavigateTrain-v0") == (
        "FORWARD",
        "BACKWARD",
        "STRAFE_LEFT",
        "STRAFE_RIGHT",
        "TURN_LEFT",
        "TURN_RIGHT",
    )
    assert envs.level_range("reprl/LabCollect-v0") is None


def test_split_ids_fix_the_split() -> None:
    train = envs.make_vec("reprl/LabCollectTrain-v0", 64, seed=0)
    test = envs.make_vec("reprl/LabCollectTest-v0", 64, seed=0)

    def pairs(venv: VecEnv) -> set:
        f = venv.get_factors()
        return {tuple(p) for p in np.stack([f["room_look"], f["object_set"]], 1).tolist()}

    train.reset()
    test.reset()
    assert pairs(train) <= set(envs.lab.LAB_DOMAINS.splits["train"])
    assert pairs(test) <= set(envs.lab.LAB_DOMAINS.splits["test"])
    with pytest.raises(ReprlError, match="fixes"):
        envs.make_vec("reprl/LabCollectTest-v0", 2, split="train")


def test_same_seed_same_trajectory_different_seeds_differ() -> None:
    actions = np.random.default_rng(0).integers(0, 6, (80, 4))

    def trace(seed: int) -> np.ndarray:
        venv = envs.make_vec("reprl/LabCollect-v0", 4, seed=seed, max_episode_steps=30)
        return np.stack([venv.reset()] + [venv.step(a)[0] for a in actions])

    a, b, c = trace(5), trace(5), trace(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def run(core: LabBatch, actions: np.ndarray) -> list:
    trace = [core.reset().numpy().copy()]
    for a in actions:
        r = core.step(a)
        factors = {k: v.numpy().copy() for k, v in core.factors().items()}
        arrays = (r.obs, r.reward, r.terminated, r.truncated)
        trace.append((*(x.numpy().copy() for x in arrays), factors))
    return trace


@pytest.mark.parametrize("task", ["collect", "navigate"])
def test_batch_equals_independent_single_worlds(task: str) -> None:
    n, steps = 4, 90
    rng = np.random.default_rng(7)
    actions = rng.choice([0, 0, 0, 2, 3, 4, 5], (steps, n))  # mostly forward: touches things
    small = {"room_size": (3, 3)} if task == "collect" else {**FAST, "maze_size": (7, 7)}
    kw = {"max_episode_steps": 25, **small}  # small worlds: objects and goals get touched
    batch = run(LabBatch(n, task, seed=10, **kw), actions)
    rewards = np.stack([b[1] for b in batch[1:]])
    assert (rewards > 0).any() and (task == "navigate" or (rewards < 0).any())
    ends = 0
    for i in range(n):
        single = run(LabBatch(1, task, seed=10 + i, **kw), actions[:, i : i + 1])
        np.testing.assert_array_equal(batch[0][i], single[0][0])
        for t in range(1, steps + 1):
            for a, b in zip(batch[t][:4], single[t][:4]):
                np.testing.assert_array_equal(a[i], b[0], err_msg=f"world {i} step {t}")
            for k in batch[t][4]:
                np.testing.assert_array_equal(batch[t][4][k][i], single[t][4][k][0])
            ends += int(single[t][2][0] or single[t][3][0])
    assert ends >= 3 * n  # the comparison crossed episode boundaries


def test_single_gym_env_follows_world_0_of_a_batch_across_episodes() -> None:
    env = gym.make("reprl/LabNavigate-v0", max_episode_steps=20, **FAST)
    venv = envs.make_vec("reprl/LabNavigate-v0", 2, seed=3, max_episode_steps=20, **FAST)
    obs_v = venv.reset()
    obs_s, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs_v[0], obs_s)
    rng = np.random.default_rng(0)
    for t in range(50):
        a = rng.integers(0, 6, 2)
        obs_v, r_v, d_v, infos = venv.step(a)
        obs_s, r_s, term, trunc, _ = env.step(int(a[0]))
        assert r_v[0] == r_s and d_v[0] == (term or trunc)
        if term or trunc:
            np.testing.assert_array_equal(infos[0]["terminal_observation"], obs_s)
            obs_s, _ = env.reset()
        np.testing.assert_array_equal(obs_v[0], obs_s, err_msg=f"step {t}")


def test_gymnasium_vector_env_next_step_and_frame_stacking() -> None:
    n, kw = 3, {"max_episode_steps": 5, "frame_stack": 2, "grayscale": True}
    venv = gym.make_vec("reprl/LabCollect-v0", n, vectorization_mode="vector_entry_point", **kw)
    singles = [gym.make("reprl/LabCollect-v0", **kw) for _ in range(n)]
    obs, _ = venv.reset(seed=8)
    assert obs.shape == (n, 64, 64, 2)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=8 + i)[0])
    actions = np.random.default_rng(0).integers(0, 6, (13, n))
    pending = np.zeros(n, dtype=bool)
    for t in range(13):
        obs, rew, term, trunc, _ = venv.step(actions[t])
        for i, env in enumerate(singles):
            if pending[i]:
                o, r, te, tr = env.reset()[0], 0.0, False, False
            else:
                o, r, te, tr, _ = env.step(int(actions[t, i]))
            np.testing.assert_array_equal(obs[i], o, err_msg=f"step {t} env {i}")
            assert (rew[i], term[i], trunc[i]) == (r, te, tr)
            pending[i] = te or tr


# --- movement -----------------------------------------------------------------------------------
def pillar_world(**kw) -> LabBatch:
    g = LabBatch(1, "collect", seed=0, layouts=[PILLAR], num_good=1, num_bad=0, **kw)
    g.reset()
    g.obj_alive[:] = False
    return g


def test_forward_stops_flush_against_a_wall() -> None:
    """From (250, 350) along +x at 25 units a step, the agent's leading edge (x + 20) reaches
    the pillar's face at x = 600 after 13 steps; it stops at 600 - 20 = 580."""
    g = pillar_world()
    g.agent_x[0], g.agent_y[0], g.heading[0] = 250, 350, 0
    xs = []
    for _ in range(16):
        g.step([FORWARD])
        xs.append(int(g.agent_x[0]))
    assert xs == [275, 300, 325, 350, 375, 400, 425, 450, 475, 500, 525, 550, 575, 580, 580, 580]
    assert int(g.agent_y[0]) == 350


def test_actions_move_as_dmlab_does() -> None:
    g = pillar_world()
    g.agent_x[0], g.agent_y[0], g.heading[0] = 350, 250, 0
    g.step([STRAFE_RIGHT])  # yaw 0: right is +y
    assert (int(g.agent_x[0]), int(g.agent_y[0])) == (350, 275)
    g.step([STRAFE_LEFT])
    g.step([BACKWARD])
    assert (int(g.agent_x[0]), int(g.agent_y[0])) == (325, 250)
    for _ in range(9):
        g.step([TURN_RIGHT])
    assert int(g.factors()["agent_yaw"][0]) == 90
    g.step([FORWARD])  # yaw 90: along +y
    assert (int(g.agent_x[0]), int(g.agent_y[0])) == (325, 275)
    g.step([TURN_LEFT])
    assert int(g.factors()["agent_yaw"][0]) == 80
    g.step([FORWARD])  # 25 (cos 80, sin 80) rounded: (4, 25)
    assert (int(g.agent_x[0]), int(g.agent_y[0])) == (329, 300)


def test_the_agent_never_enters_a_wall_cell() -> None:
    n = 16
    g = LabBatch(n, "navigate", seed=0, max_episode_steps=1000, **FAST)
    g.reset()
    walls = [m.walls for m in g.maps]
    rng = np.random.default_rng(1)
    r = AGENT_RADIUS
    start = g.factors()
    moved = np.zeros(n, dtype=bool)
    for _ in range(300):
        g.step(rng.choice([0, 0, 0, 1, 2, 3, 4, 5], n))
        f = {k: v.numpy() for k, v in g.factors().items()}
        for i in range(n):
            x, y, w = int(f["agent_x"][i]), int(f["agent_y"][i]), walls[f["layout"][i]]
            rows = range((y - r) // 100, (y + r - 1) // 100 + 1)
            cols = range((x - r) // 100, (x + r - 1) // 100 + 1)
            assert not any(w[a, b] for a in rows for b in cols), f"world {i} at {(x, y)}"
        moved |= (f["agent_x"] != start["agent_x"].numpy()) | (
            f["agent_y"] != start["agent_y"].numpy()
        )
    assert moved.all()


# --- rewards ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "value"), [(0, 1.0), (1, -1.0)])
def test_touching_an_object_gives_its_reward_once(kind: int, value: float) -> None:
    g = pillar_world()
    g.agent_x[0], g.agent_y[0], g.heading[0] = 150, 150, 0
    g.obj_x[0, 0], g.obj_y[0, 0], g.obj_kind[0, 0] = 350, 150, kind
    g.obj_alive[0, 0] = True
    # centres 200 apart; touching at < 40: after 7 steps (175 -> 25 apart)
    rewards = [float(g.step([FORWARD]).reward[0]) for _ in range(12)]
    assert rewards == [0.0] * 6 + [value] + [0.0] * 5
    assert g.factors()["obj_alive"].tolist() == [[0]]
    for _ in range(4):  # walking back over the spot gives nothing
        assert float(g.step([BACKWARD]).reward[0]) == 0.0


def test_collect_episodes_have_a_fixed_length_and_best_return_is_the_good_objects() -> None:
    g = LabBatch(2, "collect", seed=0, max_episode_steps=7)
    g.reset()
    for t in range(1, 15):
        r = g.step([0, 0])
        assert not r.terminated.any()
        assert bool(r.truncated.all()) == (t % 7 == 0)
    f = g.factors()
    kinds = f["obj_kind"].numpy()
    assert ((kinds == 0).sum(1) == 3).all() and ((kinds == 1).sum(1) == 3).all()
    looks = f["obj_look"].numpy()
    assert (looks[kinds == 0] == np.repeat(f["good_look"].numpy(), 3)).all()


def test_reaching_the_goal_ends_a_navigate_episode_with_reward_1() -> None:
    maze = "*****\n*P G*\n*****"
    g = LabBatch(1, "navigate", seed=0, layouts=[maze])
    g.reset()
    f = g.factors()
    assert (int(f["agent_x"][0]), int(f["obj_x"][0, 0])) == (150, 350)
    while int(g.factors()["agent_yaw"][0]) != 0:  # face +x
        g.step([TURN_RIGHT])
    rewards, ends = [], []
    for _ in range(8):
        r = g.step([FORWARD])
        rewards.append(float(r.reward[0]))
        ends.append(bool(r.terminated[0]))
        if ends[-1]:
            assert r.final_factors["obj_alive"].tolist() == [[0]]
            break
    assert rewards[-1] == 1.0 and sum(rewards) == 1.0 and ends[-1] and not any(ends[:-1])


# --- refusals -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "fly"}, "unknown lab task 'fly'; expected one of"),
        ({"split": "validation"}, "unknown domain split 'validation'; expected one of"),
        ({"num_envs": 0}, "num_envs must be a positive integer"),
        ({"obs_size": (8, 8)}, r"obs_size must be \(height, width\)"),
        ({"turn_degrees": 7}, "turn_degrees: expected an integer in"),
        ({"num_good": 0, "num_bad": 0}, "at least one object"),
        ({"layouts": ["***\n***\n***"]}, "at least one free cell, got none"),
        ({"layouts": ["*** \n* **\n****"]}, "closed by walls"),
        ({"layouts": ["****\n* *\n****"]}, "rectangular"),
        ({"layouts": ["****\n*X *\n****"]}, r"only the characters .* got \['X'\]"),
        ({"layouts": ["*****\n*   *\n*****"]}, "collect needs 7 free cells"),
        ({"task": "navigate", "layouts": ["*****\n*P*G*\n*****"]}, "separate regions"),
        ({"task": "navigate", "layouts": ["****\n*PG*\n****"], "split": "test"}, None),
    ],
)
def test_bad_construction_is_refused(kwargs: dict, match: str | None) -> None:
    kw = {"num_envs": 2, **kwargs}
    if match is None:  # a valid corner case
        LabBatch(**kw).reset()
        return
    with pytest.raises(ReprlError, match=match):
        LabBatch(**kw)


def test_unknown_split_through_make_vec_is_refused() -> None:
    with pytest.raises(ReprlError, match="unknown domain split 'dev'"):
        envs.make_vec("reprl/LabCollect-v0", 2, split="dev")
    with pytest.raises(ReprlError, match="unknown env id 'reprl/LabFly-v0'"):
        envs.make_vec("reprl/LabFly-v0", 2)


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.array([0, 6]), r"expected values in \[0, 6\).*got \[6\] at env indices \[1\]"),
        (np.array([-1, 0]), r"expected values in \[0, 6\).*got \[-1\]"),
        (np.array([0, 1, 2]), r"expected an action batch of shape \(2,\), got \(3,\)"),
        (np.array([0.5, 1.0]), r"expected integers in \[0, 6\)"),
    ],
)
def test_bad_actions_are_refused_before_any_state_changes(actions, match: str) -> None:
    g = LabBatch(2, "collect", seed=0)
    g.reset()
    before = g.get_state(torch.arange(2))
    with pytest.raises(ReprlError, match=match):
        g.step(actions)
    after = g.get_state(torch.arange(2))
    for k in before:
        assert torch.equal(before[k], after[k]), k
    g.step(np.array([0, 5]))  # still usable


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    """The same worlds on cuda: the same dynamics exactly (positions, objects, rewards, ends are
    integers), the same pictures up to rays that graze a cell corner (the raycaster's float
    arithmetic may round one ulp apart on another device, moving an edge by a pixel)."""
    actions = np.random.default_rng(0).integers(0, 6, (100, 32))
    traces: list[dict[str, list[torch.Tensor]]] = []
    for device in ("cpu", "cuda"):
        core = LabBatch(32, "collect", seed=9, device=device, max_episode_steps=40)
        t: dict[str, list[torch.Tensor]] = {"frames": [core.reset().cpu()], "rest": []}
        for a in actions:
            r = core.step(torch.as_tensor(a))
            t["frames"].append(r.obs.cpu())
            f = core.factors()
            t["rest"] += [r.reward.cpu(), r.terminated.cpu(), *(f[k].cpu() for k in sorted(f))]
        traces.append(t)
    for x, y in zip(traces[0]["rest"], traces[1]["rest"]):
        assert torch.equal(x, y)
    cpu, cuda = (torch.stack(t["frames"]) for t in traces)
    differ = (cpu != cuda).any(-1).float().mean().item()
    print(f"fraction of pixels that differ between cpu and cuda: {differ:.2e}")
    assert differ < 1e-3
