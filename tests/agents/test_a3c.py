"""A3C: n-step returns, the shared optimiser, asynchronous workers, lifecycle, save and load.

Every ``learn`` here spawns real worker processes (about 2 s of start-up each on 2 cores), so
the trained agents are module fixtures shared by several tests.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import envs
from agents import (
    A3C,
    A2CHyperparams,
    A3CHyperparams,
    A3CWorkerError,
    EncodeObservations,
    WorkerEnvs,
    agent_algo,
    load_agent,
    make_agent,
    save_agent,
)
from agents.a3c import SharedRMSprop, check_n_workers, max_workers, n_step_returns
from agents.recurrent import SharedLstmCnnPolicy, SharedLstmPolicy
from envs.errors import ReprlError
from tests.processes import terminal_sigint

ENV_ID = "reprl/BreakoutStandard-v0"
KWARGS = {"frame_stack": 2, "info_factors": False}
RECIPE = WorkerEnvs(ENV_ID, 2, KWARGS)
ROOT = Path(__file__).resolve().parents[2]


def _env(n: int = 2, seed: int = 0, **kwargs: Any) -> VecEnv:
    return envs.make_vec(ENV_ID, n, seed=seed, **{**KWARGS, **kwargs})


def _alive(pid: int) -> bool:
    """Whether a process with this pid runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class _Pids(BaseCallback):
    """Records the worker pids while ``learn`` runs; optionally acts once they all updated."""

    def __init__(self, act: Any = None) -> None:
        super().__init__()
        self.pids: list[int] = []
        self.act, self.acted = act, False

    def _on_step(self) -> bool:
        self.pids = [p.pid for p in self.model.a3c_workers if p.pid is not None]
        if self.act is not None and not self.acted and all(self.model.a3c_stats["updates"]):
            self.acted = True
            return self.act(self.model) is not False
        return True


# ---------------------------------------------------------------- env factories for the workers


class _Sleepy(VecEnvWrapper):
    def __init__(self, venv: VecEnv, delay: float) -> None:
        super().__init__(venv)
        self.delay = delay

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        time.sleep(self.delay)
        return self.venv.step_wait()


@dataclass(frozen=True)
class SlowFirstWorker:
    """Worker 0's envs sleep ``delay`` seconds per step; the others run at full speed."""

    delay: float

    def __call__(self, rank: int, seed: int | None) -> VecEnv:
        venv = RECIPE(rank, seed)
        return _Sleepy(venv, self.delay) if rank == 0 else venv


class _Failing(VecEnvWrapper):
    def __init__(self, venv: VecEnv, after: int) -> None:
        super().__init__(venv)
        self.after, self.steps = after, 0

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        self.steps += 1
        if self.steps > self.after:
            raise RuntimeError(f"env of worker 1 broke after {self.after} steps")
        return self.venv.step_wait()


@dataclass(frozen=True)
class FailingSecondWorker:
    """Worker 1's envs raise after ``after`` steps."""

    after: int

    def __call__(self, rank: int, seed: int | None) -> VecEnv:
        venv = RECIPE(rank, seed)
        return _Failing(venv, self.after) if rank == 1 else venv


# ---------------------------------------------------------------- pure pieces


def test_n_step_returns_by_hand() -> None:
    rewards = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    dones = torch.tensor([[False, False], [True, False], [False, False]])
    last = torch.tensor([10.0, -1.0])
    g = 0.5
    # env 0: the episode ends after step 1, so steps 0-1 never see step 2 or the bootstrap
    r0_2 = 3.0 + g * 10.0  # 8.0
    r0_1 = 0.0  # terminal: no bootstrap
    r0_0 = 1.0 + g * r0_1  # 1.0
    # env 1: no episode end, bootstrapped from V = -1
    r1_2 = 0.0 + g * -1.0  # -0.5
    r1_1 = 2.0 + g * r1_2  # 1.75
    r1_0 = 0.0 + g * r1_1  # 0.875
    expected = torch.tensor([[r0_0, r1_0], [r0_1, r1_1], [r0_2, r1_2]])
    assert torch.allclose(n_step_returns(rewards, dones, last, g), expected)


