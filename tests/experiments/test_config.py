"""Typed configs from YAML and dotted overrides (OmegaConf structured configs underneath)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from envs.errors import ReprlError
from experiments.config import (
    ConfigError,
    config_hash,
    field_docs,
    load_config,
    parse_overrides,
    read_yaml,
)


@dataclass
class Inner:
    """Inner block.

    Attributes:
        beta: a weight,
            on two lines.
        name: a name.
    """

    beta: float = 1.0
    name: str = "x"


@dataclass
class Cfg:
    steps: int = 10
    lr: float = 1e-3
    flag: bool = False
    ids: list[str] = field(default_factory=lambda: ["a"])
    model: dict[str, Any] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    inners: list[Inner] = field(default_factory=list)
    maybe: int | None = None
    kind: Literal["a", "b"] = "a"


def test_defaults_file_then_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("steps: 20\ninner:\n  beta: 4\nmodel: {latent_dim: 8}\n")
    cfg = load_config(Cfg, f, ["inner.name=y", "lr=0.01", "ids=[b, c]", "maybe=3", "kind=b"])
    assert cfg.steps == 20 and cfg.lr == 0.01 and cfg.inner == Inner(beta=4.0, name="y")
    assert cfg.ids == ["b", "c"] and cfg.model == {"latent_dim": 8} and cfg.maybe == 3
    assert isinstance(cfg.inner.beta, float) and cfg.kind == "b"


def test_a_base_config_is_the_first_layer() -> None:
    base = Cfg(steps=7, inners=[Inner(name="q")])
    cfg = load_config(Cfg, None, ["lr=0.5"], base=base)
    assert cfg.steps == 7 and cfg.lr == 0.5 and cfg.inners == [Inner(name="q")]


def test_parse_overrides_nests_and_types() -> None:
    assert parse_overrides(["a.b.c=1", "a.d=true", "e=x", "f=[1, 2]"]) == {
        "a": {"b": {"c": 1}, "d": True},
        "e": "x",
        "f": [1, 2],
    }


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["stepz=3"], r"stepz: unknown key 'stepz' \(Cfg has no such field\)"),
        (["steps=ten"], "steps: expected an integer, got 'ten'"),
        (["steps=1.5"], "steps: expected an integer, got '1.5'"),
        (["flag=3"], "flag: expected true or false, got 3"),
        (["inner.beta=high"], "inner.beta: expected a number, got 'high'"),
        (["inner.zz=1"], r"inner.zz: unknown key 'zz' \(Inner has no such field\)"),
        (["inners=[{name: a, zz: 1}]"], "unknown key 'zz'"),
        (["kind=c"], r"kind: expected one of \['a', 'b'\], got 'c'"),
        (["ids=3"], "ids: expected a list"),
        (["steps"], "expected key=value"),
        (["steps=[1"], "expected a YAML value"),
    ],
)
def test_bad_values_name_the_field(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_config(Cfg, None, overrides)
    assert isinstance(info.value, ReprlError) and "\n" not in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a YAML mapping, got list"):
        load_config(Cfg, f)
    f.write_text("steps: [1,\n")
    with pytest.raises(ConfigError, match=r"expected valid YAML, got a syntax error \(line"):
        read_yaml(f)
    with pytest.raises(ConfigError, match="found no such file"):
        read_yaml(tmp_path / "nope.yaml")


def test_hash_is_stable_and_ignores_keys() -> None:
    a, b = Cfg(), Cfg(steps=11)
    assert config_hash(a) == config_hash(Cfg()) != config_hash(b)
    assert config_hash(a, ignore=["steps"]) == config_hash(b, ignore=["steps"])


def test_field_docs_reads_the_attributes_section() -> None:
    assert field_docs(Inner) == {"beta": "a weight, on two lines.", "name": "a name."}
