"""Typed hyperparameters: SB3's names and defaults, OmegaConf-ready, the PPO minibatch check."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError
from stable_baselines3 import A2C, PPO
from torch import nn

import envs
from agents import A2CHyperparams, PolicyHyperparams, PPOHyperparams, check_ppo_batch, make_agent
from agents.hyperparams import PROCGEN_PPO, A3CHyperparams
from envs.errors import ReprlError


@pytest.mark.parametrize(("hp_cls", "algo_cls"), [(PPOHyperparams, PPO), (A2CHyperparams, A2C)])
def test_fields_are_sb3_parameters_with_sb3_defaults(hp_cls, algo_cls) -> None:
    params = inspect.signature(algo_cls.__init__).parameters
    kwargs = hp_cls().to_sb3_kwargs()
    assert "policy_kwargs" not in kwargs  # SB3's default policy
    for name, value in kwargs.items():
        assert name in params, name
        assert params[name].default == value, (name, value, params[name].default)
    fields = {f.name for f in dataclasses.fields(hp_cls)} - {"policy"}
    assert set(kwargs) == fields


def test_every_field_has_a_docstring() -> None:
    for cls in (PPOHyperparams, A2CHyperparams, PolicyHyperparams):
        source = inspect.getsource(cls)
        for f in dataclasses.fields(cls):
            line = next(ln for ln in source.splitlines() if ln.strip().startswith(f"{f.name}:"))
            after = source.split(line, 1)[1].lstrip()
            assert after.startswith('"""'), f"{cls.__name__}.{f.name} has no docstring"


def test_structured_config_with_overrides_builds_the_agent() -> None:
    @dataclasses.dataclass
    class Train:
        ppo: PPOHyperparams = dataclasses.field(default_factory=PPOHyperparams)

    cfg = OmegaConf.merge(
        OmegaConf.structured(Train),
        OmegaConf.from_dotlist(
            [
                "ppo.n_steps=8",
                "ppo.batch_size=8",
                "ppo.n_epochs=1",
                "ppo.target_kl=0.02",
                "ppo.policy.net_arch_pi=[16]",
                "ppo.policy.net_arch_vf=[8,8]",
                "ppo.policy.activation_fn=relu",
                "ppo.policy.ortho_init=false",
            ]
        ),
    )
    hp = OmegaConf.to_object(cfg).ppo
    assert isinstance(hp, PPOHyperparams) and isinstance(hp.policy, PolicyHyperparams)
    env = envs.make_vec("reprl/BreakoutStandard-v0", 2, seed=0)
    model = make_agent("ppo", env, mode="pixels", hyperparams=hp, seed=0)
    assert (model.n_steps, model.batch_size, model.n_epochs, model.target_kl) == (8, 8, 1, 0.02)
    assert model.policy.net_arch == {"pi": [16], "vf": [8, 8]}
    assert model.policy.activation_fn is nn.ReLU and model.policy.ortho_init is False
    explicit = make_agent("ppo", env, mode="pixels", hyperparams=hp, n_epochs=3)
    assert explicit.n_epochs == 3  # explicit SB3 kwargs win


def test_closed_choices_and_types_are_checked_with_the_full_key() -> None:
    base = OmegaConf.structured(A2CHyperparams)
    with pytest.raises(ValidationError, match=r"(?s)'sigmoid'.*policy\.activation_fn"):
        OmegaConf.merge(base, OmegaConf.from_dotlist(["policy.activation_fn=sigmoid"]))
    with pytest.raises(ValidationError, match=r"(?s)n_steps"):
        OmegaConf.merge(base, OmegaConf.from_dotlist(["n_steps=many"]))
    with pytest.raises(ReprlError, match="both net_arch_pi and net_arch_vf or neither"):
        PolicyHyperparams(net_arch_pi=[8]).to_policy_kwargs()