def test_shared_rmsprop_is_torch_rmsprop_with_shared_state() -> None:
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    frozen = torch.nn.Parameter(torch.randn(4), requires_grad=False)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    ours = SharedRMSprop([*a.parameters(), frozen], lr=0.01, alpha=0.9, eps=1e-3).share_memory()
    ref = torch.optim.RMSprop(b.parameters(), lr=0.01, alpha=0.9, eps=1e-3, foreach=False)
    before = frozen.detach().clone()
    for _ in range(5):
        x = torch.randn(8, 3)
        for net, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
        assert ours.state[p]["square_avg"].is_shared()
        assert float(ours.state[p]["step"]) == 5
    assert torch.equal(frozen, before) and frozen not in ours.state  # no state, never moved
    # SB3 saves the state dict; a plain RMSprop (what A2C.load builds) takes it
    plain = torch.optim.RMSprop([*b.parameters(), frozen.detach().clone()], lr=0.01)
    plain.load_state_dict(ours.state_dict())


# ---------------------------------------------------------------- bad input: no process starts


@pytest.mark.parametrize("bad", [0, -2, max_workers() + 1, True, 1.5, "2"])
def test_n_workers_out_of_range(bad: Any) -> None:
    with pytest.raises(
        ReprlError, match=rf"n_workers: expected an integer in \[1, {max_workers()}\]"
    ):
        check_n_workers(bad)
    assert check_n_workers(1) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_workers": 0}, r"n_workers: expected an integer in \[1, \d+\].*got 0"),
        ({"n_workers": max_workers() + 1}, rf"got {max_workers() + 1}"),
        ({"env_fn": None}, r"env_fn: .*expected env_fn\(rank, seed\) -> VecEnv.*got None"),
        (
            {"env_fn": WorkerEnvs(ENV_ID, 2, {**KWARGS, "obs_size": (32, 32)})},
            r"env_fn \(the workers' envs\): observation shape: the encoder expects .*"
            r"\(64, 64, 3\).*got \(32, 32, 6\)",
        ),
        (
            {"env_fn": WorkerEnvs(ENV_ID, 2, {**KWARGS, "obs_size": (32, 32)}), "fast": False},
            r"env_fn observation space: expected the model's Box.*6, 64, 64.*got Box.*6, 32, 32",
        ),
        (
            {"env_fn": WorkerEnvs(ENV_ID, 2, {"frame_stack": 3})},
            r"env_fn \(the workers' envs\): observation channels: .* = 6 channels.*got C=9",
        ),
        ({"env_fn": lambda rank, seed: RECIPE(rank, seed)}, r"env_fn: expected a picklable"),
        ({"n_steps": 0}, r"n_steps: expected an integer >= 1, got 0"),
    ],
)
def test_bad_input_is_refused_before_any_process(ckpt: Path, kwargs: dict, match: str) -> None:
    kwargs = {"env_fn": RECIPE, **kwargs}
    with pytest.raises(ReprlError, match=match):
        make_agent("a3c", _env(), encoder=ckpt, mode="frozen", **kwargs)
    assert multiprocessing.active_children() == []


def test_encoder_that_does_not_fit_the_env_is_refused(ckpt: Path) -> None:
    with pytest.raises(ReprlError, match=r"observation shape: the encoder expects .*got"):
        make_agent("a3c", _env(obs_size=(32, 32)), encoder=ckpt, env_fn=RECIPE)
    with pytest.raises(ReprlError, match=r"env_fn: only algo 'a3c' uses it; expected None"):
        make_agent("a2c", _env(), encoder=ckpt, env_fn=RECIPE)
    with pytest.raises(ReprlError, match=r"hyperparams: expected A3CHyperparams for algo 'a3c'"):
        make_agent("a3c", _env(), encoder=ckpt, env_fn=RECIPE, hyperparams=A2CHyperparams())
    with pytest.raises(ReprlError, match="optimizer_class"):
        make_agent(
            "a3c",
            _env(),
            encoder=ckpt,
            env_fn=RECIPE,
            policy_kwargs={"optimizer_class": torch.optim.Adam},
        )
    assert multiprocessing.active_children() == []


