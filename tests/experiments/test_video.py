"""GIFs of an agent playing (experiments.video.record_gif)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

import envs
from envs.errors import ReprlError
from envs.exploration import RandomPolicy
from experiments.video import record_gif

ENV_ID = "reprl/BreakoutStandard-v0"


def _frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


def test_gif_has_the_env_frames_of_one_episode(tmp_path: Path) -> None:
    path = record_gif(
        RandomPolicy(3, 1, seed=0), ENV_ID, tmp_path / "a" / "x.gif", seed=3, max_frames=25
    )
    assert path == tmp_path / "a" / "x.gif" and not list(path.parent.glob("*.tmp*"))
    frames = _frames(path)
    assert 1 < len(frames) <= 25
    assert frames[0].shape == (64, 64, 3)
    # the first frame is the env's reset frame for that seed (GIF palettes are exact here:
    # Breakout has far fewer than 256 colours)
    venv = envs.make_vec(ENV_ID, 1, seed=3)
    venv.reset()
    np.testing.assert_array_equal(frames[0], venv.get_images()[0])
    assert any((f != frames[0]).any() for f in frames[1:])  # it moves


def test_gif_stops_at_the_end_of_the_episode_and_scales(tmp_path: Path) -> None:
    path = record_gif(
        RandomPolicy(3, 1, seed=0),
        ENV_ID,
        tmp_path / "y.gif",
        seed=0,
        max_frames=1000,
        env_kwargs={"max_episode_steps": 8},
        scale=2,
    )
    with Image.open(path) as im:
        assert im.size == (128, 128)
        assert 1 < im.n_frames <= 9  # reset frame + at most 8 steps


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReprlError, match="max_frames: expected an integer >= 1, got 0"):
        record_gif(RandomPolicy(3, 1), ENV_ID, tmp_path / "z.gif", max_frames=0)
    assert not (tmp_path / "z.gif").exists()
