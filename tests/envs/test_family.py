"""Env families as objects: a new family is a spec and one registration; shapes without building."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from envs import registry
from envs.batched import StepResult
from envs.errors import ReprlError
from envs.family import EnvFamily

# -- a throwaway family: a batched core, its spec, one registration ---------------------------


class _BlinkBatch:
    """N games of a toy world: the frame is all ``level`` grey; action 1 raises the level,
    reward 1 each time; an episode ends after ``max_episode_steps``."""

    num_actions = 2
    render_mode = "rgb_array"

    def __init__(
        self, num_envs: int, *, seed: Any = None, device: Any = "cpu", size: int = 8, **kw: Any
    ) -> None:
        if size < 4:
            raise ReprlError(f"size: expected >= 4, got {size}")
        self.num_envs, self.size, self.device = num_envs, size, torch.device(device)
        self.max_episode_steps = int(kw.get("max_episode_steps", 5))
        self.level = torch.zeros(num_envs, dtype=torch.int64)
        self.steps = torch.zeros(num_envs, dtype=torch.int64)

    @property
    def single_obs_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, 3)

    def _obs(self, index: torch.Tensor | None = None) -> torch.Tensor:
        lv = self.level if index is None else self.level[index]
        return lv.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, self.size, self.size, 3).clone()

    def reset(self, seed: Any = None) -> torch.Tensor:
        self.level[:] = 0
        self.steps[:] = 0
        return self._obs()

    def step(self, actions: Any) -> StepResult:
        a = torch.as_tensor(np.asarray(actions), dtype=torch.int64)
        self.level += a
        self.steps += 1
        truncated = self.steps >= self.max_episode_steps
        done = truncated.nonzero().squeeze(1)
        final_obs, final_factors = self._obs(done), self.factors(done)
        self.level[done] = 0
        self.steps[done] = 0
        terminated = torch.zeros_like(truncated)
        return StepResult(
            self._obs(), a.float(), terminated, truncated, done, final_obs, final_factors
        )

    def factors(self, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"level": self.level.clone() if index is None else self.level[index]}

    def render(self, index: torch.Tensor | None = None) -> torch.Tensor:
        return self._obs(index)

    def get_action_meanings(self) -> list[str]:
        return ["STAY", "BLINK"]

    def get_state(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"level": self.level[index].clone(), "steps": self.steps[index].clone()}

    def set_state(self, index: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        self.level[index], self.steps[index] = state["level"], state["steps"]


def _make_blink(
    env_id: str,
    num_envs: int,
    *,
    seed: int | Sequence[int] | None = None,
    device: Any = "cpu",
    frame_stack: int = 1,
    grayscale: bool = False,
    **kwargs: Any,
) -> Any:
    from envs.family import stacked

    core = _BlinkBatch(num_envs, seed=seed, device=device, **kwargs)
    return stacked(core, frame_stack, grayscale)


BLINK = EnvFamily(
    name="blink",
    ids={"test/Blink-v0": {}, "test/BlinkBig-v0": {"size": 16}},
    instead="test/Blink-v0 with size=...",
    action_meanings=("STAY", "BLINK"),
    best_return=lambda env_id, kw: float(kw.get("max_episode_steps", 5)),
    make_batch=_make_blink,
)


@pytest.fixture
def blink() -> Iterator[EnvFamily]:
    registry.register_family(BLINK)  # the one line a new family needs (FAMILIES, at run time)
    try:
        yield BLINK
    finally:
        registry.unregister_family(BLINK)


def test_a_new_family_is_a_spec_and_one_registration(blink: EnvFamily) -> None:
    assert {"test/Blink-v0", "test/BlinkBig-v0"} <= set(envs.known_ids())
    assert envs.family("test/BlinkBig-v0") is blink and blink.batched
    assert envs.best_return("test/Blink-v0", max_episode_steps=7) == 7.0
    assert envs.action_meanings("test/Blink-v0") == ("STAY", "BLINK")
    assert envs.level_range("test/Blink-v0") is None
    assert envs.observation_shape("test/BlinkBig-v0") == (16, 16, 3)
    assert envs.observation_shape("test/Blink-v0", frame_stack=3, grayscale=True) == (8, 8, 3)
    venv = envs.make_vec("test/BlinkBig-v0", 2, seed=0, frame_stack=2)
    assert venv.observation_space.shape == envs.observation_shape("test/BlinkBig-v0", frame_stack=2)
    venv.reset()
    _, reward, _, infos = venv.step(np.array([1, 0]))
    assert reward.tolist() == [1.0, 0.0] and infos[0]["level"] == 1
    assert venv.env_method("get_action_meanings") == [["STAY", "BLINK"]] * 2
    single = gym.make("test/Blink-v0")
    assert single.observation_space.shape == (8, 8, 3)
    single.reset(seed=0)
    assert single.step(1)[1] == 1.0
    vector = gym.make_vec("test/Blink-v0", 3, vectorization_mode="vector_entry_point")
    assert vector.reset(seed=0)[0].shape == (3, 8, 8, 3)
    with pytest.raises(ReprlError, match=r"fixes \{'size': 16\}.*use test/Blink-v0 with size"):
        envs.make_vec("test/BlinkBig-v0", 1, size=4)


def test_unregistering_removes_the_ids() -> None:
    registry.register_family(BLINK)
    registry.register_family(BLINK)  # idempotent
    registry.unregister_family(BLINK)
    assert "test/Blink-v0" not in envs.known_ids() and "test/Blink-v0" not in gym.registry
    with pytest.raises(ReprlError, match="unknown env id 'test/Blink-v0'; expected one of"):
        envs.make_vec("test/Blink-v0", 1)


def test_a_family_cannot_take_another_familys_ids() -> None:
    thief = EnvFamily(
        name="thief",
        ids={"reprl/Breakout-v0": {}},
        instead="-",
        action_meanings=("NOOP",),
        best_return=0.0,
        make_batch=_make_blink,
    )
    with pytest.raises(ReprlError, match="belong to another family"):
        registry.register_family(thief)
    assert envs.family("reprl/Breakout-v0") is registry.FAMILIES[0]


def test_spec_refusals() -> None:
    common: dict[str, Any] = dict(instead="-", action_meanings=("A",), best_return=0.0)
    with pytest.raises(ReprlError, match="exactly one of make_batch"):
        EnvFamily(name="x", ids={"x/X-v0": {}}, **common)
    with pytest.raises(ReprlError, match="at least one id"):
        EnvFamily(name="x", ids={}, make_batch=_make_blink, **common)
    with pytest.raises(ReprlError, match="expected make_batch"):
        EnvFamily(
            name="x",
            ids={"x/X-v0": {}},
            make_vec=lambda *a, **k: None,
            obs_shape=lambda i, k: (1, 1, 3),
            has_segmentation=True,
            **common,
        )


def test_unknown_ids_error_unchanged() -> None:
    for ask in (envs.make_vec, envs.observation_shape, envs.best_return, envs.action_meanings):
        with pytest.raises(ReprlError, match=r"unknown env id 'reprl/Pong-v0'; expected one of \("):
            ask("reprl/Pong-v0", *((1,) if ask is envs.make_vec else ()))
    with pytest.raises(ReprlError, match="expected an id string"):
        envs.family(3)  # type: ignore[arg-type]


def test_families_answer_the_questions_of_their_consumers() -> None:
    assert [f.name for f in envs.FAMILIES] == [
        "breakout",
        "ale",
        "ale_pong",
        "ale_boxing",
        "procgen",
        "lab",
        "memory_maze",
    ]
    batched = {f.name for f in envs.FAMILIES if f.batched}
    assert batched == {"breakout", "lab", "memory_maze"}
    assert {f.name for f in envs.FAMILIES if f.has_segmentation} == {"breakout", "lab"}
    assert {f.name for f in envs.FAMILIES if f.has_camera} == {"lab"}
    assert set(envs.registry.LAB_IDS) == set(envs.family("reprl/LabCollect-v0").ids)
    with pytest.raises(ReprlError, match="not a reprl batched env"):
        envs.make_batch("reprl/CoinRun-v0", 1)
    assert envs.make_batch("reprl/BreakoutJuggling-v0", 2).num_envs == 2


# -- observation_shape equals the built env's observation space --------------------------------

_CHEAP = [i for i in envs.known_ids() if envs.family(i).name in ("breakout", "lab")]
_CASES: list[tuple[str, dict[str, Any]]] = [(i, {}) for i in _CHEAP] + [
    ("reprl/Breakout-v0", {"obs_size": (48, 32), "frame_stack": 4, "grayscale": True}),
    ("reprl/LabNavigate-v0", {"obs_size": (32, 40), "frame_stack": 2}),
]
if importlib.util.find_spec("procgen") is not None:
    _CASES += [(i, {}) for i in envs.family("reprl/CoinRun-v0").ids]
    _CASES.append(("reprl/Procgen-v0", {"game": "maze", "frame_stack": 2, "grayscale": True}))
if importlib.util.find_spec("ale_py") is not None:
    _CASES += [("ALE/Breakout-v5", {}), ("ALE/Breakout-v5", {"obs_size": (84, 84)})]
    _CASES.append(("ALE/Breakout-v5", {"obs_size": (84, 72), "frame_stack": 4}))


@pytest.mark.parametrize(("env_id", "kwargs"), _CASES)
def test_observation_shape_equals_the_built_env(env_id: str, kwargs: dict[str, Any]) -> None:
    want = envs.observation_shape(env_id, **kwargs)
    venv = envs.make_vec(env_id, 1, seed=0, **kwargs)
    try:
        assert want == venv.observation_space.shape
    finally:
        venv.close()


def test_memory_maze_shape_without_mujoco() -> None:
    assert envs.observation_shape("reprl/MemoryMaze-11x11-v0") == (64, 64, 3)
    assert envs.observation_shape("reprl/MemoryMaze-v0", obs_size=(96, 96)) == (96, 96, 3)
    with pytest.raises(ReprlError, match="obs_size: expected"):
        envs.observation_shape("reprl/MemoryMaze-v0", obs_size=(64, 96))
    with pytest.raises(ReprlError, match="unknown kwargs"):
        envs.observation_shape("reprl/MemoryMaze-v0", variant="standard")


def test_observation_shape_refusals() -> None:
    with pytest.raises(ReprlError, match="obs_size"):
        envs.observation_shape("reprl/BreakoutStandard-v0", obs_size=(8, 8))
    with pytest.raises(ReprlError, match="obs_size"):
        envs.observation_shape("ALE/Breakout-v5", obs_size=(0, 64))
    with pytest.raises(ReprlError, match="fixes"):
        envs.observation_shape("reprl/CoinRunTest-v0", split="train")
    with pytest.raises(ReprlError, match="frame_stack"):
        envs.observation_shape("reprl/Breakout-v0", frame_stack=0)