# ---------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fast-path (frozen, wrapper) A3C trained 1,000 steps by 2 workers, with a checkpoint
    and a CSV log."""
    import representations as R
    from tests.agents.conftest import TINY

    d = tmp_path_factory.mktemp("a3c")
    torch.manual_seed(0)
    ckpt = d / "vae.safetensors"
    R.make_representation("beta_vae", **TINY).save(ckpt)
    hp = A3CHyperparams(n_workers=2, n_steps=5, learning_rate=1e-3)
    model = make_agent("a3c", _env(), encoder=ckpt, mode="frozen", env_fn=RECIPE, hyperparams=hp)
    model.set_logger(configure(str(d / "log"), ["csv"]))
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    pids = _Pids()
    t0 = time.perf_counter()
    model.learn(1000, callback=pids, log_interval=0.5, checkpoint=d / "ckpt.zip")
    return {
        "model": model,
        "dir": d,
        "ckpt": ckpt,
        "before": before,
        "pids": pids.pids,
        "seconds": time.perf_counter() - t0,
    }


def test_every_worker_contributes_updates(trained: dict[str, Any]) -> None:
    model = trained["model"]
    stats = model.a3c_stats
    assert len(stats["updates"]) == 2 and all(u > 0 for u in stats["updates"])
    assert sum(stats["env_steps"]) == model.num_timesteps >= 1000
    # every update is n_steps x envs-per-worker env steps
    assert [s // (5 * 2) for s in stats["env_steps"]] == stats["updates"]
    # the shared RMSProp saw both workers' updates (one statistic, stepped by every worker)
    opt = model.policy.optimizer
    assert isinstance(opt, SharedRMSprop)
    steps = {float(st["step"]) for st in opt.state.values()}
    assert min(steps) > max(stats["updates"])
    changed = [
        k for k, v in model.policy.state_dict().items() if not torch.equal(v, trained["before"][k])
    ]
    assert changed, "training changed no parameter of the global model"


def test_per_worker_counts_are_logged(trained: dict[str, Any]) -> None:
    import csv

    with open(trained["dir"] / "log" / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows
    last = rows[-1]
    counts = [int(float(last[f"a3c/updates_worker_{i}"])) for i in range(2)]
    assert counts == trained["model"].a3c_stats["updates"]
    assert {"time/fps", "a3c/env_steps_worker_0", "train/value_loss"} <= set(rows[0])


def test_no_process_left_after_learn(trained: dict[str, Any]) -> None:
    assert len(trained["pids"]) == 2
    assert multiprocessing.active_children() == []
    assert not any(_alive(pid) for pid in trained["pids"])
    assert trained["model"].a3c_workers == []


def test_save_load_predicts_identically(trained: dict[str, Any], tmp_path: Path) -> None:
    model = trained["model"]
    env = _env(4, seed=3)
    pixels = env.reset()
    for _ in range(20):
        pixels, *_ = env.step(np.random.default_rng(0).integers(0, 3, 4))
    latents = EncodeObservations(_env(4), trained["ckpt"], frame_stack=2).encode(pixels)
    want, _ = model.predict(latents, deterministic=True)

    path = save_agent(model, tmp_path / "agent.zip", info={"env_id": ENV_ID})  # pixel export
    assert agent_algo(path) == "a3c"
    loaded = load_agent(path)
    assert type(loaded) is A3C and loaded.n_workers == 2
    got, _ = loaded.predict(pixels, deterministic=True)
    np.testing.assert_array_equal(got, want)
    obs_l, _ = model.policy.obs_to_tensor(latents)
    obs_p, _ = loaded.policy.obs_to_tensor(pixels)
    with torch.no_grad():
        p_l = model.policy.get_distribution(obs_l).distribution.probs
        p_p = loaded.policy.get_distribution(obs_p).distribution.probs
    assert torch.allclose(p_l, p_p, atol=1e-5)

    # a plain save (no reprl metadata) is recognised as an A3C by its n_workers
    del model.reprl_info
    try:
        model.save(tmp_path / "plain.zip")
    finally:
        model.reprl_info = {"algo": "a3c"}
    assert agent_algo(tmp_path / "plain.zip") == "a3c"
    plain = A3C.load(tmp_path / "plain.zip")
    np.testing.assert_array_equal(plain.predict(latents, deterministic=True)[0], want)
    assert isinstance(A2C.load(tmp_path / "plain.zip"), A2C)  # an A2C zip too


def test_checkpoint_resumes_counters_and_weights(trained: dict[str, Any]) -> None:
    model = trained["model"]
    fresh = make_agent("a3c", _env(), encoder=trained["ckpt"], mode="frozen", env_fn=RECIPE)
    fresh.load_checkpoint(trained["dir"] / "ckpt.zip")
    assert fresh.num_timesteps == model.num_timesteps
    assert fresh.a3c_stats == model.a3c_stats
    for k, v in model.policy.state_dict().items():
        assert torch.equal(fresh.policy.state_dict()[k], v), k
    # checkpoints are written from private copies: workers cannot change bytes mid-write
    live = model.policy.state_dict()
    for k, v in model.get_parameters()["policy"].items():
        assert torch.equal(v, live[k]) and v.data_ptr() != live[k].data_ptr()
    opt_state = fresh.policy.optimizer.state_dict()["state"]
    assert opt_state and all("square_avg" in s for s in opt_state.values())
    with pytest.raises(ReprlError, match="checkpoint observation_space: expected"):
        other = make_agent(
            "a3c", _env(), encoder=trained["ckpt"], mode="frozen", fast=False, env_fn=RECIPE
        )
        other.load_checkpoint(trained["dir"] / "ckpt.zip")


@pytest.mark.filterwarnings("ignore:rich is experimental")  # SB3's progress bar
@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_encoder_in_the_policy_frozen_stays_finetune_moves(ckpt: Path, mode: str) -> None:
    model = make_agent(
        "a3c", _env(), encoder=ckpt, mode=mode, fast=False, env_fn=RECIPE, n_workers=1, seed=0
    )
    enc = {k: v.clone() for k, v in model.policy.features_extractor.encoder.state_dict().items()}
    head = model.policy.action_net.weight.detach().clone()
    model.learn(100, progress_bar=True)  # a bar of env steps, not of callback calls
    after = model.policy.features_extractor.encoder.state_dict()
    same = all(torch.equal(after[k], v) for k, v in enc.items())
    assert same == (mode == "frozen")
    assert not torch.equal(model.policy.action_net.weight, head)
    assert all(u > 0 for u in model.a3c_stats["updates"])
    assert not model.policy.features_extractor.encoder.training or mode != "frozen"


# ---------------------------------------------------------------- asynchrony and lifecycle


def test_workers_run_without_a_barrier(ckpt: Path) -> None:
    """Worker 0's envs are 20 ms per step slower: with a barrier both would do the same number
    of updates; asynchronous workers do not wait for it."""
    model = make_agent(
        "a3c", _env(), encoder=ckpt, mode="frozen", env_fn=SlowFirstWorker(0.02), n_workers=2
    )

    def stop_later(m: A3C) -> bool:
        time.sleep(1.5)  # the workers keep training meanwhile
        return False

    model.learn(10**9, callback=_Pids(stop_later))
    slow, fast = model.a3c_stats["updates"]
    assert slow > 0 and fast > 0
    assert fast > 3 * slow, model.a3c_stats


def test_a_failing_worker_raises_its_traceback_and_stops_the_others(ckpt: Path) -> None:
    model = make_agent(
        "a3c", _env(), encoder=ckpt, mode="frozen", env_fn=FailingSecondWorker(12), n_workers=2
    )
    pids = _Pids()
    with pytest.raises(A3CWorkerError) as err:
        model.learn(10**9, callback=pids)
    text = str(err.value)
    assert "A3C worker 1 failed" in text and "Traceback" in text
    assert "RuntimeError: env of worker 1 broke after 12 steps" in text
    assert multiprocessing.active_children() == []
    assert pids.pids and not any(_alive(pid) for pid in pids.pids)


def test_a_killed_worker_is_a_clear_error_and_leaves_no_process(ckpt: Path) -> None:
    model = make_agent("a3c", _env(), encoder=ckpt, mode="frozen", env_fn=RECIPE, n_workers=2)

    def kill_worker_1(m: A3C) -> None:
        os.kill(m.a3c_workers[1].pid, signal.SIGKILL)

    pids = _Pids(kill_worker_1)
    t0 = time.perf_counter()
    with pytest.raises(
        A3CWorkerError, match=r"A3C worker 1 \(pid \d+\) was killed by signal SIGKILL"
    ):
        model.learn(10**9, callback=pids)
    assert time.perf_counter() - t0 < 30  # no hang
    assert multiprocessing.active_children() == []
    assert len(pids.pids) == 2 and not any(_alive(pid) for pid in pids.pids)


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from stable_baselines3.common.callbacks import BaseCallback
    import envs
    from agents import make_agent
    from tests.agents.test_a3c import RECIPE, _env

    class Pids(BaseCallback):
        def _on_step(self):
            pids = [p.pid for p in self.model.a3c_workers]
            if all(self.model.a3c_stats["updates"]):
                with open(sys.argv[2] + ".tmp", "w") as f:
                    json.dump(pids, f)
                import os
                os.replace(sys.argv[2] + ".tmp", sys.argv[2])
            return True

    if __name__ == "__main__":
        model = make_agent("a3c", _env(), encoder=sys.argv[1], env_fn=RECIPE, n_workers=2)
        model.learn(10**9, callback=Pids(), checkpoint=sys.argv[3], checkpoint_every=0.5)
    """
)