@pytest.mark.parametrize(
    ("n_steps", "num_envs", "batch_size", "match"),
    [
        (16, 2, 24, r"batch_size 24 does not divide .* 16 \* 2 = 32 .*last minibatch would be 8"),
        (128, 16, 300, r"expected a divisor of 2048, e\.g\. \[128, 256, 512\]"),
        (1, 1, 2, r"n_steps \* n_envs: expected > 1, got n_steps=1 \* n_envs=1 = 1"),
        (8, 2, 1, r"batch_size: expected > 1, got 1"),
    ],
)
def test_check_ppo_batch_refuses(n_steps: int, num_envs: int, batch_size: int, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        check_ppo_batch(n_steps, num_envs, batch_size)


def test_check_ppo_batch_accepts_divisors() -> None:
    for batch_size in (2, 4, 16, 256, 2048):
        check_ppo_batch(128, 16, batch_size)


RANGED = [
    (PPOHyperparams, "PPO_RANGES"),
    (A2CHyperparams, "A2C_RANGES"),
    (A3CHyperparams, "A3C_RANGES"),
]


@pytest.mark.parametrize(("cls", "table"), RANGED)
def test_every_numeric_field_has_a_range_and_the_defaults_are_in_it(cls, table) -> None:
    from agents import hyperparams as H

    ranges = getattr(H, table)
    numeric = {
        f.name
        for f in dataclasses.fields(cls)
        if f.type in ("int", "float", "float | None", "int | None")
    }
    assert numeric - {"lstm_hidden_size"} == set(ranges)
    cls().validate("train.x.")
    assert PROCGEN_PPO.validate() is None


@pytest.mark.parametrize(
    ("cls", "field", "bad", "good"),
    [
        (PPOHyperparams, "learning_rate", [-1.0, 0.0, float("nan"), float("inf")], [1e-9]),
        (PPOHyperparams, "gamma", [1.5, -0.01], [0.0, 1.0]),
        (PPOHyperparams, "gae_lambda", [2.0, -1.0], [0.0, 1.0]),
        (PPOHyperparams, "clip_range", [0.0, -0.2], [0.01]),
        (PPOHyperparams, "clip_range_vf", [0.0], [None, 0.1]),
        (PPOHyperparams, "n_epochs", [0, -1], [1]),
        (PPOHyperparams, "ent_coef", [-1.0, -1e-9], [0.0]),
        (PPOHyperparams, "vf_coef", [-0.5], [0.0]),
        (PPOHyperparams, "max_grad_norm", [0.0], [10.0]),
        (PPOHyperparams, "target_kl", [0.0, -1.0], [None, 0.01]),
        (PPOHyperparams, "n_steps", [0, True], [1]),
        (A2CHyperparams, "rms_prop_eps", [0.0], [1e-8]),
        (A2CHyperparams, "n_steps", [0], [1]),
        (A3CHyperparams, "rms_prop_alpha", [1.0, -0.1], [0.0, 0.99]),
        (A3CHyperparams, "worker_threads", [0], [1]),
        (A3CHyperparams, "lstm_hidden_size", [-1], [0, 256]),
    ],
)
def test_values_out_of_range_are_refused_with_the_key(cls, field, bad, good) -> None:
    for value in bad:
        with pytest.raises(ReprlError, match=rf"^train\.x\.{field}: expected .*, got "):
            dataclasses.replace(cls(), **{field: value}).validate("train.x.")
    for value in good:
        dataclasses.replace(cls(), **{field: value}).validate("train.x.")


def test_policy_sizes_and_heads_are_checked_with_the_key() -> None:
    def policy(**kw):
        return PPOHyperparams(policy=PolicyHyperparams(**kw))

    with pytest.raises(ReprlError, match=r"^train\.ppo\.policy\.net_arch_pi: expected layer"):
        policy(net_arch_pi=[0], net_arch_vf=[8]).validate("train.ppo.")
    with pytest.raises(ReprlError, match=r"^train\.ppo\.policy\.net_arch: expected both"):
        policy(net_arch_pi=[8]).validate("train.ppo.")
    policy(net_arch_pi=[8], net_arch_vf=[]).validate("train.ppo.")
