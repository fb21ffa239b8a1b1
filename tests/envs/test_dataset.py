"""Exploration datasets: what collect writes, how it is read back, and what it refuses."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from envs import breakout as B
from envs.breakout import BreakoutBatch
from envs.errors import ReprlError
from envs.exploration import RandomPolicy, collect
from envs.rng import spawn_seeds
from envs.storage.dataset import CHUNK, DatasetError, FrameDataset

IDS = ["reprl/BreakoutStandard-v0", "reprl/BreakoutJuggling-v0"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> FrameDataset:
    out = tmp_path_factory.mktemp("data") / "explore.h5"
    return collect(
        IDS,
        3000,
        out,
        num_envs=8,
        seed=3,
        policy="random_repeat",
        progress=False,
        env_kwargs={"max_episode_steps": 100},
    )


def test_metadata_and_shapes(dataset: FrameDataset) -> None:
    info = dataset.info
    assert len(dataset) == 3000 and info.frame_shape == (64, 64, 3)
    assert info.domains == tuple(IDS)
    assert set(B.FACTOR_NAMES) == set(info.factor_names)
    assert "lives" in info.discrete_factors and "ball_x" not in info.discrete_factors
    assert info.attrs["policy"]["name"] == "random_repeat" and info.attrs["seed"] == 3
    f = dataset.factors(["ball_x", "lives"])
    assert f["ball_x"].shape == (3000, 3)  # juggling's three balls; standard pads with -1
    std = dataset.domain == 0
    assert (f["ball_x"][std, 1:] == -1).all() and (f["ball_x"][~std] >= 0).all()
    assert np.bincount(dataset.domain).tolist() == [1500, 1500]


def test_frames_agree_with_factors(dataset: FrameDataset) -> None:
    idx = np.arange(0, 3000, 7)
    frames = dataset.frames(idx)
    f = dataset.factors(["ball_x", "ball_y"], idx)
    ball = np.array(B.BALL_COLOR, dtype=np.uint8)
    for j in range(len(idx)):
        for bx, by in zip(f["ball_x"][j], f["ball_y"][j]):
            if bx >= 0:
                assert (frames[j, by * 64 // B.HEIGHT, bx * 64 // B.WIDTH] == ball).all()


def test_frames_replay_from_seed_and_actions(dataset: FrameDataset) -> None:
    # env 0 of domain 0 is the single game with the first recorded seed; its first block is
    # rows [0, k)
    k = CHUNK // 2
    assert (dataset.episode[:k] == dataset.episode[0]).sum() > 10
    seeds = dataset.info.attrs["env_seeds"]
    assert seeds[0] == spawn_seeds(3, 8, purpose="collect/0")
    assert not set(seeds[0]) & set(seeds[1])  # the two domains share no stream
    game = BreakoutBatch(1, "standard", seed=seeds[0][0], max_episode_steps=100)
    frames = [game.reset()[0].numpy()]
    for a in dataset.array("actions", slice(0, k - 1)):
        frames.append(game.step(np.array([a])).obs[0].numpy())
    np.testing.assert_array_equal(np.stack(frames), dataset.frames(slice(0, k)))


def test_episode_bookkeeping(dataset: FrameDataset) -> None:
    e, s, d = dataset.episode, dataset.step, dataset.array("dones")
    for ep in np.unique(e):
        # every episode starts at a reset and is stored whole, in file order
        np.testing.assert_array_equal(s[e == ep], np.arange((e == ep).sum()))
        ends = d[e == ep]
        assert ends[:-1].sum() == 0  # done only on an episode's last frame
    assert d.sum() > 0 and (s[d] < 100).all()  # max_episode_steps=100


def test_batches_cover_every_frame_once(dataset: FrameDataset) -> None:
    seen = np.concatenate(
        [
            b.reshape(len(b), -1).sum(1, dtype=np.int64)
            for b in dataset.iter_batches(100, drop_last=False, seed=1)
        ]
    )
    allf = dataset.frames(slice(None)).reshape(3000, -1).sum(1, dtype=np.int64)
    assert len(seen) == 3000
    np.testing.assert_array_equal(np.sort(seen), np.sort(allf))
    a = next(dataset.iter_batches(64, seed=1))
    b = next(dataset.iter_batches(64, seed=2))
    assert a.shape == (64, 64, 64, 3) and not np.array_equal(a, b)


def test_sequences_are_consecutive_steps_of_one_episode(dataset: FrameDataset) -> None:
    starts = dataset.sequence_starts(12)
    assert len(starts) > 0
    for i in starts[:200]:
        assert len(set(dataset.episode[i : i + 12])) == 1
        assert (np.diff(dataset.step[i : i + 12]) == 1).all()
    batch = next(dataset.iter_sequences(4, 12, num_batches=1))
    assert batch["frames"].shape == (4, 12, 64, 64, 3) and batch["actions"].shape == (4, 12)


def test_episode_batches_group_whole_episodes(dataset: FrameDataset) -> None:
    lengths = dict(zip(*np.unique(dataset.episode, return_counts=True)))
    seen: list[int] = []
    for batch in dataset.iter_episodes(5):
        ids = np.unique(batch["episode"])
        assert 1 <= len(ids) <= 5
        for ep in ids:
            mine = batch["episode"] == ep
            # every frame of the episode is here, steps 0 .. len - 1 in order ...
            assert mine.sum() == lengths[ep]
            np.testing.assert_array_equal(batch["step"][mine], np.arange(lengths[ep]))
            # ... and they are that episode's frames
            rows = np.flatnonzero(dataset.episode == ep)
            np.testing.assert_array_equal(batch["frames"][mine], dataset.frames(rows))
        seen.extend(ids.tolist())
    assert sorted(seen) == sorted(lengths)  # each episode in exactly one batch
    assert max(lengths.values()) > 1


def test_killed_collect_leaves_no_finished_file(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "killed.h5"
    calls = {"n": 0}
    original = RandomPolicy.__call__

    def dying(self, obs, dones):
        calls["n"] += 1
        if calls["n"] > 100:
            raise KeyboardInterrupt
        return original(self, obs, dones)

    monkeypatch.setattr(RandomPolicy, "__call__", dying)
    with pytest.raises(KeyboardInterrupt):
        collect(IDS[0], 5000, out, num_envs=4, progress=False)
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_a_writer_killed_outright_leaves_a_file_readers_refuse(tmp_path: Path) -> None:
    from envs.storage.dataset import DatasetWriter

    out = tmp_path / "killed.h5"
    writer = DatasetWriter(out, (8, 8, 3), {}, {"env_ids": ["x"]})
    writer._f.close()  # what SIGKILL leaves: the file, never renamed, marked incomplete
    partial = out.with_name(out.name + ".partial")
    assert partial.exists() and not out.exists()
    with pytest.raises(DatasetError, match="unfinished"):
        FrameDataset(partial)


def test_bad_files_are_refused(tmp_path: Path, dataset: FrameDataset) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(DatasetError, match="not a readable HDF5 dataset"):
        FrameDataset(junk)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(Path(dataset.path).read_bytes()[:5000])
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        FrameDataset(truncated)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DatasetError, match="not a reprl dataset"):
        FrameDataset(other)
    with pytest.raises(DatasetError, match="no dataset at"):
        FrameDataset(tmp_path / "missing.h5")
    with pytest.raises(DatasetError, match=r"has no factors \['colour'\]"):
        dataset.factors(["colour"])


def test_future_format_version_is_refused(tmp_path: Path, dataset: FrameDataset) -> None:
    future = tmp_path / "future.h5"
    future.write_bytes(Path(dataset.path).read_bytes())
    with h5py.File(future, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(DatasetError, match="format version 99"):
        FrameDataset(future)


def test_bad_collect_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown env id"):
        collect("reprl/Nope-v0", 10, tmp_path / "x.h5", progress=False)
    with pytest.raises(ValueError, match="unknown exploration policy 'greedy'"):
        collect(IDS[0], 10, tmp_path / "x.h5", policy="greedy", progress=False)
    with pytest.raises(ReprlError, match="num_frames: expected an integer >= 1, got 0"):
        collect(IDS[0], 0, tmp_path / "x.h5", progress=False)