def test_ctrl_c_stops_every_worker_and_keeps_the_checkpoint(ckpt: Path, tmp_path: Path) -> None:
    import json

    script = tmp_path / "train.py"
    script.write_text(CTRL_C_SCRIPT)
    pids_file, checkpoint = tmp_path / "pids.json", tmp_path / "ckpt.zip"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(ckpt), str(pids_file), str(checkpoint)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=terminal_sigint,  # without it, a suite run as a background job timed out
    )
    try:
        deadline = time.monotonic() + 60
        while not (pids_file.exists() and checkpoint.exists()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.1)
        assert pids_file.exists() and checkpoint.exists()
        time.sleep(0.6)  # let a checkpoint be written while training goes on
        pids = json.loads(pids_file.read_text())
        proc.send_signal(signal.SIGINT)  # the main process only, as a terminal's Ctrl-C reaches it
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in stderr
    assert len(pids) == 2 and not any(_alive(pid) for pid in pids)
    assert not list(tmp_path.glob(".ckpt.zip.*.tmp"))  # no half-written checkpoint left
    # the checkpoint is whole: a fresh agent loads it (training on from it: the pipeline test)
    model = make_agent("a3c", _env(), encoder=ckpt, env_fn=RECIPE, n_workers=2)
    model.load_checkpoint(checkpoint)
    assert model.num_timesteps > 0 and all(u > 0 for u in model.a3c_stats["updates"])
    assert model.num_timesteps == sum(model.a3c_stats["env_steps"])


