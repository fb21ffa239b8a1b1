"""Configs that cannot work are refused before any stage writes anything: one line, exit 2.

Every case goes through the command line (``experiments.cli.main`` in process, a subprocess for
two), asserts the one line and its config key, and that the run directory was never created.
Then a full disk in the middle of a run: one line naming the file and the disk, what was
written before intact, and the rerun completes.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from experiments.cli import main
from experiments.experiment import load_experiment
from experiments.validation import check_device

NO_CUDA = not torch.cuda.is_available()
PIXELS_ONLY = ["agents=[{name: pixels, mode: pixels}]", "encoders=[]"]

# (overrides, what the one line must contain)
BAD = [
    # the four measured on main (issue 23)
    (["train.ppo.learning_rate=-1"], "train.ppo.learning_rate: expected a finite number > 0, got"),
    (["encoders.1.model.latent_dim=0"], "encoders.beta_vae_dae.model: beta_vae_dae does not build"),
    (
        ["train.env_kwargs.obs_size=[84,84]"],
        "train.env_id: encoder 'dae' takes frames (H, W, C) = (64, 64, 3)",
    ),
    # SB3's ranges
    (["train.ppo.gamma=1.5"], "train.ppo.gamma: expected a value in [0, 1], got 1.5"),
    (["train.ppo.clip_range=0"], "train.ppo.clip_range: expected a finite number > 0, got 0"),
    (["train.ppo.n_epochs=0"], "train.ppo.n_epochs: expected an integer >= 1, got 0"),
    (["train.ppo.ent_coef=-1"], "train.ppo.ent_coef: expected a finite number >= 0, got -1"),
    (["train.ppo.gae_lambda=2"], "train.ppo.gae_lambda: expected a value in [0, 1], got 2"),
    (["train.ppo.vf_coef=-0.5"], "train.ppo.vf_coef: expected a finite number >= 0"),
    (["train.ppo.max_grad_norm=0"], "train.ppo.max_grad_norm: expected a finite number > 0"),
    (["train.ppo.target_kl=0"], "train.ppo.target_kl: expected null or a finite number > 0"),
    (["train.ppo.learning_rate=.nan"], "train.ppo.learning_rate: expected a finite number > 0"),
    (["train.ppo.stats_window_size=0"], "train.ppo.stats_window_size: expected an integer >= 1"),
    (["train.ppo.policy.net_arch_pi=[0]"], "train.ppo.policy.net_arch_pi: expected layer sizes"),
    (["train.ppo.policy.net_arch_vf=[64]"], "train.ppo.policy.net_arch: expected both"),
    (["train.algo=a2c", "train.a2c.rms_prop_eps=0"], "train.a2c.rms_prop_eps: expected a finite"),
    (["train.algo=a2c", "train.a2c.gae_lambda=-0.1"], "train.a2c.gae_lambda: expected a value in"),
    (["train.algo=a3c", "train.a3c.vf_coef=-1"], "train.a3c.vf_coef: expected a finite number >="),
    # reprl's own numbers
    (["encoders.0.lr=.inf"], "encoders.dae.lr: expected a finite number > 0, got inf"),
    (["encoders.0.weight_decay=-1"], "encoders.dae.weight_decay: expected a finite number >= 0"),
    (["encoders.2.grad_clip=.nan"], "encoders.st_dim.grad_clip: expected a finite number >= 0"),
    (["seeds=[-1]"], "seeds[0]: expected an integer >= 0, got -1"),
    (["evaluate.seed=-5"], "evaluate.seed: expected an integer >= 0, got -5"),
    (["train.seconds=.inf", "train.budget=seconds"], "train.seconds: expected a finite number"),
    # the training loop (issue 25): the device loop only for PPO on reprl's torch envs
    (["train.loop=gpu"], "train.loop: expected one of ['device', 'sb3'], got 'gpu'"),
    (
        ["train.loop=device", "train.algo=a2c"],
        "train.loop: 'device' cannot train this agent: it trains ['ppo'] only, got algo 'a2c'",
    ),
    (
        [
            *PIXELS_ONLY,
            "train.loop=device",
            "train.env_id=reprl/CoinRun-v0",
            "evaluate.env_ids=[reprl/CoinRun-v0]",
        ],
        "train.loop: 'device' cannot train this agent: it steps the torch cores of reprl's "
        "['breakout', 'lab'] envs only; reprl/CoinRun-v0 is of the 'procgen' family",
    ),
    (
        ["train.loop=device", "train.ppo.batch_size=100"],
        "train.ppo: batch_size 100 does not divide the rollout size n_steps * n_envs",
    ),
    # the device
    (["device=tpu"], "device: expected a torch device, cpu, cuda, cuda:N or mps, got 'tpu'"),
    (["device=cuda:x"], "device: expected a torch device"),
    # model kwargs: built, not only their names checked
    (["encoders.0.model.latent_dim=abc"], "encoders.dae.model: dae does not build with"),
    (["encoders.1.model.beta=-1"], "beta: expected >= 0, got -1"),
    (["encoders.0.model.bogus=1"], "encoders.dae.model: dae: unknown config keys ['bogus']"),
    (["encoders.0.method=nope"], "encoders.dae.method: expected one of"),
    # encoders and agents against every env they meet
    (["collect.env_kwargs.obs_size=[32,32]"], "collect.env_ids: encoder 'dae' takes frames"),
    (["evaluate.env_kwargs.obs_size=[48,48]"], "evaluate.env_ids: encoder 'beta_vae_dae' takes"),
    (
        [*PIXELS_ONLY, "evaluate.env_kwargs.obs_size=[48,48]"],
        "evaluate.env_ids: the agents are trained on reprl/BreakoutStandard-v0 frames",
    ),
    (["train.env_kwargs.bogus=1"], "train.env_kwargs: reprl/BreakoutStandard-v0 does not build"),
    (
        ["collect.env_ids=[reprl/BreakoutStandard-v0, reprl/LabCollect-v0]"],
        "collect.env_kwargs: reprl/LabCollect-v0 does not build",
    ),
]
if NO_CUDA:
    BAD.append((["device=cuda"], "device: expected an available device, got 'cuda'"))
else:
    BAD.append((["device=cuda:99"], "device: expected one of cuda:0 .."))


def _one_line(capsys: pytest.CaptureFixture[str], command: str = "run") -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert err[0].startswith(f"reprl {command}: "), err[0]
    return err[0]


def _nothing_in(root: Path) -> None:
    written = [str(p) for p in root.rglob("*")] if root.exists() else []
    assert written == [], written


@pytest.mark.parametrize(("overrides", "expected"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_a_bad_config_is_one_line_exit_2_and_writes_nothing(
    overrides: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    assert main(["run", f"root={root}", *overrides]) == 2
    line = _one_line(capsys)
    assert expected in line, line
    _nothing_in(root)


def test_the_default_and_a_consistent_32_pixel_config_pass(tmp_path: Path) -> None:
    load_experiment(None, [f"root={tmp_path}"]).validate()
    small = [
        "collect.env_kwargs.obs_size=[32,32]",
        "train.env_kwargs.obs_size=[32,32]",
        "encoders.0.model.input_shape=[3,32,32]",  # "@dae" resolves to this 32x32 DAE
        "encoders.1.model.input_shape=[3,32,32]",
        "encoders.2.model.input_shape=[3,32,32]",
    ]
    load_experiment(None, small).validate()
    # the same beta-VAE_DAE on a 64x64 DAE does not build: "@dae" is that encoder's config
    with pytest.raises(ValueError, match=r"encoders\.beta_vae_dae\.model"):
        load_experiment(None, [*small[:2], *small[3:]])


def test_validation_is_fast() -> None:
    load_experiment(None, [])  # imports and the memo of models and env shapes
    t0 = time.perf_counter()
    load_experiment(None, ["name=other", "train.timesteps=1000"])
    assert time.perf_counter() - t0 < 1.0


def test_validation_keeps_the_random_state() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load_experiment(None, ["encoders.1.model.latent_dim=7"])  # builds two models
    assert torch.equal(torch.rand(3), expected)


def test_check_device() -> None:
    check_device("device", "cpu")
    with pytest.raises(ValueError, match=r"x\.device: expected a torch device"):
        check_device("x.device", "gpu")


def test_pretrain_config_is_validated_before_anything_is_read_or_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "enc"
    common = [f"dataset={tmp_path / 'missing.h5'}", f"out={out}", "method=beta_vae"]
    cases = [
        (["model.latent_dim=0"], "model: beta_vae does not build with {'latent_dim': 0}"),
        (["model.input_shape=[3,0,64]"], "model: beta_vae does not build"),
        (["device=tpu"], "device: expected a torch device"),
        (["lr=.inf"], "lr: expected"),
    ]
    for overrides, expected in cases:
        assert main(["pretrain", *common, *overrides]) == 2
        line = _one_line(capsys, "pretrain")
        assert expected in line, (overrides, line)
        assert not out.exists()


def test_every_sweep_trial_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep.yaml"
    root = tmp_path / "runs"
    sweep.write_text(
        yaml.safe_dump(
            {"name": "sw", "root": str(root), "grid": {"train.ppo.gamma": [0.9, 1.5]}},
            sort_keys=False,
        )
    )
    assert main(["sweep", str(sweep), "--dry-run"]) == 2
    line = _one_line(capsys, "sweep")
    assert "train.ppo.gamma" in line and "expected a value in [0, 1], got 1.5" in line, line
    _nothing_in(root)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.ppo.learning_rate=-1"], "train.ppo.learning_rate: expected"),
        (["encoders.1.model.latent_dim=0"], "encoders.beta_vae_dae.model"),
    ],
)
def test_the_installed_command_says_one_line_and_writes_nothing(
    overrides: list[str], expected: str, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", f"root={root}", *overrides],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("reprl run: ") and expected in lines[0], lines
    assert "Traceback" not in r.stderr and r.stdout == ""
    _nothing_in(root)


# --- a full disk in the middle of a run ------------------------------------------------------
TINY = [
    "seeds=[0]",
    "collect.frames=256",
    "collect.num_envs=4",
    "encoders.0.steps=4",
    "encoders.0.batch_size=8",
    "encoders.0.model.latent_dim=8",
    "encoders.1.steps=4",
    "encoders.1.batch_size=8",
    "encoders.1.model.latent_dim=4",
    "encoders.2.steps=4",
    "encoders.2.batch_size=8",
    "encoders.2.model.latent_dim=4",
    "probe.enabled=false",
    "train.budget=steps",
    "train.timesteps=64",
    "train.num_envs=2",
    "train.frame_stack=2",
    "train.ppo.n_steps=32",
    "train.ppo.batch_size=32",
    "train.ppo.n_epochs=1",
    "evaluate.episodes=1",
    "evaluate.num_envs=1",
    "evaluate.env_kwargs.max_episode_steps=20",
    "evaluate.deterministic=[true]",
    "evaluate.env_ids=[reprl/BreakoutStandard-v0]",
]


def _disk_full_at(monkeypatch: pytest.MonkeyPatch, suffix: str) -> list[str]:
    """``os.replace`` onto a path ending in ``suffix`` fails as on a full disk (every atomic
    write of reprl, the dataset's included, ends in that rename)."""
    hits: list[str] = []
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(suffix):
            hits.append(str(dst))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return hits


def _stage_lines(out: str) -> dict[str, str]:
    return {ln.split(" ", 1)[0]: ln for ln in out.splitlines() if " s" in ln}


def test_a_full_disk_is_one_line_keeps_what_was_there_and_the_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    base = root / "x"
    # jobs=1: the full disk is patched into this process, not into workers (a worker's
    # ENOSPC arrives here whole: tests/experiments/test_parallel.py)
    argv = ["run", f"root={root}", "name=x", *TINY, "jobs=1"]

    def failing_run(suffix: str, extra: tuple[str, ...] = ()) -> str:
        hits = _disk_full_at(monkeypatch, suffix)
        code = main([*argv, *extra])
        monkeypatch.undo()
        err = capsys.readouterr().err  # progress bars, then the one line
        said = [ln for ln in err.splitlines() if ln.startswith("reprl ")]
        assert len(said) == 1 and "Traceback" not in err, err
        line = said[0]
        assert code == 2 and hits, (code, line)
        assert f"reprl run: {hits[0]}: no space left on device (disk /" in line, line
        assert " free of " in line and "Traceback" not in line
        assert not list(base.rglob("*.tmp")) and not list(base.rglob("*.partial"))
        return line

    failing_run("explore.h5")  # the dataset
    assert not (base / "collect" / "explore.h5").exists()
    failing_run("beta_vae_dae/encoder.safetensors")  # a checkpoint
    assert (base / "pretrain" / "beta_vae_dae" / "state.safetensors").is_file()  # resumable
    dataset = (base / "collect" / "explore.h5").read_bytes()
    dae = (base / "pretrain" / "dae" / "encoder.safetensors").read_bytes()
    failing_run("agent.zip")  # an agent
    assert (base / "collect" / "explore.h5").read_bytes() == dataset
    assert (base / "pretrain" / "dae" / "encoder.safetensors").read_bytes() == dae
    assert main(argv) == 0  # space again: the finished stages are reused
    lines = _stage_lines(capsys.readouterr().out)
    assert "reused" in lines["collect"] and "reused" in lines["pretrain"], lines
    report = (base / "report" / "report.md").read_bytes()
    failing_run("report.md", ("evaluate.episodes=2",))  # a report
    assert (base / "report" / "report.md").read_bytes() == report
    assert main([*argv, "evaluate.episodes=2"]) == 0
    assert (base / "report" / "report.md").read_bytes() != report


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
def test_a_gpu_sweep_leaves_the_trials_device_to_their_nodes(tmp_path: Path) -> None:
    from experiments.sweep import load_sweep, plan

    sweep = tmp_path / "sweep.yaml"
    data = {
        "name": "sw",
        "root": str(tmp_path / "runs"),
        "overrides": ["device=cuda", "agents=[{name: pixels, mode: pixels}]", "encoders=[]"],
        "grid": {"train.ppo.gamma": [0.9, 0.99]},
    }
    sweep.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ValueError, match="device: expected an available device"):
        plan(load_sweep(sweep), str(sweep))  # on this machine's CPU: refused
    data["resources"] = {"gpu": 1}
    sweep.write_text(yaml.safe_dump(data, sort_keys=False))
    assert len(plan(load_sweep(sweep), str(sweep)).trials) == 2  # on GPU nodes: theirs
    with pytest.raises(ValueError, match="device: expected a torch device"):
        plan(load_sweep(sweep, ["overrides=[device=tpu]"]), str(sweep))


