"""The device loop (agents.device_ppo, agents.ppo_update) against SB3's own PPO.

On fixed data: GAE equals ``RolloutBuffer.compute_returns_and_advantage`` and one update
equals ``PPO.train`` (parameters and logged losses). End to end on the CPU: a run of the
device loop follows SB3's ``learn`` step for step (same seeds, same envs), a device-trained
agent saves and loads as today's agents do, seeds reproduce runs, SB3's log keys are written.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import agents
import envs
from agents.device_ppo import (
    DevicePPO,
    EpisodeBatch,
    check_device_loop,
    device_loop_problem,
    learn_on_device,
    resolve_loop,
)
from agents.latent import find_encode_wrapper
from agents.ppo_update import (
    PPOSettings,
    Rollout,
    compute_gae,
    is_categorical,
    policy_act,
    policy_evaluate,
    ppo_update,
)
from envs.errors import ReprlError

from .conftest import ENV_ID

N, T = 4, 16


def _venv(seed: int = 0, *, k: int = 2, gray: bool = True, steps: int = 40):
    """N Breakout envs with a short time limit (truncations within a few rollouts)."""
    return envs.make_vec(
        ENV_ID,
        N,
        seed=[seed + i for i in range(N)],
        frame_stack=k,
        grayscale=gray,
        info_factors=False,
        max_episode_steps=steps,
    )


def _agent(mode: str = "pixels", ckpt: Path | None = None, seed: int = 0, **kw):
    gray = mode == "pixels"
    extra = {"features_dim": 32} if mode == "pixels" else {}
    return agents.make_agent(
        "ppo",
        _venv(seed, gray=gray),
        encoder=ckpt,
        mode=mode,
        seed=seed,
        **{"n_steps": T, "batch_size": 32, "n_epochs": 2, **extra, **kw},
    )


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


# ---------------------------------------------------------------------- fixed data


def _fixed_rollout(seed: int, obs_shape: tuple[int, ...], n_actions: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    starts = rng.random((T, N)) < 0.15
    starts[0] = True
    return {
        "obs": rng.integers(0, 256, (T, N, *obs_shape), dtype=np.uint8),
        "actions": rng.integers(0, n_actions, (T, N)),
        "rewards": rng.normal(size=(T, N)).astype(np.float32),
        "starts": starts,
        "values": rng.normal(size=(T, N)).astype(np.float32),
        "log_probs": -rng.random((T, N)).astype(np.float32) * 2,
        "last_values": rng.normal(size=N).astype(np.float32),
        "last_dones": rng.random(N) < 0.3,
    }


def _sb3_buffer(model: PPO, data: dict[str, np.ndarray]) -> RolloutBuffer:
    buf = model.rollout_buffer
    buf.reset()
    for t in range(T):
        buf.add(
            data["obs"][t],
            data["actions"][t].reshape(N, 1),
            data["rewards"][t],
            data["starts"][t],
            torch.as_tensor(data["values"][t]),
            torch.as_tensor(data["log_probs"][t]),
        )
    buf.compute_returns_and_advantage(torch.as_tensor(data["last_values"]), data["last_dones"])
    return buf


def _rollout(data: dict[str, np.ndarray], gamma: float, lam: float) -> Rollout:
    r = Rollout(
        obs=torch.as_tensor(data["obs"]),
        actions=torch.as_tensor(data["actions"]),
        rewards=torch.as_tensor(data["rewards"]),
        episode_starts=torch.as_tensor(data["starts"]).float(),
        values=torch.as_tensor(data["values"]),
        log_probs=torch.as_tensor(data["log_probs"]),
    )
    r.finish(torch.as_tensor(data["last_values"]), torch.as_tensor(data["last_dones"]), gamma, lam)
    return r


@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 1.0), (0.999, 0.0)])
def test_gae_is_sb3s(gamma: float, lam: float) -> None:
    model = _agent(gamma=gamma, gae_lambda=lam)
    data = _fixed_rollout(0, model.observation_space.shape, 3)
    buf = _sb3_buffer(model, data)
    r = _rollout(data, gamma, lam)
    assert torch.equal(r.advantages, torch.as_tensor(buf.advantages))
    assert torch.equal(r.returns, torch.as_tensor(buf.returns))
    adv, ret = compute_gae(
        r.rewards, r.values, r.episode_starts, r.values[-1], torch.zeros(N), gamma, lam
    )
    assert adv.shape == ret.shape == (T, N)


UPDATES = [
    {},
    {"clip_range_vf": 0.1, "ent_coef": 0.01},
    {"normalize_advantage": False, "max_grad_norm": 0.1, "vf_coef": 1.0},
    {"target_kl": 0.001, "learning_rate": 1e-2},  # stops early within the first epoch
]


@pytest.mark.parametrize("kwargs", UPDATES)
def test_one_update_is_ppo_train(kwargs: dict) -> None:
    """The same rollout, policy, optimizer state and numpy seed: ``ppo_update`` leaves the
    parameters (and Adam's state) where ``PPO.train`` does and computes the losses it logs."""
    model = _agent(**kwargs)
    model.set_logger(configure(None, [""]))
    data = _fixed_rollout(1, model.observation_space.shape, int(model.action_space.n))
    _sb3_buffer(model, data)
    policy = copy.deepcopy(model.policy)
    np.random.seed(7)  # noqa: NPY002 (SB3 draws minibatches from numpy's global RNG)
    model.train()
    sb3 = dict(model.logger.name_to_value)
    policy.set_training_mode(True)
    settings = PPOSettings(
        n_epochs=model.n_epochs,
        batch_size=model.batch_size,
        clip_range=model.clip_range(1.0),
        clip_range_vf=None if model.clip_range_vf is None else model.clip_range_vf(1.0),
        ent_coef=model.ent_coef,
        vf_coef=model.vf_coef,
        max_grad_norm=model.max_grad_norm,
        target_kl=model.target_kl,
        normalize_advantage=model.normalize_advantage,
    )
    np.random.seed(7)  # noqa: NPY002
    stats = ppo_update(policy, _rollout(data, model.gamma, model.gae_lambda), settings)
    assert _max_diff(policy, model.policy) < 1e-6
    assert stats.epochs == model._n_updates
    assert stats.stopped_early == ("target_kl" in kwargs)
    for key, ours in [
        ("train/policy_gradient_loss", stats.policy_gradient_loss),
        ("train/value_loss", stats.value_loss),
        ("train/entropy_loss", stats.entropy_loss),
        ("train/clip_fraction", stats.clip_fraction),
        ("train/approx_kl", stats.approx_kl),
        ("train/loss", stats.loss),
    ]:
        assert ours == pytest.approx(float(sb3[key]), rel=1e-5, abs=1e-7), key


def test_update_refuses_what_it_cannot_split() -> None:
    model = _agent()
    data = _fixed_rollout(2, model.observation_space.shape, 3)
    settings = PPOSettings(1, 24, 0.2, None, 0.0, 0.5, 0.5, None, True)
    with pytest.raises(ValueError, match="does not divide the rollout size 64"):
        ppo_update(model.policy, _rollout(data, 0.99, 0.95), settings)
    r = _rollout(data, 0.99, 0.95)
    r.advantages = None
    with pytest.raises(ValueError, match="finished rollout"):
        ppo_update(model.policy, r, settings)


@pytest.mark.parametrize("share", [True, False])
def test_policy_heads_are_sb3s_bit_for_bit(share: bool) -> None:
    """``policy_act`` draws what ``policy(obs)`` draws from the same seed (actions, values,
    log-probabilities) and ``policy_evaluate`` gives ``evaluate_actions``' numbers and
    gradients, with a shared features extractor or one per head."""
    model = PPO(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        policy_kwargs={"share_features_extractor": share},
        seed=0,
        device="cpu",
    )
    policy = model.policy
    assert is_categorical(policy)
    obs = torch.randn(64, 4)
    with torch.no_grad():
        torch.manual_seed(5)
        theirs = policy(obs)
        torch.manual_seed(5)
        ours = policy_act(policy, obs)
    assert all(torch.equal(a.flatten(), b.flatten()) for a, b in zip(theirs, ours, strict=True))
    actions = torch.randint(0, 2, (64,))
    params = list(policy.parameters())
    results = []
    for evaluate in (policy.evaluate_actions, lambda o, a: policy_evaluate(policy, o, a)):
        values, log_prob, entropy = evaluate(obs, actions)
        loss = values.square().mean() - log_prob.mean() - 0.01 * entropy.mean()
        results.append((values, log_prob, entropy, *torch.autograd.grad(loss, params)))
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


def test_the_heads_leave_other_action_spaces_to_sb3() -> None:
    policy = PPO("MlpPolicy", gym.make("Pendulum-v1"), seed=0, device="cpu").policy
    assert not is_categorical(policy)
    obs, actions = torch.randn(8, 3), torch.randn(8, 1)
    ours, theirs = policy_evaluate(policy, obs, actions), policy.evaluate_actions(obs, actions)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    with torch.no_grad():
        torch.manual_seed(3)
        ours = policy_act(policy, obs)
        torch.manual_seed(3)
        theirs = policy(obs)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


# ---------------------------------------------------------------------- whole loop

MODES = [("pixels", True), ("frozen", True), ("frozen", False), ("finetune", True)]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one intra-op thread: with two, a convolution's float sums are ordered by the
    thread split and batch size, and Adam carries the rounding on over 10 rollouts (measured:
    pixel policies 2e-3 apart, one thread under 1e-5)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(("mode", "fast"), MODES)
@pytest.mark.usefixtures("one_thread")
def test_the_loop_follows_sb3s_learn(mode: str, fast: bool, ckpt: Path) -> None:
    """Same seeds, same envs (time limits hit): after 10 rollouts the device loop's policy is
    SB3's to float tolerance (the terminal values are batched here, one by one in SB3's), with
    the same episodes, step count and update count."""
    enc = None if mode == "pixels" else ckpt
    sb3 = _agent(mode, enc, fast=fast)
    sb3.learn(T * N * 10)
    dev = _agent(mode, enc, fast=fast)
    learn_on_device(dev, T * N * 10, channels_last=False)  # SB3's (C, H, W) copies
    assert _max_diff(sb3.policy, dev.policy) < 1e-5
    assert dev.num_timesteps == sb3.num_timesteps and dev._n_updates == sb3._n_updates
    ep = [(e["r"], e["l"]) for e in sb3.ep_info_buffer]
    assert ep and ep == [(e["r"], e["l"]) for e in dev.ep_info_buffer]


def test_channels_last_pixels_are_the_same_numbers() -> None:
    """The default pixel path (channels-last views of the env's frames, rollout kept as
    ``(T, N, H, W, C)``): one update moves the parameters as the transposed copies do, to
    float rounding, and a short run stays near SB3's (Adam carries the rounding on)."""
    model = _agent()
    data = _fixed_rollout(3, model.observation_space.shape, 3)
    settings = PPOSettings(1, 32, 0.2, None, 0.0, 0.5, 0.5, None, True)
    policies = [copy.deepcopy(model.policy) for _ in range(2)]
    stats = []
    for policy, last in zip(policies, (False, True)):
        r = _rollout(data, 0.99, 0.95)
        if last:
            r.obs, r.channels_last = r.obs.permute(0, 1, 3, 4, 2).contiguous(), True
        np.random.seed(3)  # noqa: NPY002
        stats.append(ppo_update(policy, r, settings))
    assert _max_diff(*policies) < 1e-5
    assert stats[0].loss == pytest.approx(stats[1].loss, rel=1e-5)
    sb3, dev = _agent(), _agent()
    sb3.learn(T * N * 4)
    learn_on_device(dev, T * N * 4)
    assert _max_diff(sb3.policy, dev.policy) < 1e-2


def test_seeds_reproduce_runs() -> None:
    runs = []
    for seed in (0, 0, 1):
        model = _agent(seed=seed)
        DevicePPO(model).learn(T * N * 2)
        runs.append(model.policy)
    assert _max_diff(runs[0], runs[1]) == 0
    assert _max_diff(runs[0], runs[2]) > 0


def test_saved_device_agent_predicts_from_pixels(ckpt: Path, tmp_path: Path) -> None:
    """A fast frozen agent trained on the device saves as its pixel-space export: plain
    ``PPO.load`` and ``agents.load_agent`` give, from stacked pixels, the action probabilities
    the trained latent policy gives for the encoded stacks."""
    model = _agent("frozen", ckpt)
    learn_on_device(model, T * N * 2)
    path = tmp_path / "agent.zip"
    agents.save_agent(model, path, info={"env_id": ENV_ID})
    pixels = _venv(5, gray=False).reset()
    wrapper = find_encode_wrapper(model.get_env())
    z = torch.as_tensor(wrapper.encode(pixels))
    with torch.no_grad():
        want = model.policy.get_distribution(z).distribution.probs
    for loaded in (PPO.load(path, device="cpu"), agents.load_agent(path)):
        obs, _ = loaded.policy.obs_to_tensor(pixels)
        with torch.no_grad():
            got = loaded.policy.get_distribution(obs).distribution.probs
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(
            loaded.predict(pixels, deterministic=True)[0],
            model.predict(z.numpy(), deterministic=True)[0],
        )


def test_episode_batches_carry_the_terminal_factors_sb3s_infos_give() -> None:
    """Each finished episode's last-frame factors, batched per rollout, equal what SB3's loop
    reports in ``infos[i]["terminal_factors"]`` for the same episodes (same seed: on the CPU
    both loops draw the same actions)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Batches(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[EpisodeBatch] = []

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            self.batches.append(self.locals["episodes"])

    class Infos(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, Any]] = []

        def _on_step(self) -> bool:
            for info, done in zip(self.locals["infos"], self.locals["dones"]):
                if done:
                    self.rows.append(info["terminal_factors"])
            return True

    steps = T * N * 6  # 96 steps per env: two time-limited episodes each (limit 40)
    dev, spy = _agent(), Batches()
    DevicePPO(dev, channels_last=False).learn(steps, callback=spy)
    ref = _agent()
    env = envs.make_vec(
        ENV_ID, N, seed=list(range(N)), frame_stack=2, grayscale=True, max_episode_steps=40
    )
    ref.set_env(env)
    infos = Infos()
    ref.learn(steps, callback=infos)
    got = [b for b in spy.batches if len(b)]
    assert sum(len(b) for b in got) == len(infos.rows) == 2 * N
    names = sorted(infos.rows[0])
    rows = iter(infos.rows)
    for b in got:
        assert sorted(b.factors) == names
        for i in range(len(b)):
            want = next(rows)
            for k in names:
                np.testing.assert_array_equal(b.factors[k][i], np.asarray(want[k]), err_msg=k)
    assert all(v.shape[0] == len(b) for b in got for v in b.factors.values())
    assert all((b.factors["lives"] >= 1).all() for b in got)  # ended by the time limit


def test_sb3_logs_and_callbacks(tmp_path: Path) -> None:
    """SB3's log keys (rollout/*, train/*, time/*), ``on_step`` once per vector step, and one
    EpisodeBatch per rollout with the episodes' end steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Spy(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.steps, self.batches = 0, []

        def _on_step(self) -> bool:
            self.steps += 1
            return True

        def _on_rollout_end(self) -> None:
            self.batches.append(self.locals["episodes"])

    model = _agent(clip_range_vf=0.2)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    spy = Spy()
    learn_on_device(model, T * N * 4, callback=spy)
    assert spy.steps == T * 4 and len(spy.batches) == 4
    assert all(isinstance(b, EpisodeBatch) for b in spy.batches)
    done = [b for b in spy.batches if len(b)]
    assert done and all(b.lengths.tolist() == [40] * len(b) for b in done)  # the time limit
    assert done[0].global_step.tolist() == [40 * N] * N
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in (
        "rollout/ep_rew_mean",
        "rollout/ep_len_mean",
        "time/fps",
        "train/loss",
        "train/approx_kl",
        "train/clip_fraction",
        "train/entropy_loss",
        "train/value_loss",
        "train/policy_gradient_loss",
        "train/explained_variance",
        "train/learning_rate",
        "train/clip_range",
        "train/clip_range_vf",
        "train/n_updates",
    ):
        assert key in header, key


def test_a_callback_ends_training() -> None:
    calls = []

    def stop(locals_, globals_) -> bool:
        calls.append(1)
        return len(calls) < 5

    model = _agent()
    learn_on_device(model, T * N * 4, callback=stop)
    assert model.num_timesteps == 5 * N and model._n_updates == 0


def test_sb3_goes_on_where_the_device_loop_stopped(ckpt: Path) -> None:
    """The loop hands its state back (last obs, latent ring, monitor counters): SB3's learn
    continues the run, and the device loop continues SB3's."""
    model = _agent("frozen", ckpt)
    learn_on_device(model, T * N)
    model.learn(T * N, reset_num_timesteps=False)
    learn_on_device(model, T * N, reset_num_timesteps=False)
    assert model.num_timesteps == 3 * T * N
    wrapper = find_encode_wrapper(model.get_env())
    np.testing.assert_array_equal(wrapper._latents, model._last_obs)


# ---------------------------------------------------------------------- refusals


def test_which_loop() -> None:
    assert resolve_loop(None, ENV_ID, "ppo") == "device"
    assert resolve_loop(None, "reprl/LabCollect-v0", "ppo") == "device"
    assert resolve_loop(None, ENV_ID, "a2c") == "sb3"
    assert resolve_loop("sb3", ENV_ID, "ppo") == "sb3"
    for env_id in ("ALE/Breakout-v5", "reprl/CoinRun-v0", "reprl/MemoryMaze-9x9-v0"):
        assert resolve_loop(None, env_id, "ppo") == "sb3"
        with pytest.raises(ReprlError, match=f"train.loop: 'device' .*{env_id}"):
            resolve_loop("device", env_id, "ppo", key="train.loop")
    with pytest.raises(ReprlError, match=r"'device' cannot .* got algo 'a3c'"):
        resolve_loop("device", ENV_ID, "a3c")
    with pytest.raises(ReprlError, match="expected one of \\['device', 'sb3'\\]"):
        resolve_loop("gpu", ENV_ID, "ppo")
    assert device_loop_problem(ENV_ID, "ppo", recurrent=True) is not None
    with pytest.raises(ReprlError, match="trains PPO only"):
        agents.get_algorithm("a3c", loop="device")


def test_refuses_models_it_cannot_train(ckpt: Path) -> None:
    a2c = agents.make_agent("a2c", _venv(), mode="pixels", n_steps=4)
    with pytest.raises(ReprlError, match="expected a stable_baselines3 PPO model, got A2C"):
        DevicePPO(a2c)
    plain = PPO("MlpPolicy", DummyVecEnv([lambda: envs.TorchSingleEnv(envs.make_batch(ENV_ID, 1))]))
    with pytest.raises(ReprlError, match="expected the model's env to be a reprl batched env"):
        check_device_loop(plain)
    normed = PPO("CnnPolicy", VecNormalize(_venv(gray=False), norm_reward=True, norm_obs=False),
                 n_steps=T, batch_size=32)  # fmt: skip
    with pytest.raises(ReprlError, match="holds a VecNormalize"):
        check_device_loop(normed)
    model = _agent()
    model.get_env().venv.venv.core.device = torch.device("cuda")  # as if on a GPU
    with pytest.raises(ReprlError, match="the policy is on cpu, the env on cuda"):
        DevicePPO(model)
    frozen = _agent("frozen", ckpt)
    find_encode_wrapper(frozen.get_env()).device = torch.device("cuda")
    with pytest.raises(ReprlError, match="the encoder is on cuda, the env on cpu"):
        DevicePPO(frozen)
    odd = _agent()
    odd.batch_size = 24
    with pytest.raises(ReprlError, match=r"batch_size 24 does not divide .* = 64"):
        DevicePPO(odd)
    with pytest.raises(ReprlError, match="expected a stable_baselines3 PPO"):
        check_device_loop(A2C("MlpPolicy", plain.get_env()))