# ---------------------------------------------------------------- the LSTM core


def _probs_of(policy: Any, obs: Any, state: tuple[torch.Tensor, torch.Tensor], starts: Any):
    with torch.no_grad():
        dist, new = policy.get_distribution(
            policy.obs_to_tensor(obs)[0],
            tuple(torch.as_tensor(s, dtype=torch.float32) for s in state),
            torch.as_tensor(starts, dtype=torch.float32),
        )
    return dist.distribution.probs, new


@pytest.mark.parametrize("lstm", [0, 16], ids=["feedforward", "lstm"])
def test_a_rollout_is_re_evaluated_as_it_was_acted(ckpt: Path, lstm: int) -> None:
    """The loss's log-probabilities are the acting ones (same parameters), an LSTM's state
    resets where an episode began (checked against a fresh zero state), and gradients reach
    the core."""
    from agents.a3c import Actor, evaluate_rollout, rollout_losses

    env = _env(2, seed=1, max_episode_steps=7)  # truncations inside the rollouts
    model = make_agent(
        "a3c", env, encoder=ckpt, env_fn=RECIPE, n_workers=1, lstm_hidden_size=lstm, seed=0
    )
    assert model.recurrent == bool(lstm)
    policy = model.policy
    actor = Actor(model.env, policy, gamma=0.99)
    episodes: list[tuple[float, int]] = []
    first = actor.rollout(5, episodes)
    second = actor.rollout(5, episodes)  # steps 5..9: episodes end after step 6
    assert second.dones[1].all() and not second.dones[0].any()
    for rollout in (first, second):
        _, log_prob, _ = evaluate_rollout(policy, rollout)
        assert torch.allclose(log_prob, rollout.log_probs, atol=1e-5)
    if lstm:
        assert second.starts[2].all() and not second.starts[:2].any()
        assert first.starts[0].all()  # the first step of all
        assert second.state.pi[0].abs().sum() > 0  # carried over from the first rollout
        # step 2 of the second rollout (rows 4, 5) began episodes: as from a zero state
        zeros = np.zeros((1, 2, lstm), np.float32)
        obs = second.obs[4:6].cpu().numpy()
        fresh, _ = _probs_of(policy, obs, (zeros, zeros), np.ones(2))
        acts = second.actions[4:6].long()
        expected = torch.log(fresh.gather(1, acts.reshape(-1, 1)).flatten())
        assert torch.allclose(second.log_probs[4:6], expected, atol=1e-5)
    policy.set_training_mode(True)
    losses = rollout_losses(policy, second, gamma=0.99)
    assert all(torch.isfinite(x) for x in losses)
    sum(losses).backward()
    core = policy.lstm_actor.weight_hh_l0 if lstm else policy.action_net.weight
    assert core.grad is not None and core.grad.abs().sum() > 0