def test_a_full_disk_message_without_a_file_still_names_the_disk() -> None:
    from experiments.cli import error_message

    line = error_message(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert line.startswith("writing: no space left on device (disk /") and " free of " in line
    line = error_message(OSError(errno.EDQUOT, "Disk quota exceeded", "/tmp/x/agent.zip"))
    assert line.startswith("/tmp/x/agent.zip: no space left on device (disk /")


def test_a_collect_agent_that_only_pickle_opens_is_refused_unless_trusted(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    import envs
    from agents import save_agent

    model = PPO("MlpPolicy", envs.make_vec("reprl/BreakoutStandard-v0", 1, obs_size=(16, 16)))
    model.save(tmp_path / "plain.zip")  # SB3's own save: spaces and classes as pickles
    save_agent(model, tmp_path / "safe.zip")
    sb3 = ["collect.policy=sb3", f"root={tmp_path / 'runs'}"]
    with pytest.raises(ValueError, match=r"collect.model_path: expected an agent zip that opens"):
        load_experiment(None, [*sb3, f"collect.model_path={tmp_path / 'plain.zip'}"])
    load_experiment(
        None, [*sb3, f"collect.model_path={tmp_path / 'plain.zip'}", "collect.trust_pickle=true"]
    )
    load_experiment(None, [*sb3, f"collect.model_path={tmp_path / 'safe.zip'}"])
    with pytest.raises(ValueError, match=r"collect.model_path: .*missing.zip"):
        load_experiment(None, [*sb3, f"collect.model_path={tmp_path / 'missing.zip'}"])
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("method", ["st_dim", "atc", "cpc"])
def test_temporal_methods_refuse_a_scene_collect(method: str, tmp_path: Path) -> None:
    overrides = [
        f"root={tmp_path}",
        "collect.env_ids=[reprl/LabCollectTrain-v0]",
        "collect.env_kwargs={}",
        "collect.views_per_scene=4",
        f"encoders=[{{name: enc, method: {method}}}]",
        "agents=[{name: a, encoder: enc, mode: frozen}]",
    ]
    with pytest.raises(ValueError, match=rf"encoders.enc: {method} trains on consecutive frames"):
        load_experiment(None, overrides)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["collect", "probe", "pictures", "evaluate"])
def test_command_line_devices_are_checked(command: str, tmp_path: Path, capsys) -> None:
    from experiments.cli import main

    args = {
        "collect": ["--env", "reprl/BreakoutStandard-v0", "--frames", "8", "--out", "d.h5"],
        "probe": ["enc.safetensors", "d.h5"],
        "pictures": ["enc.safetensors", "d.h5"],
        "evaluate": ["--agent", "a.zip", "--env", "reprl/BreakoutStandard-v0"],
    }[command]
    with pytest.raises(SystemExit) as e:
        main(
            [
                command,
                *[
                    str(tmp_path / a) if a.endswith((".h5", ".zip", ".safetensors")) else a
                    for a in args
                ],
                "--device",
                "tpu",
            ]
        )
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device: expected a torch device" in err[0]
    assert not list(tmp_path.iterdir())
