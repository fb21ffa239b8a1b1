"""Typed configs from YAML and dotted overrides."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from experiments.config import ConfigError, config_hash, load_config, parse_overrides


@dataclass
class Inner:
    beta: float = 1.0
    name: str = "x"


@dataclass
class Cfg:
    steps: int = 10
    lr: float = 1e-3
    flag: bool = False
    ids: list[str] = field(default_factory=lambda: ["a"])
    model: dict = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None


def test_defaults_file_then_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("steps: 20\ninner:\n  beta: 4\nmodel: {latent_dim: 8}\n")
    cfg = load_config(Cfg, f, ["inner.name=y", "lr=0.01", "ids=[b, c]", "maybe=3"])
    assert cfg.steps == 20 and cfg.lr == 0.01 and cfg.inner == Inner(beta=4.0, name="y")
    assert cfg.ids == ["b", "c"] and cfg.model == {"latent_dim": 8} and cfg.maybe == 3
    assert isinstance(cfg.inner.beta, float)


def test_parse_overrides_nests_and_types() -> None:
    assert parse_overrides(["a.b.c=1", "a.d=true", "e=x", "f=[1, 2]"]) == {
        "a": {"b": {"c": 1}, "d": True}, "e": "x", "f": [1, 2]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["stepz=3"], r"unknown keys \['stepz'\]"),
        (["steps=ten"], "config.steps: expected an integer, got 'ten'"),
        (["flag=3"], "config.flag: expected true/false, got 3"),
        (["inner.beta=high"], "config.inner.beta: expected a number"),
        (["steps"], "expected key=value"),
    ],
)
def test_bad_values_name_the_field(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(Cfg, None, overrides)


def test_bad_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a YAML mapping, got list"):
        load_config(Cfg, f)


def test_hash_is_stable_and_ignores_keys() -> None:
    a, b = Cfg(), Cfg(steps=11)
    assert config_hash(a) == config_hash(Cfg()) != config_hash(b)
    assert config_hash(a, ignore=["steps"]) == config_hash(b, ignore=["steps"])