def test_lstm_a3c_learns_saves_and_predicts_with_its_state(ckpt: Path, tmp_path: Path) -> None:
    hp = A3CHyperparams(n_workers=2, n_steps=5, learning_rate=1e-3, lstm_hidden_size=16)
    model = make_agent("a3c", _env(), encoder=ckpt, env_fn=RECIPE, hyperparams=hp, seed=0)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(600)
    assert all(u > 0 for u in model.a3c_stats["updates"])
    moved = [k for k, v in model.policy.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("lstm_actor.") for k in moved), moved

    # the fast-path (latent) agent and its saved pixel-space export act alike, state carried
    path = save_agent(model, tmp_path / "lstm.zip", info={"env_id": ENV_ID})
    loaded = load_agent(path)
    assert type(loaded) is A3C and loaded.recurrent and loaded.lstm_hidden_size == 16
    assert type(model.policy) is SharedLstmPolicy  # the paper's core, one LSTM for both heads
    assert type(loaded.policy) is SharedLstmCnnPolicy
    env = _env(2, seed=5)
    encode = EncodeObservations(_env(2), ckpt, frame_stack=2)
    pixels, starts = env.reset(), np.ones(2, bool)
    s_model = s_loaded = None
    for _ in range(12):
        want, s_model = model.predict(
            encode.encode(pixels), state=s_model, episode_start=starts, deterministic=True
        )
        got, s_loaded = loaded.predict(
            pixels, state=s_loaded, episode_start=starts, deterministic=True
        )
        np.testing.assert_array_equal(got, want)
        for a, b in zip(s_model, s_loaded):
            np.testing.assert_allclose(a, b, atol=1e-5)
        pixels, _, starts, _ = env.step(want)
    assert np.abs(s_model[0]).sum() > 0


def test_lstm_settings_are_checked(ckpt: Path) -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(ReprlError, match=r"lstm_hidden_size: expected an integer >= 0"):
            make_agent("a3c", _env(), encoder=ckpt, env_fn=RECIPE, lstm_hidden_size=bad)
    with pytest.raises(ReprlError, match=r"policy_kwargs: expected no lstm_hidden_size"):
        make_agent(
            "a3c", _env(), encoder=ckpt, env_fn=RECIPE, policy_kwargs={"lstm_hidden_size": 8}
        )
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    with pytest.raises(ReprlError, match=r"lstm_hidden_size 0 expects a feedforward policy"):
        A3C(RecurrentActorCriticPolicy, _env(), env_fn=RECIPE)
    assert multiprocessing.active_children() == []
