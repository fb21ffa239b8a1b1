"""Pairs of frames (t, t + k) of one episode, as ST-DIM and ATC train on them."""

from pathlib import Path

import numpy as np
import pytest

from envs.errors import ReprlError
from envs.exploration import collect
from envs.storage.dataset import FrameDataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> FrameDataset:
    out = tmp_path_factory.mktemp("pairs") / "explore.h5"
    return collect(
        "reprl/BreakoutStandard-v0",
        1500,
        out,
        num_envs=6,
        seed=5,
        progress=False,
        env_kwargs={"max_episode_steps": 40},
    )


@pytest.mark.parametrize("offset", [1, 3])
def test_an_epoch_draws_every_pair_start_once(dataset: FrameDataset, offset: int) -> None:
    starts = dataset.sequence_starts(offset + 1)
    batches = list(dataset.iter_pairs(16, offset, seed=0, buffer_chunks=3))
    index = np.concatenate([b["index"] for b in batches])
    assert len(index) == len(starts) // 16 * 16  # the final partial batch is dropped
    assert len(np.unique(index)) == len(index) and np.isin(index, starts).all()
    assert not np.array_equal(index, np.sort(index))  # shuffled
    for b in batches[:5]:
        i = b["index"]
        assert (dataset.episode[i] == dataset.episode[i + offset]).all()  # never across an end
        assert (dataset.step[i + offset] - dataset.step[i] == offset).all()
        np.testing.assert_array_equal(
            b["obs"], dataset.frames(np.sort(i))[np.argsort(np.argsort(i))]
        )
        for j in range(3):
            t = int(i[j])
            np.testing.assert_array_equal(b["obs"][j], dataset.frames(slice(t, t + 1))[0])
            np.testing.assert_array_equal(
                b["next_obs"][j], dataset.frames(slice(t + offset, t + offset + 1))[0]
            )


def test_episode_ends_are_never_crossed(dataset: FrameDataset) -> None:
    """With 40-step episodes many starts are excluded; none of the drawn ones crosses a done."""
    dones = dataset.array("dones")
    for b in dataset.iter_pairs(32, 5, seed=1):
        i = b["index"]
        for t in i:
            assert not dones[t : t + 5].any()


def test_seeds_give_other_orders_and_the_same_seed_the_same(dataset: FrameDataset) -> None:
    a = next(dataset.iter_pairs(16, 2, seed=0))["index"]
    b = next(dataset.iter_pairs(16, 2, seed=0))["index"]
    c = next(dataset.iter_pairs(16, 2, seed=1))["index"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_arguments(dataset: FrameDataset, tmp_path: Path) -> None:
    with pytest.raises(ReprlError, match=r"offset: expected an integer in \[1, "):
        next(dataset.iter_pairs(8, 0))
    with pytest.raises(ReprlError, match=r"batch_size: expected an integer >= 1"):
        next(dataset.iter_pairs(0, 1))
    with pytest.raises(ReprlError, match=r"no pair of frames 200 steps apart"):
        next(dataset.iter_pairs(8, 200))
